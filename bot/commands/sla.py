"""`sla [today|week]`: the live-chat SLA policies and the warnings and breaches recorded lately."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.commands.context import CommandContext
from bot.commands.parsing import ParseError
from bot.replies import Button, Reply, Table
from domain.conversations.sla import METRIC_WORDS, SlaKind, hours_in_words, minutes_in_words
from domain.dates_said import day_month_time
from domain.messages.words import CHAT_CHANNEL_WORDS
from domain.staff import StaffIdentity
from storage.queries.sla import PolicyView, SlaEventView, sla_events, sla_policies

USAGE = "sla [today|week]"
SPANS = {"today": 1, "week": 7}
LIMIT = 25
TARGET_WORDS = {metric: words.removeprefix("a ") for metric, words in METRIC_WORDS.items()}


@dataclass(frozen=True)
class ShowSla:
    span: str = "today"


PHRASES = {
    "": "today",
    "today": "today",
    "week": "week",
    "this week": "week",
    "7d": "week",
    "last 7 days": "week",
}


def parse_sla(words: list[str], rest: str, today: date) -> ShowSla:
    span = PHRASES.get(" ".join(w.lower() for w in words))
    if span is None:
        raise ParseError(
            "Say `sla` for today or `sla week` for the last 7 days; for the figures ask "
            "`kpi sla met rate this week` or `kpi sla breaches last month`.",
            USAGE,
        )
    return ShowSla(span)


def policy_line(view: PolicyView) -> str:
    policy = view.policy
    where = f"{view.location} only" if view.location else "default"
    off = "" if policy.enabled else " — switched off"
    return (
        f"• {policy.name} ({where}){off}: first response {minutes_in_words(policy.first_response_minutes)}, "
        f"next response {minutes_in_words(policy.next_response_minutes)}, "
        f"resolution {minutes_in_words(policy.resolution_minutes)}; warns {policy.warn_before_minutes} min "
        f"before; {hours_in_words(policy.business_hours, policy.holidays)}."
    )


def _local(moment: datetime, tz: str) -> str:
    return day_month_time(moment.astimezone(ZoneInfo(tz)))


def event_row(event: SlaEventView, tz: str) -> tuple[str, ...]:
    return (
        str(event.chat_id),
        event.customer,
        CHAT_CHANNEL_WORDS.get(event.channel, event.channel),
        TARGET_WORDS[event.metric],
        "breached" if event.kind is SlaKind.BREACH else "warning",
        _local(event.due_at, tz),
        event.staff or "unassigned",
    )


async def run_sla(command: ShowSla, who: StaffIdentity, ctx: CommandContext) -> Reply:
    tz = ctx.business_tz
    now = ctx.now()
    first_day = now.astimezone(ZoneInfo(tz)).date() - timedelta(days=SPANS[command.span] - 1)
    since = datetime.combine(first_day, time(), ZoneInfo(tz))
    policies = await sla_policies(ctx.database)
    events = await sla_events(ctx.database, since, now + timedelta(seconds=1), limit=LIMIT + 1)
    when = "today" if command.span == "today" else "in the last 7 days"
    if not policies:
        head = "No SLA policies are set up, so conversations are not timed."
    else:
        head = "SLA policies (counted in each clinic's business hours):\n" + "\n".join(
            map(policy_line, policies)
        )
    breaches = sum(e.kind is SlaKind.BREACH for e in events[:LIMIT])
    warnings = len(events[:LIMIT]) - breaches
    title = f"SLAs {when}"
    buttons = (Button("Last 7 days", "sla week"),) if command.span == "today" else ()
    if not events:
        return Reply(f"{head}\n\nNo warnings or breaches {when}.", title=title, buttons=buttons)
    more = f" Showing the latest {LIMIT}." if len(events) > LIMIT else ""
    summary = (
        f"{breaches} breach{'es' if breaches != 1 else ''} and {warnings} warning{'s' if warnings != 1 else ''} "
        f"{when}.{more} Take one with `chat assign NUMBER to me`."
    )
    table = Table(
        ("#", "Customer", "Channel", "Target", "What", "Due", "Agent"),
        tuple(event_row(e, tz) for e in events[:LIMIT]),
    )
    return Reply(f"{head}\n\n{summary}", title=title, table=table, buttons=buttons)
