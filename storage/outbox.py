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

from sqlalchemy import ColumnElement, and_, any_, bindparam, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.delivery.outbox import (
    Accepted,
    ClaimedMessage,
    Dead,
    Held,
    Outcome,
    ReceiptResult,
    Rescheduled,
)
from domain.delivery.ports import DeliveryReceipt
from domain.vocabulary import STATUS_PROGRESS, ConsentStatus, MessageSource, MessageStatus
from storage.models import (
    BulkMessaging,
    CommunicationAnalytics,
    CustomerCommunication,
    CustomerConsent,
    MessageStatusEvent,
)
from storage.sql import dialect_of, insert_for, table_of

CC = table_of(CustomerCommunication)
#: The reason a planned message of a cancelled campaign carries (the same as the campaign use-case writes).
CAMPAIGN_CANCELLED = "campaign_cancelled"
EVENTS = table_of(MessageStatusEvent)
FEED = table_of(CommunicationAnalytics)
CONSENTS = table_of(CustomerConsent)
#: Same reason the consent rules give when they suppress at planning time.
OPTED_OUT_REASON = "opted_out"
STOPPED_AT_SEND = "Not sent: the customer opted out of this channel after it was planned."


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
        chosen: ColumnElement[bool] = CC.c.id.in_(due.scalar_subquery())
        if self._dialect == "postgresql":
            # ANY(ARRAY(...)) runs the locking subquery once; as "IN (subquery)" PostgreSQL may plan a
            # semi-join that re-runs it per row and so claims far more than ``limit``.
            chosen = CC.c.id == any_(func.array(due.with_for_update(skip_locked=True).scalar_subquery()))
        claim = (
            update(CC)
            .where(chosen, CC.c.status == MessageStatus.PLANNED.value)
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
        # RETURNING order is unspecified: send oldest first (ids grow with time).
        rows = sorted((await self.session.execute(claim)).all(), key=lambda row: row.id)
        claimed = [ClaimedMessage(**row._mapping) for row in rows]
        stopped = await self._suppress_opted_out(claimed, now)
        return [message for message in claimed if message.id not in stopped] if stopped else claimed

    async def _suppress_opted_out(self, claimed: Sequence[ClaimedMessage], now: datetime) -> set[int]:
        """The last check before a send: a claimed message whose customer has opted out of its channel
        since it was planned (or whose withdrawal it escaped while being sent and retried) is suppressed.
        Confirmations of the customer's own keyword (source "system") still go, as carriers expect."""
        with_customer = [m.id for m in claimed if m.customer_id is not None]
        if not with_customer:
            return set()
        opted_out = select(CONSENTS.c.customer_id).where(
            CONSENTS.c.customer_id == CC.c.customer_id,
            CONSENTS.c.channel == CC.c.channel,
            CONSENTS.c.status == ConsentStatus.OPTED_OUT.value,
        )
        stopped = set(
            await self.session.scalars(
                update(CC)
                .where(
                    CC.c.id.in_(with_customer),
                    CC.c.source != MessageSource.SYSTEM.value,
                    exists(opted_out),
                )
                .values(
                    status=MessageStatus.SUPPRESSED.value,
                    status_reason=OPTED_OUT_REASON,
                    next_attempt_at=None,
                    claimed_by=None,
                    claimed_until=None,
                )
                .returning(CC.c.id)
            )
        )
        await self._insert_events_returning(
            [
                (message_id, MessageStatus.SUPPRESSED.value, "consent", now, None, STOPPED_AT_SEND)
                for message_id in sorted(stopped)
            ]
        )
        return stopped

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

    async def withdraw_planned(
        self, customer_id: int, channel: str, reason: str, detail: str, at: datetime
    ) -> int:
        """Suppresses the customer's messages on ``channel`` that are planned but not yet being sent.

        Called when the customer opts out: a campaign planned hours ago, or a message deferred by
        quiet hours, must not go out after the STOP. A message already handed to a worker is beyond
        recall (its send is under way); everything still waiting is stopped here, in the opt-out's
        own transaction.
        """
        # One statement: a row a worker claims meanwhile is no longer "planned" and is left alone here
        # (the check at claim time stops it instead).
        ids = sorted(
            await self.session.scalars(
                update(CC)
                .where(
                    CC.c.customer_id == customer_id,
                    CC.c.channel == channel,
                    CC.c.direction == "outbound",
                    CC.c.status == MessageStatus.PLANNED.value,
                    CC.c.source != MessageSource.SYSTEM.value,
                )
                .values(status=MessageStatus.SUPPRESSED.value, status_reason=reason, next_attempt_at=None)
                .returning(CC.c.id)
            )
        )
        if not ids:
            return 0
        await self._insert_events_returning(
            [(message_id, MessageStatus.SUPPRESSED.value, "consent", at, None, detail) for message_id in ids]
        )
        return len(ids)

    async def campaigns_on_hold(self, campaign_ids: Iterable[int]) -> set[int]:
        wanted = sorted(set(campaign_ids))
        if not wanted:
            return set()
        return set(
            await self.session.scalars(
                select(BulkMessaging.id).where(
                    BulkMessaging.id.in_(wanted),
                    BulkMessaging.status.in_(["paused", "cancelled", "scheduled", "draft"]),
                )
            )
        )

    async def record_outcomes(self, outcomes: Iterable[Outcome]) -> None:
        accepted = [o for o in outcomes if isinstance(o, Accepted)]
        rescheduled = [o for o in outcomes if isinstance(o, Rescheduled)]
        dead = [o for o in outcomes if isinstance(o, Dead)]
        held = [o for o in outcomes if isinstance(o, Held)]
        if accepted:
            await self._record_accepted(accepted)
        if held:
            await self._unclaim_held(held)
        if rescheduled:
            await self._release(rescheduled, MessageStatus.PLANNED, "next_attempt_at")
        if held or rescheduled:
            # Back in the outbox for a campaign cancelled meanwhile: cancelled with it, not left planned forever.
            await self._cancel_with_campaign(
                [o.message_id for o in held] + [o.message_id for o in rescheduled]
            )
        if dead:
            await self._release(dead, MessageStatus.DEAD, "failed_at")
            await self._insert_events_returning(
                [
                    (o.message_id, MessageStatus.DEAD.value, "outbox", o.at, o.error_code, o.reason)
                    for o in dead
                ]
            )
            await self._feed_for([o.message_id for o in dead], {"failed": 1}, dead[0].at)

    async def _unclaim_held(self, held: list[Held]) -> None:
        """Held messages were never tried: back to planned as they were, the claim's attempt given back."""
        await self.session.execute(
            update(CC)
            .where(CC.c.id == bindparam("b_id"), CC.c.status == MessageStatus.SENDING.value)
            .values(
                status=MessageStatus.PLANNED.value,
                next_attempt_at=bindparam("b_at"),
                attempts=CC.c.attempts - 1,
                claimed_by=None,
                claimed_until=None,
            )
            .execution_options(synchronize_session=False),
            [{"b_id": o.message_id, "b_at": o.at} for o in held],
        )

    async def _cancel_with_campaign(self, message_ids: list[int]) -> None:
        cancelled = select(BulkMessaging.id).where(BulkMessaging.status == "cancelled")
        await self.session.execute(
            update(CC)
            .where(
                CC.c.id.in_(message_ids),
                CC.c.status == MessageStatus.PLANNED.value,
                CC.c.campaign_id.in_(cancelled),
            )
            .values(status=MessageStatus.CANCELLED.value, status_reason=CAMPAIGN_CANCELLED)
            .execution_options(synchronize_session=False)
        )

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
        await self._insert_events_returning(
            [(a.message_id, a.status.value, "outbox", a.at, None, None) for a in accepted]
        )
        await self._feed_for([a.message_id for a in accepted], {"sent": 1}, accepted[0].at, with_cost=True)

    async def apply_receipt(self, receipt: DeliveryReceipt) -> ReceiptResult:
        """Moves a message forward by a provider receipt; duplicates and stale receipts change nothing."""
        return (await self.apply_receipts([receipt]))[0]

    async def apply_receipts(self, receipts: Sequence[DeliveryReceipt]) -> list[ReceiptResult]:
        """Applies receipts in order with a handful of statements, however many there are.

        Each receipt is judged against the message's status as the receipts before it left it, so a
        batch holding "sent" then "delivered" for one message applies both. A status-history row is the
        proof a receipt was applied: its unique key turns duplicates into no-ops even across processes,
        and only receipts whose row was really inserted change the message and the daily figures.
        """
        targets = await self._receipt_targets(receipts)
        state = {t.id: (MessageStatus(t.status), t.provider_message_id) for t in targets.values()}
        planned: list[tuple[int, DeliveryReceipt, MessageStatus, bool]] = []
        results: list[ReceiptResult | None] = []
        for receipt in receipts:
            target = targets.get(_target_key(receipt))
            if target is None:
                results.append(ReceiptResult(False, None, None, "no message with this id"))
                continue
            current, _pid = state[target.id]
            new = receipt.status
            # A receipt for a message we withdrew or stopped means the provider had it after all.
            in_doubt = current in (MessageStatus.SENDING, MessageStatus.PLANNED, MessageStatus.SUPPRESSED)
            if not in_doubt and STATUS_PROGRESS.get(new, -1) <= STATUS_PROGRESS.get(current, -1):
                results.append(ReceiptResult(False, target.id, current.value, f"already {current.value}"))
                continue
            planned.append((target.id, receipt, current, in_doubt))
            state[target.id] = (new, _pid or receipt.provider_message_id)
            results.append(None)
        inserted = await self._insert_events_returning(
            [
                (mid, r.status.value, r.provider, r.occurred_at, r.error_code, r.error_detail)
                for mid, r, _, _ in planned
            ]
        )
        changes: dict[int, dict[str, Any]] = {}
        feed: Counter[tuple[date, str, str, int, int, str]] = Counter()
        applied = iter(planned)
        for index, result in enumerate(results):
            if result is not None:
                continue
            message_id, receipt, current, in_doubt = next(applied)
            if (message_id, receipt.status.value, receipt.provider) not in inserted:
                results[index] = ReceiptResult(False, message_id, current.value, "duplicate receipt")
                continue
            target = targets[_target_key(receipt)]
            values = changes.setdefault(message_id, {"claimed_by": None, "claimed_until": None})
            values.update(_receipt_values(receipt, in_doubt, target.provider_message_id))
            day = receipt.occurred_at.astimezone(self._zone).date()
            key = (day, target.channel, target.provider, target.campaign_id or 0, target.template_id or 0)
            for name, amount in _feed_increments(current, receipt.status, in_doubt).items():
                feed[(*key, name)] += amount
            if in_doubt and target.cost_micros:
                feed[(*key, "cost_micros")] += target.cost_micros
            results[index] = ReceiptResult(True, message_id, receipt.status.value, "applied")
        await self._update_messages(changes)
        by_day: dict[date, Counter[tuple[str, str, int, int, str]]] = {}
        for (day, *rest), amount in feed.items():
            by_day.setdefault(day, Counter())[tuple(rest)] += amount  # type: ignore[index]
        for day, totals in by_day.items():
            await bump_feed(self.session, day, totals)
        return [r for r in results if r is not None]

    async def _update_messages(self, changes: dict[int, dict[str, Any]]) -> None:
        """One executemany per set of changed columns (usually one set per batch), not one UPDATE per message."""
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for message_id, values in changes.items():
            columns = tuple(sorted(values))
            groups.setdefault(columns, []).append(
                {"b_id": message_id, **{f"b_{c}": values[c] for c in columns}}
            )
        for columns, rows in groups.items():
            await self.session.execute(
                update(CC)
                .where(CC.c.id == bindparam("b_id"))
                .values({column: bindparam(f"b_{column}") for column in columns})
                .execution_options(synchronize_session=False),
                rows,
            )

    async def _receipt_targets(self, receipts: Sequence[DeliveryReceipt]) -> dict[tuple[str, str], Any]:
        """The messages the receipts name, keyed as `_target_key` keys them: by our id, else by the provider's."""
        ours = sorted({r.our_message_id for r in receipts if r.our_message_id is not None})
        theirs: dict[str, set[str]] = {}
        for receipt in receipts:
            if receipt.our_message_id is None:
                theirs.setdefault(receipt.provider, set()).add(receipt.provider_message_id)
        conditions: list[ColumnElement[bool]] = [CC.c.id.in_(ours)] if ours else []
        conditions += [
            and_(CC.c.provider == provider, CC.c.provider_message_id.in_(sorted(ids)))
            for provider, ids in theirs.items()
        ]
        if not conditions:
            return {}
        rows = (
            await self.session.execute(
                select(
                    CC.c.id,
                    CC.c.status,
                    CC.c.provider_message_id,
                    CC.c.provider,
                    CC.c.channel,
                    CC.c.campaign_id,
                    CC.c.template_id,
                    CC.c.cost_micros,
                ).where(or_(*conditions))
            )
        ).all()
        targets: dict[tuple[str, str], Any] = {}
        for row in rows:
            targets[("id", str(row.id))] = row
            if row.provider_message_id is not None:
                targets[(row.provider, row.provider_message_id)] = row
        return targets

    async def _insert_events_returning(
        self, events: list[tuple[int, str, str, datetime, str | None, str | None]]
    ) -> set[tuple[int, str, str]]:
        """Adds status-history rows; returns the (message, status, source) keys that were new."""
        if not events:
            return set()
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
        statement = (
            insert_for(self.session, EVENTS)
            .on_conflict_do_nothing(index_elements=["communication_id", "status", "source"])
            .returning(EVENTS.c.communication_id, EVENTS.c.status, EVENTS.c.source)
        )
        result = await self.session.execute(statement, rows)
        return {(row[0], row[1], row[2]) for row in result.all()}

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


def _target_key(receipt: DeliveryReceipt) -> tuple[str, str]:
    if receipt.our_message_id is not None:
        return ("id", str(receipt.our_message_id))
    return (receipt.provider, receipt.provider_message_id)


def _receipt_values(
    receipt: DeliveryReceipt, in_doubt: bool, known_provider_id: str | None
) -> dict[str, Any]:
    """The message columns one applied receipt sets."""
    new = receipt.status
    values: dict[str, Any] = {"status": new.value}
    if known_provider_id is None:
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
    return values


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
