"""Period boundaries in the business timezone, across DST switches, weeks, quarters and comparisons."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from reports.periods import (
    PeriodSpec,
    bucket_starts,
    previous_period,
    range_of_days,
    resolve_period,
    same_period_last_year,
)

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("tz", "day", "hours"),
    [
        (BERLIN, date(2026, 3, 29), 23),
        (BERLIN, date(2026, 10, 25), 25),
        (NEW_YORK, date(2026, 3, 8), 23),
        (NEW_YORK, date(2026, 11, 1), 25),
        (BERLIN, date(2026, 3, 30), 24),
    ],
)
def test_a_dst_day_is_one_day_of_23_or_25_hours(tz: str, day: date, hours: int) -> None:
    time_range = resolve_period(PeriodSpec.between(day, day), utc(2026, 12, 1), tz)
    assert time_range.end - time_range.start == timedelta(hours=hours)
    assert bucket_starts(time_range, "day", tz) == [time_range.start]
    assert len(bucket_starts(time_range, "hour", tz)) == hours


def test_berlin_spring_forward_day_boundaries() -> None:
    time_range = range_of_days(date(2026, 3, 29), date(2026, 3, 29), BERLIN)
    assert (time_range.start, time_range.end) == (utc(2026, 3, 28, 23), utc(2026, 3, 29, 22))
    assert time_range.label == "29 Mar 2026"


def test_new_york_fall_back_day_boundaries() -> None:
    time_range = range_of_days(date(2026, 11, 1), date(2026, 11, 1), NEW_YORK)
    assert (time_range.start, time_range.end) == (utc(2026, 11, 1, 4), utc(2026, 11, 2, 5))


def test_last_30_days_are_the_complete_days_before_today() -> None:
    now = utc(2026, 12, 1, 9, 30)  # 10:30 in Berlin on 1 Dec
    time_range = resolve_period(PeriodSpec.last_n_days(30), now, BERLIN)
    assert time_range.start == utc(2026, 10, 31, 23)
    assert time_range.end == utc(2026, 11, 30, 23)
    assert time_range.label == "1–30 Nov 2026"
    assert len(bucket_starts(time_range, "day", BERLIN)) == 30


def test_last_n_days_can_include_today_so_far() -> None:
    now = utc(2026, 12, 1, 9, 30)
    time_range = resolve_period(PeriodSpec.last_n_days(7), now, BERLIN, complete_only=False)
    assert time_range.end == now
    assert time_range.first_day == date(2026, 11, 25)
    assert time_range.label == "25 Nov – 1 Dec 2026"


def test_today_is_local_today_even_when_utc_is_still_yesterday() -> None:
    now = utc(2026, 6, 30, 23, 30)  # 01:30 on 1 July in Berlin
    today = resolve_period(PeriodSpec("today"), now, BERLIN)
    assert today.start == utc(2026, 6, 30, 22) and today.end == now
    yesterday = resolve_period(PeriodSpec("yesterday"), now, BERLIN)
    assert yesterday.label == "30 Jun 2026"


def test_weeks_start_on_monday() -> None:
    now = utc(2026, 11, 26, 12)  # a Thursday
    this_week = resolve_period(PeriodSpec("this_week"), now, BERLIN)
    last_week = resolve_period(PeriodSpec("last_week"), now, BERLIN)
    assert this_week.first_day == date(2026, 11, 23) and this_week.first_day.weekday() == 0
    assert (last_week.first_day, last_week.last_day) == (date(2026, 11, 16), date(2026, 11, 22))
    month = range_of_days(date(2026, 11, 1), date(2026, 11, 30), BERLIN)
    weeks = bucket_starts(month, "week", BERLIN)
    assert weeks[0] == utc(2026, 10, 25, 23)  # Monday 26 Oct, after the clocks went back
    assert all(w.astimezone(month.start.tzinfo).weekday() in (0, 6) for w in weeks)


@pytest.mark.parametrize(
    ("now", "kind", "first", "last"),
    [
        (utc(2026, 11, 15, 12), "last_quarter", date(2026, 7, 1), date(2026, 9, 30)),
        (utc(2026, 2, 15, 12), "last_quarter", date(2025, 10, 1), date(2025, 12, 31)),
        (utc(2026, 1, 10, 12), "last_month", date(2025, 12, 1), date(2025, 12, 31)),
        (utc(2026, 3, 10, 12), "last_month", date(2026, 2, 1), date(2026, 2, 28)),
    ],
)
def test_quarter_and_month_math(now: datetime, kind: str, first: date, last: date) -> None:
    time_range = resolve_period(PeriodSpec(kind), now, BERLIN)  # type: ignore[arg-type]
    assert (time_range.first_day, time_range.last_day) == (first, last)


def test_this_quarter_and_year_to_date_run_until_now() -> None:
    now = utc(2026, 5, 20, 8)
    quarter = resolve_period(PeriodSpec("this_quarter"), now, NEW_YORK)
    assert quarter.first_day == date(2026, 4, 1) and quarter.end == now
    ytd = resolve_period(PeriodSpec("year_to_date"), now, NEW_YORK)
    assert ytd.start == utc(2026, 1, 1, 5) and ytd.end == now
    quarters = bucket_starts(range_of_days(date(2026, 1, 1), date(2026, 12, 31), BERLIN), "quarter", BERLIN)
    assert quarters == [
        utc(2025, 12, 31, 23),
        utc(2026, 3, 31, 22),
        utc(2026, 6, 30, 22),
        utc(2026, 9, 30, 22),
    ]


def test_previous_period_of_a_month_is_the_month_before() -> None:
    november = range_of_days(date(2026, 11, 1), date(2026, 11, 30), BERLIN)
    october = previous_period(november)
    assert (october.first_day, october.last_day) == (date(2026, 10, 1), date(2026, 10, 31))
    assert october.end == november.start
    march = previous_period(range_of_days(date(2026, 3, 1), date(2026, 3, 31), BERLIN))
    assert march.label == "1–28 Feb 2026"


def test_previous_period_of_n_days_is_n_days_and_today_so_far_compares_with_yesterday() -> None:
    last_30 = resolve_period(PeriodSpec.last_n_days(30), utc(2026, 12, 15, 9), BERLIN)
    before = previous_period(last_30)
    assert (before.last_day - before.first_day).days + 1 == 30 and before.end == last_30.start
    now = utc(2026, 12, 1, 9, 30)
    today = resolve_period(PeriodSpec("today"), now, BERLIN)
    yesterday_so_far = previous_period(today)
    assert yesterday_so_far.end - yesterday_so_far.start == now - today.start


def test_same_period_last_year() -> None:
    november = range_of_days(date(2026, 11, 1), date(2026, 11, 30), NEW_YORK)
    last_year = same_period_last_year(november)
    assert (last_year.first_day, last_year.last_day) == (date(2025, 11, 1), date(2025, 11, 30))
    leap = same_period_last_year(range_of_days(date(2028, 2, 29), date(2028, 2, 29), BERLIN))
    assert leap.first_day == date(2027, 2, 28)


def test_bad_periods_are_refused() -> None:
    with pytest.raises(ValueError, match="last_n_days"):
        PeriodSpec.last_n_days(0)
    with pytest.raises(ValueError, match="before"):
        PeriodSpec.between(date(2026, 2, 1), date(2026, 1, 1))
    with pytest.raises(ValueError, match="unknown timezone"):
        resolve_period(PeriodSpec("today"), utc(2026, 1, 1), "Mars/Olympus")
    with pytest.raises(ValueError, match="aware"):
        resolve_period(PeriodSpec("today"), datetime(2026, 1, 1), BERLIN)
