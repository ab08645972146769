"""Booking video consultations: free times, book, reschedule and cancel, each telling the patient in their own time."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime, format_skeleton

from domain.audit import AuditEntry
from domain.notifications.rules import ANSWERED_ON
from domain.services import consultation_name_in
from domain.templates.selection import BY_LANGUAGE, language_of
from domain.video.booking_ports import (
    BookableService,
    Clinician,
    ConsultationListing,
    NewBooking,
    Patient,
    StoredConsultation,
    TimeClaimed,
    VideoBookingUnitOfWork,
)
from domain.video.links import zone_said
from domain.video.model import (
    ACTIVE_STATUSES,
    STATUS_WORDS,
    ConsultationNotFound,
    ConsultationStatus,
    SlotTaken,
    VideoError,
)
from domain.video.ports import VideoRooms
from domain.video.slots import (
    Busy,
    WorkingSpan,
    exists,
    free_slots,
    on_step,
    overlaps,
    steps_of,
    within_hours,
    zone_of,
)

#: The event types the notification rules turn into messages to the patient.
VIDEO_BOOKED, VIDEO_RESCHEDULED, VIDEO_CANCELLED = "video.booked", "video.rescheduled", "video.cancelled"
#: Where a patient's link lives under the public address.
LINK_PATH = "/v/"
#: How far ahead a consultation may be booked.
BOOKING_HORIZON = timedelta(days=366)
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class BookingRequest:
    customer_id: int
    service_id: int
    staff_id: int
    #: Timezone-aware; a wall-clock time in a `ZoneInfo` zone that the clocks skip is refused.
    starts_at: datetime


@dataclass(frozen=True)
class BookedConsultation:
    consultation_id: int
    appointment_id: int | None
    customer_id: int
    customer_name: str
    customer_timezone: str
    staff_id: int
    staff_name: str
    service_name: str
    starts_at: datetime
    duration_minutes: int
    link_token: str | None
    clinician_token: str | None
    room_name: str | None
    version: int
    status: ConsultationStatus
    staff_timezone: str = "UTC"
    #: The channel the patient is told on (None: no channel reaches them), and why: a key of
    #: domain.notifications.rules.REACH_REASONS.
    customer_channel: str | None = None
    customer_channel_why: str = ""
    #: The patient's link (`PUBLIC_URL/v/TOKEN`).
    link: str = ""
    #: The service as the patient reads it: its name in their language, if it has one.
    patient_service_name: str = ""
    #: The service's names by language (None: none), and False for a consultation booked without a service.
    service_names: Mapping[str, str] | None = None
    has_service: bool = True

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(minutes=self.duration_minutes)


@dataclass(frozen=True)
class BookingChoices:
    """Who consultations can be booked with, and the video services, for matching names."""

    clinicians: list[Clinician]
    services: list[BookableService]


# --- words -----------------------------------------------------------------------------------------------


def zone_name(moment: datetime) -> str:
    """The zone's short name at that moment ("CET", "GMT"); "UTC+03" where the zone has no letters."""
    name = moment.tzname() or "UTC"
    return f"UTC{name}" if name[:1] in "+-" else name


def time_in(moment: datetime, tz: str, locale: str = "en") -> str:
    """A moment as a reader in `tz` says it: "Mon 7 Dec 10:30 CET"; for "de" as German writes it, the day as the
    link page gives it: "Mo., 7. Dez., 10:30 Uhr MEZ"."""
    local = moment.astimezone(zone_of(tz))
    if locale.lower().startswith("de"):
        day = format_skeleton("MMMEd", local, locale="de_DE")
        return f"{day}, {local:%H:%M} Uhr {zone_said(local, 'de')}"
    return f"{format_datetime(local, 'EEE d MMM HH:mm', locale='en')} {zone_name(local)}"


#: Languages `time_in` writes in their own way; any other reads the English form.
DATED_LANGUAGES = ("de",)


#: Who a consultation is with when it names no clinician, as each language says it after "with" (German
#: "mit" and "bei" take the dative).
UNNAMED_CLINICIAN: dict[str, str] = {"en": "your clinician", "de": "Ihrem Behandlungsteam"}


def clinician_in(name: str | None, locale: str) -> str:
    """The clinician as a patient reading `locale` is told: their name, else UNNAMED_CLINICIAN in that language."""
    if name and name != UNNAMED_CLINICIAN["en"]:
        return name
    return UNNAMED_CLINICIAN.get(language_of(locale), UNNAMED_CLINICIAN["en"])


def with_unnamed_clinician(table: dict[str, dict[str, str]], name: str | None) -> dict[str, dict[str, str]]:
    """A BY_LANGUAGE table that also says, in each language, who a consultation naming no clinician is with."""
    if name and name != UNNAMED_CLINICIAN["en"]:
        return table
    for code, words in table.items():
        words["clinician"] = clinician_in(None, "en" if code == "*" else code)
    return table


def said_by_language(
    service: str | None,
    names: Mapping[str, str] | None,
    moment: datetime,
    tz: str,
    patient_locale: str,
    *,
    previous: datetime | None = None,
) -> dict[str, dict[str, str]]:
    """The service's name and the time (and a moved consultation's `previous_time`) as a template in each
    language says them (the payload's BY_LANGUAGE table): the patient's language, each language the service is
    named in and each `time_in` writes, and "*" for a template in any other: the English name if the service
    has one, else the staff name, and the English time."""
    languages = {language_of(patient_locale), *DATED_LANGUAGES, *(language_of(code) for code in names or {})}
    table: dict[str, dict[str, str]] = {}
    for code in [*sorted(languages), "*"]:
        reader = "en" if code == "*" else code
        words = {
            "service": consultation_name_in(service, names, reader),
            "appointment_time": time_in(moment, tz, reader),
        }
        if previous is not None:
            words["previous_time"] = time_in(previous, tz, reader)
        table[code] = words
    return table


def describe_hours(hours: list[WorkingSpan], tz: str) -> str:
    """Working hours as staff read them: "Mon 09:00–12:30, 13:30–17:00; Tue ... (Europe/Berlin)"."""
    days = []
    for weekday in range(7):
        spans = sorted((s.starts, s.ends) for s in hours if s.weekday == weekday)
        if spans:
            days.append(f"{_WEEKDAYS[weekday]} " + ", ".join(f"{a:%H:%M}–{b:%H:%M}" for a, b in spans))
    return "; ".join(days) + f" ({tz})" if days else "none"


def patient_link(public_url: str, link_token: str | None) -> str:
    return f"{public_url.rstrip('/')}{LINK_PATH}{link_token}" if link_token else ""


# --- reading -------------------------------------------------------------------------------------------------


async def booking_choices(uow: VideoBookingUnitOfWork) -> BookingChoices:
    async with uow:
        return BookingChoices(await uow.video.clinicians(), await uow.video.video_services())


async def find_free_slots(
    uow: VideoBookingUnitOfWork,
    staff_id: int,
    service_id: int,
    start: datetime,
    end: datetime,
    *,
    limit: int | None = None,
    now: datetime,
) -> list[datetime]:
    """Start times (UTC) from `start` to `end` at which the service fits the clinician's free working time."""
    _require_aware(start, "start")
    _require_aware(end, "end")
    if end <= start:
        raise VideoError("The end of the search must come after its start.")
    async with uow:
        clinician = await _clinician(uow, staff_id)
        service = await _video_service(uow, service_id)
        hours = await uow.video.working_hours(staff_id)
        length = timedelta(minutes=service.duration_minutes)
        busy = await uow.video.busy(staff_id, start - length, end + length)
    slots = free_slots(hours, busy, service.duration_minutes, clinician.timezone, start, end, now)
    return slots if limit is None else slots[:limit]


async def consultation_clinician(uow: VideoBookingUnitOfWork, consultation_id: int) -> Clinician | None:
    """Who holds a consultation (times for it are typed in their zone); refuses one that does not exist."""
    async with uow:
        found = await uow.video.consultation(consultation_id)
        if found is None:
            raise ConsultationNotFound(f"There is no video consultation {consultation_id}.")
        return None if found.staff_id is None else await uow.video.clinician(found.staff_id)


async def list_consultations(
    uow: VideoBookingUnitOfWork, start: datetime, end: datetime, *, staff_id: int | None = None
) -> list[ConsultationListing]:
    async with uow:
        return await uow.video.listing(start, end, staff_id=staff_id)


# --- changing ------------------------------------------------------------------------------------------------


async def book_consultation(
    uow: VideoBookingUnitOfWork,
    rooms: VideoRooms,
    request: BookingRequest,
    *,
    actor: str,
    via: str,
    now: datetime,
    public_url: str = "",
    answered_on: str | None = None,
) -> BookedConsultation:
    """Book a video consultation: an appointment, its consultation with a room and two links, and the
    clinician's time claimed, in one transaction; the patient is told on their channel, in their time
    (not by a rule's message on `answered_on`, where they were answered already in their conversation)."""
    starts_at = _bookable_start(request.starts_at, now)
    async with uow:
        patient = await _patient(uow, request.customer_id)
        clinician = await _clinician(uow, request.staff_id)
        service = await _video_service(uow, request.service_id)
        await _require_free(uow, clinician, service.duration_minutes, starts_at, except_appointment=None)
        room_name = "sb-" + secrets.token_hex(8)
        booking = NewBooking(
            customer_id=patient.customer_id,
            service_id=service.service_id,
            staff_id=clinician.staff_id,
            location_id=clinician.location_id,
            starts_at=starts_at,
            duration_minutes=service.duration_minutes,
            price_minor=service.price_minor,
            currency=service.currency,
            room_name=room_name,
            room_url=rooms.room_url(room_name),
            link_token=secrets.token_urlsafe(24),
            clinician_token=secrets.token_urlsafe(24),
            created_at=now,
        )
        consultation_id, appointment_id = await uow.video.add_booking(booking)
        await _claim(uow, clinician, appointment_id, starts_at, service.duration_minutes)
        booked = BookedConsultation(
            consultation_id=consultation_id,
            appointment_id=appointment_id,
            customer_id=patient.customer_id,
            customer_name=patient.name,
            customer_timezone=patient.timezone,
            staff_id=clinician.staff_id,
            staff_name=clinician.name,
            service_name=service.name,
            starts_at=starts_at,
            duration_minutes=service.duration_minutes,
            link_token=booking.link_token,
            clinician_token=booking.clinician_token,
            room_name=room_name,
            version=1,
            status=ConsultationStatus.SCHEDULED,
            staff_timezone=clinician.timezone,
            link=patient_link(public_url, booking.link_token),
            patient_service_name=consultation_name_in(service.name, service.names, patient.locale),
            service_names=service.names,
        )
        booked = await _tell_patient(
            uow,
            VIDEO_BOOKED,
            f"{VIDEO_BOOKED}:{consultation_id}",
            booked,
            patient,
            now,
            extra=_answered(answered_on),
        )
        _audit(uow, actor, via, "video.book", booked, {"starts_at": starts_at.isoformat()})
        await uow.commit()
    return booked


async def reschedule_consultation(
    uow: VideoBookingUnitOfWork,
    rooms: VideoRooms,
    consultation_id: int,
    new_start: datetime,
    *,
    actor: str,
    via: str,
    now: datetime,
    public_url: str = "",
    answered_on: str | None = None,
) -> BookedConsultation:
    """Move a consultation that is still to come: its claims move with it in one transaction, its version
    grows (reminders for the old time are recognised as stale), its link stays the same. The patient is told
    as a booking is (`answered_on` as there)."""
    starts_at = _bookable_start(new_start, now)
    async with uow:
        current = await _consultation(uow, consultation_id)
        _require_changeable(current, now, "moved")
        if current.appointment_id is None or current.staff_id is None or current.service_id is None:
            raise VideoError(f"Consultation {consultation_id} has no bookable appointment; book a new one.")
        if current.starts_at == starts_at:
            raise VideoError(f"Consultation {consultation_id} is already at that time.")
        patient = await _patient(uow, current.customer_id)
        clinician = await _clinician(uow, current.staff_id)
        service = await _service(uow, current.service_id)
        await _require_free(
            uow, clinician, current.duration_minutes, starts_at, except_appointment=current.appointment_id
        )
        await uow.video.release(current.appointment_id)
        await _claim(uow, clinician, current.appointment_id, starts_at, current.duration_minutes)
        room_name = current.room_name
        if room_name is None:  # consultations from before rooms were made get one now
            room_name = "sb-" + secrets.token_hex(8)
        await uow.video.move(
            current,
            starts_at,
            current.version + 1,
            room_name=room_name,
            room_url=rooms.room_url(room_name),
        )
        moved = await _consultation(uow, consultation_id)
        booked = _booked(moved, patient, clinician, service, public_url)
        booked = await _tell_patient(
            uow,
            VIDEO_RESCHEDULED,
            f"{VIDEO_RESCHEDULED}:{consultation_id}:{booked.version}",
            booked,
            patient,
            now,
            previous_starts_at=current.starts_at,
            extra=_answered(answered_on),
        )
        _audit(
            uow,
            actor,
            via,
            "video.reschedule",
            booked,
            {"from": current.starts_at.isoformat(), "to": starts_at.isoformat(), "version": booked.version},
        )
        await uow.commit()
    return booked


async def cancel_consultation(
    uow: VideoBookingUnitOfWork,
    consultation_id: int,
    *,
    actor: str,
    via: str,
    now: datetime,
    reason: str | None = None,
    public_url: str = "",
) -> BookedConsultation:
    """Cancel a consultation still to come: its time is free again and the patient is told."""
    async with uow:
        current = await _consultation(uow, consultation_id)
        _require_changeable(current, now, "cancelled")
        patient = await _patient(uow, current.customer_id)
        if current.staff_id is None:
            raise VideoError(f"Consultation {consultation_id} has no clinician; it cannot be cancelled here.")
        clinician = await _clinician(uow, current.staff_id)
        service = await _service(uow, current.service_id) if current.service_id is not None else None
        if current.appointment_id is not None:
            await uow.video.release(current.appointment_id)
        await uow.video.cancel(current, now)
        cancelled = await _consultation(uow, consultation_id)
        booked = _booked(cancelled, patient, clinician, service, public_url)
        extra = {"reason": reason} if reason else {}
        booked = await _tell_patient(
            uow, VIDEO_CANCELLED, f"{VIDEO_CANCELLED}:{consultation_id}", booked, patient, now, extra=extra
        )
        _audit(uow, actor, via, "video.cancel", booked, {"reason": reason} if reason else {})
        await uow.commit()
    return booked


# --- the rules ------------------------------------------------------------------------------------------------


def _require_aware(moment: datetime, what: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise VideoError(f"The {what} time needs a timezone (an offset such as +01:00, or a zone).")


def _bookable_start(starts_at: datetime, now: datetime) -> datetime:
    """The start as a UTC instant, once it is a real, future time on the five-minute grid."""
    _require_aware(starts_at, "start")
    if isinstance(starts_at.tzinfo, ZoneInfo) and not exists(starts_at):
        raise VideoError(
            f"{starts_at:%H:%M} on {starts_at:%a} {starts_at.day} {starts_at:%b} does not exist in {starts_at.tzinfo.key}: the clocks "
            "go forward that night. Pick a time after the change."
        )
    utc = starts_at.astimezone(UTC)
    if utc <= now:
        raise VideoError(f"{_plain_time(starts_at)} has already passed; pick a time in the future.")
    if utc > now + BOOKING_HORIZON:
        raise VideoError("Consultations can be booked up to a year ahead.")
    if not on_step(utc):
        raise VideoError("Consultations start on the five-minute mark (10:00, 10:05, 10:10...).")
    return utc


def _plain_time(moment: datetime) -> str:
    return f"{moment:%a} {moment.day} {moment:%b %H:%M} {zone_name(moment)}"


def _require_changeable(current: StoredConsultation, now: datetime, verb: str) -> None:
    number = current.consultation_id
    if current.status is ConsultationStatus.CANCELLED:
        raise VideoError(f"Consultation {number} was cancelled; book a new one instead.")
    if current.status not in ACTIVE_STATUSES or current.starts_at <= now:
        said = STATUS_WORDS.get(current.status, current.status.value)
        raise VideoError(
            f"Consultation {number} has already begun or taken place ({said}); it cannot be {verb}. "
            "Book a new one instead."
        )


async def _require_free(
    uow: VideoBookingUnitOfWork,
    clinician: Clinician,
    duration_minutes: int,
    starts_at: datetime,
    *,
    except_appointment: int | None,
) -> None:
    hours = await uow.video.working_hours(clinician.staff_id)
    tz = clinician.timezone
    if not hours:
        raise VideoError(
            f"{clinician.name} has no working hours set, so no consultations can be booked with them."
        )
    if not within_hours(hours, tz, starts_at, duration_minutes):
        raise VideoError(
            f"{_span(starts_at, duration_minutes, tz)} is outside {clinician.name}'s working hours "
            f"({describe_hours(hours, tz)})."
        )
    ends_at = starts_at + timedelta(minutes=duration_minutes)
    busy = await uow.video.busy(clinician.staff_id, starts_at, ends_at, except_appointment=except_appointment)
    clash = overlaps(busy, starts_at, ends_at)
    if clash is not None:
        taken, asked = _span(clash.starts_at, _minutes(clash), tz), _span(starts_at, duration_minutes, tz)
        raise SlotTaken(
            f"{clinician.name} is already booked {taken}"
            + (", the very time asked for" if taken == asked else f", which overlaps {asked}")
            + ". Pick a free time."
        )


def _minutes(busy: Busy) -> int:
    return int((busy.ends_at - busy.starts_at).total_seconds() // 60)


def _span(starts_at: datetime, duration_minutes: int, tz: str) -> str:
    local = starts_at.astimezone(zone_of(tz))
    end = local + timedelta(minutes=duration_minutes)
    return f"{local:%a} {local.day} {local:%b %H:%M}–{end.astimezone(zone_of(tz)):%H:%M} {zone_name(local)}"


async def _claim(
    uow: VideoBookingUnitOfWork, clinician: Clinician, appointment_id: int, starts_at: datetime, minutes: int
) -> None:
    try:
        await uow.video.claim(
            clinician.staff_id, appointment_id, steps_of(starts_at, starts_at + timedelta(minutes=minutes))
        )
    except TimeClaimed:
        raise SlotTaken(
            f"Someone else has just booked {clinician.name} at {_span(starts_at, minutes, clinician.timezone)}; "
            "nothing was booked. Pick another time."
        ) from None


async def _consultation(uow: VideoBookingUnitOfWork, consultation_id: int) -> StoredConsultation:
    found = await uow.video.consultation(consultation_id, for_update=True)
    if found is None:
        raise ConsultationNotFound(f"There is no video consultation {consultation_id}.")
    return found


async def _patient(uow: VideoBookingUnitOfWork, customer_id: int) -> Patient:
    found = await uow.video.patient(customer_id)
    if found is None:
        raise VideoError(f"There is no customer #{customer_id}.")
    return found


async def _clinician(uow: VideoBookingUnitOfWork, staff_id: int) -> Clinician:
    found = await uow.video.clinician(staff_id)
    if found is None:
        raise VideoError(f"There is no staff member {staff_id}.")
    if not found.active:
        raise VideoError(f"{found.name} no longer works here; book with someone else.")
    return found


async def _service(uow: VideoBookingUnitOfWork, service_id: int) -> BookableService:
    found = await uow.video.service(service_id)
    if found is None:
        raise VideoError(f"There is no service {service_id}.")
    return found


async def _video_service(uow: VideoBookingUnitOfWork, service_id: int) -> BookableService:
    found = await _service(uow, service_id)
    if found.kind != "video":
        raise VideoError(f"{found.name} is not a video service; book it as a visit to the clinic.")
    return found


def _booked(
    stored: StoredConsultation,
    patient: Patient,
    clinician: Clinician,
    service: BookableService | None,
    public_url: str,
) -> BookedConsultation:
    return BookedConsultation(
        consultation_id=stored.consultation_id,
        appointment_id=stored.appointment_id,
        customer_id=patient.customer_id,
        customer_name=patient.name,
        customer_timezone=patient.timezone,
        staff_id=clinician.staff_id,
        staff_name=clinician.name,
        service_name=service.name if service is not None else "Video consultation",
        starts_at=stored.starts_at,
        duration_minutes=stored.duration_minutes,
        link_token=stored.link_token,
        clinician_token=stored.clinician_token,
        room_name=stored.room_name,
        version=stored.version,
        status=stored.status,
        staff_timezone=clinician.timezone,
        link=patient_link(public_url, stored.link_token),
        patient_service_name=consultation_name_in(
            service.name if service is not None else None,
            service.names if service is not None else None,
            patient.locale,
        ),
        service_names=service.names if service is not None else None,
        has_service=service is not None,
    )


def _answered(channel: str | None) -> dict[str, str]:
    return {ANSWERED_ON: channel} if channel else {}


async def _tell_patient(
    uow: VideoBookingUnitOfWork,
    event_type: str,
    key: str,
    booked: BookedConsultation,
    patient: Patient,
    now: datetime,
    *,
    previous_starts_at: datetime | None = None,
    extra: Mapping[str, str] | None = None,
) -> BookedConsultation:
    """A business event the notification rules turn into a message on the patient's channel. The payload
    has no `appointment_at`: that would make the rules send it at the consultation's time, not now. The
    consultation comes back with the channel that message will take, and why, for staff to be told."""
    payload: dict[str, Any] = {
        "consultation_id": booked.consultation_id,
        "version": booked.version,
        "service": booked.patient_service_name or booked.service_name,
        "clinician": booked.staff_name,
        "appointment_time": time_in(booked.starts_at, patient.timezone, patient.locale),
        "timezone": patient.timezone,
        "starts_at": booked.starts_at.isoformat(),
        "duration_minutes": booked.duration_minutes,
        "link": booked.link,
        BY_LANGUAGE: said_by_language(
            booked.service_name if booked.has_service else None,
            booked.service_names,
            booked.starts_at,
            patient.timezone,
            patient.locale,
            previous=previous_starts_at,
        ),
        **(extra or {}),
    }
    if previous_starts_at is not None:
        payload["previous_time"] = time_in(previous_starts_at, patient.timezone, patient.locale)
    await uow.notifications.add_event(event_type, key, patient.customer_id, payload, now)
    channel, why = await uow.notifications.reaching_channel(event_type, patient.customer_id, at=now)
    return replace(booked, customer_channel=channel, customer_channel_why=why)


def _audit(
    uow: VideoBookingUnitOfWork,
    actor: str,
    via: str,
    action: str,
    booked: BookedConsultation,
    detail: dict[str, object],
) -> None:
    uow.audit.record(
        AuditEntry(
            actor=actor,
            via=via,
            action=action,
            target=f"video_consultation:{booked.consultation_id}",
            detail={"customer_id": booked.customer_id, "staff_id": booked.staff_id, **detail},
        )
    )
