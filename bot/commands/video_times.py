"""Days and times as staff type them in `video` commands: "tomorrow 10:30", "mon 9am", "2026-12-07 14:00"."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, time, timedelta

from bot.commands.parsing import ParseError
from domain.dates_said import WEEKDAYS

TIME_EXAMPLES = "“tomorrow 10:30”, “mon 9:00”, “2026-12-07 14:00” or “7 dec 14:00”"
_CLOCK = re.compile(r"(\d{1,2})(?:[:.h](\d{2}))?\s*(am|pm|h|uhr)?")
_ISO_DAY = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_DOTTED_DAY = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})?")
_WEEKDAYS = WEEKDAYS  # English and German, full and short (domain/dates_said.py)
#: "next monday", "nächsten Montag", "kommenden Freitag": never today.
_NEXT = ("next", "nächsten", "naechsten", "nächster", "kommenden", "kommender")
_MONTHS = {
    name: index + 1
    for index, names in enumerate(
        (
            ("jan", "january", "januar"),
            ("feb", "february", "februar"),
            ("mar", "march", "märz", "maerz"),
            ("apr", "april"),
            ("may", "mai"),
            ("jun", "june", "juni"),
            ("jul", "july", "juli"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october", "okt", "oktober"),
            ("nov", "november"),
            ("dec", "december", "dez", "dezember"),
        )
    )
    for name in names
}


@dataclass(frozen=True)
class DaySpec:
    """A day as typed: a date, a weekday (the next one), or days from today; resolved in the clinician's zone."""

    on: date | None = None
    weekday: int | None = None
    days_ahead: int | None = None
    #: "next monday": never today.
    next_week: bool = False

    def resolve(self, today: date) -> date:
        if self.on is not None:
            return self.on
        if self.weekday is not None:
            ahead = (self.weekday - today.weekday()) % 7
            return today + timedelta(days=ahead or (7 if self.next_week else 0))
        return today + timedelta(days=self.days_ahead or 0)

    @property
    def is_weekday(self) -> bool:
        return self.weekday is not None


@dataclass(frozen=True)
class WhenSpec:
    day: DaySpec
    at: time


def parse_day(words: Sequence[str], today: date, usage: str) -> DaySpec:
    text = " ".join(w.lower().strip(",") for w in words)
    if text in ("today", "heute"):
        return DaySpec(days_ahead=0)
    if text in ("tomorrow", "tmrw", "morgen"):
        return DaySpec(days_ahead=1)
    if text in ("yesterday", "gestern"):
        return DaySpec(days_ahead=-1)
    if text in ("day after tomorrow", "the day after tomorrow", "übermorgen", "uebermorgen"):
        return DaySpec(days_ahead=2)
    first, _, named = text.partition(" ")
    if named in _WEEKDAYS and first in _NEXT:
        # "next monday" said on a Monday is a week on, not today; "monday" is today or the coming one.
        return DaySpec(weekday=_WEEKDAYS[named], next_week=True)
    if named in _WEEKDAYS and first in ("this", "diesen", "dieser", "diesem"):
        return DaySpec(weekday=_WEEKDAYS[named])
    if text in _WEEKDAYS:
        return DaySpec(weekday=_WEEKDAYS[text])
    found = _ISO_DAY.fullmatch(text)
    if found:
        return DaySpec(on=_date(int(found[1]), int(found[2]), int(found[3]), usage))
    found = _DOTTED_DAY.fullmatch(text)
    if found:
        return DaySpec(on=_coming(int(found[2]), int(found[1]), found[3], today, usage))
    parts = text.replace(".", "").split()
    if len(parts) == 2:
        day_first = parts[0].isdigit() and parts[1] in _MONTHS
        month_first = parts[1].isdigit() and parts[0] in _MONTHS
        if day_first or month_first:
            day, month = (parts[0], parts[1]) if day_first else (parts[1], parts[0])
            return DaySpec(on=_coming(_MONTHS[month], int(day), None, today, usage))
    raise ParseError(f"“{' '.join(words)}” is not a day I can read; try {TIME_EXAMPLES}.", usage)


def _date(year: int, month: int, day: int, usage: str) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise ParseError(f"{year}-{month:02d}-{day:02d} is not a date.", usage) from None


def _coming(month: int, day: int, year: str | None, today: date, usage: str) -> date:
    """A day and month without a year: this year's, or next year's once this year's has passed."""
    if year:
        return _date(int(year), month, day, usage)
    found = _date(today.year, month, day, usage)
    return found if found >= today else _date(today.year + 1, month, day, usage)


def parse_clock(text: str, usage: str) -> time:
    found = _CLOCK.fullmatch(text.lower().replace(" ", ""))
    if found is None:
        raise ParseError(f"“{text}” is not a time of day; write it like 10:30 or 2pm.", usage)
    hour, minute, suffix = int(found[1]), int(found[2] or 0), found[3]
    if suffix in ("am", "pm"):
        if not 1 <= hour <= 12:
            raise ParseError(f"“{text}” is not a time of day.", usage)
        hour = hour % 12 + (12 if suffix == "pm" else 0)
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise ParseError(f"“{text}” is not a time of day.", usage)
    return time(hour, minute)


def parse_when(words: Sequence[str], today: date, usage: str) -> WhenSpec:
    """A day (optional: today) and a time of day: "tomorrow 10:30", "mon 9am", "2026-12-07 14:00"."""
    if not words:
        raise ParseError(f"Say when: {TIME_EXAMPLES}.", usage)
    tail = words[-1]
    clock_words = 1
    if tail.lower() in ("am", "pm", "uhr") and len(words) >= 2:
        tail, clock_words = words[-2] + tail, 2
    at = parse_clock(tail, usage)
    day_words = [w for w in words[:-clock_words] if w.lower() not in ("on", "at", "um", "am")]
    return WhenSpec(parse_day(day_words, today, usage) if day_words else DaySpec(days_ahead=0), at)


def when_words(when: WhenSpec) -> list[str]:
    day = when.day
    if day.on is not None:
        said = day.on.isoformat()
    elif day.weekday is not None:
        said = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[day.weekday]
    else:
        said = {-1: "yesterday", 1: "tomorrow", 2: "day after tomorrow"}.get(day.days_ahead or 0, "today")
    return [said, f"{when.at:%H:%M}"]
