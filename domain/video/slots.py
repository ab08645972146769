"""Free consultation times: a clinician's working hours in their own timezone, less what is booked, DST-safe."""

from __future__ import annotations

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
    # Steps as whole numbers (seconds since the epoch / step): a fortnight's search stays well under 20 ms.
    taken = {_index(step) for interval in busy for step in steps_of(interval.starts_at, interval.ends_at)}
    needed = -(-int(length.total_seconds()) // _STEP_SECONDS)
    earliest = max(start.astimezone(UTC), now.astimezone(UTC))
    by_weekday: dict[int, list[WorkingSpan]] = {}
    for span in hours:
        by_weekday.setdefault(span.weekday, []).append(span)
    found: set[datetime] = set()
    day = start.astimezone(zone).date() - timedelta(days=1)
    last_day = end.astimezone(zone).date() + timedelta(days=1)
    while day <= last_day:
        for span in by_weekday.get(day.weekday(), ()):
            for slot in _starts_in(day, span, zone, length):
                if earliest <= slot < end:
                    first = _index(slot)
                    if not any(step in taken for step in range(first, first + needed)):
                        found.add(slot)
        day += timedelta(days=1)
    return sorted(found)


_STEP_SECONDS = int(SLOT_STEP.total_seconds())


def _index(moment: datetime) -> int:
    return int(moment.timestamp()) // _STEP_SECONDS


def _starts_in(day: date, span: WorkingSpan, zone: ZoneInfo, length: timedelta) -> Iterable[datetime]:
    """Each wall-clock start of the span on `day` that exists, as UTC, whose end is still in the span."""
    opens = datetime.combine(day, span.starts, tzinfo=zone)
    closes = datetime.combine(day, span.ends, tzinfo=zone)
    if exists(opens) and exists(closes) and opens.utcoffset() == closes.utcoffset():
        # No clock change inside the span (the usual case): the starts are a plain sequence.
        first, last = opens.astimezone(UTC), closes.astimezone(UTC) - length
        slot = first
        while slot <= last:
            yield slot
            slot += SLOT_STEP
        return
    wall = datetime.combine(day, span.starts)
    span_end = datetime.combine(day, span.ends)
    while wall + SLOT_STEP <= span_end:
        local = wall.replace(tzinfo=zone, fold=0)
        if exists(local):
            slot = local.astimezone(UTC)
            finish = (slot + length).astimezone(zone)
            if finish.date() == day and finish.replace(tzinfo=None) <= span_end:
                yield slot
        wall += SLOT_STEP
