"""Who is outside their working hours now: read on their own clock and weekday, and never someone who has
no hours at all (live chat only)."""

from __future__ import annotations

from datetime import UTC, datetime, time

from storage.queries.team import TeamMember

NINE_TO_FIVE = ((time(9), time(17)),)


def member(timezone: str, week: dict[int, tuple[tuple[time, time], ...]]) -> TeamMember:
    return TeamMember(1, "Emma Rodriguez", "Berlin", timezone, "online", week.get(0, ()), 0, week)


def test_inside_and_outside_the_hours_of_the_day() -> None:
    weekdays = {day: NINE_TO_FIVE for day in range(5)}
    berlin = member("Europe/Berlin", weekdays)
    assert not berlin.outside_hours(datetime(2026, 12, 7, 9, 0, tzinfo=UTC))  # Monday 10:00 in Berlin
    assert berlin.outside_hours(datetime(2026, 12, 7, 16, 0, tzinfo=UTC))  # Monday 17:00: the end is out
    assert berlin.outside_hours(datetime(2026, 12, 7, 7, 59, tzinfo=UTC))


def test_a_day_without_hours_is_outside_them() -> None:
    """It said "available" for someone online on their day off, as if they had no hours at all."""
    weekdays = {day: NINE_TO_FIVE for day in range(5)}
    assert member("Europe/Berlin", weekdays).outside_hours(datetime(2026, 12, 6, 11, 0, tzinfo=UTC))  # Sunday


def test_their_own_weekday_counts_not_the_business_s() -> None:
    """Monday 03:00 in Berlin is Sunday 21:00 in New York: a Sunday-evening shift there is inside its hours."""
    sunday_evening = {6: ((time(18), time(23)),)}
    new_york = member("America/New_York", sunday_evening)
    assert not new_york.outside_hours(datetime(2026, 12, 7, 2, 0, tzinfo=UTC))
    assert new_york.outside_hours(datetime(2026, 12, 7, 14, 0, tzinfo=UTC))  # Monday 09:00 there


def test_someone_with_no_hours_at_all_takes_live_chat_without_being_outside_them() -> None:
    assert not member("Europe/Berlin", {}).outside_hours(datetime(2026, 12, 6, 23, 0, tzinfo=UTC))
