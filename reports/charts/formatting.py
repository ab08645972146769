"""Locale-aware number, money, percent, duration and date text for charts, tables and bot replies."""

from __future__ import annotations

import copy
import functools
import zoneinfo
from datetime import date, datetime
from typing import Literal

from babel import Locale
from babel.dates import format_skeleton, format_time
from babel.numbers import (
    NumberPattern,
    format_compact_currency,
    format_compact_decimal,
    format_currency,
    format_decimal,
)

from reports.charts.spec import Unit

DateGranularity = Literal["hour", "day", "month", "month_year", "year"]

MISSING_VALUE = "–"  # en dash: a gap in the data must not read as zero

_DATE_SKELETONS: dict[DateGranularity, str] = {
    "hour": "Hm",
    "day": "MMMd",
    "month": "MMM",
    "month_year": "yMMM",
    "year": "y",
}


def format_value(value: float | None, unit: Unit, *, locale: str, currency: str | None = None) -> str:
    """Full-precision text for tables, tiles and tooltips: 1234.5 USD en_US -> "$1,234.50"."""
    if value is None:
        return MISSING_VALUE
    if unit == "currency":
        return str(format_currency(value, _require_currency(currency), locale=locale))
    if unit == "percent":
        # Under 1 % a second decimal: an opt-out rate of 0.43 % is not "0.4%", and 0.04 % is not "0.0%"; what
        # rounds to 1.0 % keeps one ("1.0%", not "1.00%"), and what is not 0 never reads 0 ("<0.01%").
        if 0 < abs(value) < 0.00005:
            least = _percent_pattern(locale, min_fraction=2, max_fraction=2).apply(0.0001, locale)
            return f"<{least}" if value > 0 else f"-<{least}"
        digits = 2 if value != 0 and abs(round(value * 100, 1)) < 1 else 1
        return str(_percent_pattern(locale, min_fraction=digits, max_fraction=digits).apply(value, locale))
    if unit == "count":
        return str(format_decimal(round(value), locale=locale))
    if unit == "duration":
        return format_duration(value)
    # Two decimals at most: a 1–5 score averaged reads "4.39", not "4.388".
    return str(format_decimal(value, format="#,##0.##", locale=locale))


def format_axis_value(value: float, unit: Unit, *, locale: str, currency: str | None = None) -> str:
    """Short tick text: "$1.2K", "12%", "3.4K", "2m 30s", "1h"."""
    return _compact_text(value, unit, locale, currency)


# Cached because the same ticks come back on every render and Babel takes ~0.1 ms per number.
@functools.lru_cache(maxsize=4096)
def _compact_text(value: float, unit: Unit, locale: str, currency: str | None) -> str:
    if unit == "percent":
        return str(_percent_pattern(locale, min_fraction=0, max_fraction=1).apply(value, locale))
    if unit == "duration":
        # A tick on the hour or minute says no zero part: "30m", "1h", "1h 30m".
        text = format_duration(value)
        return text.removesuffix(" 00s").removesuffix(" 00m").removesuffix(" 00h")
    # Babel's compact forms keep every digit below a thousand ("€556.4999999999" for a sum of parts): keep
    # one decimal, or two significant digits for a figure under 1.
    value = round(value, 1) if abs(value) >= 1 else float(f"{value:.2g}")
    if not _locale_abbreviates(locale, value):
        # German has no short form for thousands; CLDR's fallback then drops grouping ("10000 €"),
        # which reads worse than the ordinary grouped number ("10.000 €").
        pattern = _grouped_pattern(locale, money=unit == "currency")
        return str(pattern.apply(value, locale, currency=currency, currency_digits=False))
    if unit == "currency":
        return str(
            format_compact_currency(value, _require_currency(currency), locale=locale, fraction_digits=1)
        )
    return str(format_compact_decimal(value, locale=locale, fraction_digits=1))


def format_change(change_ratio: float, *, locale: str) -> str:
    """A signed change for KPI tiles: 0.123 -> "+12.3%", -0.05 -> "−5.0%" (true minus sign)."""
    magnitude = str(_percent_pattern(locale, min_fraction=1, max_fraction=1).apply(abs(change_ratio), locale))
    if change_ratio > 0:
        return f"+{magnitude}"
    if change_ratio < 0:
        return f"−{magnitude}"
    return magnitude


def points_moved(value: float, previous: float) -> float:
    """How far a rate moved, in percentage points to one decimal (0.0: no move worth saying)."""
    return round((value - previous) * 100, 1)


def score_moved(value: float, previous: float) -> float:
    """How far a score (1–5) moved in its own units, as the two figures read (two decimals)."""
    return round(float(f"{value:.2f}") - float(f"{previous:.2f}"), 2)


def format_score_change(value: float, previous: float, *, locale: str) -> str:
    """A score's change in its own units, signed: 4.1 from 3.9 -> "+0.20", never "+5.0%"."""
    moved = score_moved(value, previous)
    magnitude = format_decimal(abs(moved), format="#,##0.00", locale=locale)
    return f"{'+' if moved > 0 else '−' if moved < 0 else ''}{magnitude}"


def format_points(difference: float, *, locale: str) -> str:
    """A rate's change in percentage points, signed: 0.038 -> "+3.8 pts", -0.005 -> "−0.5 pts"; a rate
    moves by points, so a tile never says "+337.5%" of a percentage."""
    points = points_moved(difference, 0.0)
    magnitude = format_decimal(abs(points), format="#,##0.0", locale=locale)
    sign = "+" if points > 0 else "−" if points < 0 else ""
    return f"{sign}{magnitude} pts"


def format_duration(seconds: float) -> str:
    """Seconds as the two most significant parts: 45 -> "45s", 252 -> "4m 12s", 3900 -> "1h 05m"."""
    sign = "-" if seconds < 0 else ""
    total = round(abs(seconds))
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        text = f"{days}d {hours:02d}h"
    elif hours:
        text = f"{hours}h {minutes:02d}m"
    elif minutes:
        text = f"{minutes}m {secs:02d}s"
    else:
        text = f"{secs}s"
    return sign + text


def format_date_label(moment: date | datetime, *, locale: str, granularity: DateGranularity = "day") -> str:
    """An axis date in the locale's own order and month names: en_US "Nov 24", de_DE "24. Nov."."""
    return format_skeleton(_DATE_SKELETONS[granularity], moment, locale=locale)


def format_datetime_stamp(moment: datetime, *, timezone: str, locale: str) -> str:
    """The freshness stamp, in the reader's zone and named so: "24 Nov 2026, 14:05 Europe/Berlin"."""
    local = moment.astimezone(zoneinfo.ZoneInfo(timezone))
    day = format_skeleton("yMMMd", local, locale=locale)
    clock = format_time(local, "short", locale=locale)
    joined = str(Locale.parse(locale).datetime_formats["medium"]).format(clock, day)
    return f"{joined} {timezone}"


def _require_currency(currency: str | None) -> str:
    if currency is None:
        raise ValueError("a currency value needs a currency code")
    return currency


def _locale_abbreviates(locale: str, value: float) -> bool:
    magnitude = 10 ** (len(str(int(abs(value)))) - 1)
    if magnitude < 1000:
        return True  # below a thousand the compact form is the plain number anyway
    short_forms = Locale.parse(locale).compact_decimal_formats["short"]["other"]
    largest = max(int(key) for key in short_forms)
    pattern = short_forms.get(str(min(magnitude, largest)))
    return pattern is not None and pattern.pattern.strip("0") != ""


@functools.lru_cache(maxsize=64)
def _grouped_pattern(locale: str, *, money: bool) -> NumberPattern:
    parsed = Locale.parse(locale)
    source = parsed.currency_formats["standard"] if money else parsed.decimal_formats[None]
    pattern: NumberPattern = copy.copy(source)
    pattern.frac_prec = (0, 1)
    return pattern


@functools.lru_cache(maxsize=64)
def _percent_pattern(locale: str, *, min_fraction: int, max_fraction: int) -> NumberPattern:
    # The locale's own percent pattern keeps its spacing (fr_FR "12,3 %"); only the decimals change.
    pattern: NumberPattern = copy.copy(Locale.parse(locale).percent_formats[None])
    pattern.frac_prec = (min_fraction, max_fraction)
    return pattern
