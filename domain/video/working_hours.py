"""A clinician's working hours as people write them: "mon-fri 09:00-12:30 13:30-17:00; sat 9-13", read into
spans per weekday, and said back the same way. The free video times are these spans less what is booked."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import time
from itertools import pairwise

from domain.dates_said import WEEKDAYS
from domain.video.slots import WorkingSpan

SHORT = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
EXAMPLE = '"mon-fri 09:00-12:30 13:30-17:00; sat 09:00-13:00"'
_CLOCK = re.compile(r"(\d{1,2})(?:[:.](\d{2}))?")


class WorkingHoursRefused(ValueError):
    """Hours that cannot be read or do not make sense; the message says which part, in words."""


def _day(word: str) -> int:
    found = WEEKDAYS.get(word.strip(".").lower())
    if found is None:
        raise WorkingHoursRefused(f"“{word}” is not a day (mon, tue, … sun)")
    return found


def _days(text: str) -> list[int]:
    days: list[int] = []
    for part in text.split(","):
        first, dash, last = part.partition("-")
        if dash:
            start, end = _day(first), _day(last)
            if end < start:
                raise WorkingHoursRefused(f"“{part}” runs backwards: write the first day first")
            days.extend(range(start, end + 1))
        elif part:
            days.append(_day(part))
    return days


def _clock(text: str, whole: str) -> time:
    found = _CLOCK.fullmatch(text)
    if found is None:
        raise WorkingHoursRefused(f"“{whole}” is not a span of hours like 09:00-12:30")
    hour, minute = int(found.group(1)), int(found.group(2) or 0)
    if hour == 24 and minute == 0:
        raise WorkingHoursRefused(f"“{whole}”: end a day's hours by 23:55 (a span cannot cross midnight)")
    if hour > 23 or minute > 59:
        raise WorkingHoursRefused(f"“{whole}” is not a span of hours (hours 0–23, minutes 0–59)")
    if minute % 5:
        raise WorkingHoursRefused(
            f"“{whole}”: free times go in steps of five minutes; use a multiple of five"
        )
    return time(hour, minute)


#: Words for several days at once.
_DAY_WORDS = {"werktags": "mon-fri", "weekdays": "mon-fri", "täglich": "mon-sun", "daily": "mon-sun"}


def _is_days(token: str) -> bool:
    """Whether `token` names days ("mo", "mon-fri", "mon,wed", "werktags") rather than hours."""
    token = _DAY_WORDS.get(token, token).rstrip(":")
    return bool(token) and all(
        part.strip(".") in WEEKDAYS for piece in token.split(",") for part in piece.split("-") if part
    )


def read_working_hours(text: str) -> list[WorkingSpan]:
    """The spans `text` gives, by weekday and start; "off" is none. Days, then their hours, as often as
    needed, groups apart by ";" or simply by the next days: "mon-fri 9-12:30 13:30-17", "Mo, Mi, Fr 9-17",
    "Mo-Fr 8-12, Sa 9-13", "werktags 8-16". WorkingHoursRefused in words for anything it cannot read, a span
    that ends before it starts, or spans of one day that overlap."""
    said = " ".join(text.lower().replace("–", "-").replace(" - ", "-").split())
    if said in ("", "off", "none", "frei"):
        return []
    tokens = said.replace(";", " ; ").replace(",", " , ").split()
    groups: list[tuple[list[str], list[str]]] = []  # (day tokens, span tokens)
    for token in tokens:
        if token in (";", ","):
            continue
        if _is_days(token):
            if not groups or groups[-1][1]:
                groups.append(([], []))
            groups[-1][0].append(_DAY_WORDS.get(token, token).rstrip(":"))
        elif not groups:
            if any(ch.isdigit() for ch in token):
                raise WorkingHoursRefused(f"say the days first, e.g. {EXAMPLE}")
            raise WorkingHoursRefused(f"“{token}” is not a day (mon, tue, … sun)")
        else:
            groups[-1][1].append(token)
    spans: list[WorkingSpan] = []
    for day_tokens, span_tokens in groups:
        days = [day for token in day_tokens for day in _days(token)]
        if not span_tokens:
            raise WorkingHoursRefused(f"“{' '.join(day_tokens)}” gives days but no hours; e.g. {EXAMPLE}")
        for span in span_tokens:
            first, dash, last = span.partition("-")
            if not dash:
                raise WorkingHoursRefused(f"“{span}” is not a span of hours like 09:00-12:30")
            starts, ends = _clock(first, span), _clock(last, span)
            if ends <= starts:
                raise WorkingHoursRefused(f"“{span}” ends before it starts (a span cannot cross midnight)")
            spans.extend(WorkingSpan(day, starts, ends) for day in days)
    spans.sort(key=lambda s: (s.weekday, s.starts))
    for before, after in pairwise(spans):
        if before.weekday == after.weekday and after.starts < before.ends:
            raise WorkingHoursRefused(
                f"on {SHORT[before.weekday]}, {before.starts:%H:%M}-{before.ends:%H:%M} and "
                f"{after.starts:%H:%M}-{after.ends:%H:%M} overlap"
            )
    return spans


def working_hours_words(spans: Iterable[WorkingSpan]) -> str:
    """The spans said back the way they are written: "Mon-Fri 09:00-12:30 13:30-17:00; Sat 09:00-13:00";
    "none" without any."""
    by_day: dict[int, tuple[tuple[time, time], ...]] = {}
    for span in sorted(spans, key=lambda s: (s.weekday, s.starts)):
        by_day[span.weekday] = (*by_day.get(span.weekday, ()), (span.starts, span.ends))
    groups: list[tuple[list[int], tuple[tuple[time, time], ...]]] = []
    for day, hours in sorted(by_day.items()):
        if groups and groups[-1][1] == hours and groups[-1][0][-1] == day - 1:
            groups[-1][0].append(day)
        else:
            groups.append(([day], hours))
    said = []
    for days, hours in groups:
        named = SHORT[days[0]] if len(days) == 1 else f"{SHORT[days[0]]}-{SHORT[days[-1]]}"
        said.append(f"{named} " + " ".join(f"{a:%H:%M}-{b:%H:%M}" for a, b in hours))
    return "; ".join(said) or "none"
