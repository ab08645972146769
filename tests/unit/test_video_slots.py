"""Free consultation times: split shifts, booked time, the past, and the nights the clocks change."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from domain.video.model import VideoError
from domain.video.slots import (
    Busy,
    WorkingSpan,
    free_slots,
    on_step,
    overlaps,
    steps_of,
    wall_clock_instant,
    within_hours,
)

BERLIN = ZoneInfo("Europe/Berlin")
#: Monday 7 December 2026 (CET, UTC+1).
MONDAY = date(2026, 12, 7)
SPLIT_SHIFT = [
    WorkingSpan(0, time(9, 0), time(12, 30)),
    WorkingSpan(0, time(13, 30), time(17, 0)),
]
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)


def berlin(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), BERLIN).astimezone(UTC)


def day_of(day: date) -> tuple[datetime, datetime]:
    return berlin(day, 0), berlin(day + timedelta(days=1), 0)


def test_a_split_shift_offers_five_minute_starts_in_both_spans_and_none_in_the_break() -> None:
    start, end = day_of(MONDAY)
    slots = free_slots(SPLIT_SHIFT, [], 30, "Europe/Berlin", start, end, LONG_AGO)
    local = [s.astimezone(BERLIN).time() for s in slots]
    assert local[0] == time(9, 0) and local[-1] == time(16, 30)
    assert time(12, 0) in local and time(12, 5) not in local  # 12:05 + 30 min runs into the break
    assert not any(time(12, 1) <= t < time(13, 30) for t in local)
    assert time(13, 30) in local
    assert len(local) == 37 + 37  # 09:00..12:00 and 13:30..16:30, every five minutes
    assert all(s.tzinfo is UTC and on_step(s) for s in slots)


def test_other_weekdays_and_days_outside_the_range_offer_nothing() -> None:
    tuesday = MONDAY + timedelta(days=1)
    assert free_slots(SPLIT_SHIFT, [], 30, BERLIN, *day_of(tuesday), LONG_AGO) == []
    assert free_slots([], [], 30, BERLIN, *day_of(MONDAY), LONG_AGO) == []
    start, end = day_of(MONDAY)
    assert free_slots(SPLIT_SHIFT, [], 30, BERLIN, end, start, LONG_AGO) == []
    assert free_slots(SPLIT_SHIFT, [], 0, BERLIN, start, end, LONG_AGO) == []


def test_booked_time_and_other_appointments_are_skipped_with_their_neighbours() -> None:
    booked = Busy(berlin(MONDAY, 10, 0), berlin(MONDAY, 10, 30))
    odd = Busy(berlin(MONDAY, 14, 2), berlin(MONDAY, 14, 7))  # not on the grid: both steps it touches go
    slots = free_slots(SPLIT_SHIFT, [booked, odd], 30, BERLIN, *day_of(MONDAY), LONG_AGO)
    local = {s.astimezone(BERLIN).time() for s in slots}
    assert time(9, 30) in local and time(9, 35) not in local  # would run into 10:00
    assert not any(time(9, 35) <= t < time(10, 30) for t in local)
    assert time(10, 30) in local
    assert time(13, 30) in local and time(13, 35) not in local and time(14, 10) in local


def test_nothing_in_the_past_is_offered() -> None:
    now = berlin(MONDAY, 11, 2)
    slots = free_slots(SPLIT_SHIFT, [], 30, BERLIN, *day_of(MONDAY), now)
    assert slots[0] == berlin(MONDAY, 11, 5)
    assert free_slots(SPLIT_SHIFT, [], 30, BERLIN, *day_of(MONDAY), berlin(MONDAY, 18)) == []


def test_hours_are_the_clinicians_own_timezone() -> None:
    new_york = [WorkingSpan(0, time(9, 0), time(10, 0))]
    slots = free_slots(new_york, [], 60, "America/New_York", *day_of(MONDAY), LONG_AGO)
    assert slots == [datetime(2026, 12, 7, 14, 0, tzinfo=UTC)]


def test_the_spring_gap_is_never_offered_and_cannot_be_named() -> None:
    spring = date(2026, 3, 29)  # Sunday: 02:00 becomes 03:00 in Berlin
    night = [WorkingSpan(6, time(1, 0), time(4, 0))]
    slots = free_slots(night, [], 30, BERLIN, berlin(spring, 0), berlin(spring, 12), LONG_AGO)
    local = [s.astimezone(BERLIN) for s in slots]
    assert not any(t.hour == 2 for t in local)
    assert len(slots) == len(set(slots))
    # 01:30 + 30 min ends at 03:00 local (the gap is skipped), still inside the span.
    assert datetime(2026, 3, 29, 1, 30, tzinfo=BERLIN).astimezone(UTC) in slots
    with pytest.raises(VideoError, match="02:30 on Sun 29 Mar does not exist in Europe/Berlin"):
        wall_clock_instant(spring, time(2, 30), BERLIN)
    assert wall_clock_instant(spring, time(3, 0), BERLIN) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_the_repeated_autumn_hour_is_offered_once_and_read_as_the_first() -> None:
    autumn = date(2026, 10, 25)  # Sunday: 03:00 goes back to 02:00 in Berlin
    night = [WorkingSpan(6, time(2, 0), time(3, 0))]
    slots = free_slots(night, [], 15, BERLIN, berlin(autumn, 0), berlin(autumn, 12), LONG_AGO)
    assert len(slots) == len(set(slots))
    first_0230 = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    second_0230 = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET
    assert first_0230 in slots and second_0230 not in slots
    assert wall_clock_instant(autumn, time(2, 30), BERLIN) == first_0230
    assert wall_clock_instant(autumn, time(2, 30), BERLIN) == wall_clock_instant(autumn, time(2, 30), BERLIN)


def test_within_hours_checks_start_and_end_against_one_span() -> None:
    assert within_hours(SPLIT_SHIFT, BERLIN, berlin(MONDAY, 12, 0), 30)
    assert not within_hours(SPLIT_SHIFT, BERLIN, berlin(MONDAY, 12, 5), 30)
    assert not within_hours(SPLIT_SHIFT, BERLIN, berlin(MONDAY, 8, 55), 30)
    assert not within_hours(SPLIT_SHIFT, BERLIN, berlin(MONDAY + timedelta(days=1), 10), 30)
    late = [WorkingSpan(0, time(20, 0), time(23, 59))]
    assert not within_hours(late, BERLIN, berlin(MONDAY, 23, 45), 30)  # runs past midnight


def test_steps_and_overlaps() -> None:
    start = berlin(MONDAY, 10, 0)
    assert steps_of(start, start + timedelta(minutes=30)) == [
        start + timedelta(minutes=5 * i) for i in range(6)
    ]
    assert steps_of(start + timedelta(minutes=2), start + timedelta(minutes=6)) == [
        start,
        start + timedelta(minutes=5),
    ]
    taken = Busy(start, start + timedelta(minutes=30))
    assert overlaps([taken], start + timedelta(minutes=29), start + timedelta(hours=1)) == taken
    assert overlaps([taken], start + timedelta(minutes=30), start + timedelta(hours=1)) is None
    assert not on_step(start + timedelta(minutes=2)) and on_step(start)


def _slots_one_by_one(
    hours: list[WorkingSpan],
    busy: list[Busy],
    minutes: int,
    zone: ZoneInfo,
    start: datetime,
    end: datetime,
    now: datetime,
) -> list[datetime]:
    """The plain reading of the rule, a candidate start at a time: what the fast search must agree with."""
    length = timedelta(minutes=minutes)
    taken = [
        Busy(step, step + timedelta(minutes=5)) for b in busy for step in steps_of(b.starts_at, b.ends_at)
    ]
    found: set[datetime] = set()
    day = start.astimezone(zone).date() - timedelta(days=1)
    while day <= end.astimezone(zone).date() + timedelta(days=1):
        for span in (s for s in hours if s.weekday == day.weekday()):
            wall = datetime.combine(day, span.starts)
            while wall + timedelta(minutes=5) <= datetime.combine(day, span.ends):
                local = wall.replace(tzinfo=zone, fold=0)
                slot = local.astimezone(UTC)
                if (
                    slot.astimezone(zone).replace(tzinfo=None) == wall  # the wall-clock time exists
                    and max(start, now) <= slot < end
                    and within_hours([span], zone, slot, minutes)
                    and overlaps((t for t in taken if t.starts_at < slot + length), slot, slot + length)
                    is None
                ):
                    found.add(slot)
                wall += timedelta(minutes=5)
        day += timedelta(days=1)
    return sorted(found)


@pytest.mark.parametrize("zone_name", ["Europe/Berlin", "America/New_York", "Asia/Kathmandu", "UTC"])
def test_the_fast_search_agrees_with_trying_each_start_in_turn(zone_name: str) -> None:
    zone = ZoneInfo(zone_name)
    rng = random.Random(zone_name)
    hours = [WorkingSpan(0, time(8, 0), time(12, 30)), WorkingSpan(0, time(13, 5), time(17, 0))] + [
        WorkingSpan(
            w,
            time(rng.randrange(0, 4), 5 * rng.randrange(12)),
            time(rng.randrange(12, 23), 5 * rng.randrange(12)),
        )
        for w in range(1, 7)
    ]
    # Across the March and October/November clock changes in both hemispheres' zones.
    for first in (date(2027, 3, 8), date(2027, 3, 25), date(2027, 10, 27), date(2027, 11, 3)):
        start = datetime.combine(first, time(0, 0), zone).astimezone(UTC)
        end = start + timedelta(days=6)
        busy = []
        for _ in range(30):
            at = start + timedelta(minutes=rng.randrange(0, 6 * 24 * 60))  # off the grid too
            busy.append(Busy(at, at + timedelta(minutes=rng.choice((7, 15, 30, 45)))))
        now = start + timedelta(hours=rng.randrange(0, 30), minutes=rng.randrange(60))
        for minutes in (5, 15, 40):
            assert free_slots(hours, busy, minutes, zone, start, end, now) == _slots_one_by_one(
                hours, busy, minutes, zone, start, end, now
            )
