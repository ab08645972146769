"""Notification storage: business events (stored once per key), notification rules, and their unit of work."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Self

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.clock import utc_now
from domain.consent.model import ConsentPolicy
from domain.notifications.model import BusinessEvent, NotificationRule, NotificationRuleDraft, RecordedEvent
from domain.notifications.rules import reaching_channel
from domain.vocabulary import OUTBOUND_CHANNELS, Channel, MessageCategory
from storage.campaigns import SqlOutboxWriter, SqlTemplateCatalogue
from storage.models import AutomatedNotification
from storage.models import BusinessEvent as EventRow
from storage.recipients import SqlRecipientDirectory
from storage.sql import dialect_of, insert_for, table_of
from storage.unit_of_work import SqlUnitOfWork

EVENTS = table_of(EventRow)
RULES = table_of(AutomatedNotification)
MAX_ID = 2**63 - 1


class SqlNotificationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_event(
        self,
        event_type: str,
        idempotency_key: str,
        customer_id: int | None,
        payload: Mapping[str, Any],
        occurred_at: datetime,
    ) -> RecordedEvent:
        # ON CONFLICT DO NOTHING rather than catching IntegrityError: a concurrent duplicate POST waits for
        # the first one's commit and then simply finds its row.
        statement = (
            insert_for(self._session, EVENTS)
            .values(
                event_type=event_type,
                idempotency_key=idempotency_key,
                customer_id=customer_id,
                payload=dict(payload),
                occurred_at=occurred_at,
            )
            .on_conflict_do_nothing(index_elements=[EVENTS.c.idempotency_key])
            .returning(EVENTS.c.id)
        )
        created = (await self._session.execute(statement)).scalar() is not None
        row = await self._session.scalar(
            select(EventRow)
            .where(EventRow.idempotency_key == idempotency_key)
            .execution_options(populate_existing=True)
        )
        assert row is not None  # just inserted, or the conflicting row
        return RecordedEvent(_event(row), created)

    async def pending_events(self, limit: int) -> list[BusinessEvent]:
        query = select(EventRow).where(EventRow.processed_at.is_(None)).order_by(EventRow.id).limit(limit)
        if dialect_of(self._session) == "postgresql":
            # Two processors split the backlog instead of waiting on each other's rows.
            query = query.with_for_update(skip_locked=True)
        return [_event(row) for row in await self._session.scalars(query)]

    async def mark_processed(self, event_ids: Sequence[int], at: datetime) -> None:
        if event_ids:
            await self._session.execute(
                update(EventRow).where(EventRow.id.in_(event_ids)).values(processed_at=at),
                execution_options={"synchronize_session": False},
            )

    async def rules_for(self, event_types: Sequence[str]) -> list[NotificationRule]:
        rows = await self._session.scalars(
            select(AutomatedNotification)
            .where(AutomatedNotification.event_type.in_(event_types), AutomatedNotification.enabled.is_(True))
            .order_by(AutomatedNotification.id)
        )
        return [_rule(row) for row in rows]

    async def reaching_channel(
        self,
        event_type: str,
        customer_id: int,
        *,
        at: datetime | None = None,
        policy: ConsentPolicy | None = None,
    ) -> tuple[str | None, str]:
        """The channel the enabled rules for ``event_type`` would reach the customer on at ``at`` (the first
        rule that reaches them), and why: a key of REACH_REASONS, or of NOT_REACHED with no channel. The
        business's policy only moves when a service message goes, not where, so the default serves staff
        asking before a booking."""
        when = at or utc_now()
        found = await SqlRecipientDirectory(self._session).by_ids(
            [customer_id], channels=OUTBOUND_CHANNELS, now=when
        )
        rules = await self.rules_for([event_type])
        if not found or not rules:
            return None, "unreachable" if rules else "no_rule"
        catalogue = SqlTemplateCatalogue(self._session)
        for rule in rules:
            templates = await catalogue.variants(rule.template_name)
            channel, why = reaching_channel(rule, found[0], templates, policy or ConsentPolicy(), when)
            if channel is not None:
                return channel.value, why
        return None, "unreachable"

    async def all_rules(self) -> list[NotificationRule]:
        rows = await self._session.scalars(select(AutomatedNotification).order_by(AutomatedNotification.id))
        return [_rule(row) for row in rows]

    async def rule(self, rule_id: int, *, for_update: bool = False) -> NotificationRule | None:
        if not 0 < rule_id <= MAX_ID:  # beyond BIGINT, PostgreSQL would fail rather than match nothing
            return None
        query = select(AutomatedNotification).where(AutomatedNotification.id == rule_id)
        if for_update and dialect_of(self._session) == "postgresql":
            query = query.with_for_update()
        row = await self._session.scalar(query)
        return None if row is None else _rule(row)

    async def add_rule(self, draft: NotificationRuleDraft) -> NotificationRule | None:
        # ON CONFLICT on the unique name: of two concurrent creates with one name, the second gets None.
        statement = (
            insert_for(self._session, RULES)
            .values(
                name=draft.name,
                event_type=draft.event_type,
                template_name=draft.template_name,
                channel_order=[c.value for c in draft.channel_order],
                offset_minutes=draft.offset_minutes,
                category=draft.category.value,
                enabled=draft.enabled,
            )
            .on_conflict_do_nothing(index_elements=[RULES.c.name])
            .returning(RULES.c.id)
        )
        rule_id = (await self._session.execute(statement)).scalar()
        return None if rule_id is None else await self.rule(rule_id)

    async def save_rule(self, rule: NotificationRule) -> None:
        await self._session.execute(
            update(AutomatedNotification)
            .where(AutomatedNotification.id == rule.id)
            .values(
                template_name=rule.template_name,
                channel_order=[c.value for c in rule.channel_order],
                offset_minutes=rule.offset_minutes,
                category=rule.category.value,
                enabled=rule.enabled,
            ),
            execution_options={"synchronize_session": False},
        )

    async def delete_rule(self, rule_id: int) -> None:
        await self._session.execute(
            delete(AutomatedNotification).where(AutomatedNotification.id == rule_id),
            execution_options={"synchronize_session": False},
        )


def _event(row: EventRow) -> BusinessEvent:
    return BusinessEvent(
        id=row.id,
        event_type=row.event_type,
        idempotency_key=row.idempotency_key,
        customer_id=row.customer_id,
        payload=dict(row.payload or {}),
        occurred_at=row.occurred_at,
        processed_at=row.processed_at,
    )


def _rule(row: AutomatedNotification) -> NotificationRule:
    return NotificationRule(
        id=row.id,
        name=row.name,
        event_type=row.event_type,
        template_name=row.template_name,
        channel_order=tuple(Channel(c) for c in row.channel_order or ()),
        offset_minutes=row.offset_minutes,
        category=MessageCategory(row.category),
        enabled=row.enabled,
    )


class SqlNotificationUnitOfWork(SqlUnitOfWork):
    """The unit of work notification use-cases take."""

    notifications: SqlNotificationRepository
    templates: SqlTemplateCatalogue
    recipients: SqlRecipientDirectory
    outbox_writer: SqlOutboxWriter

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.notifications = SqlNotificationRepository(self.session)
        self.templates = SqlTemplateCatalogue(self.session)
        self.recipients = SqlRecipientDirectory(self.session)
        self.outbox_writer = SqlOutboxWriter(self.session)
        return self
