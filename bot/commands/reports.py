"""`report list|save|run|schedule`: the saved reports, saving the question just answered, and deliveries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from bot.commands.context import CommandContext
from bot.commands.parsing import ParseError, normalise
from bot.replies import Attachment, Button, Field, Image, Reply, Table
from domain.staff import StaffIdentity
from reports.library import (
    ReportLibraryError,
    Saver,
    find_report,
    last_question,
    save_report,
    visible_reports,
)
from reports.periods import zone
from reports.saved import ReportDefinitionError, describe_query, query_from_definition, run_saved_report
from reports.schedule_words import destination_of as words_destination
from reports.schedules import ScheduleError, ScheduleRequest, schedule_report

SCHEDULE_USAGE = 'report schedule NAME "CRON" to DESTINATION  (#slack-channel, email or telegram:CHAT_ID)'


@dataclass(frozen=True)
class ListReports:
    pass


@dataclass(frozen=True)
class RunReport:
    name: str


@dataclass(frozen=True)
class SaveReport:
    name: str
    shared: bool


SAVE_USAGE = "report save NAME [for everyone]   (after a question: keeps that question as a report)"


@dataclass(frozen=True)
class ScheduleReport:
    name: str
    cron: str
    destination_kind: str  # slack, telegram or email
    destination: str


def parse_list(words: list[str], rest: str, today: date) -> ListReports:
    return ListReports()


def parse_run(words: list[str], rest: str, today: date) -> RunReport:
    name = rest.strip().strip("\"“”'")
    if not name:
        raise ParseError("Name one saved report.", "report run NAME")
    return RunReport(name)


def parse_save(words: list[str], rest: str, today: date) -> SaveReport:
    name = rest.strip()
    shared = False
    for suffix in ("for everyone", "for the team", "shared"):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name, shared = name[: -len(suffix)].strip(), True
            break
    name = name.strip("\"“”'").strip()
    if not name:
        raise ParseError("Give the report a name, e.g. `report save Weekly revenue`.", SAVE_USAGE)
    return SaveReport(name, shared)


def destination_of(text: str) -> tuple[str, str]:
    """Where a schedule delivers: '#ops' is Slack, 'telegram:123' Telegram, an address email."""
    try:
        return words_destination(text)
    except ScheduleError as error:
        raise ParseError(f"{error}.", SCHEDULE_USAGE) from None


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


async def run_list(command: ListReports, who: StaffIdentity, ctx: CommandContext) -> Reply:
    reports = await visible_reports(ctx.database, who.staff_id, limit=50)
    if not reports:
        return Reply(
            "There are no saved reports yet. Ask a question (e.g. “revenue last 30 days by channel”), "
            "then `report save NAME` keeps it; or save one on the dashboard under Analytics → Reports.",
            title="Reports",
        )
    table = Table(
        ("Slug", "Name", "Shared", "Schedules"),
        tuple((r.slug, r.name, "yes" if r.shared else "no", str(r.schedules)) for r in reports),
    )
    count = f"{len(reports)} saved report" + ("" if len(reports) == 1 else "s")
    return Reply(f"{count}.", title="Reports", table=table)


async def run_save(command: SaveReport, who: StaffIdentity, ctx: CommandContext) -> Reply:
    definition = await last_question(ctx.database, who.staff_id)
    if definition is None:
        return Reply(
            "There is no question to save yet: ask one first (e.g. “revenue last 30 days by channel”), "
            f"then `report save {command.name}`.",
            kind="error",
        )
    try:
        saved = await save_report(
            ctx.database,
            Saver(who.staff_id, who.email, who.via),
            command.name,
            definition,
            shared=command.shared,
        )
    except ReportLibraryError as error:
        return Reply(str(error), kind="error")
    query = query_from_definition(saved.definition)
    who_sees = "everyone" if saved.shared else "you"
    return Reply(
        f"Saved “{saved.name}” ({describe_query(query)}); {who_sees} can run it with `report run {saved.slug}`.",
        title="Report saved",
        fields=(Field("Report", saved.slug), Field("Seen by", who_sees)),
        buttons=(
            Button("Run it", f"report run {saved.slug}"),
            Button("Every Monday 08:00 to me", f'report schedule {saved.slug} "0 8 * * 1" to {who.email}'),
        ),
    )


async def run_report(command: RunReport, who: StaffIdentity, ctx: CommandContext) -> Reply:
    report = await find_report(ctx.database, who.staff_id, command.name)
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


async def run_schedule(command: ScheduleReport, who: StaffIdentity, ctx: CommandContext) -> Reply:
    report = await find_report(ctx.database, who.staff_id, command.name)
    if report is None:
        return Reply(f"There is no saved report “{command.name}”. `report list` shows them.", kind="error")
    request = ScheduleRequest(command.cron, ctx.business_tz, command.destination_kind, command.destination)
    try:
        schedule = await schedule_report(
            ctx.uow.report_schedules(),
            report_id=report.id,
            report_slug=report.slug,
            owner_id=who.staff_id,
            request=request,
            actor=who.email,
            via=who.via,
            now=ctx.now(),
        )
    except ScheduleError as error:
        raise ParseError(f"{error}.", SCHEDULE_USAGE) from None
    first = schedule.first_due
    return Reply(
        f"Report {report.name} will be delivered to {command.destination} ({command.destination_kind}) "
        f"on “{command.cron}” ({ctx.business_tz}); first run {first.astimezone(zone(ctx.business_tz)):%a %d %b %Y %H:%M}.",
        title="Report scheduled",
        fields=(Field("Schedule", f"#{schedule.id}"),),
    )
