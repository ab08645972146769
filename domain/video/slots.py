"""Free consultation times: a clinician's working hours in their own timezone, less what is booked, DST-safe."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from domain.video.model import SLOT_STEP, VideoError


@dataclass(frozen=True)
class WorkingSpan:
    """One span a clinician works on a weekday (Monday 0), wall-clock in their timezone."""

    weekday: int
    starts: time
    ends: time


@dataclass(frozen=True)
class Busy:
    """Time already taken (a booking or another appointment), as UTC instants."""

    starts_at: datetime
    ends_at: datetime


def zone_of(tz: str | ZoneInfo) -> ZoneInfo:
    return tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)


def wall_clock_instant(day: date, at: time, tz: str | ZoneInfo) -> datetime:
    """The UTC instant a wall-clock time names in `tz`.

    A time that does not exist (the hour clocks skip in spring) is refused in words; one that happens
    twice (the hour repeated in autumn) is always the first of the two, so the same words book the same
    instant every time.
    """
    zone = zone_of(tz)
    local = datetime.combine(day, at.replace(tzinfo=None), tzinfo=zone).replace(fold=0)
    if not exists(local):
        raise VideoError(
            f"{at:%H:%M} on {day:%a} {day.day} {day:%b} does not exist in {zone.key}: the clocks go forward that night. "
            "Pick a time after the change."
        )
    return local.astimezone(UTC)


def exists(local: datetime) -> bool:
    """Whether an aware local wall-clock time really occurs (False inside a spring-forward gap)."""
    round_trip = local.astimezone(UTC).astimezone(local.tzinfo)
    return round_trip.replace(tzinfo=None) == local.replace(tzinfo=None)


def on_step(moment: datetime) -> bool:
    """Whether a start falls on the five-minute grid bookings use."""
    utc = moment.astimezone(UTC)
    step_seconds = int(SLOT_STEP.total_seconds())
    return utc.second == 0 and utc.microsecond == 0 and (utc.minute * 60) % step_seconds == 0


def steps_of(starts_at: datetime, ends_at: datetime) -> list[datetime]:
    """Every five-minute step an interval touches (UTC, from the step it starts in)."""
    first = _floor_step(starts_at.astimezone(UTC))
    end = ends_at.astimezone(UTC)
    steps = []
    current = first
    while current < end:
        steps.append(current)
        current += SLOT_STEP
    return steps


def _floor_step(moment: datetime) -> datetime:
    step_seconds = int(SLOT_STEP.total_seconds())
    seconds = int(moment.timestamp())
    return datetime.fromtimestamp(seconds - seconds % step_seconds, UTC)


def within_hours(
    hours: Sequence[WorkingSpan], tz: str | ZoneInfo, starts_at: datetime, duration_minutes: int
) -> bool:
    """Whether a consultation from `starts_at` lies inside one working span of its local day."""
    zone = zone_of(tz)
    local_start = starts_at.astimezone(zone)
    local_end = (starts_at.astimezone(UTC) + timedelta(minutes=duration_minutes)).astimezone(zone)
    if local_end.date() != local_start.date():
        return False
    return any(
        span.weekday == local_start.weekday()
        and span.starts <= local_start.time()
        and local_end.time() <= span.ends
        for span in hours
    )


def overlaps(busy: Iterable[Busy], starts_at: datetime, ends_at: datetime) -> Busy | None:
    """The first busy interval sharing time with [starts_at, ends_at), if any."""
    for taken in busy:
        if taken.starts_at < ends_at and starts_at < taken.ends_at:
            return taken
    return None


def free_slots(
    hours: Sequence[WorkingSpan],
    busy: Sequence[Busy],
    duration_minutes: int,
    tz: str | ZoneInfo,
    start: datetime,
    end: datetime,
    now: datetime,
) -> list[datetime]:
    """Start times (UTC, on the five-minute grid) from `start` up to `end` at which a consultation of
    `duration_minutes` fits inside the clinician's working hours, shares no time with `busy`, and has not
    begun by `now`. Times the clocks skip are never offered; a repeated hour is offered once, the first."""
    if duration_minutes <= 0 or end <= start:
        return []
    zone = zone_of(tz)
    length = timedelta(minutes=duration_minutes)
    # Times as whole seconds and steps as whole numbers (seconds since the epoch / step) until the answer is
    # built: a fortnight's search stays a few milliseconds.
    needed = -(-int(length.total_seconds()) // _STEP_SECONDS)
    # A start is blocked when any step of the consultation from it is taken: the `needed` steps up to each.
    blocked: set[int] = set()
    for interval in busy:
        first_taken = _index(interval.starts_at)
        after_taken = math.ceil(interval.ends_at.timestamp() / _STEP_SECONDS)
        blocked.update(range(first_taken - needed + 1, after_taken))
    earliest = max(start.timestamp(), now.timestamp())
    last_start = end.timestamp()
    by_weekday: dict[int, list[WorkingSpan]] = {}
    for span in hours:
        by_weekday.setdefault(span.weekday, []).append(span)
    found: set[int] = set()
    day = start.astimezone(zone).date() - timedelta(days=1)
    last_day = end.astimezone(zone).date() + timedelta(days=1)
    while day <= last_day:
        for span in by_weekday.get(day.weekday(), ()):
            starts = _starts_in(day, span, zone, length)
            if isinstance(starts, range) and starts:
                # A plain run of starts: as step numbers, so the free ones are a set difference.
                offset = starts.start % _STEP_SECONDS
                steps = range(
                    max(starts.start // _STEP_SECONDS, math.ceil((earliest - offset) / _STEP_SECONDS)),
                    min(starts[-1] // _STEP_SECONDS + 1, math.ceil((last_start - offset) / _STEP_SECONDS)),
                )
                found.update(step * _STEP_SECONDS + offset for step in set(steps).difference(blocked))
                continue
            found.update(
                slot
                for slot in starts
                if earliest <= slot < last_start and slot // _STEP_SECONDS not in blocked
            )
        day += timedelta(days=1)
    return [datetime.fromtimestamp(slot, UTC) for slot in sorted(found)]


_STEP_SECONDS = int(SLOT_STEP.total_seconds())


def _index(moment: datetime) -> int:
    return int(moment.timestamp()) // _STEP_SECONDS


def _starts_in(day: date, span: WorkingSpan, zone: ZoneInfo, length: timedelta) -> Iterable[int]:
    """Each wall-clock start of the span on `day` that exists, as UTC seconds since the epoch, whose end is
    still in the span."""
    opens = datetime.combine(day, span.starts, tzinfo=zone)
    closes = datetime.combine(day, span.ends, tzinfo=zone)
    if exists(opens) and exists(closes) and opens.utcoffset() == closes.utcoffset():
        # No clock change inside the span (the usual case): the starts are a plain sequence.
        first = int(opens.timestamp())
        last = int((closes - length).timestamp())
        return range(first, last + 1, _STEP_SECONDS)
    return _starts_across_change(day, span, zone, length)


def _starts_across_change(day: date, span: WorkingSpan, zone: ZoneInfo, length: timedelta) -> Iterable[int]:
    wall = datetime.combine(day, span.starts)
    span_end = datetime.combine(day, span.ends)
    while wall + SLOT_STEP <= span_end:
        local = wall.replace(tzinfo=zone, fold=0)
        if exists(local):
            slot = local.astimezone(UTC)
            finish = (slot + length).astimezone(zone)
            if finish.date() == day and finish.replace(tzinfo=None) <= span_end:
                yield int(slot.timestamp())
        wall += SLOT_STEP
