"""Applied webhooks are forgotten after the retention period; failed and unprocessed ones stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import insert, select

from storage import retention
from storage.database import Database
from storage.models import AuditLog, WebhookInbox
from storage.retention import forget_applied_webhooks
from switchboard.settings import Settings

NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)


async def add(database: Database, key: str, status: str, days_ago: float) -> None:
    async with database.engine.begin() as connection:
        await connection.execute(
            insert(WebhookInbox),
            [
                {
                    "provider": "twilio",
                    "kind": "status",
                    "dedupe_key": key,
                    "status": status,
                    "body": "MessageSid=SM1&MessageStatus=delivered",
                    "content_type": "application/x-www-form-urlencoded",
                    "attempts": 1,
                    "received_at": NOW - timedelta(days=days_ago),
                }
            ],
        )


async def kept(database: Database) -> list[str]:
    async with database.read_sessions() as session:
        return sorted(await session.scalars(select(WebhookInbox.dedupe_key)))


async def test_only_applied_and_ignored_webhooks_past_the_period_are_forgotten(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in range(5):
        await add(database, f"old-applied-{index}", "applied", 40 + index)
    await add(database, "old-ignored", "ignored", 31)
    await add(database, "old-failed", "failed", 90)
    await add(database, "old-received", "received", 90)
    await add(database, "recent-applied", "applied", 29)
    monkeypatch.setattr(retention, "DELETE_BATCH", 2)  # several transactions in one pass

    assert (await forget_applied_webhooks(database, 0, NOW)).webhooks_deleted == 0  # 0 keeps everything
    done = await forget_applied_webhooks(database, 30, NOW)

    assert done.webhooks_deleted == 6
    assert await kept(database) == ["old-failed", "old-received", "recent-applied"]
    async with database.read_sessions() as session:
        audit = (await session.execute(select(AuditLog.action, AuditLog.detail))).all()
    assert [(action, detail["deleted"], detail["days"]) for action, detail in audit] == [
        ("webhooks.forget", 6, 30)
    ]
    assert (await forget_applied_webhooks(database, 30, NOW)).webhooks_deleted == 0


def test_retention_must_outlast_provider_retries() -> None:
    with pytest.raises(ValidationError, match="at least 8 days"):
        Settings(webhook_retention_days=5)
    assert Settings(webhook_retention_days=0).webhook_retention_days == 0
    assert Settings(webhook_retention_days=8).webhook_retention_days == 8
