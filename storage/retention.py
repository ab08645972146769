"""How long Switchboard keeps what it no longer needs: the raw webhooks it has applied, and (when the business
sets a retention period) the texts of messages and conversations.

Every verified webhook is kept in `webhook_inbox` so that a provider's retry is applied once and a failed one
can be replayed. Once applied (or ignored) and older than any provider retries (Meta retries for up to 7
days), a webhook's raw body is only weight: about 1.5 GB per million messages, more than half of the
database. Failed webhooks stay until they are replayed. Each worker's pass (every 10 minutes) deletes up to
250,000, about 36 million a day per worker.

Message bodies (SWITCHBOARD_MESSAGE_BODY_RETENTION_DAYS) and conversation texts with their files
(SWITCHBOARD_CONVERSATION_RETENTION_DAYS) are blanked to "(expired)" once older than their period; the rows
stay, so every count and rate is unchanged. These passes walk the table by (created_at, id) from where the
last pass stopped (`retention_marks`), so no pass reads again what an earlier one blanked. A message still
planned or being sent when its time comes keeps its text.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.vocabulary import MessageStatus
from storage.customer_erasure import ERASED
from storage.database import Database
from storage.models import (
    AuditLog,
    ChatAttachment,
    ChatMessage,
    CustomerCommunication,
    RetentionMark,
    WebhookInbox,
)
from storage.sql import insert_for, table_of

#: The shortest retention allowed: a provider retrying a webhook older than this would be applied again.
MIN_WEBHOOK_DAYS = 8
#: Rows deleted per transaction, and transactions per pass, so a first pass over a big backlog neither
#: holds a long lock nor runs for minutes; the next pass continues.
DELETE_BATCH = 5_000
BATCHES_PER_PASS = 50
#: A pass stops after this long even with batches left, so that it never delays the job table's next turn.
PASS_SECONDS = 60.0
#: What a text past its retention period reads as.
EXPIRED = "(expired)"
#: Rows looked at per transaction by the text passes (their ids go into one IN list).
TEXT_BATCH = 5_000
#: Messages whose text a worker may still need: it is kept until they are sent.
UNSENT = (MessageStatus.PLANNED.value, MessageStatus.SENDING.value)


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


@dataclass(frozen=True)
class TextsExpired:
    """One text pass: how many texts it blanked (and files it deleted), and the id it reached."""

    blanked: int = 0
    files_deleted: int = 0
    through_id: int | None = None
    cutoff: datetime | None = None
    #: False when the pass stopped at its time or batch budget with ripe rows left for the next one.
    finished: bool = True


Blank = Callable[[AsyncSession, Sequence[Row[Any]]], Awaitable[tuple[int, int]]]


async def expire_message_bodies(database: Database, days: int, now: datetime) -> TextsExpired:
    """Blank body, subject and payload of messages created more than `days` ago (0: keep them)."""
    cc = CustomerCommunication

    async def blank(session: AsyncSession, rows: Sequence[Row[Any]]) -> tuple[int, int]:
        ids = [row.id for row in rows if row.status not in UNSENT]
        if not ids:
            return 0, 0
        done = await session.execute(
            update(cc)
            .where(cc.id.in_(ids), cc.body.not_in((EXPIRED, ERASED)))
            .values(body=EXPIRED, subject=None, payload=None)
            .execution_options(synchronize_session=False)
        )
        return done.rowcount, 0  # type: ignore[attr-defined]

    return await _expire_texts(
        database, "message bodies", cc, (cc.status,), days, now, blank, action="messages.expire"
    )


async def expire_conversation_texts(database: Database, days: int, now: datetime) -> TextsExpired:
    """Blank conversation turns written more than `days` ago and delete their files (0: keep them)."""

    async def blank(session: AsyncSession, rows: Sequence[Row[Any]]) -> tuple[int, int]:
        ids = [row.id for row in rows]
        files = await session.execute(
            delete(ChatAttachment)
            .where(ChatAttachment.message_id.in_(ids))
            .execution_options(synchronize_session=False)
        )
        done = await session.execute(
            update(ChatMessage)
            .where(ChatMessage.id.in_(ids), ChatMessage.body.not_in((EXPIRED, ERASED)))
            .values(body=EXPIRED)
            .execution_options(synchronize_session=False)
        )
        return done.rowcount, files.rowcount  # type: ignore[attr-defined]

    return await _expire_texts(
        database, "conversation texts", ChatMessage, (), days, now, blank, action="conversations.expire"
    )


async def _expire_texts(
    database: Database,
    mark: str,
    model: Any,
    columns: tuple[Any, ...],
    days: int,
    now: datetime,
    blank: Blank,
    *,
    action: str,
) -> TextsExpired:
    if days <= 0:
        return TextsExpired()
    cutoff = now - timedelta(days=days)
    blanked = files = 0
    through: int | None = None
    finished = False
    started = time.monotonic()
    for _ in range(BATCHES_PER_PASS):
        if time.monotonic() - started > PASS_SECONDS:
            break
        async with database.sessions() as session:
            reached = await _take_mark(session, mark)
            if reached is None:  # another worker's pass holds it
                finished = True
                break
            at, after_id = reached
            rows = (
                await session.execute(
                    select(model.id, model.created_at, *columns)
                    .where(
                        model.created_at >= at,
                        or_(model.created_at > at, model.id > after_id),
                        model.created_at < cutoff,
                    )
                    .order_by(model.created_at, model.id)
                    .limit(TEXT_BATCH)
                )
            ).all()
            if rows:
                texts, deleted = await blank(session, rows)
                blanked += texts
                files += deleted
                through = rows[-1].id
                await session.execute(
                    update(RetentionMark)
                    .where(RetentionMark.name == mark)
                    .values(through_at=rows[-1].created_at, through_id=through, updated_at=now)
                )
            await session.commit()
        if len(rows) < TEXT_BATCH:
            finished = True
            break
    if blanked or files:
        async with database.sessions() as session:
            session.add(
                AuditLog(
                    actor="retention",
                    via="worker",
                    action=action,
                    target=None,
                    detail={
                        "blanked": blanked,
                        "files_deleted": files,
                        "through_id": through,
                        "created_before": cutoff.isoformat(),
                        "days": days,
                    },
                )
            )
            await session.commit()
    return TextsExpired(blanked, files, through, cutoff, finished)


#: Where a pass over a table that no pass has walked yet starts.
_BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)


async def _take_mark(session: AsyncSession, name: str) -> tuple[datetime, int] | None:
    """The row the pass over `name` has reached, locked for this transaction; None if another pass has it."""
    marks = table_of(RetentionMark)
    await session.execute(
        insert_for(session, marks)
        .values(name=name, through_at=_BEGINNING, through_id=0, updated_at=_BEGINNING)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    found = (
        await session.execute(
            select(RetentionMark.through_at, RetentionMark.through_id)
            .where(RetentionMark.name == name)
            .with_for_update(skip_locked=True)
        )
    ).first()
    return None if found is None else (found.through_at, found.through_id)
