"""No-shows and rebooking offers in storage: the watcher's claim, appointment outcomes, offers, and the units."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, AsyncSessionTransaction

from domain.conversations.csat import SURVEY_REQUEST_PREFIX
from domain.services import consultation_name_in
from domain.video.booking import UNNAMED_CLINICIAN, VIDEO_BOOKED, VIDEO_RESCHEDULED
from domain.video.model import ConsultationStatus, Window
from domain.video.no_shows import AppointmentFacts
from domain.video.rebooking import REBOOK_EVENT, ConsultationFacts, StoredOffer
from domain.video.reminders import REMINDER_EVENT
from domain.vocabulary import AppointmentStatus
from storage.models import (
    Appointment,
    BusinessEvent,
    Customer,
    CustomerCommunication,
    Service,
    StaffUser,
    VideoConsultation,
)
from storage.models.video import VideoRebookOffer
from storage.notifications import SqlNotificationRepository
from storage.sql import dialect_of
from storage.unit_of_work import SqlAuditTrail, SqlUnitOfWork
from storage.video_booking import SqlVideoBookingRepository

MAX_ID = 2**63 - 1
#: Consultations still in progress this long after their start are past finishing automatically.
FINISH_WITHIN = timedelta(days=1)
MISSABLE = (ConsultationStatus.SCHEDULED.value, ConsultationStatus.CONFIRMED.value)
#: The events that tell a patient about a consultation, which a "1" or "2" answers.
PROMPTS = (REMINDER_EVENT, VIDEO_BOOKED, VIDEO_RESCHEDULED)
#: An offer's channel when no message could carry it (the rule is off, or nothing reaches the patient).
NO_CHANNEL = "none"
#: Messages staff write (chat replies and one-off sends), as opposed to notifications and automatic answers.
STAFF_SOURCES = ("manual", "chat", "reply")


class SavepointBookingUnitOfWork:
    """The booking use-cases' unit of work as a savepoint of an open transaction: `commit` keeps what the
    use-case did inside the outer transaction (which its owner commits), leaving without it undoes only that."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._savepoint: AsyncSessionTransaction | None = None
        self.video = SqlVideoBookingRepository(session)
        self.notifications = SqlNotificationRepository(session)
        self.audit = SqlAuditTrail(session)

    async def __aenter__(self) -> Self:
        self._savepoint = await self.session.begin_nested()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        savepoint, self._savepoint = self._savepoint, None
        if savepoint is not None and savepoint.is_active:
            await savepoint.rollback()

    async def commit(self) -> None:
        if self._savepoint is not None and self._savepoint.is_active:
            await self._savepoint.commit()


class SqlRebookingDesk:
    """Consultations, offers and prompts for rebooking, on the caller's session; nothing here commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def booking(self) -> SavepointBookingUnitOfWork:
        return SavepointBookingUnitOfWork(self.session)

    async def consultation(
        self, consultation_id: int, *, for_update: bool = False
    ) -> ConsultationFacts | None:
        if not 0 < consultation_id <= MAX_ID:
            return None
        vc = VideoConsultation
        query = (
            select(
                vc,
                Appointment.service_id,
                Service.name,
                Service.names,
                StaffUser.name,
                Customer.timezone,
                Customer.locale,
            )
            .join(Customer, Customer.id == vc.customer_id)
            .outerjoin(Appointment, Appointment.id == vc.appointment_id)
            .outerjoin(Service, Service.id == Appointment.service_id)
            .outerjoin(StaffUser, StaffUser.id == vc.staff_id)
            .where(vc.id == consultation_id)
            .execution_options(populate_existing=True)
        )
        if for_update and dialect_of(self.session) == "postgresql":
            query = query.with_for_update(of=vc)
        found = (await self.session.execute(query)).first()
        if found is None:
            return None
        row, service_id, service, names, clinician, tz, locale = found
        return ConsultationFacts(
            consultation_id=row.id,
            appointment_id=row.appointment_id,
            customer_id=row.customer_id,
            staff_id=row.staff_id,
            service_id=service_id,
            scheduled_at=row.scheduled_at,
            status=ConsultationStatus(row.status),
            customer_timezone=tz or "UTC",
            customer_locale=locale or "en",
            service=consultation_name_in(service, names, locale or "en"),
            clinician=clinician or UNNAMED_CLINICIAN["en"],
            rebook_offered_at=row.rebook_offered_at,
            link_token=row.link_token,
            staff_service=service,
            service_names=names,
        )

    async def add_offer(
        self, consultation_id: int, customer_id: int, channel: str, slots: Sequence[datetime], at: datetime
    ) -> int:
        offer = VideoRebookOffer(
            consultation_id=consultation_id,
            customer_id=customer_id,
            channel=channel[:16],
            slots=[s.astimezone(UTC).isoformat() for s in slots],
            offered_at=at,
        )
        self.session.add(offer)
        await self.session.flush()
        return offer.id

    async def open_offer(self, customer_id: int, since: datetime) -> StoredOffer | None:
        query = (
            select(VideoRebookOffer)
            .where(
                VideoRebookOffer.customer_id == customer_id,
                VideoRebookOffer.answered_at.is_(None),
                VideoRebookOffer.offered_at >= since,
            )
            .order_by(VideoRebookOffer.offered_at.desc(), VideoRebookOffer.id.desc())
            .limit(1)
        )
        if dialect_of(self.session) == "postgresql":
            query = query.with_for_update()
        row = await self.session.scalar(query)
        if row is None or await self._staff_wrote_since(customer_id, row.offered_at):
            return None
        slots = tuple(datetime.fromisoformat(str(s)) for s in row.slots or ())
        return StoredOffer(row.id, row.consultation_id, row.customer_id, slots, row.offered_at)

    async def rebooked_as(self, consultation_id: int) -> int | None:
        rebooked: int | None = await self.session.scalar(
            select(VideoRebookOffer.rebooked_id)
            .where(
                VideoRebookOffer.consultation_id == consultation_id, VideoRebookOffer.rebooked_id.is_not(None)
            )
            .order_by(VideoRebookOffer.id.desc())
            .limit(1)
        )
        return rebooked

    async def close_offer(self, offer_id: int, at: datetime, rebooked_id: int | None) -> bool:
        result = await self.session.execute(
            update(VideoRebookOffer)
            .where(VideoRebookOffer.id == offer_id, VideoRebookOffer.answered_at.is_(None))
            .values(answered_at=at, rebooked_id=rebooked_id),
            execution_options={"synchronize_session": False},
        )
        return bool(getattr(result, "rowcount", 0))

    async def mark_offered(self, consultation_id: int, at: datetime) -> None:
        await self.session.execute(
            update(VideoConsultation)
            .where(VideoConsultation.id == consultation_id)
            .values(rebook_offered_at=at),
            execution_options={"synchronize_session": False},
        )

    async def _staff_wrote_since(self, customer_id: int, since: datetime) -> bool:
        """Whether staff sent the customer a message (a chat reply, a one-off send) after `since`: a bare
        "1" or "A" then answers them, not us."""
        found = await self.session.scalar(
            select(CustomerCommunication.id)
            .where(
                CustomerCommunication.customer_id == customer_id,
                CustomerCommunication.direction == "outbound",
                CustomerCommunication.source.in_(STAFF_SOURCES),
                # A satisfaction survey goes out as a one-off send, but no one wrote it.
                or_(
                    CustomerCommunication.source_ref.is_(None),
                    CustomerCommunication.source_ref.not_like(f"{SURVEY_REQUEST_PREFIX}%"),
                ),
                CustomerCommunication.created_at > since,
            )
            .limit(1)
        )
        return found is not None

    async def latest_prompted(self, customer_id: int, since: datetime) -> int | None:
        rows = await self.session.execute(
            select(BusinessEvent.payload, BusinessEvent.occurred_at)
            .where(
                BusinessEvent.customer_id == customer_id,
                BusinessEvent.event_type.in_(PROMPTS),
                BusinessEvent.occurred_at >= since,
            )
            .order_by(BusinessEvent.occurred_at.desc(), BusinessEvent.id.desc())
            .limit(5)
        )
        for payload, occurred_at in rows.all():
            found = (payload or {}).get("consultation_id")
            if isinstance(found, int) and not isinstance(found, bool):
                return None if await self._staff_wrote_since(customer_id, occurred_at) else found
        return None

    async def confirm(self, consultation_id: int, at: datetime) -> bool:
        result = await self.session.execute(
            update(VideoConsultation)
            .where(
                VideoConsultation.id == consultation_id,
                VideoConsultation.status == ConsultationStatus.SCHEDULED.value,
            )
            .values(status=ConsultationStatus.CONFIRMED.value, confirmed_at=at),
            execution_options={"synchronize_session": False},
        )
        if not getattr(result, "rowcount", 0):
            return False
        appointment_id = await self.session.scalar(
            select(VideoConsultation.appointment_id).where(VideoConsultation.id == consultation_id)
        )
        if appointment_id is not None:
            await self.session.execute(
                update(Appointment)
                .where(Appointment.id == appointment_id, Appointment.status == AppointmentStatus.BOOKED.value)
                .values(status=AppointmentStatus.CONFIRMED.value),
                execution_options={"synchronize_session": False},
            )
        return True

    async def patient_channel(self, customer_id: int) -> str:
        """The channel the offer's message will take, chosen as its rule chooses (reaching_channel), so an
        offer never names a channel the message cannot take; NO_CHANNEL when none will."""
        channel, _why = await SqlNotificationRepository(self.session).reaching_channel(
            REBOOK_EVENT, customer_id
        )
        return channel or NO_CHANNEL

    async def add_event(
        self, event_type: str, key: str, customer_id: int, payload: Mapping[str, Any], at: datetime
    ) -> None:
        await SqlNotificationRepository(self.session).add_event(event_type, key, customer_id, payload, at)


class SqlNoShowBook:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim_missed(
        self, started_after: datetime, started_before: datetime, at: datetime, limit: int
    ) -> list[int]:
        vc = VideoConsultation
        due = list(
            await self.session.scalars(
                select(vc.id)
                .where(
                    vc.status.in_(MISSABLE),
                    vc.scheduled_at > started_after,
                    vc.scheduled_at <= started_before,
                    vc.patient_joined_at.is_(None),
                )
                .order_by(vc.scheduled_at, vc.id)
                .limit(limit)
            )
        )
        marked: list[int] = []
        for consultation_id in due:
            # The condition again in the update: of two workers, only the first one's update matches.
            result = await self.session.execute(
                update(vc)
                .where(vc.id == consultation_id, vc.status.in_(MISSABLE), vc.patient_joined_at.is_(None))
                .values(status=ConsultationStatus.NO_SHOW.value, no_show_at=at, no_show_by="system")
                .returning(vc.appointment_id),
                execution_options={"synchronize_session": False},
            )
            claimed = result.first()
            if claimed is None:
                continue
            marked.append(consultation_id)
            if claimed.appointment_id is not None:
                await self.session.execute(
                    update(Appointment)
                    .where(Appointment.id == claimed.appointment_id)
                    .values(status=AppointmentStatus.NO_SHOW.value),
                    execution_options={"synchronize_session": False},
                )
        return marked

    async def finish_ended(self, at: datetime, limit: int) -> list[int]:
        """Consultations in progress whose window has closed become completed (ended_at: the window's close),
        their appointments too; one conditional update each, so of two workers only one finishes each."""
        return await self._close_ended(
            at,
            limit,
            ConsultationStatus.IN_PROGRESS,
            ConsultationStatus.COMPLETED,
            AppointmentStatus.COMPLETED,
        )

    async def close_unattended(self, at: datetime, limit: int) -> list[int]:
        """Patients left waiting by an absent clinician (WAITING: the patient is in, the clinician never came),
        once the window has closed: CLINICIAN_ABSENT, the appointment cancelled; each closed once."""
        return await self._close_ended(
            at,
            limit,
            ConsultationStatus.WAITING,
            ConsultationStatus.CLINICIAN_ABSENT,
            AppointmentStatus.CANCELLED,
        )

    async def _close_ended(
        self,
        at: datetime,
        limit: int,
        was: ConsultationStatus,
        becomes: ConsultationStatus,
        appointment_becomes: AppointmentStatus,
    ) -> list[int]:
        """Consultations in `was` whose window has closed by `at` move to `becomes` (ended_at: the window's
        close) and their appointments to `appointment_becomes`; one conditional update each, so of two workers
        only one moves each. The ids this call moved."""
        vc = VideoConsultation
        rows = (
            await self.session.execute(
                select(vc.id, vc.scheduled_at, vc.duration_minutes, vc.appointment_id)
                .where(vc.status == was.value, vc.scheduled_at > at - FINISH_WITHIN, vc.scheduled_at <= at)
                .order_by(vc.scheduled_at, vc.id)
                .limit(limit)
            )
        ).all()
        moved: list[int] = []
        for row in rows:
            closes = Window.of(row.scheduled_at, row.duration_minutes).closes_at
            if closes > at:
                continue
            result = await self.session.execute(
                update(vc)
                .where(vc.id == row.id, vc.status == was.value)
                .values(status=becomes.value, ended_at=closes),
                execution_options={"synchronize_session": False},
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                continue
            moved.append(row.id)
            if row.appointment_id is not None:
                await self.session.execute(
                    update(Appointment)
                    .where(Appointment.id == row.appointment_id)
                    .values(status=appointment_becomes.value),
                    execution_options={"synchronize_session": False},
                )
        return moved

    async def appointment(self, appointment_id: int, *, for_update: bool = False) -> AppointmentFacts | None:
        if not 0 < appointment_id <= MAX_ID:
            return None
        query = (
            select(Appointment, Customer.name, VideoConsultation.id, VideoConsultation.rebook_offered_at)
            .join(Customer, Customer.id == Appointment.customer_id)
            .outerjoin(VideoConsultation, VideoConsultation.appointment_id == Appointment.id)
            .where(Appointment.id == appointment_id)
            .execution_options(populate_existing=True)
        )
        if for_update and dialect_of(self.session) == "postgresql":
            query = query.with_for_update(of=Appointment)
        found = (await self.session.execute(query)).first()
        if found is None:
            return None
        row, customer, consultation_id, offered_at = found
        return AppointmentFacts(
            appointment_id=row.id,
            customer_id=row.customer_id,
            customer=customer,
            kind=row.kind,
            status=AppointmentStatus(row.status),
            scheduled_at=row.scheduled_at,
            duration_minutes=row.duration_minutes,
            consultation_id=consultation_id,
            rebook_offered_at=offered_at,
        )

    async def set_outcome(
        self, appointment: AppointmentFacts, status: AppointmentStatus, *, by: str, at: datetime
    ) -> None:
        await self.session.execute(
            update(Appointment)
            .where(Appointment.id == appointment.appointment_id)
            .values(status=status.value),
            execution_options={"synchronize_session": False},
        )
        if appointment.consultation_id is None:
            return
        values: dict[str, object] = (
            {"status": ConsultationStatus.NO_SHOW.value, "no_show_at": at, "no_show_by": by[:254]}
            if status is AppointmentStatus.NO_SHOW
            else {"status": ConsultationStatus.COMPLETED.value, "no_show_at": None, "no_show_by": None}
        )
        await self.session.execute(
            update(VideoConsultation)
            .where(VideoConsultation.id == appointment.consultation_id)
            .values(values),
            execution_options={"synchronize_session": False},
        )


class SqlNoShowUnitOfWork(SqlUnitOfWork):
    """The unit of work no-show marking and rebooking offers take."""

    no_shows: SqlNoShowBook
    rebooking: SqlRebookingDesk

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.no_shows = SqlNoShowBook(self.session)
        self.rebooking = SqlRebookingDesk(self.session)
        return self


def inbound_rebooking_desk(inbound_uow: Any) -> SqlRebookingDesk:
    """The rebooking desk on an inbound unit of work's session (its `session`), for answering replies."""
    return SqlRebookingDesk(inbound_uow.session)
