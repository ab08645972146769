"""Notification rules: when a message for an event is due, which channels to try, what the template sees."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.campaigns.model import Recipient
from domain.notifications.model import BusinessEvent, NotificationError, NotificationRule
from domain.vocabulary import Channel

#: Channels tried after the customer's preferred one, cheapest reliable first.
DEFAULT_CHANNEL_ORDER: tuple[Channel, ...] = (Channel.WHATSAPP, Channel.SMS, Channel.EMAIL, Channel.TELEGRAM)
#: The payload field that anchors reminders; offsets count from it (e.g. -1440 = a day before).
APPOINTMENT_AT = "appointment_at"
TOO_LATE = "too_late"
MAX_EVENT_TYPE_LENGTH = 64
MAX_KEY_LENGTH = 128


def validate_event(event_type: str, idempotency_key: str, payload: Mapping[str, Any]) -> None:
    if not event_type or len(event_type) > MAX_EVENT_TYPE_LENGTH:
        raise NotificationError(f"The event type must be 1 to {MAX_EVENT_TYPE_LENGTH} characters long.")
    if not idempotency_key or len(idempotency_key) > MAX_KEY_LENGTH:
        raise NotificationError(f"The idempotency key must be 1 to {MAX_KEY_LENGTH} characters long.")
    if APPOINTMENT_AT in payload:
        anchor_of(payload, datetime.now(UTC))


def anchor_of(payload: Mapping[str, Any], default: datetime) -> datetime:
    """The moment offsets count from: the payload's appointment time when there is one, else ``default``."""
    value = payload.get(APPOINTMENT_AT)
    if value is None:
        return default
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        raise NotificationError(f"'{APPOINTMENT_AT}' must be an ISO date-time with a time zone.") from None
    if moment.tzinfo is None:
        raise NotificationError(f"'{APPOINTMENT_AT}' needs a time zone offset.")
    return moment.astimezone(UTC)


def due_at(rule: NotificationRule, event: BusinessEvent, now: datetime) -> datetime | None:
    """When the rule's message should go out; None when it would arrive after the thing it is about.

    A reminder whose moment has passed but whose appointment is still ahead goes out now (booked late);
    one for an appointment already begun is pointless.
    """
    anchor = anchor_of(event.payload, event.occurred_at)
    due = anchor + timedelta(minutes=rule.offset_minutes)
    if due >= now:
        return due
    if rule.offset_minutes < 0 and anchor <= now:
        return None
    return now


def channel_order(rule: NotificationRule, recipient: Recipient) -> tuple[Channel, ...]:
    """The rule's own order, or the customer's preferred channel followed by the default order."""
    if rule.channel_order:
        return rule.channel_order
    preferred: Sequence[Channel] = (recipient.preferred_channel,) if recipient.preferred_channel else ()
    return tuple(dict.fromkeys((*preferred, *DEFAULT_CHANNEL_ORDER)))
