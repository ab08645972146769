"""What makes a report schedule: when (a cron expression in a time zone), where (a destination kind and its
address) and for whom (the recipient's own filters); and when two of them are the same schedule."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

_CRON_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


@dataclass(frozen=True)
class ScheduleRequest:
    """How often a saved report goes, and where: a destination kind (slack, telegram or email) and its address."""

    cron: str
    timezone: str
    destination_kind: str
    destination: str
    #: Filters added to the report's for this recipient only ({"dimension", "operator", "value"} each).
    filters: tuple[dict[str, Any], ...] = ()

    def repeats(
        self, cron: str, timezone: str, destination_kind: str, destination: str, filters: Any
    ) -> bool:
        """Whether a stored schedule with these is this one: "0 8 * * 1" is "0 8 * * mon", and filters in
        another order ("HAM, BER") are the same filters."""
        return (
            (timezone, destination_kind, destination)
            == (self.timezone, self.destination_kind, self.destination)
            and _same_cron(cron) == _same_cron(self.cron)
            and same_filters(list(filters or ())) == same_filters(list(self.filters))
        )


def same_filters(filters: list[Any]) -> list[Any]:
    """Filters compared as meant: "BER, HAM" is "HAM, BER", and their order does not matter."""

    def normal(item: Any) -> Any:
        if isinstance(item, dict) and isinstance(item.get("value"), list):
            return {**item, "value": sorted(str(v) for v in item["value"])}
        return item

    return sorted((normal(f) for f in filters), key=lambda f: json.dumps(f, sort_keys=True, default=str))


def _same_cron(cron: str) -> str:
    try:
        return cron_weekdays_as_names(" ".join(cron.lower().split()))
    except ValueError:  # not a cron expression that could have been stored; compared as written
        return cron


def cron_weekdays_as_names(cron: str) -> str:
    """The cron expression with its weekday field in names, which APScheduler reads as cron does.

    In cron, weekday 0 (and 7) is Sunday and 1 is Monday; APScheduler 3 counts 0 as Monday, so "0 8 * * 1"
    handed over as it is would fire on Tuesdays. Names mean the same to both.
    """
    fields = cron.split()
    if len(fields) != 5 or fields[4] == "*":
        return cron
    days: set[int] = set()
    for part in fields[4].lower().split(","):
        days |= _cron_days(part)
    fields[4] = ",".join(_CRON_DAY_NAMES[d] for d in sorted(days))
    return " ".join(fields)


def _cron_days(part: str) -> set[int]:
    """The cron weekdays (0 = Sunday) one comma-separated part names: 1, mon, 1-5, mon-fri, */2, 1-5/2."""
    span, _, step_text = part.partition("/")
    step = _cron_number(step_text, "step") if step_text else 1
    if step < 1:
        raise ValueError(f"the weekday step must be at least 1, got {step}")
    if span == "*":
        first, last = 0, 6
    else:
        low, dash, high = span.partition("-")
        first = _cron_day(low)
        last = _cron_day(high) if dash else (6 if step_text else first)
        if dash and high in ("7", "sun") and last == 0:
            last = 7
    if last < first:
        raise ValueError(f"the weekday range {span} runs backwards")
    return {day % 7 for day in range(first, last + 1, step)}


def _cron_day(text: str) -> int:
    if text in _CRON_DAY_NAMES:
        return _CRON_DAY_NAMES.index(text)
    number = _cron_number(text, "weekday")
    if not 0 <= number <= 7:
        raise ValueError(f"weekday {number} is not between 0 and 7")
    return number % 7 if number != 7 else 0


def _cron_number(text: str, what: str) -> int:
    if not text.isdigit():
        raise ValueError(f"{text!r} is not a {what}")
    return int(text)
