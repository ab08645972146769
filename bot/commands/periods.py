"""Reading the periods people type ("last 30 days", "in November", "1-30 Nov") into a reports PeriodSpec.

Only phrases are read here; the report layer turns a PeriodSpec into a UTC range in the business zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from reports.periods import MAX_PERIOD_DAYS, PeriodSpec, add_months, month_start, quarter_start, week_start

Comparison = Literal["previous_period", "same_period_last_year"]

MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
_MONTH = "(" + "|".join(sorted(MONTHS, key=len, reverse=True)) + ")"
_DASH = r"\s*(?:-|–|—|\.\.|to|until|till|through|thru)\s*"
_N_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "ten": 10,
    "twelve": 12,
}
_NUMBER = r"(\d{1,4}|" + "|".join(_N_WORDS) + ")"

NAMED: dict[str, str] = {
    "today": "today",
    "yesterday": "yesterday",
    "this week": "this_week",
    "last week": "last_week",
    "previous week": "last_week",
    "this month": "this_month",
    "last month": "last_month",
    "previous month": "last_month",
    "this quarter": "this_quarter",
    "last quarter": "last_quarter",
    "previous quarter": "last_quarter",
    "this year": "this_year",
    "year to date": "year_to_date",
    "ytd": "year_to_date",
}
_NAMED_PATTERN = re.compile(
    r"\b(" + "|".join(sorted((re.escape(k) for k in NAMED), key=len, reverse=True)) + r")\b"
)
_LAST_N = re.compile(rf"\b(?:last|past|previous)\s+{_NUMBER}\s+(day|week|month)s?\b")
_LAST_YEAR = re.compile(r"\b(?:last|previous)\s+year\b")
_ISO_RANGE = re.compile(rf"\b(\d{{4}}-\d{{2}}-\d{{2}}){_DASH}(\d{{4}}-\d{{2}}-\d{{2}})\b")
_DAY_RANGE_SAME_MONTH = re.compile(rf"\b(\d{{1,2}}){_DASH}(\d{{1,2}})\s+{_MONTH}\b(?:\s+(\d{{4}}))?")
_DAY_RANGE_TWO_MONTHS = re.compile(
    rf"\b(\d{{1,2}})\s+{_MONTH}(?:\s+(\d{{4}}))?{_DASH}(\d{{1,2}})\s+{_MONTH}\b(?:\s+(\d{{4}}))?"
)
_ORD = r"(?:st|nd|rd|th)?"
_BETWEEN_DAYS = re.compile(
    rf"\bbetween\s+(?:the\s+)?(\d{{1,2}}){_ORD}(?:\s+{_MONTH})?\s+and\s+(?:the\s+)?(\d{{1,2}}){_ORD}"
    rf"(?:\s+(?:of\s+)?{_MONTH}\b)?(?:\s+(\d{{4}}))?"
)
_FROM_THE = re.compile(
    rf"\b(?:from\s+(?:the\s+)?|the\s+)(\d{{1,2}}){_ORD}{_DASH}(?:the\s+)?(\d{{1,2}}){_ORD}"
    rf"(?:\s+(?:of\s+)?{_MONTH}\b)?(?:\s+(\d{{4}}))?"
)
_MONTH_FIRST = re.compile(
    rf"\b{_MONTH}\s+(\d{{1,2}}){_ORD}{_DASH}(?:{_MONTH}\s+)?(\d{{1,2}}){_ORD}\b(?:,?\s+(\d{{4}}))?"
)
_SINCE = re.compile(
    rf"\bsince\s+(?:(?:the\s+)?(\d{{1,2}}){_ORD}\s+(?:of\s+)?{_MONTH}|{_MONTH}(?:\s+(\d{{1,2}}){_ORD})?)\b"
    rf"(?:\s+(\d{{4}}))?"
)
_QUARTER = re.compile(r"\bq([1-4])(?:\s*(?:of\s+)?(\d{4})|\s*'(\d{2})|\s+(\d{2})\b)?\b")
_ORDINAL_QUARTER = re.compile(
    r"\b(first|second|third|fourth|1st|2nd|3rd|4th)\s+quarter(?:\s+(?:of\s+)?(\d{4}))?\b"
)
_QUARTER_WORDS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "1st": 1, "2nd": 2, "3rd": 3, "4th": 4}
_WEEKEND = re.compile(r"\b(?:over\s+the|on\s+the|the\s+last|last|this\s+past|past|the)\s+weekend\b")
_WEEK_BEFORE_LAST = re.compile(r"\b(?:the\s+)?week\s+before\s+last\b")
_DAY_BEFORE_YESTERDAY = re.compile(r"\b(?:the\s+)?day\s+before\s+yesterday\b")
_NEXT = re.compile(
    rf"\b(?:next|coming|upcoming)\s+(?:{_NUMBER}\s+)?(day|week|month|quarter)s?\b|\btomorrow\b"
)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAY = re.compile(
    r"\b(since\s+|on\s+|last\s+|this\s+past\s+|past\s+)?(?:the\s+)?("
    + "|".join(WEEKDAYS)
    + r"|mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)\b"
)
_WEEKDAY_SHORT = {name[:3]: name for name in WEEKDAYS} | {
    "tues": "tuesday",
    "thur": "thursday",
    "thurs": "thursday",
}
_SINCE_ISO = re.compile(r"\bsince\s+(\d{4}-\d{2}-\d{2})\b")
_SINCE_DAY = re.compile(rf"\bsince\s+the\s+(\d{{1,2}}){_ORD}(?!\s*(?:of\s+)?{_MONTH})\b")
_ISO_WEEK = re.compile(r"\bweek\s+(\d{1,2})(?:\s+(?:of\s+)?(\d{4}))?\b")
_HALF = re.compile(r"\bh([12])(?:\s+(\d{4}))?\b")
_YEAR = re.compile(r"\b(?:in|for|during|of|im\s+jahr|year)?\s*((?:19|20)\d{2})\b")
_IN_MONTH = re.compile(rf"\b(?:in|during|for)?\s*{_MONTH}\b(?:\s+(\d{{4}}))?")
_COMPARISON = re.compile(
    r"\b(?:vs\.?|versus|compared\s+(?:to|with)|against)\s+"
    r"(same\s+period\s+last\s+year|last\s+year|previous\s+year|a\s+year\s+ago|"
    r"previous(?:\s+period)?|prior(?:\s+period)?|last\s+\w+|the\s+\w+\s+before|before|last(?!\s*\w))"
)
GRAIN_WORDS = {
    "hourly": "hour",
    "daily": "day",
    "weekly": "week",
    "monthly": "month",
    "quarterly": "quarter",
    "by hour": "hour",
    "per hour": "hour",
    "hour by hour": "hour",
    "day by day": "day",
    "per quarter": "quarter",
    "each day": "day",
    "each week": "week",
    "each month": "month",
    "for each day": "day",
    "for each month": "month",
    "by day": "day",
    "per day": "day",
    "by week": "week",
    "per week": "week",
    "by month": "month",
    "per month": "month",
    "by quarter": "quarter",
}
_GRAIN = re.compile(r"\b(" + "|".join(sorted(GRAIN_WORDS, key=len, reverse=True)) + r")\b")


@dataclass(frozen=True)
class Found:
    """A phrase read out of a question, with where it was so the rest can be read without it."""

    value: object
    start: int
    end: int


#: What a phrase that has been read is replaced with: positions stay put, and no later phrase can be read
#: across it ("the" + a cut clinic name + "us" is not "the us").
CUT = "\x00"


def cut(text: str, found: Found | None) -> str:
    """`text` with the found phrase blanked (positions of the rest stay put)."""
    if found is None:
        return text
    return text[: found.start] + CUT * (found.end - found.start) + text[found.end :]


def find_comparison(text: str) -> Found | None:
    """ "vs last year" compares with the same dates a year before; any other "vs ..." with the period before."""
    match = _COMPARISON.search(text)
    if match is None:
        return None
    phrase = match.group(1)
    comparison: Comparison = "same_period_last_year" if "year" in phrase else "previous_period"
    return Found(comparison, match.start(), match.end())


def find_grain(text: str) -> Found | None:
    match = _GRAIN.search(text)
    return None if match is None else Found(GRAIN_WORDS[match.group(1)], match.start(), match.end())


def find_period(text: str, today: date) -> Found | None:
    """The earliest period phrase in lower-cased `text` (the longest at one place), as a PeriodSpec."""
    best: Found | None = None
    for reader in _READERS:
        found = reader(text, today)
        if found is not None and (best is None or (found.start, best.end - found.end) < (best.start, 0)):
            best = found
    return best


def _number(word: str) -> int:
    return _N_WORDS[word] if word in _N_WORDS else int(word)


def _between(first: date, last: date) -> PeriodSpec:
    if last < first:
        raise ValueError(
            f"the period ends ({last.day} {last:%b %Y}) before it starts ({first.day} {first:%b %Y})"
        )
    return PeriodSpec.between(first, last)


def _iso_range(text: str, today: date) -> Found | None:
    match = _ISO_RANGE.search(text)
    if match is None:
        return None
    first, last = date.fromisoformat(match.group(1)), date.fromisoformat(match.group(2))
    return Found(_between(first, last), match.start(), match.end())


def _year_for(month: int, day: int, given: str | None, today: date) -> int:
    """A date without a year is the latest such date not after today (people ask about the past)."""
    if given:
        return int(given)
    return today.year if (month, day) <= (today.month, today.day) else today.year - 1


def _two_month_range(text: str, today: date) -> Found | None:
    match = _DAY_RANGE_TWO_MONTHS.search(text)
    if match is None:
        return None
    day1, month1, year1, day2, month2, year2 = match.groups()
    m1, m2 = MONTHS[month1], MONTHS[month2]
    end_year = _year_for(m2, int(day2), year2, today)
    start_year = int(year1) if year1 else (end_year if (m1, int(day1)) <= (m2, int(day2)) else end_year - 1)
    first, last = date(start_year, m1, int(day1)), date(end_year, m2, int(day2))
    return Found(_between(first, last), match.start(), match.end())


def _same_month_range(text: str, today: date) -> Found | None:
    match = _DAY_RANGE_SAME_MONTH.search(text)
    if match is None:
        return None
    day1, day2, month_name, year = match.groups()
    month = MONTHS[month_name]
    end_year = _year_for(month, int(day1), year, today)
    first, last = date(end_year, month, int(day1)), date(end_year, month, int(day2))
    return Found(_between(first, last), match.start(), match.end())


def _last_n(text: str, today: date) -> Found | None:
    match = _LAST_N.search(text)
    if match is None:
        return None
    n, unit = _number(match.group(1)), match.group(2)
    if n < 1:
        raise ValueError("a period needs at least one day")
    if unit == "day":
        days = n
    elif unit == "week":
        # "last 2 weeks" are the two whole weeks (Monday to Sunday) before this one, as "last week" is one.
        monday = week_start(today)
        return Found(
            _between(monday - timedelta(days=7 * n), monday - timedelta(days=1)), match.start(), match.end()
        )
    else:
        # "last 3 months" are the three whole calendar months before this one, as "last month" is one.
        start = add_months(month_start(today), -n)
        return Found(_between(start, month_start(today) - timedelta(days=1)), match.start(), match.end())
    if days > MAX_PERIOD_DAYS:
        raise ValueError(f"a period is at most {MAX_PERIOD_DAYS} days")
    return Found(PeriodSpec.last_n_days(days), match.start(), match.end())


def _last_year(text: str, today: date) -> Found | None:
    match = _LAST_YEAR.search(text)
    if match is None:
        return None
    spec = _between(date(today.year - 1, 1, 1), date(today.year - 1, 12, 31))
    return Found(spec, match.start(), match.end())


def _named(text: str, today: date) -> Found | None:
    match = _NAMED_PATTERN.search(text)
    if match is None:
        return None
    return Found(PeriodSpec(NAMED[match.group(1)]), match.start(), match.end())  # type: ignore[arg-type]


def _in_month(text: str, today: date) -> Found | None:
    for match in _IN_MONTH.finditer(text):
        name, year = match.group(1), match.group(2)
        # "may" is also a verb; only read it as a month with "in" before it or a year after it.
        if name == "may" and not (match.group(0).strip().startswith("in") or year):
            continue
        month = MONTHS[name]
        the_year = _year_for(month, 1, year, today)
        first = date(the_year, month, 1)
        last = min(add_months(first, 1) - timedelta(days=1), today if first <= today else first)
        return Found(_between(first, last), match.start(), match.end())
    return None


def _day_in(month: int | None, day: int, year: str | None, today: date, *, ends: bool) -> date:
    """A day of `month` (this month, or the last one when the day is still to come) in the latest past year."""
    if month is None:
        base = today if day <= today.day or not ends else add_months(month_start(today), -1)
        month = base.month
        return date(base.year, month, day)
    return date(_year_for(month, day, year, today), month, day)


def _day_range(
    match: re.Match[str],
    day1: str,
    month1: str | None,
    day2: str,
    month2: str | None,
    year: str | None,
    today: date,
) -> Found:
    m2 = MONTHS[month2] if month2 else (MONTHS[month1] if month1 else None)
    m1 = MONTHS[month1] if month1 else m2
    last = _day_in(m2, int(day2), year, today, ends=True)
    first_year = last.year if m1 is None or (m1, int(day1)) <= (last.month, int(day2)) else last.year - 1
    first = date(first_year, m1 or last.month, int(day1))
    return Found(_between(first, last), match.start(), match.end())


def _between_days(text: str, today: date) -> Found | None:
    match = _BETWEEN_DAYS.search(text)
    if match is None:
        return None
    day1, month1, day2, month2, year = match.groups()
    return _day_range(match, day1, month1, day2, month2, year, today)


def _from_the(text: str, today: date) -> Found | None:
    match = _FROM_THE.search(text)
    if match is None:
        return None
    day1, day2, month, year = match.groups()
    return _day_range(match, day1, None, day2, month, year, today)


def _month_first(text: str, today: date) -> Found | None:
    match = _MONTH_FIRST.search(text)
    if match is None:
        return None
    month1, day1, month2, day2, year = match.groups()
    return _day_range(match, day1, month1, day2, month2 or month1, year, today)


def _since(text: str, today: date) -> Found | None:
    iso = _SINCE_ISO.search(text)
    if iso is not None:  # "since 2026-11-20", as a campaign's buttons write it
        try:
            first = date.fromisoformat(iso.group(1))
        except ValueError:
            return None
        return Found(_between(first, today), iso.start(), iso.end()) if first <= today else None
    match = _SINCE.search(text)
    if match is None:
        return None
    day_first, month_a, month_b, day_after, year = match.groups()
    month = MONTHS[month_a or month_b]
    day = int(day_first or day_after or 1)
    first = date(_year_for(month, day, year, today), month, day)
    return Found(_between(first, today), match.start(), match.end())


def _up_to_today(first: date, last: date, today: date) -> PeriodSpec:
    """A calendar unit that has begun runs up to today; one still to come is whole."""
    return _between(first, min(last, today) if first <= today else last)


def _quarter_of(number: int, year: int | None, today: date) -> PeriodSpec:
    if year is None:
        year = today.year if date(today.year, 3 * number - 2, 1) <= today else today.year - 1
    first = date(year, 3 * number - 2, 1)
    return _up_to_today(first, add_months(first, 3) - timedelta(days=1), today)


def _quarter(text: str, today: date) -> Found | None:
    match = _QUARTER.search(text)
    if match is not None:
        number, full, short, bare = match.groups()
        year = int(full) if full else 2000 + int(short or bare) if (short or bare) else None
        return Found(_quarter_of(int(number), year, today), match.start(), match.end())
    match = _ORDINAL_QUARTER.search(text)
    if match is not None:
        year = int(match.group(2)) if match.group(2) else None
        return Found(_quarter_of(_QUARTER_WORDS[match.group(1)], year, today), match.start(), match.end())
    return None


def _weekend(text: str, today: date) -> Found | None:
    match = _WEEKEND.search(text)
    if match is None:
        return None
    sunday = today - timedelta(days=today.weekday() + 1)  # the last Sunday before today
    return Found(_between(sunday - timedelta(days=1), sunday), match.start(), match.end())


def _week_before_last(text: str, today: date) -> Found | None:
    match = _WEEK_BEFORE_LAST.search(text)
    if match is None:
        return None
    monday = today - timedelta(days=today.weekday() + 14)
    return Found(_between(monday, monday + timedelta(days=6)), match.start(), match.end())


def _day_before_yesterday(text: str, today: date) -> Found | None:
    match = _DAY_BEFORE_YESTERDAY.search(text)
    if match is None:
        return None
    day = today - timedelta(days=2)
    return Found(_between(day, day), match.start(), match.end())


def _next(text: str, today: date) -> Found | None:
    """Periods still to come: "next week", "tomorrow", "next 14 days"; only some metrics can have them."""
    match = _NEXT.search(text)
    if match is None:
        return None
    if match.group(0) == "tomorrow":
        day = today + timedelta(days=1)
        return Found(_between(day, day), match.start(), match.end())
    n = _number(match.group(1)) if match.group(1) else None
    unit = match.group(2)
    if unit == "day":
        first, last = today + timedelta(days=1), today + timedelta(days=n or 1)
    elif unit == "week":
        first = week_start(today) + timedelta(days=7)
        last = first + timedelta(days=7 * (n or 1) - 1)
    elif unit == "month":
        first = add_months(month_start(today), 1)
        last = add_months(first, n or 1) - timedelta(days=1)
    else:
        first = add_months(quarter_start(today), 3)
        last = add_months(first, 3 * (n or 1)) - timedelta(days=1)
    return Found(_between(first, last), match.start(), match.end())


def _weekday(text: str, today: date) -> Found | None:
    """ "on monday", "last friday", "since tuesday": the latest such day up to today ("last": before today)."""
    match = _WEEKDAY.search(text)
    if match is None:
        return None
    lead, name = (match.group(1) or "").strip(), match.group(2)
    # Short forms are common words too ("sat", "sun", "wed"): only with a word that makes them a day.
    if name not in WEEKDAYS and not lead:
        return None
    wanted = WEEKDAYS.index(_WEEKDAY_SHORT.get(name, name))
    back = (today.weekday() - wanted) % 7
    if lead in ("last", "past", "this past") and back == 0:
        back = 7
    day = today - timedelta(days=back)
    spec = _between(day, today) if lead == "since" else _between(day, day)
    return Found(spec, match.start(), match.end())


def _since_day(text: str, today: date) -> Found | None:
    match = _SINCE_DAY.search(text)
    if match is None:
        return None
    day = int(match.group(1))
    first = _day_in(None, day, None, today, ends=True)
    return Found(_between(first, today), match.start(), match.end())


def _iso_week(text: str, today: date) -> Found | None:
    match = _ISO_WEEK.search(text)
    if match is None:
        return None
    number = int(match.group(1))
    year = int(match.group(2)) if match.group(2) else today.year
    try:
        monday = date.fromisocalendar(year, number, 1)
    except ValueError:
        raise ValueError(f"{year} has no week {number}") from None
    if match.group(2) is None and monday > today:
        monday = date.fromisocalendar(year - 1, number, 1)
    return Found(_up_to_today(monday, monday + timedelta(days=6), today), match.start(), match.end())


def _half(text: str, today: date) -> Found | None:
    match = _HALF.search(text)
    if match is None:
        return None
    half = int(match.group(1))
    year = int(match.group(2)) if match.group(2) else today.year
    first = date(year, 1 if half == 1 else 7, 1)
    if match.group(2) is None and first > today:
        first = first.replace(year=year - 1)
    return Found(
        _up_to_today(first, add_months(first, 6) - timedelta(days=1), today), match.start(), match.end()
    )


def _year(text: str, today: date) -> Found | None:
    match = _YEAR.search(text)
    if match is None:
        return None
    year = int(match.group(1))
    if year > today.year or year < today.year - 20:
        return None
    first = date(year, 1, 1)
    return Found(
        _between(first, min(date(year, 12, 31), today)),
        match.start() + len(match.group(0)) - len(match.group(0).lstrip()),
        match.end(),
    )


_READERS = (
    _iso_range,
    _two_month_range,
    _same_month_range,
    _between_days,
    _from_the,
    _month_first,
    _since,
    _quarter,
    _weekend,
    _week_before_last,
    _day_before_yesterday,
    _next,
    _weekday,
    _since_day,
    _iso_week,
    _half,
    _year,
    _last_n,
    _last_year,
    _named,
    _in_month,
)


def period_phrase(spec: PeriodSpec) -> str:
    """The words that read back as `spec`, for buttons that re-run a question with one thing changed."""
    if spec.kind == "last_n_days":
        return f"last {spec.n} days"
    if spec.kind == "between":
        assert spec.start_date is not None and spec.end_date is not None
        return f"{spec.start_date.isoformat()} to {spec.end_date.isoformat()}"
    return spec.kind.replace("_", " ")
