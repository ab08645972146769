"""A consultation's reminder send log: each reminder planned or skipped, and what became of its message."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.video.reminders import REMINDER_KEY_PREFIX, SKIPPED_EVENT, read_reminder_key
from storage.database import Database
from storage.models import BusinessEvent, CustomerCommunication, VideoConsultation


@dataclass(frozen=True)
class ReminderLogLine:
    """One reminder of a consultation: when it was planned, on which channel, and what became of it.

    `status` is the message's (planned, sent, delivered, failed, suppressed, ...), or "skipped" (its time
    had passed when booked, or a later one was due), or "not sent" (no rule turned it into a message).
    """

    minutes_before: int
    version: int
    planned_at: datetime
    status: str
    channel: str | None = None
    reason: str | None = None
    message_id: int | None = None
    sent_at: datetime | None = None


async def reminder_log(source: Database | AsyncSession, consultation_id: int) -> list[ReminderLogLine]:
    """Every reminder of the consultation (all its versions), in the order they were planned."""
    if isinstance(source, Database):
        async with source.read_sessions() as session:
            return await _log(session, consultation_id)
    return await _log(source, consultation_id)


#: How the clinic system keys an appointment's own reminder: its "appointment.reminder" event posted to
#: /api/events (a notification rule turns it into the message), or a message sent under that key; one per
#: appointment, whatever kind it is. A video consultation shows it beside its video reminders, marked by
#: version 0 (FEED_VERSION).
FEED_REMINDER_KEY = "appointment.reminder:appointment:{}"
FEED_VERSION = 0
FEED_CHUNK = 500


async def feed_reminders(
    session: AsyncSession, appointment_ids: Iterable[int]
) -> dict[int, list[ReminderLogLine]]:
    """The clinic system's reminder of each appointment, as log lines by appointment id: messages keyed
    FEED_REMINDER_KEY, and the messages rules made of events keyed so. Read by unique key, then by the
    reminded customers' messages since (their timeline index), never by scanning every notification."""
    keys = {FEED_REMINDER_KEY.format(appointment_id): appointment_id for appointment_id in appointment_ids}
    wanted = sorted(keys)
    messages: dict[int, tuple[int, CustomerCommunication]] = {}  # by message id: one line per message
    for start in range(0, len(wanted), FEED_CHUNK):  # bound the query's parameters, however long the list
        chunk = wanted[start : start + FEED_CHUNK]
        for message in await session.scalars(
            select(CustomerCommunication).where(CustomerCommunication.idempotency_key.in_(chunk))
        ):
            messages[message.id] = (keys[message.idempotency_key or ""], message)
        events = list(
            await session.scalars(
                select(BusinessEvent).where(
                    BusinessEvent.event_type == "appointment.reminder",
                    BusinessEvent.idempotency_key.in_(chunk),
                )
            )
        )
        made = await rule_messages(session, events)
        for event in events:
            for message in made.get(event.id, []):
                messages[message.id] = (keys[event.idempotency_key], message)
    found: dict[int, list[ReminderLogLine]] = {}
    for appointment_id, message in messages.values():
        # Its lead time is the clinic's to set; the line says whose reminder it is instead.
        line = _message_line(0, FEED_VERSION, message.created_at, message)
        found.setdefault(appointment_id, []).append(line)
    return found


async def rule_messages(
    session: AsyncSession, events: list[BusinessEvent]
) -> dict[int, list[CustomerCommunication]]:
    """The messages notification rules made of `events`, by event id, oldest first: read through the
    events' customers' message timeline since the first event, never by scanning every notification."""
    customers = sorted({event.customer_id for event in events if event.customer_id is not None})
    if not customers:
        return {}
    wanted = {event.id for event in events}
    made: dict[int, list[CustomerCommunication]] = {}
    for message in await session.scalars(
        select(CustomerCommunication)
        .where(
            CustomerCommunication.customer_id.in_(customers),
            CustomerCommunication.source == "notification",
            CustomerCommunication.created_at >= min(e.occurred_at for e in events) - timedelta(hours=1),
        )
        .order_by(CustomerCommunication.id)
    ):
        tail = (message.source_ref or "").rpartition(":")[2]  # a rule's message: "{rule}:{event}"
        if tail.isascii() and tail.isdigit() and len(tail) < 19 and int(tail) in wanted:
            made.setdefault(int(tail), []).append(message)
    return made


#: What the patient is told of a consultation, by the event that tells them (domain.video.booking), in words.
TOLD_EVENTS = {"video.booked": "booked", "video.rescheduled": "moved", "video.cancelled": "cancelled"}


@dataclass(frozen=True)
class ToldLine:
    """A message telling the patient of their consultation (booked, moved, cancelled): what it said, and
    the channel and status of the message a rule made of it (None while no rule has)."""

    what: str
    at: datetime
    message: ReminderLogLine | None
    waiting: bool


async def told_log(session: AsyncSession, consultation_id: int) -> list[ToldLine]:
    """The booking, move and cancellation messages of a consultation, oldest first: the lasting record of
    where the link went (the booking page's notice is only a notice)."""
    customer_id = await session.scalar(
        select(VideoConsultation.customer_id).where(VideoConsultation.id == consultation_id)
    )
    if customer_id is None:
        return []
    # Through the patient's events (their index), not a LIKE over every event's key.
    moved = f"video.rescheduled:{consultation_id}:"
    keys = {f"video.booked:{consultation_id}", f"video.cancelled:{consultation_id}"}
    events = [
        event
        for event in await session.scalars(
            select(BusinessEvent)
            .where(BusinessEvent.customer_id == customer_id, BusinessEvent.event_type.in_(TOLD_EVENTS))
            .order_by(BusinessEvent.occurred_at, BusinessEvent.id)
        )
        if event.idempotency_key in keys or event.idempotency_key.startswith(moved)
    ]
    if not events:
        return []
    by_event = await rule_messages(session, events)
    lines = []
    for event in events:
        what = TOLD_EVENTS.get(event.event_type, event.event_type)
        made = by_event.get(event.id, [])
        if not made:
            lines.append(ToldLine(what, event.occurred_at, None, event.processed_at is None))
        lines.extend(
            ToldLine(what, event.occurred_at, _message_line(0, 0, event.occurred_at, m), False) for m in made
        )
    return lines


async def _log(session: AsyncSession, consultation_id: int) -> list[ReminderLogLine]:
    appointment_id = await session.scalar(
        select(VideoConsultation.appointment_id).where(VideoConsultation.id == consultation_id)
    )
    fed: list[ReminderLogLine] = []
    if appointment_id is not None:
        fed = (await feed_reminders(session, [appointment_id])).get(appointment_id, [])
    return sorted(
        [*fed, *await _video_log(session, consultation_id)],
        key=lambda line: (line.planned_at, line.version, -line.minutes_before),
    )


async def _video_log(session: AsyncSession, consultation_id: int) -> list[ReminderLogLine]:
    events = list(
        await session.scalars(
            select(BusinessEvent)
            .where(BusinessEvent.idempotency_key.like(f"{REMINDER_KEY_PREFIX}{consultation_id}:%"))
            .order_by(BusinessEvent.occurred_at, BusinessEvent.id)
        )
    )
    if not events:
        return []
    by_event = await rule_messages(session, events)
    lines: list[ReminderLogLine] = []
    for event in events:
        key = read_reminder_key(event.idempotency_key)
        if key is None:
            continue
        _, version, minutes = key
        lines.extend(_lines(event, version, minutes, by_event.get(event.id, [])))
    # Reminders planned in one pass (a late booking skipping two) read earliest reminder first.
    return sorted(lines, key=lambda line: (line.planned_at, line.version, -line.minutes_before))


def _lines(
    event: BusinessEvent, version: int, minutes: int, messages: list[CustomerCommunication]
) -> list[ReminderLogLine]:
    payload = event.payload or {}
    if event.event_type == SKIPPED_EVENT:
        reason = str(payload.get("skipped") or "skipped")
        return [
            ReminderLogLine(minutes, version, event.occurred_at, "skipped", reason=f"Not sent: {reason}.")
        ]
    if not messages:
        reason = (
            "No notification rule turned it into a message (is the reminder rule switched on?)."
            if event.processed_at is not None
            else "Waiting for the notification rules."
        )
        return [ReminderLogLine(minutes, version, event.occurred_at, "not sent", reason=reason)]
    return [_message_line(minutes, version, event.occurred_at, m) for m in messages]


def _message_line(
    minutes: int, version: int, planned_at: datetime, message: CustomerCommunication
) -> ReminderLogLine:
    """A reminder that became a message: what became of it, on which channel, and why if it did not go."""
    return ReminderLogLine(
        minutes,
        version,
        planned_at,
        message.status,
        channel=message.channel,
        reason=_explanation(message),
        message_id=message.id,
        sent_at=message.sent_at,
    )


def _explanation(message: CustomerCommunication) -> str | None:
    explanation = (message.payload or {}).get("explanation")
    return str(explanation) if explanation else message.status_reason
