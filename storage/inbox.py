"""The webhook inbox repository, and the unit of work that webhooks and consent changes are applied in."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Self

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.conversations.model import StoredWebhook, WebhookDelivery
from storage.bounced_mail import SqlBouncedMail
from storage.consent import SqlConsentLedger
from storage.conversations import SqlConversations
from storage.csat import SqlSurveyAnswers
from storage.models import WebhookInbox
from storage.outbox import SqlOutbox
from storage.sql import insert_for, table_of
from storage.unit_of_work import SqlAuditTrail, SqlUnitOfWork

INBOX = table_of(WebhookInbox)


class SqlWebhookInbox:
    """Every verified webhook, unique per (provider, dedupe_key). Nothing here commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, delivery: WebhookDelivery, at: datetime) -> int | None:
        statement = (
            insert_for(self.session, INBOX)
            .values(**_row(delivery), status="received", attempts=1, received_at=at)
            .on_conflict_do_nothing(index_elements=["provider", "dedupe_key"])
            .returning(INBOX.c.id)
        )
        inserted: int | None = (await self.session.execute(statement)).scalar_one_or_none()
        return inserted

    async def seen(self, delivery: WebhookDelivery) -> bool:
        found = await self.session.scalar(
            select(INBOX.c.id).where(
                INBOX.c.provider == delivery.provider, INBOX.c.dedupe_key == delivery.dedupe_key[:200]
            )
        )
        return found is not None

    async def add_applied_many(self, deliveries: Sequence[WebhookDelivery], at: datetime) -> list[int | None]:
        """Stores a batch as applied, in one statement; for each delivery its new row id, or None when its
        key was already stored (before, or earlier in this same batch). The caller's transaction only
        commits once the batch is applied, so "applied" is never on record for a webhook that was not."""
        keys = [(d.provider, d.dedupe_key[:200]) for d in deliveries]
        fresh: dict[tuple[str, str], WebhookDelivery] = {}
        for key, delivery in zip(keys, deliveries, strict=True):
            fresh.setdefault(key, delivery)
        rows = [
            {**_row(d), "status": "applied", "attempts": 1, "received_at": at, "applied_at": at}
            # Key order: two batches inserting overlapping keys take their locks in the same order.
            for _, d in sorted(fresh.items(), key=lambda item: item[0])
        ]
        result = await self.session.execute(
            insert_for(self.session, INBOX)
            .on_conflict_do_nothing(index_elements=["provider", "dedupe_key"])
            .returning(INBOX.c.provider, INBOX.c.dedupe_key, INBOX.c.id),
            rows,
        )
        ids = {(provider, key): inbox_id for provider, key, inbox_id in result.all()}
        given: set[tuple[str, str]] = set()
        answer: list[int | None] = []
        for key in keys:
            inbox_id = ids.get(key) if key not in given else None
            given.add(key)
            answer.append(inbox_id)
        return answer

    async def mark_applied(self, inbox_id: int, at: datetime) -> None:
        await self.session.execute(
            update(INBOX).where(INBOX.c.id == inbox_id).values(status="applied", applied_at=at, error=None)
        )

    async def record_failure(self, delivery: WebhookDelivery, error: str, at: datetime) -> None:
        statement = insert_for(self.session, INBOX).values(
            **_row(delivery), status="failed", error=error[:500], attempts=1, received_at=at
        )
        statement = statement.on_conflict_do_update(
            index_elements=["provider", "dedupe_key"],
            set_={
                "status": "failed",
                "error": statement.excluded.error,
                "attempts": INBOX.c.attempts + 1,
            },
        )
        await self.session.execute(statement)

    async def failed(self, limit: int) -> list[StoredWebhook]:
        rows = (
            await self.session.execute(
                select(INBOX)
                .where(INBOX.c.status == "failed")
                .order_by(INBOX.c.received_at, INBOX.c.id)
                .limit(limit)
            )
        ).all()
        return [
            StoredWebhook(
                id=row.id,
                delivery=WebhookDelivery(row.provider, row.kind, row.dedupe_key, row.body, row.content_type),
                attempts=row.attempts,
            )
            for row in rows
        ]

    async def claim_for_replay(self, inbox_id: int) -> bool:
        result = await self.session.execute(
            update(INBOX)
            .where(INBOX.c.id == inbox_id, INBOX.c.status == "failed")
            .values(status="received", attempts=INBOX.c.attempts + 1)
        )
        return bool(getattr(result, "rowcount", 0))


def _row(delivery: WebhookDelivery) -> dict[str, str]:
    return {
        "provider": delivery.provider,
        "kind": delivery.kind,
        "dedupe_key": delivery.dedupe_key[:200],
        "body": delivery.body,
        "content_type": delivery.content_type[:100],
    }


class ConversationUnitOfWork:
    """A SqlUnitOfWork plus the inbox, conversation and consent repositories on the same session.

    Satisfies domain.conversations.ports.InboundUnitOfWork and domain.consent.ledger.ConsentUnitOfWork.
    """

    def __init__(self, inner: SqlUnitOfWork) -> None:
        self._inner = inner

    @property
    def session(self) -> AsyncSession:
        return self._inner.session

    @property
    def outbox(self) -> SqlOutbox:
        return self._inner.outbox

    @property
    def inbox(self) -> SqlWebhookInbox:
        return SqlWebhookInbox(self.session)

    @property
    def conversations(self) -> SqlConversations:
        return SqlConversations(self.session, business_tz=self._inner.business_tz)

    @property
    def audit(self) -> SqlAuditTrail:
        return self._inner.audit

    @property
    def consent(self) -> SqlConsentLedger:
        return SqlConsentLedger(self.session, business_tz=self._inner.business_tz)

    @property
    def csat(self) -> SqlSurveyAnswers:
        return SqlSurveyAnswers(self.session)

    @property
    def bounced_mail(self) -> SqlBouncedMail:
        return SqlBouncedMail(self.session, self._inner.audit)

    async def __aenter__(self) -> Self:
        await self._inner.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        await self._inner.__aexit__(exc_type, exc, tb)

    async def commit(self) -> None:
        await self._inner.commit()
