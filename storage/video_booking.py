"""Video booking storage: clinicians' hours, the five-minute claims that refuse double booking, and its unit of work."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Self

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from domain.video.booking_ports import (
    BookableService,
    Clinician,
    ConsultationListing,
    NewBooking,
    Patient,
    StoredConsultation,
    TimeClaimed,
)
from domain.video.model import ConsultationStatus
from domain.video.slots import Busy, WorkingSpan
from domain.vocabulary import AppointmentKind, AppointmentStatus
from storage.models import (
    Appointment,
    ClinicianHours,
    ClinicianTimeClaim,
    Customer,
    Service,
    StaffUser,
    VideoConsultation,
)
from storage.notifications import SqlNotificationRepository
from storage.sql import dialect_of
from storage.unit_of_work import SqlUnitOfWork

MAX_ID = 2**63 - 1
#: Appointments that still hold their time.
LIVE_APPOINTMENTS = (AppointmentStatus.BOOKED.value, AppointmentStatus.CONFIRMED.value)
#: The longest appointment looked back for when asking what overlaps a time.
LONGEST_APPOINTMENT = timedelta(hours=12)


class SqlVideoBookingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def clinician(self, staff_id: int) -> Clinician | None:
        if not 0 < staff_id <= MAX_ID:
            return None
        row = await self._session.get(StaffUser, staff_id)
        return None if row is None else _clinician(row)

    async def clinicians(self) -> list[Clinician]:
        with_hours = select(ClinicianHours.staff_id)
        rows = await self._session.scalars(
            select(StaffUser)
            .where(StaffUser.active.is_(True), StaffUser.id.in_(with_hours))
            .order_by(StaffUser.name, StaffUser.id)
        )
        return [_clinician(row) for row in rows]

    async def service(self, service_id: int) -> BookableService | None:
        if not 0 < service_id <= MAX_ID:
            return None
        row = await self._session.get(Service, service_id)
        return None if row is None else _service(row)

    async def video_services(self) -> list[BookableService]:
        rows = await self._session.scalars(
            select(Service).where(Service.kind == AppointmentKind.VIDEO.value).order_by(Service.id)
        )
        return [_service(row) for row in rows]

    async def patient(self, customer_id: int) -> Patient | None:
        if not 0 < customer_id <= MAX_ID:
            return None
        row = await self._session.get(Customer, customer_id)
        if row is None:
            return None
        return Patient(row.id, row.name, row.timezone or "UTC", row.locale or "en")

    async def working_hours(self, staff_id: int) -> list[WorkingSpan]:
        rows = await self._session.scalars(
            select(ClinicianHours)
            .where(ClinicianHours.staff_id == staff_id)
            .order_by(ClinicianHours.weekday, ClinicianHours.starts)
        )
        return [WorkingSpan(row.weekday, row.starts, row.ends) for row in rows]

    async def busy(
        self, staff_id: int, start: datetime, end: datetime, *, except_appointment: int | None = None
    ) -> list[Busy]:
        # The clinician's live appointments, each whole (one row per booking rather than one per claimed
        # five minutes, a sixth of the rows for a fortnight). Claims belong to live appointments only (a
        # cancel frees them, a reschedule moves them), so they add nothing here; they are what makes two
        # bookings of one time collide when written.
        appointments = (
            select(Appointment.scheduled_at, Appointment.duration_minutes)
            .where(
                Appointment.staff_id == staff_id,
                Appointment.status.in_(LIVE_APPOINTMENTS),
                Appointment.scheduled_at > start - LONGEST_APPOINTMENT,
                Appointment.scheduled_at < end,
            )
            .order_by(Appointment.scheduled_at)  # the (staff_id, scheduled_at) index's own order
        )
        if except_appointment is not None:
            appointments = appointments.where(Appointment.id != except_appointment)
        # Through the connection (Core): the ORM's row loading would double a fortnight's search time.
        connection = await self._session.connection()
        rows = (await connection.execute(appointments)).all()
        return [
            Busy(at, finish)
            for at, minutes in rows
            for finish in (at + timedelta(minutes=minutes),)
            if finish > start
        ]

    async def add_booking(self, booking: NewBooking) -> tuple[int, int]:
        appointment = Appointment(
            customer_id=booking.customer_id,
            service_id=booking.service_id,
            staff_id=booking.staff_id,
            location_id=booking.location_id,
            kind=AppointmentKind.VIDEO.value,
            status=AppointmentStatus.BOOKED.value,
            scheduled_at=booking.starts_at,
            duration_minutes=booking.duration_minutes,
            price_minor=booking.price_minor,
            currency=booking.currency,
            created_at=booking.created_at,
        )
        self._session.add(appointment)
        await self._session.flush()
        consultation = VideoConsultation(
            appointment_id=appointment.id,
            customer_id=booking.customer_id,
            staff_id=booking.staff_id,
            status=ConsultationStatus.SCHEDULED.value,
            room_url=booking.room_url,
            scheduled_at=booking.starts_at,
            created_at=booking.created_at,
            duration_minutes=booking.duration_minutes,
            room_name=booking.room_name,
            link_token=booking.link_token,
            clinician_token=booking.clinician_token,
            version=1,
        )
        self._session.add(consultation)
        await self._session.flush()
        return consultation.id, appointment.id

    async def claim(self, staff_id: int, appointment_id: int, steps: Sequence[datetime]) -> None:
        rows = [{"staff_id": staff_id, "starts_at": step, "appointment_id": appointment_id} for step in steps]
        try:
            await self._session.execute(insert(ClinicianTimeClaim), rows)
        except IntegrityError:
            # The primary key (staff, step) is the guard: another booking holds one of these steps.
            raise TimeClaimed(f"staff {staff_id} already has a claim on one of {len(steps)} steps") from None

    async def release(self, appointment_id: int) -> None:
        await self._session.execute(
            delete(ClinicianTimeClaim).where(ClinicianTimeClaim.appointment_id == appointment_id),
            execution_options={"synchronize_session": False},
        )

    async def consultation(
        self, consultation_id: int, *, for_update: bool = False
    ) -> StoredConsultation | None:
        if not 0 < consultation_id <= MAX_ID:
            return None
        query = (
            select(VideoConsultation, Appointment.service_id)
            .outerjoin(Appointment, Appointment.id == VideoConsultation.appointment_id)
            .where(VideoConsultation.id == consultation_id)
            .execution_options(populate_existing=True)
        )
        if for_update and dialect_of(self._session) == "postgresql":
            query = query.with_for_update(of=VideoConsultation)
        found = (await self._session.execute(query)).first()
        if found is None:
            return None
        row, service_id = found
        return StoredConsultation(
            consultation_id=row.id,
            appointment_id=row.appointment_id,
            customer_id=row.customer_id,
            staff_id=row.staff_id,
            service_id=service_id,
            starts_at=row.scheduled_at,
            duration_minutes=row.duration_minutes,
            status=ConsultationStatus(row.status),
            version=row.version,
            link_token=row.link_token,
            clinician_token=row.clinician_token,
            room_name=row.room_name,
        )

    async def move(
        self,
        consultation: StoredConsultation,
        starts_at: datetime,
        version: int,
        *,
        room_name: str,
        room_url: str,
    ) -> None:
        values: dict[str, object] = {
            "scheduled_at": starts_at,
            "version": version,
            "status": ConsultationStatus.SCHEDULED.value,
            "confirmed_at": None,
        }
        if consultation.room_name is None:
            values.update(room_name=room_name, room_url=room_url)
        if consultation.link_token is None:
            values["link_token"] = secrets.token_urlsafe(24)
        if consultation.clinician_token is None:
            values["clinician_token"] = secrets.token_urlsafe(24)
        await self._session.execute(
            update(VideoConsultation)
            .where(VideoConsultation.id == consultation.consultation_id)
            .values(values),
            execution_options={"synchronize_session": False},
        )
        if consultation.appointment_id is not None:
            await self._session.execute(
                update(Appointment)
                .where(Appointment.id == consultation.appointment_id)
                .values(scheduled_at=starts_at, status=AppointmentStatus.BOOKED.value),
                execution_options={"synchronize_session": False},
            )

    async def cancel(self, consultation: StoredConsultation, at: datetime) -> None:
        await self._session.execute(
            update(VideoConsultation)
            .where(VideoConsultation.id == consultation.consultation_id)
            .values(status=ConsultationStatus.CANCELLED.value),
            execution_options={"synchronize_session": False},
        )
        if consultation.appointment_id is not None:
            await self._session.execute(
                update(Appointment)
                .where(Appointment.id == consultation.appointment_id)
                .values(status=AppointmentStatus.CANCELLED.value),
                execution_options={"synchronize_session": False},
            )

    async def listing(
        self, start: datetime, end: datetime, *, staff_id: int | None = None
    ) -> list[ConsultationListing]:
        query = (
            select(
                VideoConsultation,
                Customer.name,
                Customer.timezone,
                StaffUser.name,
                StaffUser.timezone,
                Service.name,
            )
            .join(Customer, Customer.id == VideoConsultation.customer_id)
            .outerjoin(StaffUser, StaffUser.id == VideoConsultation.staff_id)
            .outerjoin(Appointment, Appointment.id == VideoConsultation.appointment_id)
            .outerjoin(Service, Service.id == Appointment.service_id)
            .where(VideoConsultation.scheduled_at >= start, VideoConsultation.scheduled_at < end)
            .order_by(VideoConsultation.scheduled_at, VideoConsultation.id)
        )
        if staff_id is not None:
            query = query.where(VideoConsultation.staff_id == staff_id)
        return [
            ConsultationListing(
                consultation_id=row.id,
                starts_at=row.scheduled_at,
                duration_minutes=row.duration_minutes,
                status=ConsultationStatus(row.status),
                customer_id=row.customer_id,
                customer_name=customer,
                customer_timezone=customer_tz or "UTC",
                staff_id=row.staff_id,
                staff_name=staff or "nobody",
                staff_timezone=staff_tz or "UTC",
                service_name=service or "Video consultation",
            )
            for row, customer, customer_tz, staff, staff_tz, service in (
                await self._session.execute(query)
            ).all()
        ]


def _clinician(row: StaffUser) -> Clinician:
    return Clinician(row.id, row.name, row.email, row.timezone or "UTC", row.active, row.location_id)


def _service(row: Service) -> BookableService:
    return BookableService(
        row.id, row.code, row.name, row.kind, row.duration_minutes, row.price_minor, row.currency, row.names
    )


class SqlVideoBookingUnitOfWork(SqlUnitOfWork):
    """The unit of work booking use-cases take: the booking tables, business events and the audit trail."""

    video: SqlVideoBookingRepository
    notifications: SqlNotificationRepository

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.video = SqlVideoBookingRepository(self.session)
        self.notifications = SqlNotificationRepository(self.session)
        return self
