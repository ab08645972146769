"""`report list|save|run|schedule`: the saved reports, saving the question just answered, and deliveries."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from bot.commands.context import CommandContext
from bot.commands.parsing import ParseError, normalise
from bot.commands.periods import find_period
from bot.commands.questions import DIMENSION_WORDS
from bot.commands.wording import day_and_time
from bot.replies import Attachment, Button, Field, Image, Reply, Table
from domain.report_schedule import ScheduleRequest
from domain.staff import StaffIdentity
from reports.deliveries import Actor, remove_schedule
from reports.destinations import ChannelCheck
from reports.library import (
    UNSAVEABLE,
    ReportLibraryError,
    SavedReport,
    Saver,
    find_report,
    last_question,
    save_report,
    visible_reports,
)
from reports.metrics import dimension_words, get_metric
from reports.periods import PeriodSpec, zone
from reports.presentation import presentation_of
from reports.query import MAX_DIMENSIONS
from reports.redraw import redraws
from reports.saved import (
    describe_query,
    narrowed,
    period_definition,
    query_from_definition,
    run_saved_report,
)
from reports.schedule_check import schedule_and_announce
from reports.schedule_words import (
    GERMAN_DAYS,
    GERMAN_STARTS,
    already_scheduled_words,
    cron_from_words,
    cron_in_words,
    recipient_filters,
)
from reports.schedule_words import destination_of as words_destination
from reports.schedules import (
    AlreadyScheduled,
    ScheduleError,
)
from storage.queries.report_schedules import schedules_of_reports
from storage.queries.reports import dimension_names
from storage.schedules import filters_in_words

#: Where a schedule said in German begins ("jeden Montag 8:00", "werktags 7:30", "Montag bis Freitag 7:30").
#: Words a schedule said in German starts with ("jeden", "alle zwei Wochen"): one that cannot be read ends
#: the search, rather than a later day name making the words before it the report's name.
SCHEDULE_STARTS = frozenset(
    {"jeden", "jede", "jedes", "immer", "täglich", "taeglich", "werktags", "monatlich", "alle"}
)
#: "alle zwei Wochen", "alle 14 Tage": "alle" starting a schedule, not "alle Kliniken" in a report's name.
_EVERY_FEW = re.compile(
    r"alle\s+(?:\d+|zwei|drei|vier|fünf|sechs|sieben|acht|neun|zehn)\s+(?:wochen|tage|monate)"
)
SAID_IN_GERMAN = (
    GERMAN_STARTS | SCHEDULE_STARTS | set(GERMAN_DAYS) | {"taeglich", "am", "an", "mo", "mo.-fr", "mo-fr"}
)
SCHEDULE_USAGE = (
    "report schedule NAME every monday 8:00 to DESTINATION [for DIMENSION VALUES]  (“jeden Montag 8:00” too; "
    "#slack-channel, "
    'telegram:CHAT_ID, an email address or me; or a cron expression in quotes, e.g. "0 8 * * 1"; '
    "for clinic Berlin Mitte: that recipient's figures only)"
)
RUN_USAGE = (
    "report run NAME [for PERIOD] [by DIMENSION [and DIMENSION]] [only DIMENSION VALUES]   e.g. report run "
    "weekly-revenue for last month by clinic, … by clinic and channel, or … by country only clinic BER"
)
UNSCHEDULE_USAGE = "report unschedule NAME [to DESTINATION]"


@dataclass(frozen=True)
class ListReports:
    pass


@dataclass(frozen=True)
class RunReport:
    #: The report's name or slug, possibly followed by "for PERIOD" and "by DIMENSION" for this run only.
    text: str


@dataclass(frozen=True)
class UnscheduleReport:
    name: str
    destination: str | None


@dataclass(frozen=True)
class SaveReport:
    name: str
    shared: bool


SAVE_USAGE = "report save NAME [for everyone]   (after a question: keeps that question as a report)"


@dataclass(frozen=True)
class ScheduleReport:
    name: str
    cron: str
    destination_kind: str  # slack, telegram, email, or "me" (the person's own address)
    destination: str
    #: "for clinic Berlin Mitte": the dimension word and the values, this recipient's figures only.
    only: tuple[str, str] | None = None


def parse_list(words: list[str], rest: str, today: date) -> ListReports:
    return ListReports()


def parse_run(words: list[str], rest: str, today: date) -> RunReport:
    text = " ".join(rest.split()).strip("\"“”'")
    if not text:
        raise ParseError("Name one saved report.", RUN_USAGE)
    return RunReport(text)


def parse_unschedule(words: list[str], rest: str, today: date) -> UnscheduleReport:
    lowered = [normalise(w) for w in words]
    if not words:
        raise ParseError("Name the report whose schedule should stop.", UNSCHEDULE_USAGE)
    if "to" in lowered:
        to = len(lowered) - 1 - lowered[::-1].index("to")
        name, target = " ".join(words[:to]), " ".join(words[to + 1 :])
        if not name or not target:
            raise ParseError("Give the report and where its deliveries go.", UNSCHEDULE_USAGE)
        return UnscheduleReport(name.strip("\"“”'"), target)
    return UnscheduleReport(" ".join(words).strip("\"“”'"), None)


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
        raise ParseError("Give the report, when, and where it goes.", SCHEDULE_USAGE)
    to = len(lowered) - 1 - lowered[::-1].index("to")
    target = words[to + 1 :]
    only: tuple[str, str] | None = None
    if len(target) >= 4 and normalise(target[1]) == "for":
        only = (target[2], " ".join(target[3:]))
        target = target[:1]
    if len(target) != 1:
        raise ParseError(
            "Give one destination after “to” (and “for clinic NAME” to narrow it).", SCHEDULE_USAGE
        )
    # Where "when" begins: "every" when it is there; else the first German word from which the rest reads as
    # a schedule, so a report named "Wochenbericht Montag" is not read as "Montag …".
    english = [i for i, w in enumerate(lowered[:to]) if i > 0 and w == "every"]
    german = [i for i, w in enumerate(lowered[:to]) if i > 0 and w in SAID_IN_GERMAN]
    if english or german:
        candidates = english[:1] or german
        refused: ScheduleError | None = None
        said: tuple[str, str] | None = None
        started = False
        for every in candidates:
            starts = lowered[every] in SCHEDULE_STARTS and (
                lowered[every] != "alle" or _EVERY_FEW.match(" ".join(words[every:to]).lower()) is not None
            )
            if started and not starts:
                # "jeden zweiten Dienstag": the schedule started at "jeden", so "Dienstag 8 Uhr" must not make
                # "… jeden zweiten" the report's name; a later start word may still begin it ("Umsatz alle
                # Kliniken jeden Montag": "alle" belongs to the name).
                continue
            try:
                said = " ".join(words[:every]), cron_from_words(" ".join(words[every:to]))
                break
            except ScheduleError as error:
                if not started:
                    refused = error if starts else refused or error
                started = started or starts
        if said is None:
            assert refused is not None
            raise ParseError(f"{str(refused)[:1].upper()}{str(refused)[1:]}.", SCHEDULE_USAGE) from None
        name, cron = said
    else:
        name, cron = words[0], " ".join(words[1:to])
        if len(cron.split()) != 5:
            raise ParseError(
                "Say when, e.g. “every monday 8:00”, or give a five-field cron expression in quotes.",
                SCHEDULE_USAGE,
            )
    if not name.strip("\"“”'"):
        raise ParseError("Name the report to schedule.", SCHEDULE_USAGE)
    if normalise(target[0]) == "me":
        return ScheduleReport(name.strip("\"“”'"), cron, "me", "me", only)
    kind, destination = destination_of(target[0])
    return ScheduleReport(name.strip("\"“”'"), cron, kind, destination, only)


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
    if UNSAVEABLE in definition:
        return Reply(
            f"The last answer cannot be saved as a report: {definition[UNSAVEABLE]}. Nothing was saved.",
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
    described = describe_query(query, presentation_of(saved.definition).cut_words)
    who_sees = "everyone" if saved.shared else "you"
    return Reply(
        f"Saved “{saved.name}” ({described}); {who_sees} can run it with `report run {saved.slug}`.",
        title="Report saved",
        fields=(Field("Report", saved.slug), Field("Seen by", who_sees)),
        buttons=(
            Button("Run it", f"report run {saved.slug}"),
            Button("Every Monday 08:00 to me", f"report schedule {saved.slug} every monday 8:00 to me"),
        ),
    )


async def _report_and_overrides(
    text: str, who: StaffIdentity, ctx: CommandContext
) -> tuple[SavedReport | None, str]:
    """The report a run names and what follows its name ("for last month by clinic"): the longest name that
    is a report wins, so a report called "Revenue by clinic" is found before "by clinic" is read."""
    words = text.split()
    for end in range(len(words), 0, -1):
        if end < len(words) and normalise(words[end]) not in ("for", "by", "only"):
            continue
        report = await find_report(ctx.database, who.staff_id, " ".join(words[:end]))
        if report is not None:
            return report, " ".join(words[end:])
    return None, ""


def overridden(definition: dict[str, Any], overrides: str, today: date) -> tuple[dict[str, Any], list[str]]:
    """The definition with this run's period and split; ParseError names what cannot be read."""
    match = re.fullmatch(r"(?:for\s+(?P<period>.+?))?\s*(?:by\s+(?P<dimension>.+))?", overrides.strip(), re.I)
    if match is None or not overrides.strip():
        return definition, []
    query = dict(definition["query"])
    said: list[str] = []
    if match.group("period"):
        phrase = match.group("period").lower()
        try:
            found = find_period(phrase, today)
        except ValueError as error:
            raise ParseError(f"{str(error)[:1].upper()}{str(error)[1:]}.", RUN_USAGE) from None
        if found is None or phrase[: found.start].strip() or phrase[found.end :].strip():
            raise ParseError(f"I cannot read “{match.group('period')}” as a period.", RUN_USAGE)
        if not isinstance(found.value, PeriodSpec):
            raise ParseError(f"I cannot read “{match.group('period')}” as a period.", RUN_USAGE)
        query["period"] = period_definition(found.value)
        said.append(f"for {match.group('period')}")
    if match.group("dimension"):
        metric = get_metric(query["metrics"][0])
        split = re.split(r"\s+and\s+|\s*,\s*", match.group("dimension").strip().lower())
        words = [word for word in split if word]
        if not words:
            raise ParseError("Name what to split by after “by”.", RUN_USAGE)
        if len(words) > MAX_DIMENSIONS:
            raise ParseError(f"A report splits by at most {MAX_DIMENSIONS} things at once.", RUN_USAGE)
        dimensions = []
        for word in words:
            choices = DIMENSION_WORDS.get(word, (word.replace(" ", "_"),))
            dimension = next((d for d in choices if d in metric.dimensions), None)
            if dimension is None:
                allowed = ", ".join(dimension_words(d) for d in metric.dimensions)
                raise ParseError(
                    f"{metric.label} cannot be split by {word}; it can be split by {allowed}.", RUN_USAGE
                )
            if dimension in dimensions:
                raise ParseError(f"{word.capitalize()} is named twice after “by”.", RUN_USAGE)
            dimensions.append(dimension)
        query["dimensions"] = dimensions
        said.append("by " + " and ".join(dimension_words(d) for d in dimensions))
    changed = {**definition, "query": query}
    if changed.get("chart") and query.get("dimensions") != definition["query"].get("dimensions"):
        # A split the builder did not plan for is drawn as it best fits (the report's own keeps its chart).
        changed["chart"] = {**changed["chart"], "kind": "auto", "top": None}
    return changed, said


async def only_filters(
    definition: dict[str, Any], word: str, values: str, ctx: CommandContext, usage: str
) -> tuple[dict[str, Any], ...]:
    """ "only clinic BER": a filter on one of the metric's dimensions, values checked against those there are."""
    metric = get_metric(definition["query"]["metrics"][0])
    choices = DIMENSION_WORDS.get(word.lower(), (word.lower(),))
    dimension = next((d for d in choices if d in metric.dimensions), word.lower())
    try:
        return recipient_filters(definition, dimension, values, await dimension_names(ctx.database))
    except ScheduleError as error:
        raise ParseError(f"{str(error)[:1].upper()}{str(error)[1:]}.", usage) from None


async def run_report(command: RunReport, who: StaffIdentity, ctx: CommandContext) -> Reply:
    report, overrides = await _report_and_overrides(command.text, who, ctx)
    if report is None:
        return Reply(f"There is no saved report “{command.text}”. `report list` shows them.", kind="error")
    only_at = re.search(r"\bonly\b", overrides, re.I)
    only_text = overrides[only_at.end() :] if only_at else ""
    overrides = overrides[: only_at.start()] if only_at else overrides
    definition, said = overridden(
        report.definition, overrides, ctx.now().astimezone(zone(ctx.business_tz)).date()
    )
    only: tuple[dict[str, Any], ...] = ()
    if only_text.strip():
        word, _, values = only_text.strip().partition(" ")
        only = await only_filters(definition, word, values, ctx, RUN_USAGE)
        definition = narrowed(definition, only)
        said.append(f"only {filters_in_words(list(only))}")
    try:
        output = await run_saved_report(
            ctx.database,
            report.name,
            definition,
            now=ctx.now(),
            business_tz=ctx.business_tz,
            locale=ctx.settings.business_locale,
            currency=ctx.settings.business_currency,
            cache=ctx.chart_cache,
            business_name=ctx.settings.business_name,
        )
    except ValueError as error:  # ReportDefinitionError, or a relative period grown past 5,000 points
        return Reply(f"Report “{report.name}” cannot run that way: {str(error).rstrip('.')}.", kind="error")
    title = f"{report.name} ({', '.join(said)})" if said else report.name
    buttons = tuple(Button(r.label, r.command) for r in redraws(report.slug, definition, only))
    if output.png is None:
        return Reply(
            f"{output.summary}\nThe chart could not be drawn this time; the figures:\n{output.figures}",
            title=title,
            attachments=(Attachment(f"{report.slug}.csv", output.csv),),
            buttons=buttons,
        )
    return Reply(
        output.summary,
        title=title,
        images=(Image(f"{report.slug}.png", output.png, alt_text=output.summary),),
        attachments=(Attachment(f"{report.slug}.csv", output.csv),),
        buttons=buttons,
    )


async def run_schedule(command: ScheduleReport, who: StaffIdentity, ctx: CommandContext) -> Reply:
    report = await find_report(ctx.database, who.staff_id, command.name)
    if report is None:
        return Reply(f"There is no saved report “{command.name}”. `report list` shows them.", kind="error")
    kind, destination = (
        ("email", who.email)
        if command.destination_kind == "me"
        else (command.destination_kind, command.destination)
    )
    only: tuple[dict[str, Any], ...] = ()
    if command.only is not None:
        only = await only_filters(report.definition, *command.only, ctx, SCHEDULE_USAGE)
    request = ScheduleRequest(command.cron, ctx.business_tz, kind, destination, only)
    try:
        saved = await schedule_and_announce(
            ctx.uow.report_schedules,
            report,
            request,
            owner_id=who.staff_id,
            owner_name=who.name,
            actor=who.email,
            via=who.via,
            now=ctx.now(),
            slack_token=ctx.settings.slack_bot_token.get_secret_value(),
            slack_base_url=ctx.settings.slack_base_url,
        )
    except AlreadyScheduled as error:
        return Reply(already_scheduled_words(error), kind="error")
    except ScheduleError as error:
        raise ParseError(f"{error}.", SCHEDULE_USAGE) from None
    check, schedule = saved.check, saved.scheduled
    if schedule is None:
        return Reply(f"Not scheduled: {check.refused}.", kind="error")
    first = schedule.first_due
    return Reply(
        f"Report {report.name}{' (only ' + filters_in_words(list(only)) + ')' if only else ''} will be "
        f"delivered to {destination} ({kind}) "
        f"{cron_in_words(command.cron)} ({ctx.business_tz}); first run "
        f"{day_and_time(first.astimezone(zone(ctx.business_tz)))}."
        f"{announced(kind, destination, check)} Each delivery and its outcome shows on "
        f"/analytics/reports/{report.slug}; `report unschedule {report.slug}` stops it.",
        title="Report scheduled",
        fields=(Field("Schedule", f"#{schedule.id}"),),
    )


def announced(kind: str, destination: str, check: ChannelCheck) -> str:
    """What scheduling said in the Slack channel, if it is one (" Said so in #ops.")."""
    if kind != "slack":
        return ""
    if check.unchecked is not None:
        return f" Slack did not answer when asked to say so in {destination} ({check.unchecked}), so the channel is not checked yet."
    return f" Said so in {destination}."


async def run_unschedule(command: UnscheduleReport, who: StaffIdentity, ctx: CommandContext) -> Reply:
    report = await find_report(ctx.database, who.staff_id, command.name)
    if report is None:
        return Reply(f"There is no saved report “{command.name}”. `report list` shows them.", kind="error")
    schedules = await schedules_of_reports(ctx.database, [report.id])
    if command.destination is not None:
        wanted = (
            who.email if normalise(command.destination) == "me" else destination_of(command.destination)[1]
        )
        # "FINANCE@northwind.example" is the address stored in lower case; a Slack channel ID keeps its case.
        schedules = [s for s in schedules if s.destination.casefold() == wanted.casefold()]
    if not schedules:
        where = f" to {command.destination}" if command.destination else ""
        return Reply(f"Report {report.name} has no schedule{where}; nothing changed.", kind="error")
    for schedule in schedules:
        await remove_schedule(ctx.database, Actor(who.email, who.via), report.id, schedule.id)
    stopped = "; ".join(f"{cron_in_words(s.cron)} to {s.destination}" for s in schedules)
    count = f"{len(schedules)} schedule" + ("" if len(schedules) == 1 else "s")
    return Reply(f"Stopped {count} of {report.name}: {stopped}.", title="Report unscheduled")
