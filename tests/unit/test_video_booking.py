"""Booking use-cases with fakes: what is refused and why, what the patient is told, and what is audited."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from domain.notifications.model import BusinessEvent, RecordedEvent
from domain.video.booking import (
    BookingRequest,
    book_consultation,
    cancel_consultation,
    find_free_slots,
    reschedule_consultation,
    time_in,
)
from domain.video.booking_ports import (
    BookableService,
    Clinician,
    ConsultationListing,
    NewBooking,
    Patient,
    StoredConsultation,
    TimeClaimed,
)
from domain.video.model import (
    ConsultationNotFound,
    ConsultationStatus,
    Participant,
    SlotTaken,
    VideoError,
    Window,
)
from domain.video.slots import Busy, WorkingSpan
from tests.fakes.transaction import FakeTransaction

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
MONDAY = date(2026, 12, 7)
LEE, ANNA, SKIN, LASER = 7, 3, 5, 1


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), BERLIN)


class FakeRooms:
    name = "fake"

    def room_url(self, room_name: str) -> str:
        return f"https://meet.test/{room_name}"

    def join_url(self, room_name: str, who: Participant, display_name: str, window: Window) -> str:
        return self.room_url(room_name)


class FakeRepository:
    def __init__(self) -> None:
        self.clinicians = {LEE: Clinician(LEE, "Dr Lee", "lee@x.example", "Europe/Berlin", location_id=1)}
        self.services = {
            SKIN: BookableService(SKIN, "SKIN-VIDEO", "Video skin consultation", "video", 30, 6900, "EUR"),
            LASER: BookableService(LASER, "LASER", "Laser treatment", "in_person", 60, 16900, "EUR"),
        }
        self.patients = {ANNA: Patient(ANNA, "Anna Berg", "Europe/London", "en")}
        self.hours = {LEE: [WorkingSpan(d, time(9), time(12, 30)) for d in range(5)]}
        self.claims: dict[tuple[int, datetime], int] = {}
        self.stored: dict[int, StoredConsultation] = {}

    async def clinician(self, staff_id: int) -> Clinician | None:
        return self.clinicians.get(staff_id)

    async def clinicians_list(self) -> list[Clinician]:
        return list(self.clinicians.values())

    async def service(self, service_id: int) -> BookableService | None:
        return self.services.get(service_id)

    async def video_services(self) -> list[BookableService]:
        return [s for s in self.services.values() if s.kind == "video"]

    async def patient(self, customer_id: int) -> Patient | None:
        return self.patients.get(customer_id)

    async def working_hours(self, staff_id: int) -> list[WorkingSpan]:
        return self.hours.get(staff_id, [])

    async def busy(
        self, staff_id: int, start: datetime, end: datetime, *, except_appointment: int | None = None
    ) -> list[Busy]:
        held: dict[int, list[datetime]] = {}
        for (staff, step), appointment in self.claims.items():
            if staff == staff_id and appointment != except_appointment:
                held.setdefault(appointment, []).append(step)
        found = [Busy(min(steps), max(steps) + timedelta(minutes=5)) for steps in held.values()]
        return [b for b in found if b.starts_at < end and start < b.ends_at]

    async def add_booking(self, booking: NewBooking) -> tuple[int, int]:
        number = len(self.stored) + 1
        self.stored[number] = StoredConsultation(
            number, 100 + number, booking.customer_id, booking.staff_id, booking.service_id,
            booking.starts_at, booking.duration_minutes, ConsultationStatus.SCHEDULED, 1,
            booking.link_token, booking.clinician_token, booking.room_name,
        )  # fmt: skip
        return number, 100 + number

    async def claim(self, staff_id: int, appointment_id: int, steps: Sequence[datetime]) -> None:
        if any((staff_id, step) in self.claims for step in steps):
            raise TimeClaimed("taken")
        self.claims.update({(staff_id, step): appointment_id for step in steps})

    async def release(self, appointment_id: int) -> None:
        self.claims = {key: value for key, value in self.claims.items() if value != appointment_id}

    async def consultation(
        self, consultation_id: int, *, for_update: bool = False
    ) -> StoredConsultation | None:
        return self.stored.get(consultation_id)

    async def move(
        self,
        consultation: StoredConsultation,
        starts_at: datetime,
        version: int,
        *,
        room_name: str,
        room_url: str,
    ) -> None:
        self.stored[consultation.consultation_id] = replace(
            consultation, starts_at=starts_at, version=version, status=ConsultationStatus.SCHEDULED
        )

    async def cancel(self, consultation: StoredConsultation, at: datetime) -> None:
        self.stored[consultation.consultation_id] = replace(consultation, status=ConsultationStatus.CANCELLED)

    async def listing(
        self, start: datetime, end: datetime, *, staff_id: int | None = None
    ) -> list[ConsultationListing]:
        return []


class FakeEvents:
    def __init__(self) -> None:
        self.events: list[BusinessEvent] = []

    async def add_event(
        self,
        event_type: str,
        idempotency_key: str,
        customer_id: int | None,
        payload: Mapping[str, Any],
        occurred_at: datetime,
    ) -> RecordedEvent:
        event = BusinessEvent(
            len(self.events) + 1, event_type, idempotency_key, customer_id, payload, occurred_at
        )
        self.events.append(event)
        return RecordedEvent(event, True)

    async def reaching_channel(
        self, event_type: str, customer_id: int, *, at: datetime | None = None
    ) -> tuple[str | None, str]:
        """As the rules would choose for the fake's patients: WhatsApp, their preferred channel."""
        return "whatsapp", "preferred"


class FakeUnitOfWork(FakeTransaction):
    def __init__(self) -> None:
        super().__init__()
        self.video = FakeRepository()
        self.notifications = FakeEvents()


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


async def book(uow: FakeUnitOfWork, starts_at: datetime, **changes: int) -> Any:
    request = BookingRequest(
        **{"customer_id": ANNA, "service_id": SKIN, "staff_id": LEE, **changes}, starts_at=starts_at
    )
    return await book_consultation(
        uow, FakeRooms(), request, actor="lee@x.example", via="slack", now=NOW, public_url="https://sb.test/"
    )


async def test_booking_claims_the_time_and_tells_the_patient_in_their_own_time(uow: FakeUnitOfWork) -> None:
    booked = await book(uow, at(MONDAY, 10, 30))
    assert booked.starts_at == datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
    assert booked.customer_name == "Anna Berg" and booked.staff_name == "Dr Lee"
    # Staff are told the channel the rules will take for this event, and why.
    assert (booked.customer_channel, booked.customer_channel_why) == ("whatsapp", "preferred")
    assert booked.room_name is not None and booked.room_name.startswith("sb-")
    assert booked.link_token and booked.clinician_token and booked.link_token != booked.clinician_token
    assert len(booked.link_token) >= 32
    assert booked.link == f"https://sb.test/v/{booked.link_token}"
    assert uow.commits == 1
    assert sorted(step for (_, step) in uow.video.claims) == [
        booked.starts_at + timedelta(minutes=5 * i) for i in range(6)
    ]
    [event] = uow.notifications.events
    assert event.event_type == "video.booked" and event.customer_id == ANNA
    assert event.payload["appointment_time"] == "Mon 7 Dec 09:30 GMT"  # Anna is in London
    assert event.payload["clinician"] == "Dr Lee" and event.payload["link"] == booked.link
    assert "appointment_at" not in event.payload  # the rules would send it at the consultation's time
    assert uow.audit.entries[0].action == "video.book"
    assert time_in(booked.starts_at, booked.staff_timezone) == "Mon 7 Dec 10:30 CET"
    assert time_in(booked.starts_at, "Europe/Berlin", "de").startswith("Mo., 7. Dez., ")


@pytest.mark.parametrize(
    ("starts_at", "changes", "words"),
    [
        (at(date(2026, 12, 1), 10), {}, "has already passed"),
        (at(MONDAY, 10), {"service_id": LASER}, "Laser treatment is not a video service"),
        (at(MONDAY, 12, 15), {}, "outside Dr Lee's working hours (Mon 09:00–12:30"),
        (at(MONDAY + timedelta(days=5), 10), {}, "outside Dr Lee's working hours"),
        (at(MONDAY, 10, 2), {}, "five-minute mark"),
        (at(MONDAY, 10), {"customer_id": 999}, "There is no customer #999"),
        (at(MONDAY, 10), {"staff_id": 999}, "There is no staff member 999"),
        (at(MONDAY, 10), {"service_id": 999}, "There is no service 999"),
        (datetime(2026, 12, 7, 10), {}, "needs a timezone"),
    ],
)
async def test_refusals_say_why_and_book_nothing(
    uow: FakeUnitOfWork, starts_at: datetime, changes: dict[str, int], words: str
) -> None:
    with pytest.raises(VideoError, match=words.replace("(", r"\(")):
        await book(uow, starts_at, **changes)
    assert uow.commits == 0 and uow.video.claims == {} and uow.notifications.events == []


async def test_a_time_the_clocks_skip_is_refused(uow: FakeUnitOfWork) -> None:
    uow.video.hours[LEE] = [WorkingSpan(6, time(1), time(4))]
    with pytest.raises(VideoError, match="02:30 on Sun 28 Mar does not exist in Europe/Berlin"):
        await book_consultation(
            uow, FakeRooms(), BookingRequest(ANNA, SKIN, LEE, datetime(2027, 3, 28, 2, 30, tzinfo=BERLIN)),
            actor="a", via="cli", now=NOW,
        )  # fmt: skip
    assert uow.commits == 0


async def test_an_overlapping_booking_is_refused_naming_the_clash(uow: FakeUnitOfWork) -> None:
    await book(uow, at(MONDAY, 10, 0))
    with pytest.raises(SlotTaken, match="Dr Lee is already booked Mon 7 Dec 10:00–10:30 CET"):
        await book(uow, at(MONDAY, 10, 15))
    assert uow.commits == 1
    assert await book(uow, at(MONDAY, 10, 30))  # right after is fine


async def test_a_claim_lost_to_someone_else_is_slot_taken(uow: FakeUnitOfWork) -> None:
    async def nobody_busy(*args: object, **kwargs: object) -> list[Busy]:
        return []

    await book(uow, at(MONDAY, 10, 0))
    uow.video.busy = nobody_busy  # type: ignore[method-assign]  # as if both read before either wrote
    with pytest.raises(SlotTaken, match="Someone else has just booked Dr Lee"):
        await book(uow, at(MONDAY, 10, 0))
    assert uow.commits == 1


async def test_free_slots_leave_out_what_is_booked(uow: FakeUnitOfWork) -> None:
    await book(uow, at(MONDAY, 10, 0))
    start, end = at(MONDAY, 0), at(MONDAY + timedelta(days=1), 0)
    slots = await find_free_slots(uow, LEE, SKIN, start, end, now=NOW)
    local = [s.astimezone(BERLIN).time() for s in slots]
    assert time(9, 30) in local and time(9, 35) not in local and time(10, 30) in local
    assert len(await find_free_slots(uow, LEE, SKIN, start, end, limit=3, now=NOW)) == 3
    with pytest.raises(VideoError, match="not a video service"):
        await find_free_slots(uow, LEE, LASER, start, end, now=NOW)


async def test_reschedule_moves_the_claims_keeps_the_link_and_bumps_the_version(uow: FakeUnitOfWork) -> None:
    booked = await book(uow, at(MONDAY, 10, 0))
    moved = await reschedule_consultation(
        uow, FakeRooms(), booked.consultation_id, at(MONDAY, 10, 15), actor="a", via="cli", now=NOW
    )
    assert moved.version == 2 and moved.link_token == booked.link_token
    assert min(step for (_, step) in uow.video.claims) == moved.starts_at
    assert len(uow.video.claims) == 6  # the old steps were freed, the new ones held
    event = uow.notifications.events[-1]
    assert event.event_type == "video.rescheduled" and event.idempotency_key.endswith(":2")
    assert event.payload["previous_time"] == "Mon 7 Dec 09:00 GMT"
    with pytest.raises(VideoError, match="already at that time"):
        await reschedule_consultation(
            uow, FakeRooms(), booked.consultation_id, at(MONDAY, 10, 15), actor="a", via="cli", now=NOW
        )
    with pytest.raises(ConsultationNotFound, match="no video consultation 42"):
        await reschedule_consultation(uow, FakeRooms(), 42, at(MONDAY, 11), actor="a", via="cli", now=NOW)
    later = moved.starts_at + timedelta(minutes=1)
    with pytest.raises(VideoError, match="already begun or taken place"):
        await reschedule_consultation(
            uow, FakeRooms(), booked.consultation_id, at(MONDAY, 11), actor="a", via="cli", now=later
        )


async def test_cancel_frees_the_time_and_cannot_happen_twice(uow: FakeUnitOfWork) -> None:
    booked = await book(uow, at(MONDAY, 10, 0))
    cancelled = await cancel_consultation(
        uow, booked.consultation_id, actor="a", via="cli", now=NOW, reason="ill"
    )
    assert cancelled.status is ConsultationStatus.CANCELLED and uow.video.claims == {}
    event = uow.notifications.events[-1]
    assert event.event_type == "video.cancelled" and event.payload["reason"] == "ill"
    with pytest.raises(VideoError, match="was cancelled; book a new one"):
        await cancel_consultation(uow, booked.consultation_id, actor="a", via="cli", now=NOW)
    with pytest.raises(VideoError, match="was cancelled"):
        await reschedule_consultation(
            uow, FakeRooms(), booked.consultation_id, at(MONDAY, 11), actor="a", via="cli", now=NOW
        )
    assert await book(uow, at(MONDAY, 10, 0))  # the time is free again
