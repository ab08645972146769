"""The storage notification use-cases need, as Protocols that storage/ implements and tests fake."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from domain.audit import AuditTrail
from domain.campaigns.ports import PlanningUnitOfWork, TemplateCatalogue
from domain.notifications.model import BusinessEvent, NotificationRule, NotificationRuleDraft, RecordedEvent
from domain.transaction import Transaction


class NotificationRuleRepository(Protocol):
    async def all_rules(self) -> list[NotificationRule]:
        """Every rule, enabled or not, oldest first."""

    async def rule(self, rule_id: int, *, for_update: bool = False) -> NotificationRule | None: ...

    async def add_rule(self, draft: NotificationRuleDraft) -> NotificationRule | None:
        """The stored rule; None when another rule already has the draft's name."""

    async def save_rule(self, rule: NotificationRule) -> None:
        """Store the rule's changeable fields (template, channels, offset, category, enabled)."""

    async def delete_rule(self, rule_id: int) -> None: ...


class NotificationRepository(NotificationRuleRepository, Protocol):
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


class NotificationRuleUnitOfWork(Transaction, Protocol):
    """What managing rules needs: the rules, the templates they name, and the audit trail."""

    @property
    def notifications(self) -> NotificationRuleRepository: ...

    @property
    def templates(self) -> TemplateCatalogue: ...

    @property
    def audit(self) -> AuditTrail: ...


class NotificationUnitOfWork(PlanningUnitOfWork, Protocol):
    @property
    def notifications(self) -> NotificationRepository: ...
