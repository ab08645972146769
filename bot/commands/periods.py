"""Reading the periods people type ("last 30 days", "in November", "1-30 Nov") into a reports PeriodSpec.

Only phrases are read here; the report layer turns a PeriodSpec into a UTC range in the business zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from reports.periods import MAX_PERIOD_DAYS, PeriodSpec, add_months, month_start

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
_DASH = r"\s*(?:-|–|—|to|until|till)\s*"
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
_IN_MONTH = re.compile(rf"\b(?:in|during|for)?\s*{_MONTH}\b(?:\s+(\d{{4}}))?")
_COMPARISON = re.compile(
    r"\b(?:vs\.?|versus|compared\s+(?:to|with)|against)\s+"
    r"(same\s+period\s+last\s+year|last\s+year|previous\s+year|a\s+year\s+ago|"
    r"previous(?:\s+period)?|prior(?:\s+period)?|last\s+\w+|the\s+\w+\s+before|before)"
)
GRAIN_WORDS = {
    "hourly": "hour",
    "daily": "day",
    "weekly": "week",
    "monthly": "month",
    "quarterly": "quarter",
    "by hour": "hour",
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


def cut(text: str, found: Found | None) -> str:
    """`text` with the found phrase blanked (positions of the rest stay put)."""
    if found is None:
        return text
    return text[: found.start] + " " * (found.end - found.start) + text[found.end :]


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
    """The first period phrase in lower-cased `text`, as a PeriodSpec; None when there is none."""
    for reader in (_iso_range, _two_month_range, _same_month_range, _last_n, _last_year, _named, _in_month):
        found = reader(text, today)
        if found is not None:
            return found
    return None


def _number(word: str) -> int:
    return _N_WORDS[word] if word in _N_WORDS else int(word)


def _between(first: date, last: date) -> PeriodSpec:
    if last < first:
        raise ValueError(f"the period ends ({last:%d %b %Y}) before it starts ({first:%d %b %Y})")
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
        days = 7 * n
    else:
        # "last 3 months" is read as the trailing calendar months up to yesterday, like the days form.
        first = today - timedelta(days=1)
        start = add_months(month_start(today), -n).replace(day=min(today.day, 28))
        return Found(_between(start, first), match.start(), match.end())
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


def period_phrase(spec: PeriodSpec) -> str:
    """The words that read back as `spec`, for buttons that re-run a question with one thing changed."""
    if spec.kind == "last_n_days":
        return f"last {spec.n} days"
    if spec.kind == "between":
        assert spec.start_date is not None and spec.end_date is not None
        return f"{spec.start_date.isoformat()} to {spec.end_date.isoformat()}"
    return spec.kind.replace("_", " ")
