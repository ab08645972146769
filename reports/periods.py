"""Named reporting periods ("last 30 days", "last quarter") resolved to UTC ranges in the business timezone.

Every boundary is computed on local calendar dates first and only then turned into a UTC instant,
so a day that is 23 or 25 hours long because of a DST switch still is one day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Grain = Literal["hour", "day", "week", "month", "quarter"]
GRAINS: tuple[Grain, ...] = get_args(Grain)

PeriodKind = Literal[
    "today",
    "yesterday",
    "last_n_days",
    "this_week",
    "last_week",
    "this_month",
    "last_month",
    "this_quarter",
    "last_quarter",
    "this_year",
    "year_to_date",
    "between",
]
PERIOD_KINDS: tuple[PeriodKind, ...] = get_args(PeriodKind)

#: A period longer than this is almost certainly a typo and would make raw queries very slow.
MAX_PERIOD_DAYS = 3660


@dataclass(frozen=True)
class PeriodSpec:
    """A period as a person names it; `n` is used by last_n_days, the dates by between (both inclusive)."""

    kind: PeriodKind
    n: int | None = None
    start_date: date | None = None
    end_date: date | None = None

    def __post_init__(self) -> None:
        if self.kind not in PERIOD_KINDS:
            raise ValueError(f"unknown period {self.kind!r}; allowed: {', '.join(PERIOD_KINDS)}")
        if self.kind == "last_n_days" and (self.n is None or not 1 <= self.n <= MAX_PERIOD_DAYS):
            raise ValueError(f"last_n_days needs n between 1 and {MAX_PERIOD_DAYS}, got {self.n!r}")
        if self.kind == "between":
            if self.start_date is None or self.end_date is None:
                raise ValueError("between needs start_date and end_date")
            if self.end_date < self.start_date:
                raise ValueError(f"between: {self.end_date} is before {self.start_date}")
            if (self.end_date - self.start_date).days >= MAX_PERIOD_DAYS:
                raise ValueError(f"between: at most {MAX_PERIOD_DAYS} days")

    @classmethod
    def last_n_days(cls, n: int) -> PeriodSpec:
        return cls("last_n_days", n=n)

    @classmethod
    def between(cls, start_date: date, end_date: date) -> PeriodSpec:
        return cls("between", start_date=start_date, end_date=end_date)


@dataclass(frozen=True)
class TimeRange:
    """A half-open UTC range [start, end) plus the local calendar it was cut from, for labels."""

    start: datetime
    end: datetime
    label: str
    timezone: str

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("a TimeRange needs timezone-aware start and end")
        if self.end <= self.start:
            raise ValueError(f"empty range {self.start} .. {self.end}")
        zone(self.timezone)

    @property
    def first_day(self) -> date:
        return self.start.astimezone(zone(self.timezone)).date()

    @property
    def last_day(self) -> date:
        """The last local day touched (the end is exclusive)."""
        return (self.end - timedelta(microseconds=1)).astimezone(zone(self.timezone)).date()

    @property
    def ends_mid_day(self) -> bool:
        """True for a range cut short inside its last day, such as a period that runs up to now."""
        return self.end.astimezone(zone(self.timezone)).time() != time()


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`; anything else is refused with a clear message."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown timezone {name!r}; use an IANA name such as 'Europe/Berlin'") from error


def local_midnight(day: date, tz: str) -> datetime:
    """The UTC instant at which local `day` begins."""
    return datetime.combine(day, time(), zone(tz)).astimezone(UTC)


def format_day_range(first: date, last: date) -> str:
    """'1–30 Nov 2026', '28 Oct – 3 Nov 2026', '30 Dec 2025 – 5 Jan 2026', '5 Mar 2026'."""
    if first == last:
        return f"{first.day} {first:%b %Y}"
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day}–{last.day} {last:%b %Y}"
    if first.year == last.year:
        return f"{first.day} {first:%b} – {last.day} {last:%b %Y}"
    return f"{first.day} {first:%b %Y} – {last.day} {last:%b %Y}"


def range_of_days(first: date, last: date, tz: str, *, end: datetime | None = None) -> TimeRange:
    """The local days first..last (inclusive); `end` cuts the last day short (an incomplete today)."""
    start = local_midnight(first, tz)
    stop = end if end is not None else local_midnight(last + timedelta(days=1), tz)
    return TimeRange(start, stop, format_day_range(first, last), tz)


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def month_start(day: date) -> date:
    return day.replace(day=1)


def quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def add_months(day: date, months: int) -> date:
    """The first of the month `months` after day's month (day must be a first of month)."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def resolve_period(spec: PeriodSpec, now: datetime, tz: str, *, complete_only: bool = True) -> TimeRange:
    """The UTC range `spec` means at `now` in business timezone `tz`.

    "this_*" periods and year_to_date run up to now (they are incomplete by nature); "last_n_days"
    is the n complete days before today unless complete_only=False, which moves it to end now.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    today = now.astimezone(zone(tz)).date()
    kind = spec.kind
    if kind == "today":
        return range_of_days(today, today, tz, end=now)
    if kind == "yesterday":
        return range_of_days(today - timedelta(days=1), today - timedelta(days=1), tz)
    if kind == "last_n_days":
        assert spec.n is not None
        if complete_only:
            return range_of_days(today - timedelta(days=spec.n), today - timedelta(days=1), tz)
        return range_of_days(today - timedelta(days=spec.n - 1), today, tz, end=now)
    if kind == "between":
        assert spec.start_date is not None and spec.end_date is not None
        return range_of_days(spec.start_date, spec.end_date, tz)
    first, last = _calendar_period(kind, today)
    if last >= today:
        return range_of_days(first, today, tz, end=now)
    return range_of_days(first, last, tz)


def whole_of(spec: PeriodSpec, now: datetime, tz: str) -> PeriodSpec:
    """ "today" and "this week/month/quarter/year" as their whole days, for figures that lie ahead too
    (appointments already booked): "appointments today" at 08:00 are the day's, not the 0 held so far."""
    if spec.kind == "today":
        today = now.astimezone(zone(tz)).date()
        return PeriodSpec.between(today, today)
    if spec.kind in ("this_week", "this_month", "this_quarter", "this_year"):
        first, last = _calendar_period(spec.kind, now.astimezone(zone(tz)).date())
        return PeriodSpec.between(first, last)
    return spec


def _calendar_period(kind: PeriodKind, today: date) -> tuple[date, date]:
    """First and last local day of a calendar period around `today`."""
    if kind == "this_week":
        return week_start(today), week_start(today) + timedelta(days=6)
    if kind == "last_week":
        first = week_start(today) - timedelta(days=7)
        return first, first + timedelta(days=6)
    if kind == "this_month":
        return month_start(today), add_months(month_start(today), 1) - timedelta(days=1)
    if kind == "last_month":
        first = add_months(month_start(today), -1)
        return first, month_start(today) - timedelta(days=1)
    if kind == "this_quarter":
        return quarter_start(today), add_months(quarter_start(today), 3) - timedelta(days=1)
    if kind == "last_quarter":
        first = add_months(quarter_start(today), -3)
        return first, quarter_start(today) - timedelta(days=1)
    if kind in ("this_year", "year_to_date"):
        return date(today.year, 1, 1), date(today.year, 12, 31)
    raise ValueError(f"{kind!r} is not a calendar period")


def _is_whole_days(time_range: TimeRange) -> bool:
    tz = zone(time_range.timezone)
    return all(moment.astimezone(tz).time() == time() for moment in (time_range.start, time_range.end))


def previous_period(time_range: TimeRange) -> TimeRange:
    """The equally long period just before: a month after a whole month, n days after n days.

    A range that ends mid-day is compared with the equally long stretch of time just before it. This is
    the rule for rolling and explicit ranges; calendar periods to date ("this month") need the PeriodSpec
    and go through comparison_range.
    """
    tz = time_range.timezone
    first, last = time_range.first_day, time_range.last_day
    if not _is_whole_days(time_range):
        length = time_range.end - time_range.start
        return TimeRange(time_range.start - length, time_range.start, _label_partial(time_range, -length), tz)
    if first == month_start(first) and last == add_months(month_start(last), 1) - timedelta(days=1):
        months = (last.year - first.year) * 12 + last.month - first.month + 1
        new_first = add_months(first, -months)
        return range_of_days(new_first, first - timedelta(days=1), tz)
    days = (last - first).days + 1
    return range_of_days(first - timedelta(days=days), first - timedelta(days=1), tz)


def same_period_last_year(time_range: TimeRange) -> TimeRange:
    """The same local dates a year earlier (29 Feb becomes 28 Feb); a partial last day stays partial."""
    tz = time_range.timezone
    first, last = _year_earlier(time_range.first_day), _year_earlier(time_range.last_day)
    if _is_whole_days(time_range):
        return range_of_days(first, last, tz)
    local_end = time_range.end.astimezone(zone(tz))
    end = datetime.combine(_year_earlier(local_end.date()), local_end.time(), zone(tz)).astimezone(UTC)
    return range_of_days(first, last, tz, end=end)


def _year_earlier(day: date) -> date:
    if (day.month, day.day) == (2, 29):
        return date(day.year - 1, 2, 28)
    return day.replace(year=day.year - 1)


Comparison = Literal["previous_period", "same_period_last_year"]
COMPARISONS: tuple[Comparison, ...] = get_args(Comparison)

#: Calendar periods that run up to now, by the calendar unit they are a part of.
_TO_DATE_UNIT: dict[PeriodKind, str] = {
    "today": "day",
    "this_week": "week",
    "this_month": "month",
    "this_quarter": "quarter",
    "this_year": "year",
    "year_to_date": "year",
}
#: Complete calendar periods, each compared with the whole period before it.
_WHOLE_UNIT: dict[PeriodKind, str] = {
    "yesterday": "day",
    "last_week": "week",
    "last_month": "month",
    "last_quarter": "quarter",
}
_UNIT_BEFORE = {"day": "yesterday", "week": "last week", "month": "last month", "quarter": "last quarter"}


def comparison_range(spec: PeriodSpec | None, time_range: TimeRange, comparison: Comparison) -> TimeRange:
    """The range `time_range` (resolved from `spec`, if known) is compared with.

    Calendar periods compare with calendar periods: this month so far with the same days and hours of
    last month (to its end if it is shorter), this week, quarter and today likewise, the year so far with
    the same dates last year. Complete periods and rolling ones ("last 7 days") compare with the equally
    long stretch just before; "same_period_last_year" is the same local dates a year earlier.
    """
    if comparison == "same_period_last_year":
        return same_period_last_year(time_range)
    unit = _TO_DATE_UNIT.get(spec.kind) if spec is not None else None
    if unit == "year":
        return same_period_last_year(time_range)
    if unit is not None:
        return _same_stretch_of_unit_before(time_range, unit)
    return previous_period(time_range)


def comparison_basis(spec: PeriodSpec | None, time_range: TimeRange, comparison: Comparison) -> str:
    """What the compared range is, in words that follow "vs": "the same days last month", "the 7 days before"."""
    if comparison == "same_period_last_year":
        return "the same dates last year"
    kind = spec.kind if spec is not None else None
    unit = _TO_DATE_UNIT.get(kind) if kind is not None else None
    if unit == "year":
        return "the same dates last year"
    if unit == "day":
        return "the same hours yesterday"
    if unit is not None:
        compared = _same_stretch_of_unit_before(time_range, unit)
        unit_before_end = local_midnight(_unit_start(time_range.first_day, unit), time_range.timezone)
        if compared.end == unit_before_end:
            return f"all of {_UNIT_BEFORE[unit]}"
        if unit == "quarter":
            return "as many days into last quarter"
        return f"the same days {_UNIT_BEFORE[unit]}"
    whole = _WHOLE_UNIT.get(kind) if kind is not None else None
    if whole is not None:
        return f"the {whole} before"
    return _rolling_basis(time_range)


def _rolling_basis(time_range: TimeRange) -> str:
    if not _is_whole_days(time_range):
        return "the same length of time just before"
    first, last = time_range.first_day, time_range.last_day
    if first == month_start(first) and last == add_months(month_start(last), 1) - timedelta(days=1):
        months = (last.year - first.year) * 12 + last.month - first.month + 1
        return "the month before" if months == 1 else f"the {months} months before"
    days = (last - first).days + 1
    return "the day before" if days == 1 else f"the {days} days before"


def _unit_start(day: date, unit: str) -> date:
    return {"day": day, "week": week_start(day), "month": month_start(day), "quarter": quarter_start(day)}[
        unit
    ]


def _unit_before(first: date, unit: str) -> date:
    """The first day of the calendar unit before the one that starts on `first`."""
    if unit == "day":
        return first - timedelta(days=1)
    if unit == "week":
        return first - timedelta(days=7)
    return add_months(first, -1 if unit == "month" else -3)


def _same_stretch_of_unit_before(time_range: TimeRange, unit: str) -> TimeRange:
    """The unit before, from its first day to as many local days and hours in as `time_range` has run.

    Counted on the local calendar (a 23-hour DST day is still one day) and cut at the unit's end when
    the unit before is shorter: the 31st of March so far is compared with all of February.
    """
    tz = time_range.timezone
    first = _unit_start(time_range.first_day, unit)
    earlier_first = _unit_before(first, unit)
    local_end = time_range.end.astimezone(zone(tz))
    days_in = (local_end.date() - first).days
    end_day = earlier_first + timedelta(days=days_in)
    end = datetime.combine(end_day, local_end.time(), zone(tz)).astimezone(UTC)
    end = min(end, local_midnight(first, tz))
    last_touched = (end - timedelta(microseconds=1)).astimezone(zone(tz)).date()
    return range_of_days(earlier_first, last_touched, tz, end=end)


def _label_partial(time_range: TimeRange, shift: timedelta) -> str:
    tz = zone(time_range.timezone)
    first = (time_range.start + shift).astimezone(tz).date()
    last = (time_range.end + shift - timedelta(microseconds=1)).astimezone(tz).date()
    return format_day_range(first, last)


def bucket_floor(moment: datetime, grain: Grain, tz: str) -> datetime:
    """The UTC start of the `grain` bucket (in local time) that contains `moment`."""
    local = moment.astimezone(zone(tz))
    if grain == "hour":
        # Hours are cut in UTC so the two 02:00 hours of an autumn night stay apart.
        utc = moment.astimezone(UTC)
        return utc.replace(minute=0, second=0, microsecond=0)
    day = local.date()
    first = {
        "day": day,
        "week": week_start(day),
        "month": month_start(day),
        "quarter": quarter_start(day),
    }[grain]
    return local_midnight(first, tz)


def next_bucket(start: datetime, grain: Grain, tz: str) -> datetime:
    """The start of the bucket after the one starting at `start`."""
    if grain == "hour":
        return start + timedelta(hours=1)
    day = start.astimezone(zone(tz)).date()
    following = {
        "day": lambda: day + timedelta(days=1),
        "week": lambda: day + timedelta(days=7),
        "month": lambda: add_months(day, 1),
        "quarter": lambda: add_months(day, 3),
    }[grain]()
    return local_midnight(following, tz)


def partial_buckets(time_range: TimeRange, grain: Grain) -> str:
    """Which of the range's `grain` buckets hold only part of theirs, in words ("partial first and final
    weeks"), or "" when both ends fall on bucket boundaries. A week that starts before the range, or a
    month still running, holds fewer days than the others: a chart that does not say so reads as a drop."""
    tz = time_range.timezone
    starts = bucket_starts(time_range, grain, tz)
    if not starts or grain == "hour":
        return ""
    first = starts[0] < time_range.start
    last = next_bucket(starts[-1], grain, tz) > time_range.end
    if first and last:
        return f"partial first and final {grain}s" if len(starts) > 1 else f"one partial {grain}"
    if first:
        return f"partial first {grain}"
    if last:
        return f"partial final {grain}"
    return ""


def bucket_starts(time_range: TimeRange, grain: Grain, tz: str) -> list[datetime]:
    """UTC starts of every `grain` bucket that overlaps the range, first one floored to its bucket."""
    if grain not in GRAINS:
        raise ValueError(f"unknown grain {grain!r}; allowed: {', '.join(GRAINS)}")
    starts: list[datetime] = []
    current = bucket_floor(time_range.start, grain, tz)
    while current < time_range.end:
        starts.append(current)
        current = next_bucket(current, grain, tz)
    return starts
