"""`team`: who is on duty on a day, by clinic, and (today) who takes live chat now. Front-desk questions
("who is on duty today?", "wer hat morgen Dienst?", "which doctors work on Friday?") come here too."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time

from bot.commands.context import CommandContext
from bot.commands.kpi import known_values
from bot.commands.parsing import ParseError
from bot.commands.video_times import DaySpec, parse_day
from bot.replies import Button, Reply, Table
from domain.dates_said import day_month
from domain.staff import StaffIdentity
from reports.periods import zone as zone_of
from storage.queries.clinics import clinics
from storage.queries.team import TeamMember, team_on

USAGE = (
    "team [today|tomorrow|monday…sunday|7 Dec] [clinic]  (who works that day, by clinic; today also who takes "
    "live chat)"
)


@dataclass(frozen=True)
class OnDuty:
    #: None: today.
    day: DaySpec | None = None
    #: The clinic as said ("berlin", "BER", "Hamburg Altona"); None: every clinic.
    clinic: str | None = None


#: Words around a day and a clinic that say nothing of either ("on Friday", "am Freitag", "in Berlin").
_AROUND = {"on", "am", "for", "in", "at", "im", "the", "clinic"}


def parse_team(words: list[str], rest: str, today: date) -> OnDuty:
    said = _words(words)
    if not _trimmed(said, _AROUND):
        return OnDuty()
    day, place = _day_and_place(said, today, _AROUND)
    return OnDuty(day, " ".join(place) or None)


def _words(words: list[str]) -> list[str]:
    """Lower-cased, without the punctuation around them ("friday." is "friday"; "24.12." keeps its dots)."""
    cleaned = [w.strip(",?!").lower() for w in words]
    return [w if _DOTTED.fullmatch(w) else w.removesuffix(".") for w in cleaned if w]


def _trimmed(words: list[str], around: set[str]) -> list[str]:
    """`words` without the words that say nothing at either end ("in Berlin" is "Berlin"); inside a name they
    stay ("Praxis am Markt")."""
    start, end = 0, len(words)
    while start < end and words[start] in around:
        start += 1
    while end > start and words[end - 1] in around:
        end -= 1
    return words[start:end]


def _day_and_place(words: list[str], today: date, around: set[str]) -> tuple[DaySpec | None, list[str]]:
    """The day said first or last ("tomorrow in Berlin", "Berlin tomorrow", "am 7.12. in Hamburg"), the longest
    that reads, and the words left, which name a clinic ("Praxis am Markt" whole); no day: today."""
    words = _trimmed(words, around)
    for n in range(len(words), 0, -1):
        for day, place in ((words[:n], words[n:]), (words[-n:], words[:-n])):
            try:
                return parse_day(day, today, USAGE), _trimmed(place, around)
            except ParseError:
                continue
    return None, words


#: "who is on duty", "who's working tomorrow", "which doctors work on friday", "wer hat heute Dienst",
#: "wer ist morgen da", "welche Ärzte arbeiten am Freitag": the asking words, then only duty and day words.
_ASKING = re.compile(
    r"^\s*(?:who(?:'s|\s+is|\s+are|\s+will\s+be)?|which\s+(?:doctors|clinicians|staff|agents|colleagues|people)"
    r"(?:\s+(?:are|will))?|wer(?:\s+(?:hat|ist|sind|arbeitet))?|welche\s+(?:ärzte|aerzte|ärztinnen|kollegen|"
    r"kolleginnen|mitarbeiter|mitarbeiterinnen)(?:\s+(?:sind|haben|arbeiten))?)\s+(?P<rest>.+?)[\s?!]*$",
    re.IGNORECASE,
)
_DUTY = {"duty", "working", "work", "works", "in", "here", "available", "shift", "call", "dienst", "da"}
_DUTY |= {"arbeitet", "arbeiten", "verfügbar", "im", "haus", "anwesend"}
_FILLER = {
    "on",
    "at",
    "the",
    "clinic",
    "clinics",
    "right",
    "now",
    "am",
    "jetzt",
    "gerade",
    "noch",
    "in",
    "this",
    "for",
}


def on_duty_question(text: str, today: date, clinics: Mapping[str, str] | None = None) -> OnDuty | None:
    """The day (and clinic) a who-is-on-duty question asks about, or None when `text` is no such question ("who
    is our best customer" names no duty). `clinics` are the clinics' names as people say them (→ code); words
    that are neither a day nor one of them make it no roster question."""
    asked = _ASKING.match(text)
    if asked is None:
        return None
    # "welche Ärzte arbeiten am Freitag": the verb among the asking words says it is about duty.
    said = {w.strip(",?!.") for w in text.lower().split()}
    if not _DUTY & said:
        return None
    day, place = _day_and_place(_words(asked.group("rest").split()), today, _DUTY | _FILLER)
    if not place:
        return OnDuty(day)
    named = " ".join(place)
    known = {name.lower(): code for name, code in (clinics or {}).items()}
    return OnDuty(day, named) if named in known or named.upper() in known.values() else None


#: A day written 7.12. or 7.12.2026: its dots are no full stop.
_DOTTED = re.compile(r"\d{1,2}\.\d{1,2}\.(?:\d{4})?")


def _clock(moment: time) -> str:
    return f"{moment:%H:%M}"


def _hours(member: TeamMember, business_tz: str, day: date) -> str:
    spans = ", ".join(f"{_clock(a)}–{_clock(b)}" for a, b in member.hours) or (
        f"none on {day:%A}s" if member.week else "no hours (live chat only)"
    )
    if member.hours and member.timezone != business_tz:
        spans += f" {member.timezone.rsplit('/', 1)[-1].replace('_', ' ')} time"
    return spans


def _chat(member: TeamMember, now: datetime) -> str:
    if member.availability != "online":
        state = "away"
    else:
        state = "available, outside their hours" if member.outside_hours(now) else "available"
    held = f", {member.conversations} open" if member.conversations else ""
    return f"{state}{held}"


async def _clinic_of(said: str, ctx: CommandContext) -> tuple[str, str] | Reply:
    """The clinic (code, name) said as its code, its name or a word of it ("berlin"), or the refusal."""
    everyday = {name.lower(): code for name, code in (await known_values(ctx)).get("location", {}).items()}
    every = await clinics(ctx.database)
    wanted = " ".join(said.split()).lower()
    for _, code, name in every:
        if wanted in (code.lower(), name.lower()) or everyday.get(wanted) == code:
            return code, name
    listed = ", ".join(f"{name} ({code})" for _, code, name in every)
    return Reply(
        f"There is no clinic “{said}”; "
        + (f"the clinics are: {listed}." if listed else "no clinics are set up (`switchboard clinic add`)."),
        kind="error",
    )


async def run_team(command: OnDuty, who: StaffIdentity, ctx: CommandContext) -> Reply:
    tz = zone_of(ctx.business_tz)
    now = ctx.now()
    today = now.astimezone(tz).date()
    day = command.day.resolve(today) if command.day is not None else today
    is_today = day == today
    ahead = (day - today).days
    when = (
        "today"
        if is_today
        else "tomorrow"
        if ahead == 1
        else f"on {day:%A}"
        if 0 < ahead < 7
        else f"on {day:%A} {day_month(day)}" + (f" {day.year}" if day.year != today.year else "")
    )
    named = f"{day:%a} {day_month(day)}" + (f" {day.year}" if day.year != today.year else "")
    place: tuple[str, str] | None = None
    if command.clinic is not None:
        found = await _clinic_of(command.clinic, ctx)
        if isinstance(found, Reply):
            return found
        place = found
    team = await team_on(ctx.database, day.weekday(), location_code=place[0] if place else None)
    working = [m for m in team if m.hours or (is_today and m.availability == "online")]
    at = f" at {place[1]}" if place else ""
    title = f"On duty{at} {named}" + (f" ({when})" if when in ("today", "tomorrow") else "")
    again = f" {place[0]}" if place else ""
    if ahead < 0:
        return Reply(
            f"{named} has passed; the roster shows who works from today on (`team today{again}`).",
            kind="error",
        )
    if not working:
        return Reply(
            f"Nobody{at} has working hours {when if when.startswith('on ') else f'{when} ({day:%A})'}. "
            "Each clinician's working hours are set with `switchboard staff hours EMAIL "
            '"mon-fri 09:00-17:00"`.',
            title=title,
            buttons=(Button("Today", f"team today{again}"),) if not is_today else (),
        )
    # The hours of the day asked (a clinician's own Monday, in their zone); "Live chat now" is their clock now.
    columns: tuple[str, ...] = ("Clinic", "Who", f"Hours on {day:%A}")
    rows: list[tuple[str, ...]] = [
        (m.location or "—", m.name, _hours(m, ctx.business_tz, day)) for m in working
    ]
    if is_today:
        columns += ("Live chat now",)
        rows = [(*row, _chat(m, now)) for row, m in zip(rows, working, strict=True)]
    on_hours = [m for m in working if m.hours]
    clinics = len({m.location for m in on_hours if m.location})
    unplaced = sum(1 for m in on_hours if not m.location)
    people = len(on_hours)
    text = f"{people} {'person works' if people == 1 else 'people work'}{at} {when}"
    if clinics and not place:
        text += f" at {clinics} clinic{'' if clinics == 1 else 's'}"
        text += f" ({unplaced} with no clinic set)" if unplaced else ""
    elif unplaced and not place:
        text += " (no clinic set for anyone)"
    text += "."
    if is_today:
        available = [m for m in team if m.availability == "online"]
        away = [m for m in working if m.availability != "online"]
        outside = sum(1 for m in available if m.outside_hours(now))
        text += f" Taking live chat now: {len(available)}"
        text += f" ({outside} outside their working hours)" if outside else ""
        text += f"; away: {', '.join(m.name for m in away)}." if away else "."
    text += " Hours are each clinician's working hours for video consultations, in their own time zone."
    buttons = (
        (Button("Tomorrow", f"team tomorrow{again}"),)
        if is_today
        else (Button("Today", f"team today{again}"),)
    )
    return Reply(
        text,
        title=title,
        table=Table(columns, tuple(rows)),
        buttons=(*buttons, Button("Unassigned chats", "chat list unassigned")),
    )
