"""Consultation reminders in storage: the consultations with a reminder due and not yet recorded, and recording them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Self

from sqlalchemy import ColumnElement, String, and_, cast, exists, false, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.video.model import ConsultationStatus
from domain.video.reminders import REMINDER_KEY_PREFIX, ReminderCandidate, ReminderEvent, reminder_times
from storage.models import Appointment, BusinessEvent, Customer, Service, StaffUser, VideoConsultation
from storage.notifications import SqlNotificationUnitOfWork
from storage.sql import insert_for, table_of

EVENTS = table_of(BusinessEvent)
#: Reminders go to consultations still booked or confirmed; one already waiting or under way needs none.
REMINDED_STATUSES = (ConsultationStatus.SCHEDULED.value, ConsultationStatus.CONFIRMED.value)


def reminder_key_of(minutes: int) -> ColumnElement[str]:
    """The key a consultation's reminder `minutes` before its start is recorded under, in SQL."""
    vc = VideoConsultation
    return (
        literal(REMINDER_KEY_PREFIX, String)
        + cast(vc.id, String)
        + literal(":", String)
        + cast(vc.version, String)
        + literal(f":{minutes}", String)
    )


class SqlReminderBook:
    """Finds consultations with a reminder due; nothing here commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _groups(self) -> dict[tuple[int, ...], list[int]]:
        """Services by the reminder minutes they use; the default group also takes consultations with no
        service (an appointment-less one)."""
        groups: dict[tuple[int, ...], list[int]] = {}
        for service_id, configured in (
            await self.session.execute(select(Service.id, Service.reminder_minutes))
        ).all():
            groups.setdefault(reminder_times(configured), []).append(service_id)
        return groups

    async def due_candidates(self, now: datetime, limit: int) -> list[ReminderCandidate]:
        vc = VideoConsultation
        groups = await self._groups()
        groups.setdefault(reminder_times(None), [])
        pending: list[ColumnElement[bool]] = []
        for minutes_list, service_ids in groups.items():
            if not minutes_list:
                continue  # a service that sends no reminders
            in_group: ColumnElement[bool] = (
                Appointment.service_id.in_(service_ids) if service_ids else false()
            )
            if minutes_list == reminder_times(None):
                in_group = or_(in_group, Appointment.service_id.is_(None))
            due = [
                and_(
                    vc.scheduled_at <= now + timedelta(minutes=m),
                    ~exists().where(BusinessEvent.idempotency_key == reminder_key_of(m)),
                )
                for m in minutes_list
            ]
            pending.append(and_(in_group, or_(*due)))
        if not pending:
            return []
        query = (
            select(
                vc.id,
                vc.version,
                vc.customer_id,
                vc.scheduled_at,
                vc.created_at,
                vc.link_token,
                Service.name,
                Service.reminder_minutes,
                StaffUser.name,
                Customer.timezone,
                Customer.locale,
            )
            .join(Customer, Customer.id == vc.customer_id)
            .outerjoin(Appointment, Appointment.id == vc.appointment_id)
            .outerjoin(Service, Service.id == Appointment.service_id)
            .outerjoin(StaffUser, StaffUser.id == vc.staff_id)
            .where(vc.status.in_(REMINDED_STATUSES), vc.scheduled_at > now, or_(*pending))
            .order_by(vc.scheduled_at, vc.id)
            .limit(limit)
        )
        return [_candidate(row) for row in (await self.session.execute(query)).all()]

    async def record(self, events: Sequence[ReminderEvent], at: datetime) -> set[str]:
        if not events:
            return set()
        rows = [
            {
                "event_type": e.event_type,
                "idempotency_key": e.idempotency_key,
                "customer_id": e.customer_id,
                "payload": dict(e.payload),
                "occurred_at": at,
            }
            # Key order: two workers inserting the same reminders take their locks in the same order.
            for e in sorted(events, key=lambda e: e.idempotency_key)
        ]
        result = await self.session.execute(
            insert_for(self.session, EVENTS)
            .on_conflict_do_nothing(index_elements=[EVENTS.c.idempotency_key])
            .returning(EVENTS.c.idempotency_key),
            rows,
        )
        return {str(key) for key in result.scalars().all()}


def _candidate(row: Any) -> ReminderCandidate:
    (cid, version, customer_id, scheduled_at, created_at, token, service, minutes, clinician, tz, locale) = (
        row
    )
    return ReminderCandidate(
        consultation_id=cid,
        version=version,
        customer_id=customer_id,
        scheduled_at=scheduled_at,
        booked_at=created_at,
        reminder_minutes=reminder_times(minutes),
        link_token=token,
        service=service,
        clinician=clinician,
        customer_timezone=tz or "UTC",
        customer_locale=locale or "en",
    )


class SqlReminderUnitOfWork(SqlNotificationUnitOfWork):
    """The notification unit of work plus the reminder book on the same session."""

    reminders: SqlReminderBook

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.reminders = SqlReminderBook(self.session)
        return self
