"""`report list|run|schedule`: the saved reports and when they are delivered where."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select

from bot.commands.context import CommandContext
from bot.commands.identity import StaffIdentity
from bot.commands.parsing import ParseError, normalise
from bot.replies import Attachment, Field, Image, Reply, Table
from domain.audit import AuditEntry
from reports.periods import zone
from reports.saved import ReportDefinitionError, run_saved_report
from storage.models import CustomReport, ReportSchedule

SCHEDULE_USAGE = 'report schedule NAME "CRON" to DESTINATION  (#slack-channel, email or telegram:CHAT_ID)'


@dataclass(frozen=True)
class ListReports:
    pass


@dataclass(frozen=True)
class RunReport:
    name: str


@dataclass(frozen=True)
class ScheduleReport:
    name: str
    cron: str
    destination_kind: str  # slack, telegram or email
    destination: str


def parse_list(words: list[str], rest: str, today: date) -> ListReports:
    return ListReports()


def parse_run(words: list[str], rest: str, today: date) -> RunReport:
    if len(words) != 1:
        raise ParseError("Name one saved report.", "report run NAME")
    return RunReport(words[0])


def destination_of(text: str) -> tuple[str, str]:
    """Where a schedule delivers: '#ops' is Slack, 'telegram:123' Telegram, an address email."""
    if text.startswith("#") or text.startswith("slack:"):
        return "slack", text.removeprefix("slack:")
    if text.startswith("telegram:"):
        return "telegram", text.removeprefix("telegram:")
    if re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", text):
        return "email", text.lower()
    raise ParseError(f"I cannot deliver to {text!r}.", SCHEDULE_USAGE)


def parse_schedule(words: list[str], rest: str, today: date) -> ScheduleReport:
    lowered = [normalise(w) for w in words]
    if "to" not in lowered or len(words) < 4:
        raise ParseError("Give the report, a cron expression and a destination.", SCHEDULE_USAGE)
    to = len(lowered) - 1 - lowered[::-1].index("to")
    name, cron_words, target = words[0], words[1:to], words[to + 1 :]
    cron = " ".join(cron_words)
    if len(cron.split()) != 5 or len(target) != 1:
        raise ParseError(
            'The cron expression has five fields, e.g. "0 8 * * 1" for Mondays at 08:00.', SCHEDULE_USAGE
        )
    kind, destination = destination_of(target[0])
    return ScheduleReport(name, cron, kind, destination)


async def _report(ctx: CommandContext, name: str) -> CustomReport | None:
    async with ctx.database.read_sessions() as session:
        return await session.scalar(
            select(CustomReport).where(
                (CustomReport.slug == name) | (func.lower(CustomReport.name) == name.lower())
            )
        )


async def run_list(command: ListReports, who: StaffIdentity, ctx: CommandContext) -> Reply:
    async with ctx.database.read_sessions() as session:
        reports = list(await session.scalars(select(CustomReport).order_by(CustomReport.name).limit(50)))
        counts: dict[int, int] = dict(
            (
                await session.execute(
                    select(ReportSchedule.report_id, func.count()).group_by(ReportSchedule.report_id)
                )
            ).all()
        )
    if not reports:
        return Reply("There are no saved reports yet; save one from the dashboard.", title="Reports")
    table = Table(
        ("Slug", "Name", "Shared", "Schedules"),
        tuple((r.slug, r.name, "yes" if r.shared else "no", str(counts.get(r.id, 0))) for r in reports),
    )
    return Reply(f"{len(reports)} saved reports.", title="Reports", table=table)


async def run_report(command: RunReport, who: StaffIdentity, ctx: CommandContext) -> Reply:
    report = await _report(ctx, command.name)
    if report is None:
        return Reply(f"There is no saved report “{command.name}”. `report list` shows them.", kind="error")
    try:
        output = await run_saved_report(
            ctx.database,
            report.name,
            report.definition,
            now=ctx.now(),
            business_tz=ctx.business_tz,
            locale=ctx.settings.business_locale,
            currency=ctx.settings.business_currency,
            cache=ctx.chart_cache,
        )
    except ReportDefinitionError as error:
        return Reply(f"Report “{report.name}” cannot run: {error}", kind="error")
    return Reply(
        output.summary,
        title=report.name,
        images=(Image(f"{report.slug}.png", output.png, alt_text=output.summary),),
        attachments=(Attachment(f"{report.slug}.csv", output.csv),),
    )


def first_due(cron: str, tz: str, now: datetime) -> datetime:
    from reports.schedules import ScheduleError, next_due

    try:
        return next_due(cron, tz, now)
    except ScheduleError as error:
        raise ParseError(f"{error}.", SCHEDULE_USAGE) from None


async def run_schedule(command: ScheduleReport, who: StaffIdentity, ctx: CommandContext) -> Reply:
    report = await _report(ctx, command.name)
    if report is None:
        return Reply(f"There is no saved report “{command.name}”. `report list` shows them.", kind="error")
    first = first_due(command.cron, ctx.business_tz, ctx.now())
    async with ctx.unit_of_work() as uow:
        schedule = ReportSchedule(
            report_id=report.id,
            owner_id=who.staff_id,
            cron=command.cron,
            timezone=ctx.business_tz,
            destination_kind=command.destination_kind,
            destination=command.destination,
            next_due_at=first,
        )
        uow.session.add(schedule)
        await uow.session.flush()
        uow.audit.record(
            AuditEntry(
                actor=who.email,
                via=who.via,
                action="report.schedule",
                target=f"report:{report.slug}",
                detail={"schedule_id": schedule.id, "cron": command.cron, "destination": command.destination},
            )
        )
        await uow.commit()
    return Reply(
        f"Report {report.name} will be delivered to {command.destination} ({command.destination_kind}) "
        f"on “{command.cron}” ({ctx.business_tz}); first run {first.astimezone(zone(ctx.business_tz)):%a %d %b %Y %H:%M}.",
        title="Report scheduled",
        fields=(Field("Schedule", f"#{schedule.id}"),),
    )
