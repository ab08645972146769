"""How a date reads to a person, everywhere Switchboard writes one: the day without a leading zero, the month
short ("7 Dec", "7 Dec 2026", "7 Dec 14:00"). Callers pass a moment already in the reader's timezone (the
business's, or the customer's), so the words never say UTC to someone who does not live in it.
"""

from __future__ import annotations

from datetime import date, datetime


def day_month(day: date) -> str:
    """ "7 Dec"."""
    return f"{day.day} {day:%b}"


def day_month_year(day: date) -> str:
    """ "7 Dec 2026"."""
    return f"{day.day} {day:%b %Y}"


def day_month_time(moment: datetime) -> str:
    """ "7 Dec 14:00"."""
    return f"{moment.day} {moment:%b %H:%M}"


def day_month_time_zone(moment: datetime) -> str:
    """ "7 Dec 14:00 CET": for a reader who may be elsewhere (a staff member abroad, a customer's zone)."""
    return f"{day_month_time(moment)} {moment:%Z}".rstrip()


#: The days of the week as staff type them, English and German, full and short, to their number (Monday 0,
#: as `date.weekday()`): "mon", "Tuesday", "Do", "Freitag".
WEEKDAYS: dict[str, int] = {
    name: index
    for index, names in enumerate(
        (
            ("mon", "monday", "mo", "montag"),
            ("tue", "tues", "tuesday", "di", "dienstag"),
            ("wed", "wednesday", "mi", "mittwoch"),
            ("thu", "thur", "thurs", "thursday", "do", "donnerstag"),
            ("fri", "friday", "fr", "freitag"),
            ("sat", "saturday", "sa", "samstag"),
            ("sun", "sunday", "so", "sonntag"),
        )
    )
    for name in names
}
