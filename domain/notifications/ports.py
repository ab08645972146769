"""The storage notification use-cases need, as Protocols that storage/ implements and tests fake."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from domain.campaigns.ports import PlanningUnitOfWork
from domain.notifications.model import BusinessEvent, NotificationRule, NotificationRuleDraft, RecordedEvent


class NotificationRepository(Protocol):
    async def add_event(
        self,
        event_type: str,
        idempotency_key: str,
        customer_id: int | None,
        payload: Mapping[str, Any],
        occurred_at: datetime,
    ) -> RecordedEvent:
        """Store the event unless its key exists; either way return the stored one."""

    async def pending_events(self, limit: int) -> list[BusinessEvent]:
        """The oldest unprocessed events, locked against other processors where the engine allows."""

    async def mark_processed(self, event_ids: Sequence[int], at: datetime) -> None: ...

    async def rules_for(self, event_types: Sequence[str]) -> list[NotificationRule]:
        """Enabled rules for these event types."""

    async def add_rule(self, draft: NotificationRuleDraft) -> NotificationRule: ...


class NotificationUnitOfWork(PlanningUnitOfWork, Protocol):
    @property
    def notifications(self) -> NotificationRepository: ...
