"""Booking video consultations on SQLite and PostgreSQL: the database refuses double booking (also when two
staff book the same time at once), claims move and free with the booking, and the patient is told in their time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, select

from domain.notifications.use_cases import process_pending_events
from domain.video.booking import (
    BookedConsultation,
    BookingRequest,
    book_consultation,
    cancel_consultation,
    find_free_slots,
    list_consultations,
    reschedule_consultation,
)
from domain.video.model import ConsultationStatus, Participant, SlotTaken, VideoError, Window
from domain.video.slots import Busy
from storage.database import Database
from storage.models import (
    Appointment,
    AuditLog,
    AutomatedNotification,
    BusinessEvent,
    ClinicianHours,
    ClinicianTimeClaim,
    CommunicationPreference,
    Customer,
    CustomerCommunication,
    Location,
    MessageTemplate,
    Service,
    StaffUser,
    VideoConsultation,
)
from storage.notifications import SqlNotificationUnitOfWork
from storage.seeding.catalogue import notification_rows, template_rows
from storage.units import UnitsOfWork
from storage.video_booking import SqlVideoBookingRepository, SqlVideoBookingUnitOfWork

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
#: Monday 7 December 2026, 10:30 in Berlin (CET): 09:30 UTC, 09:30 GMT for a patient in London.
TEN_THIRTY = datetime(2026, 12, 7, 10, 30, tzinfo=BERLIN)


class Rooms:
    name = "test"

    def room_url(self, room_name: str) -> str:
        return f"https://meet.test/{room_name}"

    def join_url(self, room_name: str, who: Participant, display_name: str, window: Window) -> str:
        return self.room_url(room_name)


async def clinic(database: Database) -> dict[str, int]:
    """Dr Lee (Berlin, Mon-Fri 09:00-12:30 and 13:30-17:00), a video and an in-person service, Anna in London."""
    async with database.sessions() as session:
        berlin = Location(code="BER", name="Berlin Mitte", country="DE", timezone="Europe/Berlin")
        session.add(berlin)
        await session.flush()
        lee = StaffUser(
            email="lee@x.example",
            name="Dr Lee",
            role="agent",
            timezone="Europe/Berlin",
            location_id=berlin.id,
        )
        kim = StaffUser(email="kim@x.example", name="Kim Desk", role="agent", timezone="Europe/Berlin")
        video = Service(
            code="SKIN-VIDEO",
            name="Video skin consultation",
            kind="video",
            duration_minutes=30,
            price_minor=6900,
            currency="EUR",
        )
        visit = Service(
            code="LASER",
            name="Laser treatment",
            kind="in_person",
            duration_minutes=60,
            price_minor=16900,
            currency="EUR",
        )
        anna = Customer(name="Anna Berg", phone_e164="+447700900123", timezone="Europe/London")
        session.add_all([lee, kim, video, visit, anna])
        await session.flush()
        session.add(CommunicationPreference(customer_id=anna.id, preferred_channel="sms"))
        for weekday in range(5):
            session.add(ClinicianHours(staff_id=lee.id, weekday=weekday, starts=time(9), ends=time(12, 30)))
            session.add(ClinicianHours(staff_id=lee.id, weekday=weekday, starts=time(13, 30), ends=time(17)))
        rows, _ = template_rows(NOW)
        for row in rows:
            if row["name"].startswith("video_"):
                await session.execute(
                    insert(MessageTemplate).values({k: v for k, v in row.items() if k != "id"})
                )
        for row in notification_rows(NOW, created_by=lee.id):
            if row["event_type"].startswith("video."):
                await session.execute(
                    insert(AutomatedNotification).values({k: v for k, v in row.items() if k != "id"})
                )
        await session.commit()
        return {"lee": lee.id, "kim": kim.id, "video": video.id, "visit": visit.id, "anna": anna.id}


def uow(database: Database) -> SqlVideoBookingUnitOfWork:
    return UnitsOfWork(database, "Europe/Berlin").video_booking()


async def book(
    database: Database, ids: dict[str, int], starts_at: datetime, actor: str = "lee@x.example"
) -> BookedConsultation:
    request = BookingRequest(ids["anna"], ids["video"], ids["lee"], starts_at)
    return await book_consultation(
        uow(database), Rooms(), request, actor=actor, via="slack", now=NOW, public_url="https://sb.example"
    )


async def claims(database: Database) -> list[tuple[datetime, int]]:
    async with database.read_sessions() as session:
        rows = await session.execute(
            select(ClinicianTimeClaim.starts_at, ClinicianTimeClaim.appointment_id).order_by(
                ClinicianTimeClaim.starts_at
            )
        )
        return [(at, appointment) for at, appointment in rows.all()]


async def test_a_booking_writes_appointment_consultation_and_claims_and_tells_the_patient(
    database: Database,
) -> None:
    ids = await clinic(database)
    booked = await book(database, ids, TEN_THIRTY)
    assert booked.starts_at == datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
    async with database.read_sessions() as session:
        appointment = await session.get(Appointment, booked.appointment_id)
        consultation = await session.get(VideoConsultation, booked.consultation_id)
        event = await session.scalar(select(BusinessEvent))
        audit = await session.scalar(select(AuditLog).where(AuditLog.action == "video.book"))
    assert appointment is not None and consultation is not None and event is not None and audit is not None
    assert (appointment.kind, appointment.status, appointment.duration_minutes) == ("video", "booked", 30)
    assert appointment.scheduled_at == booked.starts_at and appointment.staff_id == ids["lee"]
    assert consultation.appointment_id == appointment.id and consultation.status == "scheduled"
    assert (
        consultation.link_token == booked.link_token
        and consultation.clinician_token == booked.clinician_token
    )
    assert consultation.room_url == f"https://meet.test/{booked.room_name}" and consultation.version == 1
    assert [at for at, _ in await claims(database)] == [
        booked.starts_at + timedelta(minutes=5 * i) for i in range(6)
    ]
    assert event.event_type == "video.booked" and event.customer_id == ids["anna"]
    assert event.payload["appointment_time"] == "Mon 7 Dec 09:30 GMT"
    assert audit.actor == "lee@x.example" and audit.target == f"video_consultation:{booked.consultation_id}"

    report = await process_pending_events(lambda: SqlNotificationUnitOfWork(database), NOW)
    assert report.planned == 1, report
    async with database.read_sessions() as session:
        message = await session.scalar(select(CustomerCommunication))
    assert message is not None and message.channel == "sms"
    assert "Mon 7 Dec 09:30 GMT" in message.body and "Dr Lee" in message.body
    assert f"https://sb.example/v/{booked.link_token}" in message.body


async def test_overlaps_outside_hours_and_wrong_services_are_refused(database: Database) -> None:
    ids = await clinic(database)
    await book(database, ids, TEN_THIRTY)
    with pytest.raises(SlotTaken, match="Dr Lee is already booked Mon 7 Dec 10:30–11:00 CET"):
        await book(database, ids, TEN_THIRTY + timedelta(minutes=20))
    with pytest.raises(VideoError, match="outside Dr Lee's working hours"):
        await book(database, ids, datetime(2026, 12, 7, 12, 15, tzinfo=BERLIN))
    with pytest.raises(VideoError, match="not a video service"):
        request = BookingRequest(ids["anna"], ids["visit"], ids["lee"], TEN_THIRTY + timedelta(hours=1))
        await book_consultation(uow(database), Rooms(), request, actor="a", via="api", now=NOW)
    with pytest.raises(VideoError, match="Kim Desk has no working hours"):
        request = BookingRequest(ids["anna"], ids["video"], ids["kim"], TEN_THIRTY)
        await book_consultation(uow(database), Rooms(), request, actor="a", via="api", now=NOW)
    async with database.read_sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Appointment)) == 1
        assert await session.scalar(select(func.count()).select_from(VideoConsultation)) == 1
    # Another appointment of the clinician (a visit, no claims) also keeps the time busy.
    async with database.sessions() as session:
        session.add(
            Appointment(
                customer_id=ids["anna"], service_id=ids["visit"], staff_id=ids["lee"], kind="in_person",
                status="booked", scheduled_at=datetime(2026, 12, 7, 14, 0, tzinfo=BERLIN), duration_minutes=60,
                price_minor=1, currency="EUR",
            )
        )  # fmt: skip
        await session.commit()
    with pytest.raises(SlotTaken, match="14:00–15:00"):
        await book(database, ids, datetime(2026, 12, 7, 14, 30, tzinfo=BERLIN))
    slots = await find_free_slots(
        uow(database),
        ids["lee"],
        ids["video"],
        TEN_THIRTY - timedelta(hours=2),
        TEN_THIRTY + timedelta(hours=8),
        now=NOW,
    )
    local = [s.astimezone(BERLIN).time() for s in slots]
    assert time(10, 0) in local and time(10, 5) not in local and time(11, 0) in local
    assert time(13, 30) in local and time(13, 35) not in local and time(15, 0) in local


class ReadTogether(SqlVideoBookingUnitOfWork):
    """Both bookings read the clinician's time before either writes, so only the database can tell them apart."""

    def __init__(self, database: Database, barrier: asyncio.Barrier) -> None:
        super().__init__(database, business_tz="Europe/Berlin")
        self.barrier = barrier

    async def __aenter__(self) -> ReadTogether:
        await super().__aenter__()
        repository = self.video
        barrier = self.barrier

        class Waiting(SqlVideoBookingRepository):
            async def busy(self, *args: Any, **kwargs: Any) -> list[Busy]:
                found = await repository.busy(*args, **kwargs)
                await barrier.wait()
                return found

        self.video = Waiting(self.session)
        return self


async def test_two_staff_booking_the_same_time_at_once_one_wins(database: Database) -> None:
    ids = await clinic(database)
    request = BookingRequest(ids["anna"], ids["video"], ids["lee"], TEN_THIRTY)
    if database.dialect == "postgresql":
        barrier = asyncio.Barrier(2)
        units: list[SqlVideoBookingUnitOfWork] = [
            ReadTogether(database, barrier),
            ReadTogether(database, barrier),
        ]
    else:  # SQLite writers take turns (one write transaction at a time), so the second reads the first's claims
        units = [uow(database), uow(database)]
    results = await asyncio.gather(
        *(
            book_consultation(unit, Rooms(), request, actor=f"staff{n}@x.example", via="slack", now=NOW)
            for n, unit in enumerate(units)
        ),
        return_exceptions=True,
    )
    won = [r for r in results if isinstance(r, BookedConsultation)]
    lost = [r for r in results if isinstance(r, SlotTaken)]
    assert len(won) == 1 and len(lost) == 1, results
    assert "Dr Lee" in str(lost[0]) and "10:30" in str(lost[0])
    assert len(await claims(database)) == 6
    async with database.read_sessions() as session:
        assert await session.scalar(select(func.count()).select_from(VideoConsultation)) == 1
        assert await session.scalar(select(func.count()).select_from(Appointment)) == 1
        assert await session.scalar(select(func.count()).select_from(BusinessEvent)) == 1


async def test_reschedule_moves_the_claims_and_cancel_frees_them(database: Database) -> None:
    ids = await clinic(database)
    booked = await book(database, ids, TEN_THIRTY)
    other = await book(database, ids, TEN_THIRTY + timedelta(hours=1))
    with pytest.raises(SlotTaken):
        await reschedule_consultation(
            uow(database),
            Rooms(),
            booked.consultation_id,
            TEN_THIRTY + timedelta(minutes=45),
            actor="a",
            via="cli",
            now=NOW,
        )
    assert len(await claims(database)) == 12  # the refused move changed nothing
    moved = await reschedule_consultation(
        uow(database),
        Rooms(),
        booked.consultation_id,
        TEN_THIRTY + timedelta(minutes=10),
        actor="a",
        via="cli",
        now=NOW,
    )
    assert moved.version == 2 and moved.link_token == booked.link_token
    mine = [at for at, appointment in await claims(database) if appointment == booked.appointment_id]
    assert mine == [moved.starts_at + timedelta(minutes=5 * i) for i in range(6)]
    async with database.read_sessions() as session:
        appointment = await session.get(Appointment, booked.appointment_id)
        event = await session.scalar(
            select(BusinessEvent).where(BusinessEvent.event_type == "video.rescheduled")
        )
    assert appointment is not None and appointment.scheduled_at == moved.starts_at
    assert event is not None and event.payload["appointment_time"] == "Mon 7 Dec 09:40 GMT"

    cancelled = await cancel_consultation(uow(database), other.consultation_id, actor="a", via="cli", now=NOW)
    assert cancelled.status is ConsultationStatus.CANCELLED
    assert {appointment for _, appointment in await claims(database)} == {booked.appointment_id}
    async with database.read_sessions() as session:
        gone = await session.get(Appointment, other.appointment_id)
    assert gone is not None and gone.status == "cancelled"
    again = await book(database, ids, TEN_THIRTY + timedelta(hours=1))  # the freed time can be booked again
    listed = await list_consultations(
        UnitsOfWork(database, "UTC").video_booking(read_only=True),
        NOW,
        NOW + timedelta(days=7),
        staff_id=ids["lee"],
    )
    assert [(c.consultation_id, c.status) for c in listed] == [
        (booked.consultation_id, ConsultationStatus.SCHEDULED),
        (other.consultation_id, ConsultationStatus.CANCELLED),
        (again.consultation_id, ConsultationStatus.SCHEDULED),
    ]
    assert listed[0].customer_name == "Anna Berg" and listed[0].service_name == "Video skin consultation"


class BlindToBookings(SqlVideoBookingUnitOfWork):
    """Reads no booked time at all, as if every other booking had been made after it looked."""

    async def __aenter__(self) -> BlindToBookings:
        await super().__aenter__()

        class Blind(SqlVideoBookingRepository):
            async def busy(self, *args: Any, **kwargs: Any) -> list[Busy]:
                return []

        self.video = Blind(self.session)
        return self


async def test_the_database_itself_refuses_an_overlapping_claim(database: Database) -> None:
    ids = await clinic(database)
    first = await book(database, ids, TEN_THIRTY)
    request = BookingRequest(ids["anna"], ids["video"], ids["lee"], TEN_THIRTY + timedelta(minutes=25))
    with pytest.raises(SlotTaken, match="Someone else has just booked Dr Lee at Mon 7 Dec 10:55–11:25 CET"):
        await book_consultation(
            BlindToBookings(database, business_tz="UTC"), Rooms(), request, actor="a", via="api", now=NOW
        )
    assert {appointment for _, appointment in await claims(database)} == {first.appointment_id}
    async with database.read_sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Appointment)) == 1
