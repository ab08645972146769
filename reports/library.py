"""The report library: saving a question as a report (from chat or a form), what each person sees, and the
question each person was last answered (so `report save NAME` can keep it)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, update

from domain.audit import AuditEntry
from reports.query import MetricQuery
from reports.saved import ReportDefinitionError, definition_from_query, query_from_definition
from storage.database import Database
from storage.models import CustomReport, ReportSchedule, StaffUser
from storage.unit_of_work import SqlUnitOfWork

MAX_NAME = 200
MAX_SLUG = 64


class ReportLibraryError(ValueError):
    """A report that cannot be saved as asked; the message says why in words."""


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


def slug_for(name: str) -> str:
    """A URL-safe slug: "Revenue by clinic (weekly)" -> "revenue-by-clinic-weekly"; "Umsatz München" -> "umsatz-munchen"."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")[:MAX_SLUG].strip("-")


async def remember_question(database: Database, staff_id: int, query: MetricQuery, at: datetime) -> None:
    """Keep the question just answered for `staff_id`; a question with a fixed range is kept as asked."""
    try:
        definition = definition_from_query(query)
    except ReportDefinitionError:
        return  # a fixed range cannot be saved as a report, so there is nothing to keep
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


async def save_report(
    database: Database, saver: Saver, name: str, definition: dict[str, Any], *, shared: bool
) -> SavedReport:
    """Check the definition against the registry, give it a free slug, store it and audit it, in one commit."""
    name = " ".join(name.split())
    if not name:
        raise ReportLibraryError("Give the report a name.")
    if len(name) > MAX_NAME or "\x00" in name:
        raise ReportLibraryError(f"A report name is at most {MAX_NAME} characters of text.")
    slug = slug_for(name)
    if not slug:
        raise ReportLibraryError("Give the report a name with at least one letter or digit.")
    try:
        query_from_definition(definition)
    except ReportDefinitionError as error:
        raise ReportLibraryError(f"This report cannot be saved: {error}.") from None
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
