"""The system at a glance: how many messages wait in the outbox, and the webhooks last received."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from storage.database import Database
from storage.models import CustomerCommunication, WebhookInbox


@dataclass(frozen=True)
class WebhookSeen:
    """The newest webhook delivery: who sent it, what it was, when, and how its handling went."""

    provider: str
    kind: str
    received_at: datetime
    status: str


@dataclass(frozen=True)
class OutboxStatus:
    """Messages per status (only the statuses asked for, and only those with messages), and the webhooks."""

    depth: dict[str, int]
    last_webhook: WebhookSeen | None
    failed_webhooks: int


async def outbox_status(database: Database, statuses: Sequence[str]) -> OutboxStatus:
    async with database.read_sessions() as session:
        depth: dict[str, int] = dict(
            (
                await session.execute(
                    select(CustomerCommunication.status, func.count())
                    .where(CustomerCommunication.status.in_(tuple(statuses)))
                    .group_by(CustomerCommunication.status)
                )
            ).all()
        )
        webhook = await session.scalar(
            select(WebhookInbox).order_by(WebhookInbox.received_at.desc()).limit(1)
        )
        failed_webhooks = await session.scalar(
            select(func.count()).select_from(WebhookInbox).where(WebhookInbox.status == "failed")
        )
    last = (
        None
        if webhook is None
        else WebhookSeen(webhook.provider, webhook.kind, webhook.received_at, webhook.status)
    )
    return OutboxStatus(depth, last, failed_webhooks or 0)
