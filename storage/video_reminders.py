"""Consultation reminders in storage: the consultations with a reminder due and not yet recorded, and recording them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Self

from sqlalchemy import ColumnElement, Select, String, cast, exists, false, literal, or_, select
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

    async def due_candidates(
        self, now: datetime, limit: int, *, since: datetime | None = None
    ) -> list[ReminderCandidate]:
        # One query per reminder time, each a range of the scheduled_at index: an OR of them all would have
        # the engines read every consultation of the coming day, every second.
        by_minutes: dict[int, list[int]] = {}
        takes_none: set[int] = set()
        for minutes_list, service_ids in (await self._groups()).items():
            for minutes in minutes_list:
                by_minutes.setdefault(minutes, []).extend(service_ids)
        for minutes in reminder_times(None):
            by_minutes.setdefault(minutes, [])
            takes_none.add(minutes)  # consultations without a service get the default reminders
        found: dict[int, ReminderCandidate] = {}
        for minutes, service_ids in sorted(by_minutes.items()):
            lead = timedelta(minutes=minutes)
            after = now if since is None else max(now, since + lead)
            query = self._pending(minutes, service_ids, minutes in takes_none).where(
                VideoConsultation.scheduled_at > after, VideoConsultation.scheduled_at <= now + lead
            )
            for row in (await self.session.execute(query.limit(limit))).all():
                found.setdefault(row[0], _candidate(row))
        return sorted(found.values(), key=lambda c: (c.scheduled_at, c.consultation_id))[:limit]

    def _pending(self, minutes: int, service_ids: list[int], takes_none: bool) -> Select[Any]:
        """Booked or confirmed consultations of these services whose reminder `minutes` is not recorded."""
        vc = VideoConsultation
        in_group: ColumnElement[bool] = Appointment.service_id.in_(service_ids) if service_ids else false()
        if takes_none:
            in_group = or_(in_group, Appointment.service_id.is_(None))
        return (
            select(
                vc.id,
                vc.version,
                vc.customer_id,
                vc.scheduled_at,
                vc.created_at,
                vc.link_token,
                Service.name,
                Service.names,
                Service.reminder_minutes,
                StaffUser.name,
                Customer.timezone,
                Customer.locale,
            )
            .join(Customer, Customer.id == vc.customer_id)
            .outerjoin(Appointment, Appointment.id == vc.appointment_id)
            .outerjoin(Service, Service.id == Appointment.service_id)
            .outerjoin(StaffUser, StaffUser.id == vc.staff_id)
            .where(
                vc.status.in_(REMINDED_STATUSES),
                in_group,
                ~exists().where(BusinessEvent.idempotency_key == reminder_key_of(minutes)),
            )
            .order_by(vc.scheduled_at, vc.id)
        )

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
    (
        cid,
        version,
        customer_id,
        scheduled_at,
        created_at,
        token,
        service,
        names,
        minutes,
        clinician,
        tz,
        locale,
    ) = row
    return ReminderCandidate(
        consultation_id=cid,
        version=version,
        customer_id=customer_id,
        scheduled_at=scheduled_at,
        booked_at=created_at,
        reminder_minutes=reminder_times(minutes),
        link_token=token,
        service=service,
        service_names=names,
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
