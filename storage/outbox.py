"""The outbox repository: claiming due messages, recording what providers said, and the analytics feed.

Nothing here commits; the delivery use-cases do. Claims are single UPDATE ... RETURNING statements
(with FOR UPDATE SKIP LOCKED on PostgreSQL) so two workers never take the same message.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.delivery.outbox import Accepted, ClaimedMessage, Dead, Outcome, ReceiptResult, Rescheduled
from domain.delivery.ports import DeliveryReceipt
from domain.vocabulary import STATUS_PROGRESS, MessageStatus
from storage.models import CommunicationAnalytics, CustomerCommunication, MessageStatusEvent
from storage.sql import dialect_of, insert_for, table_of

CC = table_of(CustomerCommunication)
EVENTS = table_of(MessageStatusEvent)
FEED = table_of(CommunicationAnalytics)


class SqlOutbox:
    def __init__(
        self,
        session: AsyncSession,
        *,
        business_tz: str = "UTC",
        claim_filter: Callable[[], ColumnElement[bool]] | None = None,
    ) -> None:
        self.session = session
        self._zone = ZoneInfo(business_tz)
        self._claim_filter = claim_filter

    @property
    def _dialect(self) -> str:
        return dialect_of(self.session)

    async def claim_due(
        self,
        worker_id: str,
        now: datetime,
        limit: int,
        lease: timedelta,
        channels: Sequence[str] | None = None,
    ) -> list[ClaimedMessage]:
        due = select(CC.c.id).where(CC.c.status == MessageStatus.PLANNED.value, CC.c.next_attempt_at <= now)
        if channels:
            due = due.where(CC.c.channel.in_(channels))
        if self._claim_filter is not None:
            due = due.where(self._claim_filter())
        due = due.order_by(CC.c.next_attempt_at).limit(limit)
        if self._dialect == "postgresql":
            due = due.with_for_update(skip_locked=True)
        claim = (
            update(CC)
            .where(CC.c.id.in_(due.scalar_subquery()), CC.c.status == MessageStatus.PLANNED.value)
            .values(
                status=MessageStatus.SENDING.value,
                claimed_by=worker_id,
                claimed_until=now + lease,
                attempts=CC.c.attempts + 1,
            )
            .returning(
                CC.c.id,
                CC.c.customer_id,
                CC.c.channel,
                CC.c.provider,
                CC.c.to_address,
                CC.c.subject,
                CC.c.body,
                CC.c.payload,
                CC.c.idempotency_key,
                CC.c.attempts,
                CC.c.campaign_id,
                CC.c.template_id,
            )
        )
        rows = (await self.session.execute(claim)).all()
        return [ClaimedMessage(**row._mapping) for row in rows]

    async def release_expired_leases(self, now: datetime, grace: timedelta) -> int:
        """Messages whose worker died mid-send go back to planned, after a grace period for their receipt.

        The outcome of such a send is unknown; waiting lets a provider receipt (which names our message
        id) record the acceptance first, and the retry reuses the idempotency key, so the provider
        drops it if it had in fact accepted the first attempt.
        """
        result = await self.session.execute(
            update(CC)
            .where(CC.c.status == MessageStatus.SENDING.value, CC.c.claimed_until < now)
            .values(
                status=MessageStatus.PLANNED.value,
                next_attempt_at=now + grace,
                claimed_by=None,
                claimed_until=None,
                status_reason="in doubt: the worker stopped mid-send; waiting for a receipt before retrying",
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def record_outcomes(self, outcomes: Iterable[Outcome]) -> None:
        accepted = [o for o in outcomes if isinstance(o, Accepted)]
        rescheduled = [o for o in outcomes if isinstance(o, Rescheduled)]
        dead = [o for o in outcomes if isinstance(o, Dead)]
        if accepted:
            await self._record_accepted(accepted)
        if rescheduled:
            await self._release(rescheduled, MessageStatus.PLANNED, "next_attempt_at")
        if dead:
            await self._release(dead, MessageStatus.DEAD, "failed_at")
            await self._add_events(
                [
                    (o.message_id, MessageStatus.DEAD.value, "outbox", o.at, o.error_code, o.reason)
                    for o in dead
                ]
            )
            await self._feed_for([o.message_id for o in dead], {"failed": 1}, dead[0].at)

    async def _release(
        self, outcomes: list[Rescheduled] | list[Dead], status: MessageStatus, at_column: str
    ) -> None:
        """Ends the claim on messages that were not accepted: back to the outbox for later, or dead."""
        await self.session.execute(
            update(CC)
            .where(CC.c.id == bindparam("b_id"), CC.c.status == MessageStatus.SENDING.value)
            .values(
                {
                    "status": status.value,
                    at_column: bindparam("b_at"),
                    "status_reason": bindparam("b_reason"),
                    "error_code": bindparam("b_code"),
                    "claimed_by": None,
                    "claimed_until": None,
                }
            )
            .execution_options(synchronize_session=False),
            [
                {"b_id": o.message_id, "b_at": o.at, "b_reason": o.reason[:255], "b_code": o.error_code}
                for o in outcomes
            ],
        )

    async def _record_accepted(self, accepted: list[Accepted]) -> None:
        # A receipt may have recorded the acceptance already (in-doubt sends): only fill what is missing.
        await self.session.execute(
            update(CC)
            .where(
                CC.c.id == bindparam("b_id"),
                or_(CC.c.status == MessageStatus.SENDING.value, CC.c.status == MessageStatus.PLANNED.value),
            )
            .values(
                status=bindparam("b_status"),
                provider_message_id=bindparam("b_pid"),
                sent_at=bindparam("b_at"),
                claimed_by=None,
                claimed_until=None,
                status_reason=None,
                error_code=None,
            )
            .execution_options(synchronize_session=False),
            [
                {
                    "b_id": a.message_id,
                    "b_status": a.status.value,
                    "b_pid": a.provider_message_id,
                    "b_at": a.at,
                }
                for a in accepted
            ],
        )
        await self._add_events([(a.message_id, a.status.value, "outbox", a.at, None, None) for a in accepted])
        await self._feed_for([a.message_id for a in accepted], {"sent": 1}, accepted[0].at, with_cost=True)

    async def apply_receipt(self, receipt: DeliveryReceipt) -> ReceiptResult:
        """Moves a message forward by a provider receipt; duplicates and stale receipts change nothing."""
        if receipt.our_message_id is not None:
            where = CC.c.id == receipt.our_message_id
        else:
            where = and_(
                CC.c.provider == receipt.provider, CC.c.provider_message_id == receipt.provider_message_id
            )
        row = (
            await self.session.execute(select(CC.c.id, CC.c.status, CC.c.provider_message_id).where(where))
        ).first()
        if row is None:
            return ReceiptResult(False, None, None, "no message with this id")
        current = MessageStatus(row.status)
        new = receipt.status
        in_doubt = current in (MessageStatus.SENDING, MessageStatus.PLANNED)
        if not in_doubt and STATUS_PROGRESS.get(new, -1) <= STATUS_PROGRESS.get(current, -1):
            return ReceiptResult(False, row.id, current.value, f"already {current.value}")
        inserted = await self._add_events(
            [
                (
                    row.id,
                    new.value,
                    receipt.provider,
                    receipt.occurred_at,
                    receipt.error_code,
                    receipt.error_detail,
                )
            ]
        )
        if not inserted:
            return ReceiptResult(False, row.id, current.value, "duplicate receipt")
        values: dict[str, Any] = {"status": new.value, "claimed_by": None, "claimed_until": None}
        if row.provider_message_id is None:
            values["provider_message_id"] = receipt.provider_message_id
        if in_doubt:
            values["sent_at"] = receipt.occurred_at
        if new in (MessageStatus.DELIVERED, MessageStatus.READ):
            values["delivered_at"] = receipt.occurred_at
        if new == MessageStatus.READ:
            values["read_at"] = receipt.occurred_at
        if new in (MessageStatus.FAILED, MessageStatus.UNDELIVERED):
            values.update(
                failed_at=receipt.occurred_at,
                error_code=receipt.error_code,
                status_reason=(receipt.error_detail or f"provider reported {new.value}")[:255],
            )
        if receipt.cost_micros is not None:
            values["cost_micros"] = receipt.cost_micros
        await self.session.execute(update(CC).where(CC.c.id == row.id).values(**values))
        await self._feed_for(
            [row.id], _feed_increments(current, new, in_doubt), receipt.occurred_at, with_cost=in_doubt
        )
        return ReceiptResult(True, row.id, new.value, "applied")

    async def _add_events(self, events: list[tuple[int, str, str, datetime, str | None, str | None]]) -> int:
        """Adds status-history rows, ignoring ones already recorded; returns how many were new."""
        rows = [
            {
                "communication_id": e[0],
                "status": e[1],
                "source": e[2],
                "occurred_at": e[3],
                "error_code": e[4],
                "detail": (e[5] or None) and e[5][:500],
            }
            for e in events
        ]
        statement = insert_for(self.session, EVENTS).on_conflict_do_nothing(
            index_elements=["communication_id", "status", "source"]
        )
        if len(rows) == 1:
            result = await self.session.execute(statement.values(rows[0]))
            return int(getattr(result, "rowcount", 0) or 0)
        await self.session.execute(statement, rows)
        return len(rows)

    async def _feed_for(
        self, message_ids: list[int], increments: dict[str, int], at: datetime, *, with_cost: bool = False
    ) -> None:
        if not increments and not with_cost:
            return
        rows = (
            await self.session.execute(
                select(
                    CC.c.channel, CC.c.provider, CC.c.campaign_id, CC.c.template_id, CC.c.cost_micros
                ).where(CC.c.id.in_(message_ids))
            )
        ).all()
        day = at.astimezone(self._zone).date()
        totals: Counter[tuple[str, str, int, int, str]] = Counter()
        for row in rows:
            key = (row.channel, row.provider, row.campaign_id or 0, row.template_id or 0)
            for name, amount in increments.items():
                totals[(*key, name)] += amount
            if with_cost and row.cost_micros:
                totals[(*key, "cost_micros")] += row.cost_micros
        await bump_feed(self.session, day, totals)


def _feed_increments(current: MessageStatus, new: MessageStatus, in_doubt: bool) -> dict[str, int]:
    increments: dict[str, int] = {"sent": 1} if in_doubt else {}
    if new == MessageStatus.DELIVERED or (new == MessageStatus.READ and current != MessageStatus.DELIVERED):
        increments["delivered"] = 1
    if new == MessageStatus.READ:
        increments["read"] = 1
    if new in (MessageStatus.FAILED, MessageStatus.UNDELIVERED):
        increments["failed"] = 1
    return increments


async def bump_feed(
    session: AsyncSession, day: date, totals: Counter[tuple[str, str, int, int, str]]
) -> None:
    """Adds to the daily communication figures (communication_analytics), creating rows as needed."""
    by_key: dict[tuple[str, str, int, int], dict[str, int]] = {}
    for (channel, provider, campaign_id, template_id, name), amount in totals.items():
        by_key.setdefault((channel, provider, campaign_id, template_id), {})[name] = amount
    for (channel, provider, campaign_id, template_id), amounts in by_key.items():
        statement = insert_for(session, FEED).values(
            day=day,
            channel=channel,
            provider=provider,
            campaign_id=campaign_id,
            template_id=template_id,
            updated_at=datetime.now(ZoneInfo("UTC")),
            **amounts,
        )
        statement = statement.on_conflict_do_update(
            index_elements=["day", "channel", "provider", "campaign_id", "template_id"],
            set_={name: FEED.c[name] + statement.excluded[name] for name in amounts}
            | {"updated_at": statement.excluded.updated_at},
        )
        await session.execute(statement)


__all__ = [
    "Accepted",
    "ClaimedMessage",
    "Dead",
    "Outcome",
    "ReceiptResult",
    "Rescheduled",
    "SqlOutbox",
    "bump_feed",
]
