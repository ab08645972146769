"""`noshow ID`, `attended ID`, `video rebook ID`, `video reminders ID`: no-shows, corrections, new times, the send log.

`noshow` and `attended` take an appointment number and work for video and in-person appointments alike;
`video rebook` and `video reminders` take a consultation number, as the other `video` commands do.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime

from bot.commands.context import CommandContext
from bot.commands.parsing import ParseError
from bot.replies import Button, Reply, Table
from domain.messages.words import channel_words, status_words
from domain.staff import StaffIdentity
from domain.video.booking import time_in
from domain.video.model import VideoError
from domain.video.no_shows import Marked, mark_attended, mark_no_show
from domain.video.rebooking import offer_lines, offer_rebooking
from domain.video.reminders import lead_time_words
from storage.queries.video_reminders import FEED_VERSION, reminder_log

NOSHOW_USAGE = "noshow APPOINTMENT"
ATTENDED_USAGE = "attended APPOINTMENT"
REBOOK_USAGE = "video rebook CONSULTATION"
REMINDERS_USAGE = "video reminders CONSULTATION"
STATUS_WORDS = {"booked": "booked", "confirmed": "confirmed", "completed": "attended", "no_show": "a no-show",
                "cancelled": "cancelled"}  # fmt: skip


@dataclass(frozen=True)
class MarkAppointment:
    appointment_id: int


@dataclass(frozen=True)
class ConsultationNumber:
    consultation_id: int


def _number(words: list[str], what: str, usage: str) -> int:
    if len(words) != 1:
        one = "one" if words else what.split()[0]  # "Give one appointment number", "Give an appointment …"
        raise ParseError(f"Give {one} {what.split(maxsplit=1)[-1]} number, e.g. 1234.", usage)
    text = words[0].lstrip("#")
    if not text.isdigit() or len(text) > 18 or int(text) == 0:
        raise ParseError(f"“{words[0]}” is not {what} number; give the number, e.g. 1234.", usage)
    return int(text)


def parse_noshow(words: list[str], rest: str, today: date) -> MarkAppointment:
    return MarkAppointment(_number(words, "an appointment", NOSHOW_USAGE))


def parse_attended(words: list[str], rest: str, today: date) -> MarkAppointment:
    return MarkAppointment(_number(words, "an appointment", ATTENDED_USAGE))


def parse_rebook(words: list[str], rest: str, today: date) -> ConsultationNumber:
    return ConsultationNumber(_number(words, "a consultation", REBOOK_USAGE))


def parse_reminders(words: list[str], rest: str, today: date) -> ConsultationNumber:
    return ConsultationNumber(_number(words, "a consultation", REMINDERS_USAGE))


def _offer_words(marked: Marked, tz: str) -> str:
    if not marked.offer_sent:
        return (
            " The patient was offered new times before."
            if marked.appointment.consultation_id is not None
            else " In-person visits are rebooked by the clinic."
        )
    if not marked.offered:
        return " No free time was found to offer; the patient was asked to reply so someone can find one."
    return f" The patient was offered new times on their channel: {offer_lines(marked.offered, tz)}"


MarkUseCase = Callable[..., Awaitable[Marked]]


async def _mark(
    mark: MarkUseCase, command: MarkAppointment, who: StaffIdentity, ctx: CommandContext
) -> Marked | Reply:
    try:
        marked: Marked = await mark(
            ctx.uow.video_no_shows(),
            command.appointment_id,
            actor=who.email,
            via=who.via,
            now=ctx.now(),
            timezone=ctx.business_tz,
        )
    except VideoError as error:
        return Reply(str(error), kind="error")
    return marked


def _visit(marked: Marked, tz: str) -> str:
    visit = marked.appointment
    return f"Appointment {visit.appointment_id} ({visit.customer}, {time_in(visit.scheduled_at, tz)})"


async def run_noshow(command: MarkAppointment, who: StaffIdentity, ctx: CommandContext) -> Reply:
    marked = await _mark(mark_no_show, command, who, ctx)
    if isinstance(marked, Reply):
        return marked
    tz = ctx.business_tz
    was = STATUS_WORDS.get(marked.previous.value, marked.previous.value)
    return Reply(
        f"{_visit(marked, tz)} is now a no-show (it was {was}).{_offer_words(marked, tz)}",
        title="Marked as a no-show",
        buttons=(Button("Undo: attended", f"attended {command.appointment_id}"),),
    )


async def run_attended(command: MarkAppointment, who: StaffIdentity, ctx: CommandContext) -> Reply:
    marked = await _mark(mark_attended, command, who, ctx)
    if isinstance(marked, Reply):
        return marked
    was = STATUS_WORDS.get(marked.previous.value, marked.previous.value)
    return Reply(
        f"{_visit(marked, ctx.business_tz)} is now marked attended (it was {was}).",
        title="Marked as attended",
    )


async def run_rebook(command: ConsultationNumber, who: StaffIdentity, ctx: CommandContext) -> Reply:
    tz = ctx.business_tz
    try:
        slots = await offer_rebooking(
            ctx.uow.video_no_shows(), command.consultation_id, actor=who.email, via=who.via, now=ctx.now()
        )
    except VideoError as error:
        return Reply(str(error), kind="error")
    if not slots:
        return Reply(
            f"No free time was found to offer for consultation {command.consultation_id} in the next two weeks; "
            "the patient was asked to reply so someone can find one.",
            title="Rebooking offered",
        )
    return Reply(
        f"The patient of consultation {command.consultation_id} was offered new times on their channel: "
        f"{offer_lines(slots, tz)} Their answer books it.",
        title="Rebooking offered",
    )


def _when(moment: datetime, tz: str) -> str:
    return time_in(moment, tz)


async def run_reminders(command: ConsultationNumber, who: StaffIdentity, ctx: CommandContext) -> Reply:
    tz = ctx.business_tz
    lines = await reminder_log(ctx.database, command.consultation_id)
    if not lines:
        return Reply(
            f"Consultation {command.consultation_id} has no reminders yet (they are planned when due)."
        )
    rows = tuple(
        (
            "the clinic system's reminder"
            if line.version == FEED_VERSION
            else f"{lead_time_words(line.minutes_before)} before"
            + (f" (v{line.version})" if line.version > 1 else ""),
            _when(line.planned_at, tz),
            channel_words(line.channel) if line.channel else "—",
            status_words(line.status),
            line.reason or "",
        )
        for line in lines
    )
    return Reply(
        f"Reminders of consultation {command.consultation_id}, times in {tz}:",
        title="Reminder log",
        table=Table(("Reminder", "Planned", "Channel", "Status", "Why"), rows),
    )
