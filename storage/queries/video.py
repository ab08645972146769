"""Video consultations as the dashboard shows them: a clinician's day and week, one consultation's full story."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from domain.video.booking import VIDEO_BOOKED
from domain.video.reminders import REMINDER_KEY_PREFIX, read_reminder_key
from storage.database import Database
from storage.models import (
    Appointment,
    AuditLog,
    BusinessEvent,
    Customer,
    CustomerCommunication,
    Location,
    Service,
    StaffUser,
    VideoConsultation,
)
from storage.models.video import VideoJoin, VideoRebookOffer
from storage.notifications import SqlNotificationRepository
from storage.queries.video_reminders import ReminderLogLine, ToldLine, feed_reminders, reminder_log, told_log
from storage.queries.video_reminders import _lines as reminder_lines  # one way to read a reminder's messages

#: How many consultations one page lists at most (a week of a busy clinic).
PAGE_LIMIT = 2000
#: Patients per IN list when reading many consultations' reminders.
CHUNK = 500


@dataclass(frozen=True)
class ConsultationLine:
    """One consultation in a clinician's list."""

    id: int
    appointment_id: int | None
    scheduled_at: datetime
    duration_minutes: int
    status: str
    version: int
    customer_id: int
    customer: str
    customer_timezone: str
    staff_id: int | None
    staff: str | None
    service: str | None
    service_id: int | None
    location: str | None
    confirmed_at: datetime | None
    patient_joined_at: datetime | None
    clinician_joined_at: datetime | None
    no_show_at: datetime | None
    no_show_by: str | None
    rebook_offered_at: datetime | None
    room_url: str
    #: The clinician's own time zone (their working hours and the times staff book in are in it).
    staff_timezone: str | None = None


@dataclass(frozen=True)
class JoinLine:
    who: str
    joined_at: datetime
    alerted_at: datetime | None


@dataclass(frozen=True)
class RebookOfferLine:
    offered_at: datetime
    channel: str
    slots: tuple[str, ...]
    answered_at: datetime | None
    rebooked_id: int | None


@dataclass(frozen=True)
class AuditLine:
    occurred_at: datetime
    actor: str
    via: str
    action: str
    detail: dict[str, Any]
    #: The staff member's name when the actor is a staff member's email ("Lena Hoffmann").
    staff_name: str | None = None


@dataclass(frozen=True)
class ConsultationDetail:
    line: ConsultationLine
    reminders: tuple[ReminderLogLine, ...]
    joins: tuple[JoinLine, ...]
    offers: tuple[RebookOfferLine, ...]
    audit: tuple[AuditLine, ...]
    #: The messages that told the patient it was booked, moved or cancelled.
    told: tuple[ToldLine, ...] = ()
    #: The patient's link token (their /v/ link), for staff to pass on when no message reaches them.
    link_token: str | None = None


def _lines_query() -> Any:
    return (
        select(
            VideoConsultation,
            Customer.name,
            Customer.timezone,
            StaffUser.name,
            Service.name,
            Service.id,
            Location.name,
            StaffUser.timezone,
        )
        .join(Customer, Customer.id == VideoConsultation.customer_id)
        .outerjoin(StaffUser, StaffUser.id == VideoConsultation.staff_id)
        .outerjoin(Appointment, Appointment.id == VideoConsultation.appointment_id)
        .outerjoin(Service, Service.id == Appointment.service_id)
        .outerjoin(Location, Location.id == Appointment.location_id)
    )


def _line(row: Any) -> ConsultationLine:
    vc: VideoConsultation = row[0]
    return ConsultationLine(
        id=vc.id,
        appointment_id=vc.appointment_id,
        scheduled_at=vc.scheduled_at,
        duration_minutes=vc.duration_minutes,
        status=vc.status,
        version=vc.version,
        customer_id=vc.customer_id,
        customer=row[1],
        customer_timezone=row[2],
        staff_id=vc.staff_id,
        staff=row[3],
        service=row[4],
        service_id=row[5],
        location=row[6],
        confirmed_at=vc.confirmed_at,
        patient_joined_at=vc.patient_joined_at,
        clinician_joined_at=vc.clinician_joined_at,
        no_show_at=vc.no_show_at,
        no_show_by=vc.no_show_by,
        rebook_offered_at=vc.rebook_offered_at,
        room_url=vc.room_url,
        staff_timezone=row[7],
    )


async def consultations_between(
    database: Database, start: datetime, end: datetime, *, staff_id: int | None = None
) -> list[ConsultationLine]:
    """Consultations starting in [start, end), by clinician name then time (at most PAGE_LIMIT)."""
    query = _lines_query().where(
        VideoConsultation.scheduled_at >= start, VideoConsultation.scheduled_at < end
    )
    if staff_id is not None:
        query = query.where(VideoConsultation.staff_id == staff_id)
    query = query.order_by(StaffUser.name, VideoConsultation.scheduled_at, VideoConsultation.id).limit(
        PAGE_LIMIT
    )
    async with database.read_sessions() as session:
        rows = (await session.execute(query)).all()
    return [_line(row) for row in rows]


async def consultation_line(database: Database, consultation_id: int) -> ConsultationLine | None:
    async with database.read_sessions() as session:
        row = (await session.execute(_lines_query().where(VideoConsultation.id == consultation_id))).first()
    return None if row is None else _line(row)


async def clinicians_with_consultations(
    database: Database, start: datetime, end: datetime
) -> list[tuple[int, str]]:
    """(id, name) of staff holding consultations in [start, end), for the clinician filter."""
    query = (
        select(StaffUser.id, StaffUser.name)
        .join(VideoConsultation, VideoConsultation.staff_id == StaffUser.id)
        .where(VideoConsultation.scheduled_at >= start, VideoConsultation.scheduled_at < end)
        .distinct()
        .order_by(StaffUser.name)
    )
    async with database.read_sessions() as session:
        return [(row[0], row[1]) for row in (await session.execute(query)).all()]


async def reminder_logs(
    database: Database, lines: Sequence[ConsultationLine]
) -> dict[int, list[ReminderLogLine]]:
    """The reminder send logs of many consultations at once, for a list (the detail page reads one by one).

    Two reads in all: the reminder events of the listed patients, and their notification messages; each
    log reads as storage.queries.video_reminders writes it (skipped, not sent, or what became of each message).
    """
    wanted = {line.id: line.customer_id for line in lines}
    customers = sorted(set(wanted.values()))
    events: list[BusinessEvent] = []
    messages: list[CustomerCommunication] = []
    async with database.read_sessions() as session:
        for start in range(0, len(customers), CHUNK):
            chunk = customers[start : start + CHUNK]
            events += await session.scalars(
                select(BusinessEvent)
                .where(
                    BusinessEvent.idempotency_key.like(f"{REMINDER_KEY_PREFIX}%"),
                    BusinessEvent.customer_id.in_(chunk),
                )
                .order_by(BusinessEvent.occurred_at, BusinessEvent.id)
            )
        # A reminder's messages are written when its event is processed, so after the event was recorded:
        # only patients with reminder events, and only their messages since (read by customer and time, not
        # every notification a patient was ever sent; an hour's margin for clocks between workers).
        reminded = sorted({e.customer_id for e in events if e.customer_id is not None})
        for start in range(0, len(reminded), CHUNK):
            chunk = reminded[start : start + CHUNK]
            members = set(chunk)
            since = min(e.occurred_at for e in events if e.customer_id in members) - timedelta(hours=1)
            messages += await session.scalars(
                select(CustomerCommunication)
                .where(
                    CustomerCommunication.customer_id.in_(chunk),
                    CustomerCommunication.created_at >= since,
                    CustomerCommunication.source == "notification",
                )
                .order_by(CustomerCommunication.id)
            )
    by_event: dict[int, list[CustomerCommunication]] = {}
    for message in messages:
        event_id = (message.source_ref or "").rpartition(":")[2]
        if event_id.isascii() and event_id.isdigit() and len(event_id) < 19:
            by_event.setdefault(int(event_id), []).append(message)
    logs: dict[int, list[ReminderLogLine]] = {consultation_id: [] for consultation_id in wanted}
    for event in events:
        key = read_reminder_key(event.idempotency_key)
        if key is None or key[0] not in wanted:
            continue
        consultation_id, version, minutes = key
        logs[consultation_id].extend(reminder_lines(event, version, minutes, by_event.get(event.id, [])))
    async with database.read_sessions() as session:
        fed = await feed_reminders(session, [line.appointment_id for line in lines if line.appointment_id])
    for line in lines:
        if line.appointment_id in fed:
            logs[line.id].extend(fed[line.appointment_id])
    for log in logs.values():  # as reminder_log orders them
        log.sort(key=lambda line: (line.planned_at, line.version, -line.minutes_before))
    return logs


async def booking_reaches(database: Database, customer_id: int) -> tuple[str | None, str]:
    """The channel a booking's message would reach the customer on, and why (REACH_REASONS); (None, "")
    when none would: said on the booking form before staff book."""
    async with database.read_sessions() as session:
        return await SqlNotificationRepository(session).reaching_channel(VIDEO_BOOKED, customer_id)


async def consultation_detail(database: Database, consultation_id: int) -> ConsultationDetail | None:
    """One consultation with its reminder log, joins, rebooking offers and audited changes."""
    line = await consultation_line(database, consultation_id)
    if line is None:
        return None
    reminders = await reminder_log(database, consultation_id)
    async with database.read_sessions() as session:
        told = await told_log(session, consultation_id)
        link_token = await session.scalar(
            select(VideoConsultation.link_token).where(VideoConsultation.id == consultation_id)
        )
        joins = (
            await session.execute(
                select(VideoJoin.who, VideoJoin.joined_at, VideoJoin.alerted_at)
                .where(VideoJoin.consultation_id == consultation_id)
                .order_by(VideoJoin.joined_at, VideoJoin.id)
            )
        ).all()
        offers = list(
            await session.scalars(
                select(VideoRebookOffer)
                .where(VideoRebookOffer.consultation_id == consultation_id)
                .order_by(VideoRebookOffer.offered_at, VideoRebookOffer.id)
            )
        )
        audit = (
            await session.execute(
                select(AuditLog, StaffUser.name)
                .outerjoin(StaffUser, StaffUser.email == AuditLog.actor)
                .where(AuditLog.target.in_(_audit_targets(line)))
                .order_by(AuditLog.occurred_at, AuditLog.id)
                .limit(100)
            )
        ).all()
    return ConsultationDetail(
        line,
        tuple(reminders),
        tuple(JoinLine(who, joined, alerted) for who, joined, alerted in joins),
        tuple(
            RebookOfferLine(
                o.offered_at, o.channel, tuple(str(s) for s in o.slots), o.answered_at, o.rebooked_id
            )
            for o in offers
        ),
        tuple(
            AuditLine(a.occurred_at, a.actor, a.via, a.action, dict(a.detail or {}), name)
            for a, name in audit
        ),
        tuple(told),
        link_token,
    )


def _audit_targets(line: ConsultationLine) -> Sequence[str]:
    """The names audit rows give a consultation (and its appointment, for no-show marking)."""
    targets = [f"video_consultation:{line.id}", f"consultation:{line.id}", f"video:{line.id}"]
    if line.appointment_id is not None:
        targets.append(f"appointment:{line.appointment_id}")
    return targets
