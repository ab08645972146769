"""How long Switchboard keeps what it no longer needs: the raw webhooks it has applied.

Every verified webhook is kept in `webhook_inbox` so that a provider's retry is applied once and a failed one
can be replayed. Once applied (or ignored) and older than any provider retries (Meta retries for up to 7
days), a webhook's raw body is only weight: about 1.5 GB per million messages, more than half of the
database. Failed webhooks stay until they are replayed. Each worker's pass (every 10 minutes) deletes up to
250,000, about 36 million a day per worker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from storage.database import Database
from storage.models import AuditLog, WebhookInbox

#: The shortest retention allowed: a provider retrying a webhook older than this would be applied again.
MIN_WEBHOOK_DAYS = 8
#: Rows deleted per transaction, and transactions per pass, so a first pass over a big backlog neither
#: holds a long lock nor runs for minutes; the next pass continues.
DELETE_BATCH = 5_000
BATCHES_PER_PASS = 50
#: A pass stops after this long even with batches left, so that it never delays the job table's next turn.
PASS_SECONDS = 60.0


@dataclass(frozen=True)
class RetentionPass:
    webhooks_deleted: int
    cutoff: datetime | None


async def forget_applied_webhooks(database: Database, days: int, now: datetime) -> RetentionPass:
    """Delete applied and ignored webhooks received more than `days` ago (0: keep them all)."""
    if days <= 0:
        return RetentionPass(0, None)
    cutoff = now - timedelta(days=max(days, MIN_WEBHOOK_DAYS))
    deleted = 0
    started = time.monotonic()
    for _ in range(BATCHES_PER_PASS):
        if time.monotonic() - started > PASS_SECONDS:
            break
        async with database.sessions() as session:
            # Several workers run this pass: on PostgreSQL each takes rows no other holds (SKIP LOCKED); a
            # SQLite write transaction has the database to itself.
            ids = list(
                await session.scalars(
                    select(WebhookInbox.id)
                    .where(WebhookInbox.status.in_(("applied", "ignored")), WebhookInbox.received_at < cutoff)
                    .limit(DELETE_BATCH)
                    .with_for_update(skip_locked=True)
                )
            )
            if ids:
                await session.execute(delete(WebhookInbox).where(WebhookInbox.id.in_(ids)))
                await session.commit()
        deleted += len(ids)
        if len(ids) < DELETE_BATCH:
            break
    if deleted:
        async with database.sessions() as session:
            session.add(
                AuditLog(
                    actor="retention",
                    via="worker",
                    action="webhooks.forget",
                    target=None,
                    detail={"deleted": deleted, "received_before": cutoff.isoformat(), "days": days},
                )
            )
            await session.commit()
    return RetentionPass(deleted, cutoff)
