"""Applied webhooks are forgotten after the retention period; failed and unprocessed ones stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import func, insert, select

from storage import retention
from storage.customer_erasure import ERASED
from storage.database import Database
from storage.models import (
    AuditLog,
    ChatAttachment,
    ChatMessage,
    ChatSession,
    Customer,
    CustomerCommunication,
    RetentionMark,
    WebhookInbox,
)
from storage.retention import (
    EXPIRED,
    expire_conversation_texts,
    expire_message_bodies,
    forget_applied_webhooks,
)
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


async def _customer_with_history(database: Database) -> dict[str, int]:
    """Messages and conversation turns of several ages."""
    async with database.sessions() as session:
        customer = Customer(name="Ada Lovelace", phone_e164="+4915100000001")
        session.add(customer)
        await session.flush()
        ids: dict[str, int] = {}
        for key, status, direction, days_ago, body in (
            ("delivered", "delivered", "outbound", 100, "Your results are ready"),
            ("erased", "delivered", "outbound", 99, ERASED),
            ("received", "received", "inbound", 98, "Thank you"),
            ("planned", "planned", "outbound", 97, "Your annual check-up is due"),
            ("failed", "failed", "outbound", 95, "Reminder: Tuesday 9:00"),
            ("recent", "delivered", "outbound", 10, "See you tomorrow"),
            # Ids need not follow time (an import, the demo's seed): the pass goes by creation time.
            ("written late", "delivered", "outbound", 96, "Bring your referral letter"),
        ):
            message = CustomerCommunication(
                customer_id=customer.id,
                channel="sms",
                provider="twilio",
                direction=direction,
                source="manual",
                to_address="+4915100000001",
                subject="Results",
                body=body,
                payload={"first_name": "Ada"},
                status=status,
                created_at=NOW - timedelta(days=days_ago),
            )
            session.add(message)
            await session.flush()
            ids[key] = message.id
        chat = ChatSession(
            customer_id=customer.id, channel="sms", status="closed", started_at=NOW - timedelta(days=60)
        )
        session.add(chat)
        await session.flush()
        for key, days_ago in (("old turn", 60), ("old turn with file", 59), ("recent turn", 5)):
            turn = ChatMessage(
                session_id=chat.id,
                author="customer",
                body=f"{key}: my knee hurts",
                created_at=NOW - timedelta(days=days_ago),
            )
            session.add(turn)
            await session.flush()
            ids[key] = turn.id
        session.add(
            ChatAttachment(
                message_id=ids["old turn with file"],
                filename="knee.jpg",
                content_type="image/jpeg",
                size_bytes=3,
                sha256="0" * 64,
                content=b"jpg",
            )
        )
        await session.commit()
    return ids


async def test_message_and_conversation_texts_past_their_periods_read_expired_and_the_rest_stays(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await _customer_with_history(database)
    monkeypatch.setattr(retention, "TEXT_BATCH", 2)  # several transactions in one pass

    async def texts() -> dict[str, tuple[object, ...]]:
        """What each message (body, subject, payload, status) and turn (body) of the history reads now."""
        async with database.read_sessions() as session:
            cc = CustomerCommunication
            messages = {
                row.id: (row.body, row.subject, row.payload, row.status)
                for row in await session.execute(select(cc.id, cc.body, cc.subject, cc.payload, cc.status))
            }
            turns = {
                row.id: (row.body,) for row in await session.execute(select(ChatMessage.id, ChatMessage.body))
            }
        return {key: (turns if "turn" in key else messages)[value] for key, value in ids.items()}

    before = await texts()
    assert (await expire_message_bodies(database, 0, NOW)).blanked == 0  # 0 keeps everything
    assert (await expire_conversation_texts(database, 0, NOW)).blanked == 0
    assert await texts() == before

    done = await expire_message_bodies(database, 90, NOW)
    assert (done.blanked, done.through_id, done.finished) == (4, ids["failed"], True)
    after = await texts()
    for key in ("delivered", "received", "failed", "written late"):
        assert after[key] == (EXPIRED, None, None, before[key][3]), key
    assert after["erased"][0] == ERASED  # an erasure's mark stays what it is
    assert after["planned"] == before["planned"]  # a worker still needs its text
    assert after["recent"] == before["recent"]

    turns = await expire_conversation_texts(database, 30, NOW)
    assert (turns.blanked, turns.files_deleted) == (2, 1)
    after = await texts()
    assert after["old turn"] == (EXPIRED,) and after["old turn with file"] == (EXPIRED,)
    assert after["recent turn"] == before["recent turn"]
    async with database.read_sessions() as session:
        assert await session.scalar(select(func.count()).select_from(ChatAttachment)) == 0
        audit = (
            await session.execute(
                select(AuditLog.action, AuditLog.detail)
                .where(AuditLog.action.like("%.expire"))
                .order_by(AuditLog.id)
            )
        ).all()
        marks = dict((await session.execute(select(RetentionMark.name, RetentionMark.through_id))).all())
    assert [(action, detail["blanked"], detail.get("files_deleted")) for action, detail in audit] == [
        ("messages.expire", 4, 0),
        ("conversations.expire", 2, 1),
    ]
    assert marks == {"message bodies": ids["failed"], "conversation texts": ids["old turn with file"]}

    # The next pass starts at the mark: nothing to do, nothing audited.
    assert (await expire_message_bodies(database, 90, NOW)).blanked == 0
    # Time passes: the next messages ripen, and the pass picks up from where it stopped.
    later = await expire_message_bodies(database, 90, NOW + timedelta(days=81))
    assert (later.blanked, later.through_id) == (1, ids["recent"])


async def test_a_pass_leaves_the_table_to_another_workers_pass(database: Database) -> None:
    if database.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time: two passes cannot overlap")
    await _customer_with_history(database)
    async with database.sessions() as holder:
        await holder.execute(
            insert(RetentionMark).values(
                name="message bodies", through_at=NOW - timedelta(days=365), through_id=0, updated_at=NOW
            )
        )
        await holder.commit()
        await holder.execute(
            select(RetentionMark).where(RetentionMark.name == "message bodies").with_for_update()
        )
        done = await expire_message_bodies(database, 90, NOW)
        assert done.blanked == 0  # the other pass holds the mark
        await holder.rollback()
    assert (await expire_message_bodies(database, 90, NOW)).blanked == 4


def test_retention_periods_are_whole_days_or_months_or_zero() -> None:
    for name in ("message_body_retention_days", "conversation_retention_days", "message_retention_months"):
        with pytest.raises(ValidationError):
            Settings(**{name: -1})
        assert getattr(Settings(**{name: 0}), name) == 0
