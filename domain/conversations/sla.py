"""Live-chat SLAs: business hours in a location's timezone, the due time of each target, and what is late.

Pure functions over plain values. A policy's clock counts only business minutes: the weekly spans (split
shifts allowed, "24:00" closes a day, an end before its start runs past midnight), minus holidays, read as
wall-clock times in the location's timezone, so a DST change moves the spans with the clock. Snoozed time is
not taken off the clock: a snooze sets a conversation aside, it does not stop its targets.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.dates_said import day_month_time

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: How far ahead a due time is looked for before the policy is taken to have no business hours at all.
LONGEST_SEARCH = timedelta(days=800)

Span = tuple[time, time | None]  # None: the end of the day ("24:00")


class SlaMetric(StrEnum):
    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    RESOLUTION = "resolution"


class SlaKind(StrEnum):
    WARNING = "warning"
    BREACH = "breach"


#: How staff read each target.
METRIC_WORDS = {
    SlaMetric.FIRST_RESPONSE: "a first response",
    SlaMetric.NEXT_RESPONSE: "a reply",
    SlaMetric.RESOLUTION: "resolving",
}


class PolicyError(ValueError):
    """Business hours or holidays that cannot be read; the message says which, for an admin."""


def _clock(text: str, where: str) -> time | None:
    if text == "24:00":
        return None
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise PolicyError(f"{where}: “{text}” is not a time like 09:00.") from None


def read_week(hours: Mapping[str, Any]) -> dict[int, tuple[Span, ...]]:
    """{"mon": [["09:00", "13:00"], ["14:00", "18:00"]], ...} as spans per weekday (0 is Monday)."""
    week: dict[int, tuple[Span, ...]] = {}
    for name, spans in hours.items():
        day = name.strip().lower()[:3]
        if day not in WEEKDAYS:
            raise PolicyError(f"“{name}” is not a weekday (mon … sun).")
        read: list[Span] = []
        for span in spans or ():
            if not isinstance(span, Sequence) or isinstance(span, str) or len(span) != 2:
                raise PolicyError(f'{name}: each span is a pair of times such as ["09:00", "13:00"].')
            start = _clock(str(span[0]), name)
            if start is None:
                raise PolicyError(f"{name}: a span cannot start at 24:00.")
            read.append((start, _clock(str(span[1]), name)))
        week[WEEKDAYS.index(day)] = tuple(read)
    return week


def read_holidays(days: Sequence[Any]) -> frozenset[date]:
    try:
        return frozenset(date.fromisoformat(str(day)) for day in days)
    except ValueError as error:
        raise PolicyError(f"Holidays are ISO dates such as 2026-12-25 ({error}).") from None


@dataclass(frozen=True)
class BusinessHours:
    """When the clock runs. An empty week means around the clock (holidays still stop it)."""

    timezone: str
    week: Mapping[int, tuple[Span, ...]]
    holidays: frozenset[date] = frozenset()

    @classmethod
    def read(cls, timezone: str, hours: Mapping[str, Any], holidays: Sequence[Any] = ()) -> BusinessHours:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise PolicyError(f"“{timezone}” is not a timezone.") from None
        return cls(timezone, read_week(hours), read_holidays(holidays))

    def _day_spans(self, day: date) -> Iterator[tuple[datetime, datetime]]:
        """The day's spans as UTC moments; a wall-clock time skipped by DST counts as the moment after it."""
        if day in self.holidays:
            return
        zone = ZoneInfo(self.timezone)
        spans = self.week.get(day.weekday(), ()) if self.week else ((time(0), None),)
        for start, end in spans:
            begins = datetime.combine(day, start, zone)
            if end is None or end <= start:
                ends = datetime.combine(day + timedelta(days=1), end or time(0), zone)
            else:
                ends = datetime.combine(day, end, zone)
            begins_utc, ends_utc = begins.astimezone(UTC), ends.astimezone(UTC)
            if ends_utc > begins_utc:
                yield begins_utc, ends_utc

    def spans(self, start: datetime, end: datetime | None = None) -> Iterator[tuple[datetime, datetime]]:
        """Merged business spans (UTC) overlapping [start, end), from the day before `start` on."""
        zone = ZoneInfo(self.timezone)
        day = start.astimezone(zone).date() - timedelta(days=1)
        last = (end or start + LONGEST_SEARCH).astimezone(zone).date() + timedelta(days=1)
        current: tuple[datetime, datetime] | None = None
        while day <= last:
            for begins, ends in sorted(self._day_spans(day)):
                if current is not None and begins <= current[1]:
                    current = (current[0], max(current[1], ends))
                    continue
                if current is not None and current[1] > start:
                    yield current
                current = (begins, ends)
            day += timedelta(days=1)
        if current is not None and current[1] > start:
            yield current

    def add_minutes(self, start: datetime, minutes: float) -> datetime | None:
        """The moment `minutes` business minutes after `start`; None when the hours never add up to it."""
        left = timedelta(minutes=minutes)
        if left <= timedelta(0):
            return self.next_open(start) if minutes == 0 else start
        for begins, ends in self.spans(start):
            begins = max(begins, start)
            if ends - begins >= left:
                return begins + left
            left -= ends - begins
        return None

    def next_open(self, start: datetime) -> datetime | None:
        """`start` itself when the business is open then, else when it next opens."""
        for begins, _ends in self.spans(start):
            return max(begins, start)
        return None

    def minutes_between(self, start: datetime, end: datetime) -> float:
        """Business minutes from `start` to `end` (negative when `end` comes first)."""
        if end < start:
            return -self.minutes_between(end, start)
        total = timedelta(0)
        for begins, ends in self.spans(start, end):
            if begins >= end:
                break
            total += min(ends, end) - max(begins, start)
        return total / timedelta(minutes=1)


@dataclass(frozen=True)
class SlaPolicy:
    """A policy's targets in business minutes (None: that target is not timed)."""

    policy_id: int
    name: str
    first_response_minutes: int | None
    next_response_minutes: int | None
    resolution_minutes: int | None
    warn_before_minutes: int
    business_hours: Mapping[str, Any]
    holidays: Sequence[Any]
    location_id: int | None = None
    enabled: bool = True

    def target(self, metric: SlaMetric) -> int | None:
        return {
            SlaMetric.FIRST_RESPONSE: self.first_response_minutes,
            SlaMetric.NEXT_RESPONSE: self.next_response_minutes,
            SlaMetric.RESOLUTION: self.resolution_minutes,
        }[metric]


def policy_for(policies: Sequence[SlaPolicy], location_id: int | None) -> SlaPolicy | None:
    """The enabled policy of the customer's location, else the enabled default (no location), else None."""
    enabled = [p for p in policies if p.enabled]
    own = next((p for p in enabled if location_id is not None and p.location_id == location_id), None)
    return own or next((p for p in enabled if p.location_id is None), None)


@dataclass(frozen=True)
class SlaChat:
    """A conversation as the SLA clock sees it.

    `waiting_since`: the customer's first turn after staff last answered and after the conversation was
    last reopened (None: nothing is waiting); `answered_before`: whether staff had answered at all before
    that turn (so it times a next response); `reopened_at`: when a resolved conversation was last reopened
    (its resolution clock starts again then).
    """

    chat_id: int
    started_at: datetime
    first_response_at: datetime | None
    closed_at: datetime | None
    waiting_since: datetime | None
    answered_before: bool
    location_id: int | None
    timezone: str
    assigned_staff_id: int | None
    reopened_at: datetime | None = None


@dataclass(frozen=True)
class SlaClock:
    """One running target: what it times, when it started, when a warning is due and when it is due."""

    metric: SlaMetric
    started_at: datetime
    warn_at: datetime
    due_at: datetime


def _whole_seconds(moment: datetime) -> datetime:
    # Stored due times are part of the event's key: whole seconds compare equal on every engine.
    return moment.replace(microsecond=0)


def running_clocks(chat: SlaChat, policy: SlaPolicy, hours: BusinessHours) -> list[SlaClock]:
    """The targets still open in this conversation: first response (from the customer's first message,
    until staff answer), next response (from the customer's first message after staff last answered) and
    resolution (from the start, or from the last reopening, until resolved)."""
    starts: list[tuple[SlaMetric, datetime]] = []
    if chat.first_response_at is None:
        # From the customer's first message: a conversation staff opened times nothing until they write.
        if chat.waiting_since is not None:
            starts.append((SlaMetric.FIRST_RESPONSE, chat.waiting_since))
    elif chat.waiting_since is not None and chat.answered_before:
        starts.append((SlaMetric.NEXT_RESPONSE, chat.waiting_since))
    if chat.closed_at is None:
        starts.append((SlaMetric.RESOLUTION, chat.reopened_at or chat.started_at))
    clocks = []
    for metric, started in starts:
        target = policy.target(metric)
        if target is None:
            continue
        due = hours.add_minutes(started, target)
        warn = hours.add_minutes(started, max(target - policy.warn_before_minutes, 0))
        if due is None or warn is None:
            continue
        clocks.append(SlaClock(metric, started, _whole_seconds(warn), _whole_seconds(due)))
    return clocks


@dataclass(frozen=True)
class SlaFinding:
    """A warning or breach to store (once: the store keys it by chat, metric, due time and kind).

    `started_at`: when its clock started; a first-response or resolution breach already stored for the same
    clock (due at or after that start, under an earlier version of the policy) makes a new one redundant.
    """

    chat_id: int
    metric: SlaMetric
    kind: SlaKind
    due_at: datetime
    staff_id: int | None
    policy_id: int
    started_at: datetime | None = field(default=None, compare=False)


def findings_at(chat: SlaChat, policy: SlaPolicy, hours: BusinessHours, now: datetime) -> list[SlaFinding]:
    """A breach for each target past due, a warning for each within `warn_before_minutes` of it."""
    found = []
    for clock in running_clocks(chat, policy, hours):
        if now >= clock.due_at:
            kind = SlaKind.BREACH
        elif now >= clock.warn_at:
            kind = SlaKind.WARNING
        else:
            continue
        found.append(
            SlaFinding(
                chat.chat_id,
                clock.metric,
                kind,
                clock.due_at,
                chat.assigned_staff_id,
                policy.policy_id,
                clock.started_at,
            )
        )
    return found


@dataclass(frozen=True)
class SlaAlert:
    """An event not yet posted to Slack, with what a person needs to read it."""

    event_id: int
    chat_id: int
    metric: SlaMetric
    kind: SlaKind
    due_at: datetime
    customer_name: str
    channel_words: str
    assigned_name: str | None
    policy_id: int | None
    #: The customer's location's timezone (the business's when the customer has no location).
    timezone: str
    #: The team the conversation belongs to: the customer's home clinic's code (None without one).
    team: str | None = None
    customer_id: int | None = None


def alert_text(alert: SlaAlert, hours: BusinessHours, now: datetime, dashboard_url: str) -> str:
    """“⚠️ Conversation 42 with Ana Ruiz (WhatsApp) needs a first response within 10 minutes — assigned
    to Lena.” or “🔴 Breached: …”, with a link to the conversation in the dashboard."""
    who = f"assigned to {alert.assigned_name}" if alert.assigned_name else "nobody has it yet"
    what = METRIC_WORDS[alert.metric]
    about = f"Conversation {alert.chat_id} with {alert.customer_name} ({alert.channel_words})"
    link = (
        f"<{dashboard_url.rstrip('/')}/communication/chat/{alert.chat_id}|Open conversation {alert.chat_id}>"
    )
    due_local = alert.due_at.astimezone(ZoneInfo(hours.timezone))
    if alert.kind is SlaKind.WARNING:
        # Minutes left in business minutes, as the target counts them (never "within 0 minutes").
        left = hours.minutes_between(now, alert.due_at)
        minutes = max(math.ceil(left), 1)
        within = f"within {minutes} minute{'s' if minutes != 1 else ''}"
        if alert.metric is SlaMetric.RESOLUTION:
            return f"⚠️ {about} needs resolving {within} (by {due_local:%H:%M}) — {who}. {link}"
        return f"⚠️ {about} needs {what} {within} (by {due_local:%H:%M}) — {who}. {link}"
    if alert.metric is SlaMetric.RESOLUTION:
        late = "was not resolved"
    else:
        late = f"had no {what.removeprefix('a ')}"
    return f"🔴 Breached: {about} {late} by {day_month_time(due_local)} — {who}. {link}"


def minutes_in_words(minutes: int | None) -> str:
    """90 → "1 h 30 min"; None → "not timed"."""
    if minutes is None:
        return "not timed"
    hours, rest = divmod(minutes, 60)
    parts = ([f"{hours} h"] if hours else []) + ([f"{rest} min"] if rest or not hours else [])
    return " ".join(parts)


def hours_in_words(hours: Mapping[str, Any], holidays: Sequence[Any] = ()) -> str:
    """{"mon": [["08:00", "12:30"], ...], ...} → "Mon–Fri 08:00–12:30, 13:30–18:00; Sat 09:00–13:00"."""
    if not hours:
        spans_text = "around the clock"
    else:
        by_day = {WEEKDAYS.index(k.strip().lower()[:3]): v for k, v in hours.items() if v}
        groups: list[tuple[list[int], str]] = []
        for day in range(7):
            if day not in by_day:
                continue
            text = ", ".join(f"{start}–{end}" for start, end in by_day[day])
            if groups and groups[-1][1] == text and groups[-1][0][-1] == day - 1:
                groups[-1][0].append(day)
            else:
                groups.append(([day], text))
        names = [d.title() for d in WEEKDAYS]
        spans_text = "; ".join(
            f"{names[days[0]]}{'–' + names[days[-1]] if len(days) > 1 else ''} {text}"
            for days, text in groups
        )
        spans_text = spans_text or "never (no business hours)"
    if holidays:
        spans_text += f"; closed on {len(holidays)} holiday{'s' if len(holidays) != 1 else ''}"
    return spans_text
