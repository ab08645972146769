"""The outbox repository: claiming due messages, recording what providers said, and the analytics feed.

Nothing here commits; the delivery use-cases do. Claims are single UPDATE ... RETURNING statements
(with FOR UPDATE SKIP LOCKED on PostgreSQL) so two workers never take the same message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    any_,
    bindparam,
    column,
    exists,
    func,
    or_,
    select,
    table,
    text,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from domain.consent.rules import CUSTOMER_MARKETING_LIMIT
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
from domain.vocabulary import STATUS_PROGRESS, ConsentStatus, MessageCategory, MessageSource, MessageStatus
from storage.message_feed import add_cost, count_once, send_day
from storage.message_months import known_creation_times, recent_since, within_their_months
from storage.models import (
    BulkMessaging,
    CommunicationPreference,
    CustomerCommunication,
    CustomerConsent,
    MessageStatusEvent,
)
from storage.models.base import UtcDateTime
from storage.partitions import message_creation_times
from storage.sql import dialect_of, insert_for, table_of

CC = table_of(CustomerCommunication)
#: Due retries, spelled exactly as the partial index `ix_customer_communications_retry_due` is.
RETRY_DUE = "customer_communications.status = 'planned' AND customer_communications.attempts > 0"
#: The reason a planned message of a cancelled campaign carries (the same as the campaign use-case writes).
CAMPAIGN_CANCELLED = "campaign_cancelled"
#: Claims whose worker stopped released per pass (one statement names them all); the rest go in the next.
LAPSED_PER_PASS = 5000
EVENTS = table_of(MessageStatusEvent)
#: Who holds each provider id, and when that message was created (PostgreSQL only; see storage.partitions).
PROVIDER_IDS = table(
    "communication_provider_ids",
    column("provider", String),
    column("provider_message_id", String),
    column("created_at", UtcDateTime),
)
CONSENTS = table_of(CustomerConsent)
PREFERENCES = table_of(CommunicationPreference)
#: Same reason the consent rules give when they suppress at planning time.
OPTED_OUT_REASON = "opted_out"
STOPPED_AT_SEND = "Not sent: the customer opted out of this channel after it was planned."
NO_MARKETING_AT_SEND = "Not sent: the customer asked for no marketing after it was planned."
LIMIT_REACHED_AT_SEND = (
    "Not sent: the customer's weekly limit of marketing messages was reached after it was planned."
)
#: The week a customer's own marketing limit counts, as planning does (domain.consent.rules).
MARKETING_WEEK = timedelta(days=7)


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

    def _these(
        self, message_ids: Sequence[int], created: Mapping[int, datetime] | None
    ) -> ColumnElement[bool]:
        """`id IN message_ids`; on PostgreSQL also within their creation times when `created` knows them all,
        so the statement reads only their months' partitions (an id alone does not say its month)."""
        return and_(CC.c.id.in_(message_ids), within_their_months(CC.c.created_at, message_ids, created))

    def _hint(self, created: Mapping[int, datetime] | None) -> Mapping[int, datetime] | None:
        """Creation times are worth saying only where the messages are kept by month (PostgreSQL)."""
        return created if self._dialect == "postgresql" else None

    def _by_id(
        self, message_ids: Sequence[int], created: Mapping[int, datetime] | None
    ) -> tuple[ColumnElement[bool], Callable[[int], dict[str, datetime]]]:
        """For a statement run once per message (executemany): the condition naming one row by `b_id`, and
        by `b_created` too when every creation time is known; and the parameters that adds to each row."""
        known = known_creation_times(message_ids, created)
        if known is None:
            return CC.c.id == bindparam("b_id"), lambda _message_id: {}
        return (
            and_(CC.c.id == bindparam("b_id"), CC.c.created_at == bindparam("b_created")),
            lambda message_id: {"b_created": known[message_id]},
        )

    async def claim_due(
        self,
        worker_id: str,
        now: datetime,
        limit: int,
        lease: timedelta,
        channels: Sequence[str] | None = None,
    ) -> list[ClaimedMessage]:
        """Claims up to `limit` due messages: retries first (an in-doubt send waiting for its receipt, a
        backed-off error), so they never wait behind a campaign's backlog; then the oldest due."""
        claimed = await self._claim(worker_id, now, limit, lease, channels, retries_only=True)
        if len(claimed) < limit:
            claimed += await self._claim(worker_id, now, limit - len(claimed), lease, channels)
        stopped = await self._suppress_opted_out(claimed, now)
        return [message for message in claimed if message.id not in stopped] if stopped else claimed

    async def _claim(
        self,
        worker_id: str,
        now: datetime,
        limit: int,
        lease: timedelta,
        channels: Sequence[str] | None,
        *,
        retries_only: bool = False,
    ) -> list[ClaimedMessage]:
        if retries_only and self._dialect == "sqlite":
            # SQLite's planner would walk the whole backlog on the general index to find the few retries;
            # a lookup that names the small partial index finds them, and the claim keeps to those rows.
            due = select(CC.c.id).where(CC.c.id.in_(await self._due_retry_ids(now, limit * 4, channels)))
        else:
            due = select(CC.c.id).where(
                CC.c.status == MessageStatus.PLANNED.value, CC.c.next_attempt_at <= now
            )
        if retries_only and self._dialect != "sqlite":
            # Spelled as the partial index's own predicate (literals, not parameters), so PostgreSQL uses it.
            due = due.where(text(RETRY_DUE))
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
                handed_over_at=None,
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
                CC.c.created_at,
                CC.c.category,
            )
        )
        # RETURNING order is unspecified: send oldest first (ids grow with time).
        rows = sorted((await self.session.execute(claim)).all(), key=lambda row: row.id)
        return [ClaimedMessage(**row._mapping) for row in rows]

    async def _due_retry_ids(self, now: datetime, limit: int, channels: Sequence[str] | None) -> list[int]:
        on_channels = "AND channel IN :channels " if channels else ""
        params: dict[str, Any] = {"now": now, "limit": limit}
        statement = text(
            "SELECT id FROM customer_communications INDEXED BY ix_customer_communications_retry_due "
            f"WHERE status = 'planned' AND attempts > 0 AND next_attempt_at <= :now {on_channels}"
            "ORDER BY next_attempt_at LIMIT :limit"
        ).bindparams(bindparam("now", type_=UtcDateTime()))
        if channels:
            statement = statement.bindparams(bindparam("channels", expanding=True))
            params["channels"] = list(channels)
        found = await self.session.execute(statement, params)
        return [int(row[0]) for row in found]

    async def _suppress_opted_out(self, claimed: Sequence[ClaimedMessage], now: datetime) -> set[int]:
        """The last check before a send: a claimed message whose customer has opted out of its channel
        since it was planned (or whose withdrawal it escaped while being sent and retried) is suppressed,
        and so is a marketing message to a customer who has since asked for no marketing at all (a weekly
        limit of 0, set on the dashboard or by the bot). Confirmations of the customer's own keyword
        (source "system") still go, as carriers expect."""
        with_customer = [m.id for m in claimed if m.customer_id is not None]
        if not with_customer:
            return set()
        created = {m.id: m.created_at for m in claimed if m.created_at is not None}
        opted_out = select(CONSENTS.c.customer_id).where(
            CONSENTS.c.customer_id == CC.c.customer_id,
            CONSENTS.c.channel == CC.c.channel,
            CONSENTS.c.status == ConsentStatus.OPTED_OUT.value,
        )
        no_marketing = select(PREFERENCES.c.customer_id).where(
            PREFERENCES.c.customer_id == CC.c.customer_id, PREFERENCES.c.marketing_max_per_week == 0
        )
        # A weekly limit above 0 set (or lowered) after planning: the marketing that has gone out to the
        # customer in the last 7 days (as planning counts them, by when they were written) already reaches it.
        earlier = CC.alias("earlier_marketing")
        sent_this_week = (
            select(func.count())
            .select_from(earlier)
            .where(
                earlier.c.customer_id == CC.c.customer_id,
                earlier.c.category == MessageCategory.MARKETING.value,
                earlier.c.direction == "outbound",
                earlier.c.created_at >= now - MARKETING_WEEK,
                earlier.c.sent_at.is_not(None),
                # A campaign's own earlier message does not count against its fallback, as planning has it.
                or_(CC.c.campaign_id.is_(None), earlier.c.campaign_id.is_distinct_from(CC.c.campaign_id)),
            )
            .correlate(CC)  # this message's customer: two levels down, auto-correlation would not reach it
            .scalar_subquery()
        )
        limit_reached = select(PREFERENCES.c.customer_id).where(
            PREFERENCES.c.customer_id == CC.c.customer_id,
            PREFERENCES.c.marketing_max_per_week > 0,
            PREFERENCES.c.marketing_max_per_week <= sent_this_week,
        )
        marketing = CC.c.category == MessageCategory.MARKETING.value
        stopped: set[int] = set()
        for condition, reason, said in (
            (exists(opted_out), OPTED_OUT_REASON, STOPPED_AT_SEND),
            (and_(marketing, exists(no_marketing)), CUSTOMER_MARKETING_LIMIT, NO_MARKETING_AT_SEND),
            (and_(marketing, exists(limit_reached)), CUSTOMER_MARKETING_LIMIT, LIMIT_REACHED_AT_SEND),
        ):
            these = [m for m in with_customer if m not in stopped]
            if not these:
                break
            found = set(
                await self.session.scalars(
                    update(CC)
                    .where(
                        self._these(these, created),
                        CC.c.source != MessageSource.SYSTEM.value,
                        condition,
                    )
                    .values(
                        status=MessageStatus.SUPPRESSED.value,
                        status_reason=reason,
                        next_attempt_at=None,
                        claimed_by=None,
                        claimed_until=None,
                    )
                    .returning(CC.c.id)
                )
            )
            await self._insert_events_returning(
                [
                    (message_id, MessageStatus.SUPPRESSED.value, "consent", now, None, said)
                    for message_id in sorted(found)
                ],
                created,
            )
            stopped |= found
        return stopped

    async def release_expired_leases(
        self,
        now: datetime,
        grace: timedelta,
        confirmable: Sequence[str] = ("sms", "whatsapp"),
        not_repeated: str = "in doubt: the worker stopped mid-send; not sent again",
    ) -> int:
        """Messages whose worker died mid-send: the outcome of such a send is unknown.

        Where receipts name our message id (SMS, WhatsApp), the message waits a grace period for its
        receipt to record the acceptance, then goes back to planned and is retried with the same key.
        Elsewhere (email, Telegram) nothing will ever tell us, so it is not sent again: it ends dead
        with the reason, and the daily figures count it failed, for staff to follow up.
        """
        lapsed = and_(CC.c.status == MessageStatus.SENDING.value, CC.c.claimed_until < now)
        # One look at every month (a claim may be for a message of any month), nearly always finding none;
        # the changes below then name the messages found and their months (PostgreSQL reads only those).
        found = {
            row.id: row.created_at
            for row in await self.session.execute(
                select(CC.c.id, CC.c.created_at).where(lapsed).limit(LAPSED_PER_PASS)
            )
        }
        if not found:
            return 0
        expired = and_(lapsed, self._these(sorted(found), self._hint(found)))
        # Never handed to the provider (the worker died while they waited their turn): nothing was tried.
        unsent = list(
            await self.session.scalars(
                update(CC)
                .where(expired, CC.c.channel.not_in(list(confirmable)), CC.c.handed_over_at.is_(None))
                .values(
                    status=MessageStatus.PLANNED.value,
                    next_attempt_at=now,
                    attempts=CC.c.attempts - 1,
                    claimed_by=None,
                    claimed_until=None,
                    status_reason="its worker stopped before sending it; back in the outbox",
                )
                .returning(CC.c.id)
                .execution_options(synchronize_session=False)
            )
        )
        retried = await self.session.execute(
            update(CC)
            .where(expired, CC.c.channel.in_(list(confirmable)))
            .values(
                status=MessageStatus.PLANNED.value,
                next_attempt_at=now + grace,
                claimed_by=None,
                claimed_until=None,
                status_reason="in doubt: the worker stopped mid-send; waiting for a receipt before retrying",
            )
            .execution_options(synchronize_session=False)
        )
        ended = list(
            await self.session.scalars(
                update(CC)
                .where(expired, CC.c.channel.not_in(list(confirmable)))
                .values(
                    status=MessageStatus.DEAD.value,
                    failed_at=now,
                    claimed_by=None,
                    claimed_until=None,
                    status_reason=not_repeated[:255],
                )
                .returning(CC.c.id)
                .execution_options(synchronize_session=False)
            )
        )
        if ended:
            await self._insert_events_returning(
                [(i, MessageStatus.DEAD.value, "outbox", now, None, not_repeated) for i in sorted(ended)],
                found,
            )
            await count_once(self.session, self._zone, "failed", ended, found)
        if unsent:
            await self._cancel_with_campaign(unsent, self._hint(found))
        return int(getattr(retried, "rowcount", 0) or 0) + len(ended) + len(unsent)

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

    async def extend_claims(
        self,
        worker_id: str,
        message_ids: Sequence[int],
        until: datetime,
        created: Mapping[int, datetime] | None = None,
    ) -> list[int]:
        """Renews `worker_id`'s claims on these messages; returns the ids it still held."""
        return await self._renew_claims(worker_id, message_ids, until, created)

    async def note_hand_over(
        self,
        worker_id: str,
        message_ids: Sequence[int],
        now: datetime,
        until: datetime,
        created: Mapping[int, datetime] | None = None,
    ) -> list[int]:
        """Notes that these messages' provider calls start now (and renews their claims); returns the ids
        still claimed by `worker_id` with time left, the only ones that may be sent."""
        return await self._renew_claims(worker_id, message_ids, until, created, handed_over_at=now)

    async def _renew_claims(
        self,
        worker_id: str,
        message_ids: Sequence[int],
        until: datetime,
        created: Mapping[int, datetime] | None,
        *,
        handed_over_at: datetime | None = None,
    ) -> list[int]:
        """One UPDATE ... RETURNING over the claims `worker_id` still holds (and, noting a hand-over, whose
        lease has not run out): the ids it renewed."""
        conditions = [
            self._these(sorted(message_ids), created),
            CC.c.claimed_by == worker_id,
            CC.c.status == MessageStatus.SENDING.value,
        ]
        values: dict[str, datetime] = {"claimed_until": until}
        if handed_over_at is not None:
            conditions.append(CC.c.claimed_until > handed_over_at)
            values["handed_over_at"] = handed_over_at
        return list(
            await self.session.scalars(
                update(CC)
                .where(*conditions)
                .values(values)
                .returning(CC.c.id)
                .execution_options(synchronize_session=False)
            )
        )

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

    async def record_outcomes(
        self,
        outcomes: Iterable[Outcome],
        worker_id: str | None = None,
        created: Mapping[int, datetime] | None = None,
    ) -> None:
        self._worker_id = worker_id
        accepted = [o for o in outcomes if isinstance(o, Accepted)]
        rescheduled = [o for o in outcomes if isinstance(o, Rescheduled)]
        dead = [o for o in outcomes if isinstance(o, Dead)]
        held = [o for o in outcomes if isinstance(o, Held)]
        if accepted:
            await self._record_accepted(accepted, created)
        if held:
            await self._unclaim_held(held, created)
        if rescheduled:
            await self._release(rescheduled, MessageStatus.PLANNED, "next_attempt_at", created)
        if held or rescheduled:
            # Back in the outbox for a campaign cancelled meanwhile: cancelled with it, not left planned forever.
            await self._cancel_with_campaign(
                [o.message_id for o in held] + [o.message_id for o in rescheduled], created
            )
        if dead:
            gone = await self._release(dead, MessageStatus.DEAD, "failed_at", created)
            await self._insert_events_returning(
                [
                    (o.message_id, MessageStatus.DEAD.value, "outbox", o.at, o.error_code, o.reason)
                    for o in dead
                    if o.message_id in gone
                ],
                created,
            )
            await count_once(self.session, self._zone, "failed", gone, created)

    def _still_ours(self) -> ColumnElement[bool]:
        """A claim being sent, held by the worker recording it (when it says who it is)."""
        sending = CC.c.status == MessageStatus.SENDING.value
        worker_id = getattr(self, "_worker_id", None)
        return sending if worker_id is None else and_(sending, CC.c.claimed_by == worker_id)

    async def _unclaim_held(self, held: list[Held], created: Mapping[int, datetime] | None) -> None:
        """Held messages were never tried: back to planned as they were, the claim's attempt given back."""
        this_one, its_month = self._by_id([o.message_id for o in held], created)
        await self.session.execute(
            update(CC)
            .where(this_one, self._still_ours())
            .values(
                status=MessageStatus.PLANNED.value,
                next_attempt_at=bindparam("b_at"),
                attempts=CC.c.attempts - 1,
                claimed_by=None,
                claimed_until=None,
            )
            .execution_options(synchronize_session=False),
            [{"b_id": o.message_id, "b_at": o.at, **its_month(o.message_id)} for o in held],
        )

    async def _cancel_with_campaign(
        self, message_ids: list[int], created: Mapping[int, datetime] | None = None
    ) -> None:
        cancelled = select(BulkMessaging.id).where(BulkMessaging.status == "cancelled")
        await self.session.execute(
            update(CC)
            .where(
                self._these(message_ids, created),
                CC.c.status == MessageStatus.PLANNED.value,
                CC.c.campaign_id.in_(cancelled),
            )
            .values(status=MessageStatus.CANCELLED.value, status_reason=CAMPAIGN_CANCELLED)
            .execution_options(synchronize_session=False)
        )

    async def _release(
        self,
        outcomes: list[Rescheduled] | list[Dead],
        status: MessageStatus,
        at_column: str,
        created: Mapping[int, datetime] | None,
    ) -> set[int]:
        """Ends the claim on messages that were not accepted: back to the outbox for later, or dead.

        Returns the ids it moved: a message a receipt moved on meanwhile (the provider had it after all)
        is left as the receipt left it."""
        moved: set[int] = set()
        ordered: list[Rescheduled | Dead] = sorted(outcomes, key=lambda o: o.message_id)  # one lock order
        for outcome in ordered:
            found = await self.session.scalar(
                update(CC)
                .where(self._these([outcome.message_id], created), self._still_ours())
                .values(
                    {
                        "status": status.value,
                        at_column: outcome.at,
                        "status_reason": outcome.reason[:255],
                        "error_code": outcome.error_code,
                        "claimed_by": None,
                        "claimed_until": None,
                    }
                )
                .returning(CC.c.id)
                .execution_options(synchronize_session=False)
            )
            if found is not None:
                moved.add(int(found))
        return moved

    async def _record_accepted(
        self, accepted: list[Accepted], created: Mapping[int, datetime] | None
    ) -> None:
        # A receipt may have recorded the acceptance already (in-doubt sends): only fill what is missing.
        accepted = sorted(accepted, key=lambda a: a.message_id)  # one lock order for every writer
        reused = await self._reused_provider_ids(accepted, created)
        this_one, its_month = self._by_id([a.message_id for a in accepted], created)
        await self.session.execute(
            update(CC)
            .where(
                this_one,
                or_(CC.c.status == MessageStatus.SENDING.value, CC.c.status == MessageStatus.PLANNED.value),
            )
            .values(
                status=bindparam("b_status"),
                provider_message_id=bindparam("b_pid"),
                sent_at=bindparam("b_at"),
                delivered_at=func.coalesce(CC.c.delivered_at, bindparam("b_delivered_at")),
                claimed_by=None,
                claimed_until=None,
                status_reason=bindparam("b_reason"),
                error_code=None,
            )
            .execution_options(synchronize_session=False),
            [
                {
                    "b_id": a.message_id,
                    "b_status": a.status.value,
                    "b_pid": None if a.message_id in reused else a.provider_message_id,
                    "b_at": a.at,
                    # A provider whose acceptance is the delivery (Telegram: the message is in the chat).
                    "b_delivered_at": a.at if a.status in ARRIVED else None,
                    "b_reason": reused.get(a.message_id),
                    **its_month(a.message_id),
                }
                for a in accepted
            ],
        )
        await self._insert_events_returning(
            [
                (a.message_id, a.status.value, "outbox", a.at, None, reused.get(a.message_id))
                for a in accepted
            ],
            created,
        )
        await count_once(self.session, self._zone, "sent", [a.message_id for a in accepted], created)
        arrived = [a.message_id for a in accepted if a.status in ARRIVED]
        if arrived:
            await count_once(self.session, self._zone, "delivered", arrived, created)

    async def _reused_provider_ids(
        self, accepted: list[Accepted], created: Mapping[int, datetime] | None
    ) -> dict[int, str]:
        """Acceptances whose provider id another message already has (a provider's mistake, or a retry the
        provider took as new): kept as data — the message is accepted, the id noted — never a failed batch."""
        ids = [a.message_id for a in accepted]
        pids = sorted({a.provider_message_id for a in accepted})
        columns = (CC.c.id, CC.c.provider, CC.c.provider_message_id)
        if known_creation_times(ids, self._hint(created)) is None:
            rows = list(
                (
                    await self.session.execute(
                        select(*columns).where(or_(CC.c.id.in_(ids), CC.c.provider_message_id.in_(pids)))
                    )
                ).all()
            )
        else:
            # By month: the messages themselves, then whoever holds these provider ids, found through the
            # key table (which says when each holder was created; usually nobody does).
            rows = list((await self.session.execute(select(*columns).where(self._these(ids, created)))).all())
            holders = (
                await self.session.execute(
                    select(PROVIDER_IDS.c.provider_message_id, PROVIDER_IDS.c.created_at).where(
                        PROVIDER_IDS.c.provider.in_(sorted({row.provider for row in rows})),
                        PROVIDER_IDS.c.provider_message_id.in_(pids),
                    )
                )
            ).all()
            if holders:
                rows += (
                    await self.session.execute(
                        select(*columns).where(
                            CC.c.provider_message_id.in_(sorted({h.provider_message_id for h in holders})),
                            CC.c.created_at.in_(sorted({h.created_at for h in holders})),
                        )
                    )
                ).all()
        provider_of = {row.id: row.provider for row in rows if row.id in ids}
        owner = {(row.provider, row.provider_message_id): row.id for row in rows if row.provider_message_id}
        reused: dict[int, str] = {}
        for a in accepted:
            key = (provider_of.get(a.message_id), a.provider_message_id)
            holder = owner.setdefault(key, a.message_id)  # a repeat within this group counts too
            if holder != a.message_id:
                reused[a.message_id] = (
                    f"accepted; the provider gave it id {a.provider_message_id}, which message #{holder} "
                    "already has"
                )[:255]
        return reused

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
        created = {t.id: t.created_at for t in targets.values()}
        planned: list[tuple[int, DeliveryReceipt, MessageStatus, bool]] = []
        results: list[ReceiptResult | None] = []
        for receipt in receipts:
            target = targets.get(_target_key(receipt))
            if target is None:
                results.append(ReceiptResult(False, None, None, "no message with this id"))
                continue
            current, _pid = state[target.id]
            new = receipt.status
            # A receipt for a message we withdrew, stopped or gave up on (its last try in doubt) means the
            # provider had it after all: it counts as sent from then on.
            in_doubt = current in (
                MessageStatus.SENDING,
                MessageStatus.PLANNED,
                MessageStatus.SUPPRESSED,
                MessageStatus.DEAD,
            )
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
            ],
            created,
        )
        changes: dict[int, dict[str, Any]] = {}
        figures: list[tuple[str, int]] = []
        cost_changes: list[tuple[Any, int]] = []
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
            figures += [(figure, message_id) for figure in _receipt_figures(receipt.status, in_doubt)]
            if receipt.cost_micros is not None and receipt.cost_micros != (target.cost_micros or 0):
                cost_changes.append((target, receipt.cost_micros))
            results[index] = ReceiptResult(True, message_id, receipt.status.value, "applied")
        await self._update_messages(changes, created)
        # A cost the provider states afterwards moves the day's cost, if the message is counted as sent
        # already (a message counted as sent below is counted with its new cost).
        for target, cost in cost_changes:
            if target.counted & 1:
                key = (target.channel, target.provider, target.campaign_id or 0, target.template_id or 0)
                day = send_day(target.sent_at, target.failed_at, target.created_at, self._zone)
                await add_cost(self.session, day, key, cost - (target.cost_micros or 0))
        by_figure: dict[str, list[int]] = {}
        for figure, message_id in figures:
            by_figure.setdefault(figure, []).append(message_id)
        for figure in ("sent", "delivered", "read", "failed"):
            await count_once(self.session, self._zone, figure, by_figure.get(figure, ()), created)
        return [r for r in results if r is not None]

    async def _update_messages(
        self, changes: dict[int, dict[str, Any]], created: Mapping[int, datetime]
    ) -> None:
        """One executemany per set of changed columns (usually one set per batch), not one UPDATE per message."""
        this_one, its_month = self._by_id(list(changes), created)
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for message_id, values in sorted(changes.items()):  # one lock order for every writer
            columns = tuple(sorted(values))
            groups.setdefault(columns, []).append(
                {"b_id": message_id, **its_month(message_id), **{f"b_{c}": values[c] for c in columns}}
            )
        for columns, rows in groups.items():
            await self.session.execute(
                update(CC)
                .where(this_one)
                .values({column: bindparam(f"b_{column}") for column in columns})
                .execution_options(synchronize_session=False),
                rows,
            )

    async def _receipt_targets(self, receipts: Sequence[DeliveryReceipt]) -> dict[tuple[str, str], Any]:
        """The messages the receipts name, keyed as `_target_key` keys them: by our id, else by the provider's.

        Neither id says which month holds the message. On PostgreSQL the recent months are read first (a
        receipt comes minutes or days after its send), and every month only for the receipts not found
        there: reading all of a year's partitions costs each batch milliseconds of planning alone."""
        if self._dialect != "postgresql":
            return await self._targets_among(receipts)
        targets = await self._targets_among(receipts, since=recent_since(datetime.now(UTC)))
        rest = [r for r in receipts if _target_key(r) not in targets]
        if rest:
            targets.update(await self._targets_among(rest))
        return targets

    async def _targets_among(
        self, receipts: Sequence[DeliveryReceipt], since: datetime | None = None
    ) -> dict[tuple[str, str], Any]:
        """`_receipt_targets` among the messages created since `since` (all of them when None)."""
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
        recent = CC.c.created_at >= since if since is not None else true()
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
                    CC.c.counted,
                    CC.c.sent_at,
                    CC.c.failed_at,
                    CC.c.created_at,
                ).where(or_(*conditions), recent)
            )
        ).all()
        targets: dict[tuple[str, str], Any] = {}
        for row in rows:
            targets[("id", str(row.id))] = row
            if row.provider_message_id is not None:
                targets[(row.provider, row.provider_message_id)] = row
        return targets

    async def _insert_events_returning(
        self,
        events: list[tuple[int, str, str, datetime, str | None, str | None]],
        known: Mapping[int, datetime] | None = None,
    ) -> set[tuple[int, str, str]]:
        """Adds status-history rows; returns the (message, status, source) keys that were new. `known`: the
        messages' creation times where the caller has them (the rows carry it), saving a query."""
        if not events:
            return set()
        created = await message_creation_times(self.session, [e[0] for e in events], known)
        rows = [
            {
                "communication_id": e[0],
                "message_created_at": created[e[0]],
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
            .on_conflict_do_nothing(
                index_elements=["communication_id", "message_created_at", "status", "source"]
            )
            .returning(EVENTS.c.communication_id, EVENTS.c.status, EVENTS.c.source)
        )
        result = await self.session.execute(statement, rows)
        return {(row[0], row[1], row[2]) for row in result.all()}


#: Statuses that say the message reached the recipient.
ARRIVED = (MessageStatus.DELIVERED, MessageStatus.READ)


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


def _receipt_figures(new: MessageStatus, in_doubt: bool) -> list[str]:
    """The daily figures an applied receipt reaches (each is counted once per message however often)."""
    figures = ["sent"] if in_doubt else []
    if new in (MessageStatus.DELIVERED, MessageStatus.READ):
        figures.append("delivered")  # read implies delivered, when the delivered receipt was skipped
    if new == MessageStatus.READ:
        figures.append("read")
    if new in (MessageStatus.FAILED, MessageStatus.UNDELIVERED):
        figures.append("failed")
    return figures


__all__ = [
    "Accepted",
    "ClaimedMessage",
    "Dead",
    "Outcome",
    "ReceiptResult",
    "Rescheduled",
    "SqlOutbox",
]
