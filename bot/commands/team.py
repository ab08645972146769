"""`team`: who is on duty on a day, by clinic, and (today) who takes live chat now. Front-desk questions
("who is on duty today?", "wer hat morgen Dienst?", "which doctors work on Friday?") come here too."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, time

from bot.commands.context import CommandContext
from bot.commands.parsing import ParseError
from bot.commands.video_times import DaySpec, parse_day
from bot.replies import Button, Reply, Table
from domain.dates_said import WEEKDAYS, day_month
from domain.staff import StaffIdentity
from reports.periods import zone as zone_of
from storage.queries.team import TeamMember, team_on

USAGE = "team [today|tomorrow|monday…sunday|7 Dec]  (who works that day, by clinic; today also who takes live chat)"


@dataclass(frozen=True)
class OnDuty:
    #: None: today.
    day: DaySpec | None = None


def parse_team(words: list[str], rest: str, today: date) -> OnDuty:
    said = [w.strip(",.?") for w in words if w.lower() not in ("on", "am", "for")]
    if not said:
        return OnDuty()
    return OnDuty(parse_day(said, today, USAGE))


#: "who is on duty", "who's working tomorrow", "which doctors work on friday", "wer hat heute Dienst",
#: "wer ist morgen da", "welche Ärzte arbeiten am Freitag": the asking words, then only duty and day words.
_ASKING = re.compile(
    r"^\s*(?:who(?:'s|\s+is|\s+are|\s+will\s+be)?|which\s+(?:doctors|clinicians|staff|agents|colleagues|people)"
    r"(?:\s+(?:are|will))?|wer(?:\s+(?:hat|ist|sind|arbeitet))?|welche\s+(?:ärzte|aerzte|ärztinnen|kollegen|"
    r"kolleginnen|mitarbeiter|mitarbeiterinnen)(?:\s+(?:sind|haben|arbeiten))?)\s+(?P<rest>.+?)[\s?!.]*$",
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
}
_DAYS = {"today", "heute", "tomorrow", "morgen"} | {day for day in WEEKDAYS if len(day) > 2}


def on_duty_question(text: str, today: date) -> OnDuty | None:
    """The day a who-is-on-duty question asks about, or None when `text` is no such question ("who is our
    best customer" names no duty)."""
    asked = _ASKING.match(text)
    if asked is None:
        return None
    words = [w.strip(",") for w in asked.group("rest").lower().split()]
    # "welche Ärzte arbeiten am Freitag": the verb among the asking words says it is about duty.
    said = {w.strip(",?!.") for w in text.lower().split()}
    if not _DUTY & said or any(w not in _DUTY | _FILLER | _DAYS for w in words):
        return None
    day = [w for w in words if w in _DAYS]
    if len(day) > 1:
        return None
    try:
        return parse_team(day, " ".join(day), today)
    except ParseError:
        return None


def _clock(moment: time) -> str:
    return f"{moment:%H:%M}"


def _hours(member: TeamMember, business_tz: str) -> str:
    spans = ", ".join(f"{_clock(a)}–{_clock(b)}" for a, b in member.hours) or "no hours (live chat only)"
    if member.hours and member.timezone != business_tz:
        spans += f" {member.timezone.rsplit('/', 1)[-1].replace('_', ' ')} time"
    return spans


def _chat(member: TeamMember) -> str:
    state = "available" if member.availability == "online" else "away"
    held = f", {member.conversations} open" if member.conversations else ""
    return f"{state}{held}"


async def run_team(command: OnDuty, who: StaffIdentity, ctx: CommandContext) -> Reply:
    tz = zone_of(ctx.business_tz)
    today = ctx.now().astimezone(tz).date()
    day = command.day.resolve(today) if command.day is not None else today
    is_today = day == today
    when = "today" if is_today else ("tomorrow" if (day - today).days == 1 else f"on {day:%A}")
    named = f"{day:%a} {day_month(day)}"
    team = await team_on(ctx.database, day.weekday())
    working = [m for m in team if m.hours or (is_today and m.availability == "online")]
    title = f"On duty {named}" + (f" ({when})" if when in ("today", "tomorrow") else "")
    if not working:
        return Reply(
            f"Nobody has working hours {when if when.startswith('on ') else f'{when} ({day:%A})'}. "
            "Each clinician's working hours are set with `switchboard staff hours EMAIL "
            '"mon-fri 09:00-17:00"`.',
            title=title,
            buttons=(Button("Today", "team today"),) if not is_today else (),
        )
    columns: tuple[str, ...] = ("Clinic", "Who", "Hours")
    rows: list[tuple[str, ...]] = [(m.location or "—", m.name, _hours(m, ctx.business_tz)) for m in working]
    if is_today:
        columns += ("Live chat now",)
        rows = [(*row, _chat(m)) for row, m in zip(rows, working, strict=True)]
    on_hours = [m for m in working if m.hours]
    clinics = len({m.location for m in on_hours if m.location})
    unplaced = sum(1 for m in on_hours if not m.location)
    people = len(on_hours)
    text = f"{people} {'person works' if people == 1 else 'people work'} {when}"
    if clinics:
        text += f" at {clinics} clinic{'' if clinics == 1 else 's'}"
        text += f" ({unplaced} with no clinic set)" if unplaced else ""
    elif unplaced:
        text += " (no clinic set for anyone)"
    text += "."
    if is_today:
        available = [m for m in team if m.availability == "online"]
        away = [m for m in working if m.availability != "online"]
        text += f" Taking live chat now: {len(available)}"
        text += f"; away: {', '.join(m.name for m in away)}." if away else "."
    text += " Hours are each clinician's working hours for video consultations, in their own time zone."
    buttons = (Button("Tomorrow", "team tomorrow"),) if is_today else (Button("Today", "team today"),)
    return Reply(
        text,
        title=title,
        table=Table(columns, tuple(rows)),
        buttons=(*buttons, Button("Unassigned chats", "chat list unassigned")),
    )
