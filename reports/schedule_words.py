"""Schedules as people say them: "every monday 8:00", "every weekday at 7:30", "every day 18:00",
"every month on the 1st at 9:00", turned into a cron expression, and any cron expression read back in words.
"""

from __future__ import annotations

import re
from typing import Any

from reports.everyday_names import known_value
from reports.metrics import FIXED_VALUES, dimension_words
from reports.saved import ReportDefinitionError, narrowed, query_from_definition
from reports.schedules import AlreadyScheduled, ScheduleError

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
#: cron counts Sunday as 0.
_CRON_DAY = {day: (index + 1) % 7 for index, day in enumerate(DAYS)}
_SHORT = {day[:3]: day for day in DAYS}

EXAMPLES = (
    "every monday 8:00, every weekday at 7:30, every day 18:00, every month on the 1st at 9:00 "
    "(or in German: jeden Montag 8:00, werktags 7:30, täglich 18 Uhr, monatlich am 1. um 9 Uhr)"
)


def _time(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d{1,2})(?::(\d{2}))?\s*(am|pm)?", text.strip())
    if match is None:
        raise ScheduleError(f"{text.strip()!r} is not a time of day (e.g. 8:00 or 18:30)")
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    if match.group(3):
        if not 1 <= hour <= 12:
            raise ScheduleError(f"{text.strip()!r} is not a time of day")
        hour = hour % 12 + (12 if match.group(3) == "pm" else 0)
    if hour > 23 or minute > 59:
        raise ScheduleError(f"{text.strip()!r} is not a time of day (hours 0–23, minutes 0–59)")
    return hour, minute


#: German days, as a German manager writes a schedule ("jeden Montag 8:00", "montags um 8 Uhr").
GERMAN_DAYS = dict(
    zip(("montag", "dienstag", "mittwoch", "donnerstag", "freitag", "samstag", "sonntag"), DAYS, strict=True)
)
#: Words a schedule said in German starts with, for the command line to find where "when" begins.
GERMAN_STARTS = frozenset(
    {
        "jeden",
        "jede",
        "jedes",
        "immer",
        "täglich",
        "werktags",
        "monatlich",
        "mo-fr",
        *(f"{d}s" for d in GERMAN_DAYS),
    }
)


def _from_german(said: str) -> str:
    """A schedule said in German, said the English way this module reads: "jeden Montag um 8 Uhr" is
    "every monday at 8", "werktags 7.30" "every weekday 7:30", "monatlich am 1. um 9:00" "every month on the 1
    at 9:00". Anything else comes back as it was."""
    said = re.sub(r"\b(\d{1,2})\.(\d{2})\b", r"\1:\2", said)  # 7.30 is 7:30
    said = re.sub(r"\s*\buhr\b", "", said)
    said = re.sub(r"\bum\b", "at", said)
    said = re.sub(r"^(?:immer )?(?:jeden tag|täglich|taeglich)\b", "every day", said)
    said = re.sub(
        r"^(?:immer )?(?:werktags|jeden werktag|an werktagen|montags? bis freitags?)\b", "every weekday", said
    )
    said = re.sub(
        r"^(?:immer |jeden )?mo\.?\s*(?:-|bis)\s*fr\.?(?= |$)", "every weekday", said
    )  # "Mo-Fr 7:30"
    for german, english in GERMAN_DAYS.items():
        said = re.sub(rf"^(?:immer |jeden )?{german}s?\b", f"every {english}", said)
        # "jeden Mo 8:00", "jeden Fr. 17 Uhr": a short day name only after "jeden" ("so" is an English word).
        said = re.sub(rf"^(?:immer |jeden ){german[:2]}\.?(?= |$)", f"every {english}", said)
    said = re.sub(
        r"^(?:jeden monat|monatlich)(?: am)? (\d{1,2})\.?(?= |$)|^am (\d{1,2})\.? (?:jeden|eines) monats\b",
        lambda m: f"every month on the {m.group(1) or m.group(2)}",
        said,
    )
    return re.sub(r"^(?:jeden|jede|jedes) ", "every ", said)  # what is left is a day not known, said so


def cron_from_words(text: str) -> str:
    """The cron expression for a schedule said in words, in English or German; ScheduleError with examples
    when it is not one."""
    said = _from_german(" ".join(text.lower().replace(",", " ").split()))
    match = re.fullmatch(r"every (.+?)(?: at)? (\d{1,2}(?::\d{2})?\s*(?:am|pm)?)", said)
    if match is None:
        raise ScheduleError(f"say when, e.g. {EXAMPLES}")
    when, (hour, minute) = match.group(1).strip(), _time(match.group(2))
    if when == "day":
        return f"{minute} {hour} * * *"
    if when in ("weekday", "working day", "workday"):
        return f"{minute} {hour} * * 1-5"
    day = _SHORT.get(when[:3]) if when.rstrip("s") in DAYS or when in _SHORT else None
    if day is not None:
        return f"{minute} {hour} * * {_CRON_DAY[day]}"
    monthly = re.fullmatch(r"month(?: on)?(?: the)? (\d{1,2})(?:st|nd|rd|th)?", when)
    if monthly:
        day_of_month = int(monthly.group(1))
        if not 1 <= day_of_month <= 28:
            raise ScheduleError(
                f"day {day_of_month} is not in every month; pick a day from 1 to 28 so no month is skipped"
            )
        return f"{minute} {hour} {day_of_month} * *"
    raise ScheduleError(f"{when!r} is not a day I know; say e.g. {EXAMPLES}")


def already_scheduled_words(error: AlreadyScheduled) -> str:
    """ "This report already goes to #ops every Monday at 08:00 (Europe/Berlin), as schedule #4; nothing new was
    scheduled." """
    request = error.request
    return (
        f"This report already goes to {request.destination} {cron_in_words(request.cron)} ({request.timezone}), "
        f"as schedule #{error.schedule_id}; nothing new was scheduled."
    )


def cron_in_words(cron: str) -> str:
    """ "0 8 * * 1" → "every Monday at 08:00"; an expression it cannot read simply is shown as cron."""
    fields = cron.split()
    if len(fields) != 5 or not (fields[0].isdigit() and fields[1].isdigit()):
        return f"cron “{cron}”"
    at = f"at {int(fields[1]):02d}:{int(fields[0]):02d}"
    day, month, weekday = fields[2], fields[3], fields[4]
    if month != "*":
        return f"cron “{cron}”"
    if day == "*" and weekday == "*":
        return f"every day {at}"
    if day == "*" and weekday == "1-5":
        return f"every weekday {at}"
    if day == "*" and weekday.isdigit() and int(weekday) <= 7:
        name = DAYS[(int(weekday) - 1) % 7].capitalize()
        return f"every {name} {at}"
    if weekday == "*" and day.isdigit():
        return f"every month on day {int(day)} {at}"
    return f"cron “{cron}”"


DESTINATIONS = "#slack-channel, telegram:CHAT_ID or an email address"


def destination_of(text: str) -> tuple[str, str]:
    """Where a schedule delivers: '#ops' is Slack, 'telegram:123' Telegram, an address email."""
    text = text.strip()
    if text.startswith("slack:"):
        text = text.removeprefix("slack:")
        if re.fullmatch(r"[CGD][A-Z0-9]{5,20}", text):  # a channel id
            return "slack", text
        text = text if text.startswith("#") else f"#{text}"
    if re.fullmatch(r"#[a-z0-9][a-z0-9._-]{0,79}", text.lower()):
        return "slack", text.lower()
    if re.fullmatch(r"telegram:-?\d{1,20}", text):
        return "telegram", text.removeprefix("telegram:")
    if re.fullmatch(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}", text) and len(text) <= 254:
        return "email", text.lower()
    raise ScheduleError(f"I cannot deliver to {text!r}; give {DESTINATIONS}")


def recipient_filters(
    definition: dict[str, Any], dimension: str, values_text: str, names: dict[str, list[tuple[str, str]]]
) -> tuple[dict[str, Any], ...]:
    """The filter one recipient's deliveries add to the report ("only for location BER"), checked as the report
    builder checks its filters: a dimension the report's metric can be split by, values that exist."""
    dimension = dimension.strip().lower().replace(" ", "_")
    typed = [v.strip() for v in values_text.split(",") if v.strip()]
    if not dimension and not typed:
        return ()
    if not dimension or not typed:
        raise ScheduleError("say which values of what, e.g. only for location Berlin Mitte")
    known = names.get(dimension) or FIXED_VALUES.get(dimension)
    values = []
    for text in typed[:50]:
        if known:
            match = known_value(dimension, text, known)
            if match is None:
                listed = ", ".join(name for _, name in known[:8])
                raise ScheduleError(
                    f"“{text}” is not a {dimension_words(dimension)} we have; known: {listed}"
                )
            values.append(match)
        else:
            values.append(text)
    item = {"dimension": dimension, "operator": "in", "value": values}
    try:
        query_from_definition(narrowed(definition, (item,)))
    except ReportDefinitionError as error:
        raise ScheduleError(str(error)) from None
    return (item,)
