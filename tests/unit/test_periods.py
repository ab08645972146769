"""Period boundaries in the business timezone, across DST switches, weeks, quarters and comparisons."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from reports.periods import (
    Comparison,
    PeriodKind,
    PeriodSpec,
    add_months,
    bucket_starts,
    comparison_basis,
    comparison_range,
    local_midnight,
    partial_buckets,
    previous_period,
    range_of_days,
    resolve_period,
    same_period_last_year,
    zone,
)

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
KOLKATA = "Asia/Kolkata"
ADELAIDE = "Australia/Adelaide"


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


#: (zone, now, period, comparison, expected [start, end) in UTC, its label, the words that say what it is)
CALENDAR_COMPARISONS = [
    # On the 1st at 08:00 this month is eight hours old: compare with the first eight hours of November,
    # not with the last eight hours of 30 November.
    (BERLIN, utc(2026, 12, 1, 7), "this_month", "previous_period",
     utc(2026, 10, 31, 23), utc(2026, 11, 1, 7), "1 Nov 2026", "the same days last month"),
    (BERLIN, utc(2026, 12, 15, 9, 30), "this_month", "previous_period",
     utc(2026, 10, 31, 23), utc(2026, 11, 15, 9, 30), "1–15 Nov 2026", "the same days last month"),
    # The 31st against a 30-day and a 28-day month: all of the shorter month.
    (BERLIN, utc(2026, 12, 31, 9, 30), "this_month", "previous_period",
     utc(2026, 10, 31, 23), utc(2026, 11, 30, 23), "1–30 Nov 2026", "all of last month"),
    (BERLIN, utc(2026, 3, 31, 9, 30), "this_month", "previous_period",
     utc(2026, 1, 31, 23), utc(2026, 2, 28, 23), "1–28 Feb 2026", "all of last month"),
    (BERLIN, utc(2028, 3, 31, 9, 30), "this_month", "previous_period",
     utc(2028, 1, 31, 23), utc(2028, 2, 29, 23), "1–29 Feb 2028", "all of last month"),
    # The 30th of March is still all of February; the 28th is not (it ends at the same local hour).
    (BERLIN, utc(2026, 3, 30, 9, 30), "this_month", "previous_period",
     utc(2026, 1, 31, 23), utc(2026, 2, 28, 23), "1–28 Feb 2026", "all of last month"),
    (BERLIN, utc(2026, 3, 28, 9, 30), "this_month", "previous_period",
     utc(2026, 1, 31, 23), utc(2026, 2, 28, 9, 30), "1–28 Feb 2026", "the same days last month"),
    # Across the switch to summer time: 11:30 CEST on 15 April is 11:30 CET on 15 March (10:30 UTC).
    (BERLIN, utc(2026, 4, 15, 9, 30), "this_month", "previous_period",
     utc(2026, 2, 28, 23), utc(2026, 3, 15, 10, 30), "1–15 Mar 2026", "the same days last month"),
    # ... and back to winter time: 10:30 CET on 15 November is 10:30 CEST on 15 October (08:30 UTC).
    (BERLIN, utc(2026, 11, 15, 9, 30), "this_month", "previous_period",
     utc(2026, 9, 30, 22), utc(2026, 10, 15, 8, 30), "1–15 Oct 2026", "the same days last month"),
    # Half-hour zones: in Kolkata (+05:30) 1 December has begun while UTC is still on 30 November.
    (KOLKATA, utc(2026, 11, 30, 20), "this_month", "previous_period",
     utc(2026, 10, 31, 18, 30), utc(2026, 10, 31, 20), "1 Nov 2026", "the same days last month"),
    (KOLKATA, utc(2026, 12, 15, 9, 30), "this_month", "previous_period",
     utc(2026, 10, 31, 18, 30), utc(2026, 11, 15, 9, 30), "1–15 Nov 2026", "the same days last month"),
    # Adelaide keeps half hours and DST (+10:30 until 5 April 2026, +09:30 after).
    (ADELAIDE, utc(2026, 4, 15), "this_month", "previous_period",
     utc(2026, 2, 28, 13, 30), utc(2026, 3, 14, 23), "1–15 Mar 2026", "the same days last month"),
    # Weeks: Thursday so far against Monday to the same Thursday hour of last week, across the DST switch.
    (BERLIN, utc(2026, 11, 26, 12), "this_week", "previous_period",
     utc(2026, 11, 15, 23), utc(2026, 11, 19, 12), "16–19 Nov 2026", "the same days last week"),
    (BERLIN, utc(2026, 4, 1, 10), "this_week", "previous_period",
     utc(2026, 3, 22, 23), utc(2026, 3, 25, 11), "23–25 Mar 2026", "the same days last week"),
    # Quarters: as many days in (44 days after 1 April is 14 February), cut at the end of a shorter one.
    (BERLIN, utc(2026, 5, 15, 10), "this_quarter", "previous_period",
     utc(2025, 12, 31, 23), utc(2026, 2, 14, 11), "1 Jan – 14 Feb 2026", "as many days into last quarter"),
    (BERLIN, utc(2026, 6, 30, 10), "this_quarter", "previous_period",
     utc(2025, 12, 31, 23), utc(2026, 3, 31, 22), "1 Jan – 31 Mar 2026", "all of last quarter"),
    # Years: the same dates last year, 29 February ending on 28 February at the same hour.
    (BERLIN, utc(2028, 2, 29, 9, 30), "year_to_date", "previous_period",
     utc(2026, 12, 31, 23), utc(2027, 2, 28, 9, 30), "1 Jan – 28 Feb 2027", "the same dates last year"),
    (NEW_YORK, utc(2026, 5, 20, 8), "this_year", "previous_period",
     utc(2025, 1, 1, 5), utc(2025, 5, 20, 8), "1 Jan – 20 May 2025", "the same dates last year"),
    # Today so far against yesterday up to the same local time (yesterday was the 23-hour DST day).
    (BERLIN, utc(2026, 3, 30, 8), "today", "previous_period",
     utc(2026, 3, 28, 23), utc(2026, 3, 29, 8), "29 Mar 2026", "the same hours yesterday"),
    # Complete periods: the whole period before.
    (BERLIN, utc(2026, 12, 15, 9, 30), "last_month", "previous_period",
     utc(2026, 9, 30, 22), utc(2026, 10, 31, 23), "1–31 Oct 2026", "the month before"),
    (BERLIN, utc(2026, 3, 1, 9), "last_month", "previous_period",
     utc(2025, 12, 31, 23), utc(2026, 1, 31, 23), "1–31 Jan 2026", "the month before"),
    (BERLIN, utc(2026, 11, 26, 12), "last_week", "previous_period",
     utc(2026, 11, 8, 23), utc(2026, 11, 15, 23), "9–15 Nov 2026", "the week before"),
    (BERLIN, utc(2026, 11, 15, 12), "last_quarter", "previous_period",
     utc(2026, 3, 31, 22), utc(2026, 6, 30, 22), "1 Apr – 30 Jun 2026", "the quarter before"),
    # Same period last year: the same local dates and, for a partial day, the same local time.
    (BERLIN, utc(2026, 12, 15, 9, 30), "this_month", "same_period_last_year",
     utc(2025, 11, 30, 23), utc(2025, 12, 15, 9, 30), "1–15 Dec 2025", "the same dates last year"),
    # 30 March 2026 10:00 CEST; on 30 March 2025 the clocks had gone forward that very night.
    (BERLIN, utc(2026, 3, 30, 8), "today", "same_period_last_year",
     utc(2025, 3, 29, 23), utc(2025, 3, 30, 8), "30 Mar 2025", "the same dates last year"),
    (KOLKATA, utc(2028, 2, 29, 6), "today", "same_period_last_year",
     utc(2027, 2, 27, 18, 30), utc(2027, 2, 28, 6), "28 Feb 2027", "the same dates last year"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("tz", "now", "kind", "comparison", "start", "end", "label", "basis"), CALENDAR_COMPARISONS
)
def test_calendar_periods_compare_with_the_same_stretch_of_the_calendar_period_before(
    tz: str,
    now: datetime,
    kind: PeriodKind,
    comparison: Comparison,
    start: datetime,
    end: datetime,
    label: str,
    basis: str,
) -> None:
    spec = PeriodSpec(kind)
    time_range = resolve_period(spec, now, tz)
    compared = comparison_range(spec, time_range, comparison)
    assert (compared.start, compared.end) == (start, end)
    assert compared.label == label and compared.timezone == tz
    assert comparison_basis(spec, time_range, comparison) == basis
    assert compared.end <= time_range.start or comparison == "same_period_last_year"


@pytest.mark.parametrize(
    ("spec", "now", "start", "end", "basis"),
    [
        # Rolling periods keep the equally long stretch just before, on local dates.
        (PeriodSpec.last_n_days(7), utc(2026, 4, 1, 10), utc(2026, 3, 17, 23), utc(2026, 3, 24, 23),
         "the 7 days before"),
        (PeriodSpec.last_n_days(30), utc(2026, 12, 15, 9), utc(2026, 10, 15, 22), utc(2026, 11, 14, 23),
         "the 30 days before"),
        (PeriodSpec.last_n_days(1), utc(2026, 12, 15, 9), utc(2026, 12, 12, 23), utc(2026, 12, 13, 23),
         "the day before"),
        (PeriodSpec.between(date(2026, 10, 1), date(2026, 12, 31)), utc(2027, 1, 5), utc(2026, 6, 30, 22),
         utc(2026, 9, 30, 22), "the 3 months before"),
        (PeriodSpec.between(date(2026, 11, 10), date(2026, 11, 14)), utc(2027, 1, 5), utc(2026, 11, 4, 23),
         utc(2026, 11, 9, 23), "the 5 days before"),
    ],
)  # fmt: skip
def test_rolling_periods_compare_with_the_equally_long_stretch_before(
    spec: PeriodSpec, now: datetime, start: datetime, end: datetime, basis: str
) -> None:
    time_range = resolve_period(spec, now, BERLIN)
    compared = comparison_range(spec, time_range, "previous_period")
    assert (compared.start, compared.end) == (start, end)
    assert compared.end == time_range.start
    assert comparison_basis(spec, time_range, "previous_period") == basis


@pytest.mark.parametrize("tz", [BERLIN, NEW_YORK, KOLKATA, ADELAIDE])
def test_this_month_so_far_on_every_day_of_a_year_compares_from_the_first_to_the_same_date_and_time(
    tz: str,
) -> None:
    """Checked against the rule in words, worked out separately on local wall-clock times."""
    local = zone(tz)
    day = date(2027, 1, 1)
    while day.year < 2029:  # 2028 is a leap year
        now = datetime.combine(day, datetime.min.time().replace(hour=14, minute=45), local)
        time_range = resolve_period(PeriodSpec("this_month"), now, tz)
        compared = comparison_range(PeriodSpec("this_month"), time_range, "previous_period")
        first_of_last_month = add_months(day.replace(day=1), -1)
        assert compared.start == local_midnight(first_of_last_month, tz)
        days_in_last_month = (day.replace(day=1) - first_of_last_month).days
        if day.day > days_in_last_month:
            assert compared.end == local_midnight(day.replace(day=1), tz), day
        else:
            same_moment = now.replace(year=first_of_last_month.year, month=first_of_last_month.month)
            assert compared.end == same_moment.astimezone(UTC), day
        day += timedelta(days=1)


def test_comparison_range_without_a_named_period_is_the_stretch_before() -> None:
    """A bare range (a TimeRange query) has no calendar to go by: the equally long stretch before it."""
    time_range = resolve_period(PeriodSpec("this_month"), utc(2026, 12, 15, 9, 30), BERLIN)
    assert comparison_range(None, time_range, "previous_period") == previous_period(time_range)
    assert comparison_basis(None, time_range, "previous_period") == "the same length of time just before"


@pytest.mark.parametrize(
    ("first", "last", "grain", "said"),
    [
        # Tuesday 3 Nov to Thursday 3 Dec 2026: both ends inside their weeks.
        (date(2026, 11, 3), date(2026, 12, 3), "week", "partial first and final weeks"),
        # Monday 2 Nov to Sunday 29 Nov: whole weeks.
        (date(2026, 11, 2), date(2026, 11, 29), "week", ""),
        (date(2026, 11, 2), date(2026, 12, 2), "week", "partial final week"),
        (date(2026, 10, 28), date(2026, 11, 29), "week", "partial first week"),
        (date(2026, 9, 15), date(2026, 11, 30), "month", "partial first month"),
        (date(2026, 11, 1), date(2026, 11, 30), "month", ""),
        (date(2026, 11, 10), date(2026, 11, 20), "month", "one partial month"),
        (date(2026, 11, 3), date(2026, 12, 3), "day", ""),
    ],
)
def test_partial_buckets_are_named(first: date, last: date, grain: str, said: str) -> None:
    assert partial_buckets(range_of_days(first, last, BERLIN), grain) == said  # type: ignore[arg-type]
