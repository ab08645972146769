"""A consultation's reminder send log: each reminder planned or skipped, and what became of its message."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.video.reminders import REMINDER_KEY_PREFIX, SKIPPED_EVENT, read_reminder_key
from storage.database import Database
from storage.models import BusinessEvent, CustomerCommunication


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


async def _log(session: AsyncSession, consultation_id: int) -> list[ReminderLogLine]:
    events = list(
        await session.scalars(
            select(BusinessEvent)
            .where(BusinessEvent.idempotency_key.like(f"{REMINDER_KEY_PREFIX}{consultation_id}:%"))
            .order_by(BusinessEvent.occurred_at, BusinessEvent.id)
        )
    )
    if not events:
        return []
    messages = list(
        await session.scalars(
            select(CustomerCommunication)
            .where(
                CustomerCommunication.source == "notification",
                CustomerCommunication.customer_id.in_({e.customer_id for e in events if e.customer_id}),
                or_(*(CustomerCommunication.source_ref.like(f"%:{e.id}") for e in events)),
            )
            .order_by(CustomerCommunication.id)
        )
    )
    by_event: dict[int, list[CustomerCommunication]] = {}
    for message in messages:
        event_id = (message.source_ref or "").rpartition(":")[2]
        if event_id.isascii() and event_id.isdigit() and len(event_id) < 19:
            by_event.setdefault(int(event_id), []).append(message)
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
    return [
        ReminderLogLine(
            minutes,
            version,
            event.occurred_at,
            m.status,
            channel=m.channel,
            reason=_explanation(m),
            message_id=m.id,
            sent_at=m.sent_at,
        )
        for m in messages
    ]


def _explanation(message: CustomerCommunication) -> str | None:
    explanation = (message.payload or {}).get("explanation")
    return str(explanation) if explanation else message.status_reason
