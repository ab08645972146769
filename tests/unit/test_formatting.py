"""Locale-aware chart text: money, percents, compact axis ticks, durations, dates and the freshness stamp."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from reports.charts.formatting import (
    MISSING_VALUE,
    format_axis_value,
    format_change,
    format_date_label,
    format_datetime_stamp,
    format_duration,
    format_value,
)
from reports.charts.spec import Unit

NBSP = "\xa0"
NARROW_NBSP = "\u202f"


@pytest.mark.parametrize(
    ("locale", "currency", "expected"),
    [
        ("en_US", "USD", "$1,234.50"),
        ("de_DE", "EUR", f"1.234,50{NBSP}€"),
        ("fr_FR", "EUR", f"1{NARROW_NBSP}234,50{NBSP}€"),
    ],
)
def test_currency_values_arrive_in_major_units_and_follow_the_locale(
    locale: str, currency: str, expected: str
) -> None:
    assert format_value(1234.5, "currency", locale=locale, currency=currency) == expected


@pytest.mark.parametrize(
    ("locale", "expected"), [("en_US", "12.3%"), ("de_DE", f"12,3{NBSP}%"), ("fr_FR", f"12,3{NBSP}%")]
)
def test_percent_values_are_ratios(locale: str, expected: str) -> None:
    assert format_value(0.123, "percent", locale=locale) == expected


@pytest.mark.parametrize(("locale", "expected"), [("en_US", "1,234"), ("de_DE", "1.234")])
def test_counts_are_whole_numbers_with_grouping(locale: str, expected: str) -> None:
    assert format_value(1234.4, "count", locale=locale) == expected


def test_plain_numbers_keep_decimals() -> None:
    assert format_value(1234.5, "number", locale="en_US") == "1,234.5"
    assert format_value(1234.5, "number", locale="de_DE") == "1.234,5"


def test_a_gap_is_shown_as_a_dash_not_zero() -> None:
    assert format_value(None, "currency", locale="en_US", currency="USD") == MISSING_VALUE


def test_currency_without_a_code_is_refused() -> None:
    with pytest.raises(ValueError, match="currency code"):
        format_value(10.0, "currency", locale="en_US")


@pytest.mark.parametrize(
    ("value", "unit", "locale", "currency", "expected"),
    [
        (1234.5, "currency", "en_US", "USD", "$1.2K"),
        (1_200_000.0, "currency", "en_US", "USD", "$1.2M"),
        (0.0, "currency", "en_US", "USD", "$0"),
        (1_200_000.0, "currency", "de_DE", "EUR", f"1,2{NBSP}Mio.{NBSP}€"),
        (10_000.0, "currency", "de_DE", "EUR", f"10.000{NBSP}€"),
        (2_500.0, "count", "de_DE", None, "2.500"),
        (12.5, "currency", "de_DE", "EUR", f"12,5{NBSP}€"),
        (12_000.0, "currency", "fr_FR", "EUR", f"12{NBSP}k{NBSP}€"),
        (0.12, "percent", "en_US", None, "12%"),
        (0.125, "percent", "en_US", None, "12.5%"),
        (3400.0, "count", "en_US", None, "3.4K"),
        (3400.0, "number", "fr_FR", None, f"3,4{NBSP}k"),
        (150.0, "duration", "en_US", None, "2m 30s"),
    ],
)
def test_axis_values_are_compact(
    value: float, unit: Unit, locale: str, currency: str | None, expected: str
) -> None:
    assert format_axis_value(value, unit, locale=locale, currency=currency) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "0s"),
        (45, "45s"),
        (150, "2m 30s"),
        (252, "4m 12s"),
        (3900, "1h 05m"),
        (200_000, "2d 07h"),
        (-65, "-1m 05s"),
    ],
)
def test_durations_show_the_two_largest_parts(seconds: float, expected: str) -> None:
    assert format_duration(seconds) == expected


def test_changes_are_signed_with_a_true_minus() -> None:
    assert format_change(0.123, locale="en_US") == "+12.3%"
    assert format_change(-0.05, locale="en_US") == "−5.0%"
    assert format_change(0.0, locale="en_US") == "0.0%"
    assert format_change(0.123, locale="de_DE") == f"+12,3{NBSP}%"


@pytest.mark.parametrize(
    ("locale", "day", "month_year"),
    [("en_US", "Nov 24", "Nov 2026"), ("de_DE", "24. Nov.", "Nov. 2026"), ("fr_FR", "24 nov.", "nov. 2026")],
)
def test_date_labels_use_the_locale_order_and_month_names(locale: str, day: str, month_year: str) -> None:
    assert format_date_label(date(2026, 11, 24), locale=locale) == day
    assert format_date_label(date(2026, 11, 24), locale=locale, granularity="month_year") == month_year
    assert format_date_label(datetime(2026, 11, 24, 14, 5), locale=locale, granularity="hour") == "14:05"


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("de_DE", "24. Nov. 2026, 14:05 Europe/Berlin"),
        ("fr_FR", "24 nov. 2026, 14:05 Europe/Berlin"),
        ("en_GB", "24 Nov 2026, 14:05 Europe/Berlin"),
        ("en_US", f"Nov 24, 2026, 2:05{NARROW_NBSP}PM Europe/Berlin"),
    ],
)
def test_freshness_stamp_is_in_the_readers_zone_and_names_it(locale: str, expected: str) -> None:
    moment = datetime(2026, 11, 24, 13, 5, tzinfo=UTC)
    assert format_datetime_stamp(moment, timezone="Europe/Berlin", locale=locale) == expected


def test_a_rate_under_one_percent_keeps_a_second_decimal() -> None:
    """An opt-out rate of 0.43 % read "0.4%", and 0.04 % read "0.0%", as if nobody had opted out."""
    assert format_value(0.0043, "percent", locale="en_GB") == "0.43%"
    assert format_value(0.0004, "percent", locale="en_GB") == "0.04%"
    assert format_value(0.0, "percent", locale="en_GB") == "0.0%"
    assert format_value(0.012, "percent", locale="en_GB") == "1.2%"
    assert format_value(0.0043, "percent", locale="de_DE") == "0,43\xa0%"
    assert format_value(0.00996, "percent", locale="en_GB") == "1.0%", "rounds to 1.0 %: one decimal"
    assert format_value(0.00004, "percent", locale="en_GB") == "<0.01%", "3 in 100,000 is not nobody"
