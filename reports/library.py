"""The report library: saving a question as a report (from chat or a form), what each person sees, and the
question each person was last answered (so `report save NAME` can keep it)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, or_, select, update

from domain.audit import AuditEntry
from domain.counting import counted
from reports.presentation import Presentation
from reports.query import MetricQuery
from reports.saved import (
    ReportDefinitionError,
    definition_from_query,
    narrowed,
    presentation_from_definition,
    query_from_definition,
)
from storage.database import Database
from storage.models import CustomReport, ReportDelivery, ReportSchedule, StaffUser
from storage.schedules import filters_in_words
from storage.unit_of_work import SqlUnitOfWork

MAX_NAME = 200
MAX_SLUG = 64


class ReportLibraryError(ValueError):
    """A report that cannot be saved as asked; the message says why in words."""


class SchedulesWouldStop(ReportLibraryError):
    """An edit the report's schedules for some values only could no longer be sent after; about the whole
    change, not its name."""


@dataclass(frozen=True)
class SavedReport:
    id: int
    slug: str
    name: str
    shared: bool
    owner_id: int | None
    definition: dict[str, Any]
    schedules: int = 0


@dataclass(frozen=True)
class Saver:
    """Who saves: their staff id, and how they are named in the audit log."""

    staff_id: int
    email: str
    via: str


#: Slugs the dashboard's own pages use (/analytics/reports/new, …/preview): a report may not take them.
RESERVED_SLUGS = frozenset({"new", "preview"})


#: German letters spelt out as Germans write them without: "München" is "muenchen", not "munchen".
_SPELT_OUT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"})


def slug_for(name: str) -> str:
    """A URL-safe slug: "Revenue by clinic (weekly)" -> "revenue-by-clinic-weekly"; "Umsatz München" ->
    "umsatz-muenchen"; other accents are dropped ("Zoë" -> "zoe")."""
    plain = unicodedata.normalize("NFKD", name.translate(_SPELT_OUT)).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")[:MAX_SLUG].strip("-")
    return f"{slug}-report" if slug in RESERVED_SLUGS else slug


async def remember_question(
    database: Database, staff_id: int, query: MetricQuery, at: datetime, *, top: int | None = None
) -> None:
    """Keep the question just answered for `staff_id`; a question with a fixed range is kept as asked.
    `top`: a ranking's N ("top 3 clinics by revenue"), kept as the report's chart cut to its N largest."""
    try:
        definition = definition_from_query(query)
    except ReportDefinitionError:
        # A fixed range cannot be saved as a report; the question before it must not be saved instead.
        await remember_unsaveable(
            database,
            staff_id,
            "its dates are fixed, and a report runs for a period that moves on (ask it with “last month”, "
            "“this quarter” or “last 30 days”, then save it)",
            at,
        )
        return
    if top is not None and query.dimensions:
        definition["chart"] = Presentation(top=top).as_definition()
    await _keep_last(database, staff_id, definition, at)


async def remember_unsaveable(database: Database, staff_id: int, why: str, at: datetime) -> None:
    """Keep that the last answer cannot be a report (an analysis, a fixed range), and why, so `report save`
    refuses it rather than saving the question asked before it."""
    await _keep_last(database, staff_id, {UNSAVEABLE: why}, at)


#: The key of a kept "last question" that cannot be saved, holding why.
UNSAVEABLE = "unsaveable"


async def _keep_last(database: Database, staff_id: int, definition: dict[str, Any], at: datetime) -> None:
    async with SqlUnitOfWork(database) as uow:
        await uow.session.execute(
            update(StaffUser)
            .where(StaffUser.id == staff_id)
            .values(last_question=definition, last_question_at=at)
        )
        await uow.commit()


async def last_question(database: Database, staff_id: int) -> dict[str, Any] | None:
    async with database.read_sessions() as session:
        found: dict[str, Any] | None = await session.scalar(
            select(StaffUser.last_question).where(StaffUser.id == staff_id)
        )
    return found


def checked(name: str, definition: dict[str, Any]) -> tuple[str, str]:
    """The name tidied and its slug, once the name and the definition (query and chart) pass every check."""
    name = " ".join(name.split())
    if not name:
        raise ReportLibraryError("Give the report a name.")
    if len(name) > MAX_NAME or "\x00" in name:
        raise ReportLibraryError(f"A report name is at most {MAX_NAME} characters of text.")
    slug = slug_for(name)
    if not slug:
        raise ReportLibraryError("Give the report a name with at least one letter or digit.")
    try:
        presentation_from_definition(definition, query_from_definition(definition))
    except ReportDefinitionError as error:
        raise ReportLibraryError(f"This report cannot be saved: {error}.") from None
    return name, slug


async def save_report(
    database: Database, saver: Saver, name: str, definition: dict[str, Any], *, shared: bool
) -> SavedReport:
    """Check the definition against the registry, give it a free slug, store it and audit it, in one commit."""
    name, slug = checked(name, definition)
    async with SqlUnitOfWork(database) as uow:
        clash = await uow.session.scalar(
            select(CustomReport.name).where(
                or_(CustomReport.slug == slug, func.lower(CustomReport.name) == name.lower())
            )
        )
        if clash is not None:
            raise ReportLibraryError(f"There is already a report named “{clash}”; pick another name.")
        report = CustomReport(
            slug=slug, name=name, owner_id=saver.staff_id, shared=shared, definition=definition
        )
        uow.session.add(report)
        await uow.session.flush()
        uow.audit.record(
            AuditEntry(
                actor=saver.email,
                via=saver.via,
                action="report.save",
                target=f"report:{slug}",
                detail={"name": name, "shared": shared, "definition": definition},
            )
        )
        await uow.commit()
        return _saved(report)


async def update_report(
    database: Database,
    editor: Saver,
    report: SavedReport,
    name: str,
    definition: dict[str, Any],
    *,
    shared: bool,
) -> SavedReport:
    """Change a saved report's name, question, chart or sharing; its slug (and so its links, schedules and
    chat commands) stays. Checked like a new report, audited with what it was before, in one commit."""
    name, slug = checked(name, definition)
    async with SqlUnitOfWork(database) as uow:
        clash = await uow.session.scalar(
            select(CustomReport.name).where(
                or_(func.lower(CustomReport.name) == name.lower(), CustomReport.slug == slug),
                CustomReport.id != report.id,
            )
        )
        if clash is not None:
            raise ReportLibraryError(f"There is already a report named “{clash}”; pick another name.")
        # Locked, as saving a schedule locks it: a schedule made at the same instant is checked against
        # this edit, or this edit against it.
        stored = await uow.session.get(CustomReport, report.id, with_for_update=True)
        if stored is None:
            raise ReportLibraryError("This report was deleted meanwhile.")
        broken = schedules_broken_by(
            definition,
            (
                await uow.session.execute(
                    select(ReportSchedule.id, ReportSchedule.destination, ReportSchedule.filters)
                    .where(ReportSchedule.report_id == report.id, ReportSchedule.filters.is_not(None))
                    .order_by(ReportSchedule.id)
                )
            ).all(),
        )
        if broken:
            raise SchedulesWouldStop(broken)
        stored.name, stored.definition, stored.shared = name, definition, shared
        uow.audit.record(
            AuditEntry(
                actor=editor.email,
                via=editor.via,
                action="report.edit",
                target=f"report:{report.slug}",
                detail={
                    "before": {"name": report.name, "shared": report.shared, "definition": report.definition},
                    "after": {"name": name, "shared": shared, "definition": definition},
                },
            )
        )
        await uow.commit()
        return _saved(stored)


def schedules_broken_by(definition: dict[str, Any], schedules: Any) -> str:
    """Why the changed report could no longer be sent to schedules that narrow it for their recipient ("only
    location BER" on a report of messages sent by channel), in words; "" when every schedule still works."""
    broken = []
    for schedule_id, destination, filters in schedules:
        try:
            query_from_definition(narrowed(definition, filters or ()))
        except ReportDefinitionError as error:
            only = filters_in_words(list(filters or []))
            broken.append(f"schedule #{schedule_id} to {destination} (only {only}): {error}")
    if not broken:
        return ""
    return (
        f"This change would stop {counted(len(broken), 'schedule', 'schedules')} of this report that "
        f"{'sends' if len(broken) == 1 else 'send'} it for some values only: {'; '.join(broken)}. Nothing was "
        "changed. Remove "
        f"{'that schedule' if len(broken) == 1 else 'those schedules'} first (and schedule again after), or "
        "keep a figure that can be split that way."
    )


async def free_copy_name(database: Database, name: str) -> str:
    """ "Copy of NAME", or "Copy of NAME (2)", … : the first name whose name and slug no report has. The base
    is cut so the number always reaches the slug (slugs stop at 64 characters)."""
    async with database.read_sessions() as session:
        rows = (await session.execute(select(CustomReport.name, CustomReport.slug))).all()
    names, slugs = {n.lower() for n, _ in rows}, {s for _, s in rows}
    base = f"Copy of {name}"[: MAX_NAME - 8]
    for number in range(1, 1000):
        suffix = "" if number == 1 else f" ({number})"
        room = MAX_SLUG - (len(slug_for(suffix)) + 1 if suffix else 0)
        cut = base
        while len(slug_for(cut)) > room:  # the slug keeps 64 characters: leave room for the number
            cut = cut[:-1]
        candidate = f"{cut.rstrip()}{suffix}"
        if candidate.lower() not in names and slug_for(candidate) not in slugs:
            return candidate
    raise ReportLibraryError(f"There are too many copies of “{name}”; rename one first.")


async def delete_report(database: Database, actor: Saver, report: SavedReport) -> int:
    """Delete a report with its schedules and their delivery log; returns how many schedules went with it."""
    async with SqlUnitOfWork(database) as uow:
        schedule_ids = list(
            await uow.session.scalars(select(ReportSchedule.id).where(ReportSchedule.report_id == report.id))
        )
        if schedule_ids:
            await uow.session.execute(
                delete(ReportDelivery).where(ReportDelivery.schedule_id.in_(schedule_ids))
            )
            await uow.session.execute(delete(ReportSchedule).where(ReportSchedule.id.in_(schedule_ids)))
        # The kept runs of schedules removed earlier (its foreign key would take them too, where enforced).
        await uow.session.execute(delete(ReportDelivery).where(ReportDelivery.report_id == report.id))
        await uow.session.execute(delete(CustomReport).where(CustomReport.id == report.id))
        uow.audit.record(
            AuditEntry(
                actor=actor.email,
                via=actor.via,
                action="report.delete",
                target=f"report:{report.slug}",
                detail={"name": report.name, "definition": report.definition, "schedules": len(schedule_ids)},
            )
        )
        await uow.commit()
    return len(schedule_ids)


def may_change(report: SavedReport, staff_id: int, *, manages: bool) -> bool:
    """The owner changes their report; a manager also changes shared and business reports."""
    return report.owner_id == staff_id or (manages and (report.shared or report.owner_id is None))


async def visible_reports(database: Database, staff_id: int, *, limit: int = 200) -> list[SavedReport]:
    """The reports a person sees: the shared ones and their own, by name, with how many schedules each has."""
    async with database.read_sessions() as session:
        reports = list(
            await session.scalars(
                select(CustomReport).where(_visible_to(staff_id)).order_by(CustomReport.name).limit(limit)
            )
        )
        counts: dict[int, int] = {
            report_id: count
            for report_id, count in (
                await session.execute(
                    select(ReportSchedule.report_id, func.count())
                    .where(ReportSchedule.report_id.in_([r.id for r in reports]))
                    .group_by(ReportSchedule.report_id)
                )
            ).all()
        }
    return [_saved(r, counts.get(r.id, 0)) for r in reports]


async def find_report(database: Database, staff_id: int, name: str) -> SavedReport | None:
    """A report the person may see, by slug or by name (any case)."""
    async with database.read_sessions() as session:
        report = await session.scalar(
            select(CustomReport).where(
                or_(CustomReport.slug == name.strip().lower(), func.lower(CustomReport.name) == name.lower()),
                _visible_to(staff_id),
            )
        )
    return None if report is None else _saved(report)


async def visible_report_by_slug(database: Database, staff_id: int, slug: str) -> SavedReport | None:
    """A report the person may see, by its slug only (the dashboard's links and actions)."""
    async with database.read_sessions() as session:
        report = await session.scalar(
            select(CustomReport).where(CustomReport.slug == slug, _visible_to(staff_id))
        )
    return None if report is None else _saved(report)


async def report_by_slug(database: Database, slug: str) -> SavedReport | None:
    """Any saved report by its slug (`switchboard report run`: the operator sees every report)."""
    async with database.read_sessions() as session:
        report = await session.scalar(select(CustomReport).where(CustomReport.slug == slug))
    return None if report is None else _saved(report)


def _visible_to(staff_id: int) -> ColumnElement[bool]:
    """Shared reports, the person's own, and the business's (no owner: set up by an administrator)."""
    return or_(
        CustomReport.shared.is_(True), CustomReport.owner_id == staff_id, CustomReport.owner_id.is_(None)
    )


def _saved(report: CustomReport, schedules: int = 0) -> SavedReport:
    return SavedReport(
        report.id,
        report.slug,
        report.name,
        report.shared,
        report.owner_id,
        dict(report.definition),
        schedules,
    )
