"""Business events and the notification rules that turn them into messages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from domain.vocabulary import Channel, MessageCategory


class NotificationError(ValueError):
    """An event or rule is malformed; the message is meant for whoever sent it."""


class NotificationRuleNotFound(LookupError):
    """No notification rule has the id asked for."""


@dataclass(frozen=True)
class BusinessEvent:
    """Something that happened in the business (order.created, appointment.booked), recorded once per key."""

    id: int
    event_type: str
    idempotency_key: str
    customer_id: int | None
    payload: Mapping[str, Any]
    occurred_at: datetime
    processed_at: datetime | None = None


@dataclass(frozen=True)
class NotificationRule:
    """When an event of ``event_type`` happens, send ``template_name``, ``offset_minutes`` from its anchor."""

    id: int
    name: str
    event_type: str
    template_name: str
    channel_order: tuple[Channel, ...] = ()
    offset_minutes: int = 0
    category: MessageCategory = MessageCategory.TRANSACTIONAL
    enabled: bool = True


@dataclass(frozen=True)
class NotificationRuleDraft:
    name: str
    event_type: str
    template_name: str
    channel_order: tuple[Channel, ...] = ()
    offset_minutes: int = 0
    category: MessageCategory = MessageCategory.TRANSACTIONAL
    enabled: bool = True


@dataclass(frozen=True)
class NotificationRuleChanges:
    """What may change on an existing rule; None leaves a field as it is. Name and event type are fixed."""

    template_name: str | None = None
    channel_order: tuple[Channel, ...] | None = None
    offset_minutes: int | None = None
    category: MessageCategory | None = None
    enabled: bool | None = None

    def applied_to(self, rule: NotificationRule) -> NotificationRule:
        changed = {name: value for name, value in vars(self).items() if value is not None}
        return replace(rule, **changed)


@dataclass(frozen=True)
class RecordedEvent:
    """The stored event, and whether this call stored it (False: the key was seen before)."""

    event: BusinessEvent
    created: bool


@dataclass(frozen=True)
class ProcessingReport:
    """What one pass over pending events did."""

    events: int = 0
    planned: int = 0
    suppressed: int = 0
    by_reason: Mapping[str, int] = field(default_factory=dict)
