"""`video book|slots|reschedule|cancel|list`: video consultations from Slack, Telegram or the console.

Times staff type are the clinician's own wall-clock time (their clinic's timezone); replies name that zone
and, for bookings, the patient's own time and zone too.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar

from bot.commands.context import CommandContext
from bot.commands.parsing import ParseError, recipient_ref, take_flag
from bot.commands.video_times import DaySpec, WhenSpec, parse_day, parse_when, when_words
from bot.replies import Button, Field, Reply, Table
from domain.notifications.rules import told_sentence
from domain.staff import StaffIdentity
from domain.video.booking import (
    BookedConsultation,
    BookingChoices,
    BookingRequest,
    book_consultation,
    booking_choices,
    cancel_consultation,
    consultation_clinician,
    find_free_slots,
    list_consultations,
    reschedule_consultation,
    time_in,
    zone_name,
)
from domain.video.booking_ports import BookableService, Clinician
from domain.video.model import SLOT_STEP, STATUS_WORDS, VideoError
from domain.video.ports import VideoRooms
from domain.video.slots import zone_of
from providers.video.rooms import video_rooms_from
from reports.everyday_names import STAFF_TITLES, everyday_names, plain
from storage.queries.customers import customers_by_reference
from storage.queries.video import consultation_line
from switchboard.settings import ConfigurationError

BOOK_USAGE = "video book CUSTOMER SERVICE with STAFF at TIME  (TIME in the clinician's timezone)"
SLOTS_USAGE = "video slots STAFF [SERVICE] [on DATE]"
RESCHEDULE_USAGE = "video reschedule ID to TIME"
CANCEL_USAGE = "video cancel ID [confirm]"
LIST_USAGE = "video list [today|tomorrow|this week|next week|last week] [STAFF|mine]"
#: How many days `video slots` looks ahead when no day is named, and how many days with room it shows.
SLOT_DAYS, SLOT_DAYS_SHOWN = 14, 5
LIST_LIMIT = 40
_ID = re.compile(r"#?(\d{1,18})")


# --- what staff type ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BookVideo:
    customer_and_service: tuple[str, ...]
    staff: str
    when: WhenSpec


@dataclass(frozen=True)
class VideoSlots:
    staff_and_service: tuple[str, ...]
    day: DaySpec | None = None


@dataclass(frozen=True)
class RescheduleVideo:
    consultation_id: int
    when: WhenSpec


@dataclass(frozen=True)
class CancelVideo:
    consultation_id: int
    #: Asked and answered: without it the bot says what would be cancelled and asks (a mistyped number
    #: must not cancel another patient's consultation and tell them so).
    confirm: bool = False


@dataclass(frozen=True)
class ListVideo:
    period: str = "today"  # one of PERIODS
    staff: str | None = None  # None: everyone; "mine": the asker


def _consultation_id(word: str, usage: str) -> int:
    found = _ID.fullmatch(word)
    if found is None:
        raise ParseError("Name the consultation by its number (`video list` shows them).", usage)
    return int(found[1])


def _split_at(words: Sequence[str], marker: str) -> tuple[list[str], list[str]] | None:
    lowered = [w.lower() for w in words]
    if marker not in lowered:
        return None
    index = len(lowered) - 1 - lowered[::-1].index(marker)
    return list(words[:index]), list(words[index + 1 :])


def parse_book(words: list[str], rest: str, today: date) -> BookVideo:
    with_split = _split_at(words, "with")
    if with_split is None or not with_split[0]:
        raise ParseError("Say who, which service, with whom and when.", BOOK_USAGE)
    head, tail = with_split
    at_split = _split_at(tail, "at")
    if at_split is None or not at_split[0]:
        raise ParseError("Say with whom and when, e.g. “with Dr Lee at tomorrow 10:30”.", BOOK_USAGE)
    if len(head) < 2:
        raise ParseError("Say the customer and the video service.", BOOK_USAGE)
    staff, when = at_split
    return BookVideo(tuple(head), " ".join(staff), parse_when(when, today, BOOK_USAGE))


def parse_slots(words: list[str], rest: str, today: date) -> VideoSlots:
    day = None
    on_split = _split_at(words, "on")
    if on_split is not None and on_split[1]:
        words, day = on_split[0], parse_day(on_split[1], today, SLOTS_USAGE)
    elif words and words[-1].lower() in ("today", "tomorrow", "heute", "morgen", "übermorgen", "uebermorgen"):
        words, day = words[:-1], parse_day(words[-1:], today, SLOTS_USAGE)
    if not words:
        raise ParseError("Say whose free times: a clinician's name, or “mine”.", SLOTS_USAGE)
    return VideoSlots(tuple(words), day)


def parse_reschedule(words: list[str], rest: str, today: date) -> RescheduleVideo:
    if len(words) < 3 or words[1].lower() != "to":
        raise ParseError("Say which consultation and the new time.", RESCHEDULE_USAGE)
    return RescheduleVideo(
        _consultation_id(words[0], RESCHEDULE_USAGE), parse_when(words[2:], today, RESCHEDULE_USAGE)
    )


def parse_cancel(words: list[str], rest: str, today: date) -> CancelVideo:
    confirm = take_flag(words, "confirm", "--confirm")
    if len(words) != 1:
        raise ParseError("Name one consultation.", CANCEL_USAGE)
    return CancelVideo(_consultation_id(words[0], CANCEL_USAGE), confirm)


#: The spans `video list` reads: the words that name each, and how the answer says it.
PERIODS = {
    "today": "today",
    "tomorrow": "tomorrow",
    "week": "this week",
    "next_week": "next week",
    "last_week": "last week",
}
_PERIOD_WORDS = {
    ("today",): "today",
    ("tomorrow",): "tomorrow",
    ("week",): "week",
    ("this",): "week",
    ("this", "week"): "week",
    ("next", "week"): "next_week",
    ("last", "week"): "last_week",
}
#: Words that only ever name a span: left over after one, they are a mistake, not a clinician's name.
_SPAN_WORDS = frozenset(word for said in _PERIOD_WORDS for word in said)


def parse_list(words: list[str], rest: str, today: date) -> ListVideo:
    words = list(words)
    period = "today"
    lowered = tuple(w.lower() for w in words)
    for said, name in sorted(_PERIOD_WORDS.items(), key=lambda item: -len(item[0])):
        # The span first ("next week Lena") or last ("Lena next week").
        if lowered[: len(said)] == said:
            period, words = name, words[len(said) :]
            break
        if len(lowered) > len(said) and lowered[-len(said) :] == said:
            period, words = name, words[: -len(said)]
            break
    if words and (words[0].lower() in _SPAN_WORDS or words[-1].lower() in _SPAN_WORDS):
        # "video list next", "video list week next": no span they name, and no clinician is called "next".
        raise ParseError("Say which days: today, tomorrow, this week, next week or last week.", LIST_USAGE)
    staff = " ".join(words) or None
    return ListVideo(period, "mine" if staff and staff.lower() in ("mine", "me", "my") else staff)


# --- matching names --------------------------------------------------------------------------------------------


def _without_title(text: str) -> str:
    words = plain(text).split()
    while words and words[0] in STAFF_TITLES:
        words = words[1:]
    return " ".join(words)


def matching_clinicians(text: str, clinicians: Sequence[Clinician]) -> list[Clinician]:
    """The clinicians `text` names: by email, whole name, a word of the name only they have, or part of it."""
    wanted = plain(text)
    by_id = {str(c.staff_id): c for c in clinicians}
    exact = [c for c in clinicians if wanted in (c.email.lower(), plain(c.name))]
    if exact:
        return exact
    names = everyday_names("staff", [(str(c.staff_id), c.name) for c in clinicians])
    for phrase in (wanted, _without_title(text)):
        if phrase in names and names[phrase] in by_id:
            return [by_id[names[phrase]]]
    bare = _without_title(text)
    return [c for c in clinicians if bare and bare in _without_title(c.name)]


def matching_services(text: str, services: Sequence[BookableService]) -> list[BookableService]:
    wanted = plain(text)
    by_code = {s.code: s for s in services}
    exact = [s for s in services if wanted in (s.code.lower(), plain(s.name))]
    if exact:
        return exact
    names = everyday_names("service", [(s.code, s.name) for s in services])
    if wanted in names and names[wanted] in by_code:
        return [by_code[names[wanted]]]
    return [s for s in services if wanted and wanted in plain(s.name)]


def _clinician_for(text: str, who: StaffIdentity, choices: BookingChoices) -> Clinician | Reply:
    if text.lower() in ("me", "mine", "myself", "my"):
        mine = [c for c in choices.clinicians if c.staff_id == who.staff_id]
        return (
            mine[0]
            if mine
            else Reply("You have no working hours set, so you take no video consultations.", kind="error")
        )
    found = matching_clinicians(text, choices.clinicians)
    if len(found) == 1:
        return found[0]
    if not found:
        known = ", ".join(c.name for c in choices.clinicians) or "none yet"
        return Reply(f"No clinician with working hours matches “{text}”. Clinicians: {known}.", kind="error")
    names = ", ".join(c.name for c in found[:6])
    return Reply(f"“{text}” could be {names}; say which.", kind="error")


def _service_list(services: Sequence[BookableService]) -> str:
    return ", ".join(f"{s.name} ({s.code})" for s in services) or "none"


# --- running them ----------------------------------------------------------------------------------------------

C = TypeVar("C")
VideoHandler = Callable[[C, StaffIdentity, CommandContext], Awaitable[Reply]]


def _refusals_in_words(run: VideoHandler[C]) -> VideoHandler[C]:
    """A booking that cannot be made, or a consultation that does not exist, is answered in words."""

    async def handle(command: C, who: StaffIdentity, ctx: CommandContext) -> Reply:
        try:
            return await run(command, who, ctx)
        except VideoError as error:
            return Reply(str(error), kind="error")
        except ConfigurationError as error:
            return Reply(f"Video rooms are not set up: {error}.", kind="error")

    return handle


def _rooms(ctx: CommandContext) -> VideoRooms:
    return video_rooms_from(ctx.settings)


def _starts_at(when: WhenSpec, clinician: Clinician, ctx: CommandContext) -> datetime:
    """The clinician's wall-clock time as an aware time in their zone (a time the clocks skip stays one, so
    booking refuses it in words); a bare weekday already past today means next week's."""
    zone = zone_of(clinician.timezone)
    today = ctx.now().astimezone(zone).date()
    day = when.day.resolve(today)
    starts_at = datetime.combine(day, when.at, tzinfo=zone)
    if when.day.is_weekday and starts_at <= ctx.now():
        starts_at = datetime.combine(day + timedelta(days=7), when.at, tzinfo=zone)
    return starts_at


def _patient_words(booked: BookedConsultation) -> str:
    first = booked.customer_name.split()[0] if booked.customer_name.split() else booked.customer_name
    return f"{time_in(booked.starts_at, booked.customer_timezone)} for {first}"


def _told(booked: BookedConsultation, what: str = "the link") -> str:
    """Where the patient hears of it: the channel the message takes, and why that one."""
    return told_sentence(booked.customer_name, what, booked.customer_channel, booked.customer_channel_why)


def _fields(booked: BookedConsultation) -> tuple[Field, ...]:
    return (
        Field("Consultation", str(booked.consultation_id)),
        Field("Clinician's time", time_in(booked.starts_at, booked.staff_timezone)),
        Field(
            f"{booked.customer_name}'s time",
            f"{time_in(booked.starts_at, booked.customer_timezone)} ({booked.customer_timezone})",
        ),
        Field("Length", f"{booked.duration_minutes} min"),
        Field("Status", STATUS_WORDS[booked.status]),
    )


#: The list a booked day is in, as its button says it, nearest first.
_LIST_BUTTONS = (("today", "Today's list"), ("tomorrow", "Tomorrow's list"), ("week", "This week's list"),
                 ("next_week", "Next week's list"))  # fmt: skip


def _buttons(booked: BookedConsultation, ctx: CommandContext) -> tuple[Button, ...]:
    """Free times, the list the consultation is in (the day it was booked for, not always today), cancel."""
    zone = zone_of(ctx.business_tz)
    day, today = booked.starts_at.astimezone(zone).date(), ctx.now().astimezone(zone).date()
    listed = next(
        (
            Button(words, f"video list {PERIODS[period]} {booked.staff_name}")
            for period, words in _LIST_BUTTONS
            if list_days(period, today)[0] <= day < list_days(period, today)[1]
        ),
        None,
    )
    return (
        Button("Free times", f"video slots {booked.staff_name}"),
        *((listed,) if listed else ()),
        Button("Cancel it", f"video cancel {booked.consultation_id}", "danger"),
    )


async def _choices(ctx: CommandContext) -> BookingChoices:
    return await booking_choices(ctx.uow.video_booking(read_only=True))


@_refusals_in_words
async def run_book(command: BookVideo, who: StaffIdentity, ctx: CommandContext) -> Reply:
    choices = await _choices(ctx)
    clinician = _clinician_for(command.staff, who, choices)
    if isinstance(clinician, Reply):
        return clinician
    words = list(command.customer_and_service)
    split = None
    ambiguous: list[BookableService] = []
    for cut in range(1, len(words)):
        found = matching_services(" ".join(words[cut:]), choices.services)
        if len(found) == 1:
            split = (" ".join(words[:cut]), found[0])
            break
        ambiguous = ambiguous or found
    if split is None:
        said = "could be " + _service_list(ambiguous) if ambiguous else "names no video service"
        return Reply(
            f"The end of “{' '.join(words)}” {said}. Video services: {_service_list(choices.services)}.",
            kind="error",
        )
    customer_text, service = split
    reference = recipient_ref(customer_text)
    customers = await customers_by_reference(ctx.database, reference.kind, reference.value)
    if not customers:
        return Reply(f"No customer matches {reference.text}.", kind="error")
    if len(customers) > 1:
        when = " ".join(w for w in when_words(command.when))
        return Reply(
            f"{len(customers)} customers match “{reference.value}”; pick one.",
            buttons=tuple(
                Button(c.label, f"video book #{c.id} {service.code} with {clinician.name} at {when}")
                for c in customers[:5]
            ),
            private=True,
        )
    request = BookingRequest(
        customers[0].id, service.service_id, clinician.staff_id, _starts_at(command.when, clinician, ctx)
    )
    booked = await book_consultation(
        ctx.uow.video_booking(),
        _rooms(ctx),
        request,
        actor=who.email,
        via=who.via,
        now=ctx.now(),
        public_url=ctx.settings.public_url,
    )
    return Reply(
        f"Booked {booked.customer_name} for {booked.service_name} with {booked.staff_name} on "
        f"{time_in(booked.starts_at, booked.staff_timezone)} ({_patient_words(booked)}). {_told(booked)}",
        title="Video consultation booked",
        fields=_fields(booked),
        buttons=_buttons(booked, ctx),
    )


@_refusals_in_words
async def run_reschedule(command: RescheduleVideo, who: StaffIdentity, ctx: CommandContext) -> Reply:
    clinician = await consultation_clinician(ctx.uow.video_booking(read_only=True), command.consultation_id)
    if clinician is None:
        return Reply(
            f"Consultation {command.consultation_id} has no clinician; book a new one.", kind="error"
        )
    booked = await reschedule_consultation(
        ctx.uow.video_booking(),
        _rooms(ctx),
        command.consultation_id,
        _starts_at(command.when, clinician, ctx),
        actor=who.email,
        via=who.via,
        now=ctx.now(),
        public_url=ctx.settings.public_url,
    )
    return Reply(
        f"Moved consultation {booked.consultation_id} ({booked.customer_name}, {booked.service_name} with "
        f"{booked.staff_name}) to {time_in(booked.starts_at, booked.staff_timezone)} ({_patient_words(booked)}). "
        f"The link stays the same. {_told(booked, 'the new time')}",
        title="Video consultation moved",
        fields=_fields(booked),
        buttons=_buttons(booked, ctx),
    )


@_refusals_in_words
async def run_cancel(command: CancelVideo, who: StaffIdentity, ctx: CommandContext) -> Reply:
    if not command.confirm:
        line = await consultation_line(ctx.database, command.consultation_id)
        if line is None:
            return Reply(f"There is no video consultation {command.consultation_id}.", kind="error")
        if line.status == "cancelled":
            return Reply(f"Consultation {line.id} is cancelled already.", kind="error")
        when = time_in(line.scheduled_at, ctx.business_tz)
        return Reply(
            f"Cancel consultation {line.id}: {line.customer}, {line.service or 'video consultation'} with "
            f"{line.staff or 'no clinician'} on {when}? The patient is told on their channel, and the time is "
            "free again.",
            title="Cancel this video consultation?",
            buttons=(Button("Cancel it", f"video cancel {line.id} confirm", "danger"),),
            private=True,
        )
    booked = await cancel_consultation(
        ctx.uow.video_booking(),
        command.consultation_id,
        actor=who.email,
        via=who.via,
        now=ctx.now(),
        public_url=ctx.settings.public_url,
    )
    return Reply(
        f"Cancelled consultation {booked.consultation_id}: {booked.customer_name}, {booked.service_name} with "
        f"{booked.staff_name} on {time_in(booked.starts_at, booked.staff_timezone)}. The time is free again. "
        f"{_told(booked, 'the cancellation')}",
        title="Video consultation cancelled",
        buttons=(Button("Free times", f"video slots {booked.staff_name}"),),
    )


def _ranges(slots: Sequence[datetime], tz: str) -> str:
    """Start times as runs: "09:00–11:30, 13:30–16:30" (every five minutes inside a run)."""
    runs: list[tuple[datetime, datetime]] = []
    for slot in slots:
        if runs and slot - runs[-1][1] == SLOT_STEP:
            runs[-1] = (runs[-1][0], slot)
        else:
            runs.append((slot, slot))
    zone = zone_of(tz)
    return ", ".join(
        f"{a.astimezone(zone):%H:%M}" if a == b else f"{a.astimezone(zone):%H:%M}–{b.astimezone(zone):%H:%M}"
        for a, b in runs
    )


@_refusals_in_words
async def run_slots(command: VideoSlots, who: StaffIdentity, ctx: CommandContext) -> Reply:
    choices = await _choices(ctx)
    if not choices.services:
        return Reply("There are no video services to book.", kind="error")
    words = list(command.staff_and_service)
    clinician: Clinician | Reply | None = None
    service = None
    for cut in range(len(words), 0, -1):
        candidate = _clinician_for(" ".join(words[:cut]), who, choices)
        if isinstance(candidate, Clinician):
            clinician, rest = candidate, " ".join(words[cut:])
            if rest:
                found = matching_services(rest, choices.services)
                if len(found) != 1:
                    return Reply(
                        f"“{rest}” names no one video service. Video services: {_service_list(choices.services)}.",
                        kind="error",
                    )
                service = found[0]
            break
        clinician = clinician or candidate
    if not isinstance(clinician, Clinician):
        return clinician or Reply("Say whose free times.", kind="error")
    service = service or choices.services[0]
    zone = zone_of(clinician.timezone)
    now = ctx.now()
    if command.day is not None:
        day = command.day.resolve(now.astimezone(zone).date())
        start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    else:
        start, end = now, now + timedelta(days=SLOT_DAYS)
    slots = await find_free_slots(
        ctx.uow.video_booking(read_only=True), clinician.staff_id, service.service_id, start, end, now=now
    )
    what = f"{service.name} ({service.duration_minutes} min)"
    title = f"Free times: {clinician.name}"
    if not slots:
        when = "that day" if command.day is not None else f"in the next {SLOT_DAYS} days"
        return Reply(f"{clinician.name} has no free time for {what} {when}.", title=title)
    by_day: dict[date, list[datetime]] = {}
    for slot in slots:
        by_day.setdefault(slot.astimezone(zone).date(), []).append(slot)
    shown = list(by_day.items())[:SLOT_DAYS_SHOWN]
    zone_said = zone_name(slots[0].astimezone(zone))
    fields = tuple(
        Field(f"{day:%a} {day.day} {day:%b}", _ranges(day_slots, clinician.timezone))
        for day, day_slots in shown
    )
    first = slots[0]
    # The help promises the next two weeks; the days beyond those shown are said, with how to see one.
    more = len(by_day) - len(shown)
    later = (
        f" {more} more day{'s' if more != 1 else ''} in the next {SLOT_DAYS} days have room: "
        f"`video slots {clinician.name} on DATE` shows one."
        if more > 0
        else ""
    )
    return Reply(
        f"{clinician.name}'s free start times for {what}, {clinician.timezone} time ({zone_said}); "
        f"every five minutes inside a range. The first is {time_in(first, clinician.timezone)}.{later}",
        title=title,
        fields=fields,
    )


def list_days(period: str, today: date) -> tuple[date, date]:
    """The first day `video list` shows and the day after its last."""
    if period in ("today", "tomorrow"):
        first = today + timedelta(days=0 if period == "today" else 1)
        return first, first + timedelta(days=1)
    weeks_on = {"next_week": 1, "last_week": -1}.get(period, 0)
    monday = today - timedelta(days=today.weekday()) + timedelta(days=7 * weeks_on)
    return monday, monday + timedelta(days=7)


@_refusals_in_words
async def run_list(command: ListVideo, who: StaffIdentity, ctx: CommandContext) -> Reply:
    zone = zone_of(ctx.business_tz)
    first, last = list_days(command.period, ctx.now().astimezone(zone).date())
    staff_id = None
    whose = "everyone"
    if command.staff is not None:
        clinician = _clinician_for(command.staff, who, await _choices(ctx))
        if isinstance(clinician, Reply):
            return clinician
        staff_id, whose = clinician.staff_id, clinician.name
    listed = await list_consultations(
        ctx.uow.video_booking(read_only=True),
        datetime.combine(first, time(0), tzinfo=zone).astimezone(UTC),
        datetime.combine(last, time(0), tzinfo=zone).astimezone(UTC),
        staff_id=staff_id,
    )
    period = PERIODS[command.period]
    title = f"Video consultations {period}: {whose}"
    if not listed:
        for_whom = "" if staff_id is None else f" for {whose}"
        return Reply(f"No video consultations {period}{for_whom}.", title=title)
    listed = sorted(listed, key=lambda c: (c.staff_name, c.starts_at))
    shown = listed[:LIST_LIMIT]
    table = Table(
        ("#", "Clinician", "When", "Patient", "Service", "Status"),
        tuple(
            (
                str(c.consultation_id),
                c.staff_name,
                time_in(c.starts_at, c.staff_timezone),
                c.customer_name,
                c.service_name,
                STATUS_WORDS[c.status],
            )
            for c in shown
        ),
    )
    more = f" Showing the first {LIST_LIMIT}." if len(listed) > LIST_LIMIT else ""
    people = len({c.staff_id for c in listed})
    return Reply(
        f"{_counted(len(listed), 'video consultation')} {period} with {_counted(people, 'clinician')}, "
        f"each in the clinician's own time.{more}",
        title=title,
        table=table,
    )


def _counted(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
