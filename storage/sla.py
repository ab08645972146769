"""Live-chat SLAs in SQL: policies, the conversations on the clock, warnings and breaches stored once, alert claims."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Self

from sqlalchemy import Select, and_, false, func, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from domain.conversations.sla import SlaAlert, SlaChat, SlaFinding, SlaKind, SlaMetric, SlaPolicy
from domain.messages.words import CHAT_CHANNEL_WORDS
from domain.vocabulary import ChatStatus
from storage.models import ChatMessage, ChatSession, ChatSlaEvent, Customer, Location, StaffUser
from storage.models import SlaPolicy as SlaPolicyRow
from storage.sql import insert_for, table_of
from storage.unit_of_work import SqlUnitOfWork

#: Conversations whose clocks run (snoozed ones are set aside until they wake; resolved ones are done).
ON_THE_CLOCK = (ChatStatus.OPEN.value, ChatStatus.PENDING.value)
#: Findings per INSERT (six values each, well under SQLite's bound-parameter limit).
INSERT_BATCH = 500
#: Targets missed at most once per clock (a next response can be missed once per waiting period).
ONCE_PER_CLOCK = (SlaMetric.FIRST_RESPONSE, SlaMetric.RESOLUTION)


def policy_of(row: SlaPolicyRow) -> SlaPolicy:
    return SlaPolicy(
        policy_id=row.id,
        name=row.name,
        first_response_minutes=row.first_response_minutes,
        next_response_minutes=row.next_response_minutes,
        resolution_minutes=row.resolution_minutes,
        warn_before_minutes=row.warn_before_minutes,
        business_hours=dict(row.business_hours or {}),
        holidays=list(row.holidays or []),
        location_id=row.location_id,
        enabled=row.enabled,
    )


async def all_policies(session: AsyncSession) -> list[SlaPolicy]:
    rows = await session.scalars(
        select(SlaPolicyRow).order_by(SlaPolicyRow.location_id.is_not(None), SlaPolicyRow.name)
    )
    return [policy_of(row) for row in rows]


def chats_with_their_clinic() -> Select[
    int, datetime, datetime | None, datetime | None, int | None, int | None, str
]:
    """Conversations with what their clocks need: start, first answer, resolution, agent, and the customer's
    home clinic and its timezone (None without one)."""
    return (
        select(
            ChatSession.id,
            ChatSession.started_at,
            ChatSession.first_response_at,
            ChatSession.closed_at,
            ChatSession.assigned_staff_id,
            Customer.home_location_id,
            Location.timezone,
        )
        .join(Customer, Customer.id == ChatSession.customer_id)
        .outerjoin(Location, Location.id == Customer.home_location_id)
    )


class SqlSlaStore:
    """domain.conversations.sla_watch.SlaStore."""

    def __init__(self, session: AsyncSession, business_tz: str) -> None:
        self._session = session
        self._business_tz = business_tz

    async def policies(self) -> list[SlaPolicy]:
        return await all_policies(self._session)

    async def chats_on_the_clock(self, limit: int, after: int = 0) -> list[SlaChat]:
        # One page of live conversations in id order: the pass pages through all of them.
        live = (
            select(ChatSession.id)
            .where(ChatSession.status.in_(ON_THE_CLOCK), ChatSession.id > after)
            .order_by(ChatSession.id)
            .limit(limit)
        )
        last_answer = (
            select(ChatMessage.session_id, func.max(ChatMessage.created_at).label("at"))
            .where(
                ChatMessage.session_id.in_(live),
                ChatMessage.author == "staff",
                ChatMessage.is_note.is_(false()),
            )
            .group_by(ChatMessage.session_id)
            .subquery()
        )
        # What the customer wrote before a resolve (a "thanks", a CSAT answer) waits for nobody: only turns
        # since the conversation was last reopened count.
        waiting = (
            select(ChatMessage.session_id, func.min(ChatMessage.created_at).label("since"))
            .join(ChatSession, ChatSession.id == ChatMessage.session_id)
            .outerjoin(last_answer, last_answer.c.session_id == ChatMessage.session_id)
            .where(
                ChatMessage.session_id.in_(live),
                ChatMessage.author == "customer",
                or_(last_answer.c.at.is_(None), ChatMessage.created_at > last_answer.c.at),
                or_(ChatSession.reopened_at.is_(None), ChatMessage.created_at >= ChatSession.reopened_at),
            )
            .group_by(ChatMessage.session_id)
            .subquery()
        )
        rows = await self._session.execute(
            chats_with_their_clinic()
            .add_columns(ChatSession.reopened_at, waiting.c.since, last_answer.c.at)
            .outerjoin(waiting, waiting.c.session_id == ChatSession.id)
            .outerjoin(last_answer, last_answer.c.session_id == ChatSession.id)
            .where(ChatSession.id.in_(live))
            .order_by(ChatSession.id)
        )
        return [
            SlaChat(
                chat_id=chat_id,
                started_at=started_at,
                first_response_at=first_response_at,
                closed_at=closed_at,
                waiting_since=since,
                answered_before=answered_at is not None,
                location_id=location_id,
                timezone=timezone or self._business_tz,
                assigned_staff_id=staff_id,
                reopened_at=reopened_at,
            )
            for (
                chat_id,
                started_at,
                first_response_at,
                closed_at,
                staff_id,
                location_id,
                timezone,
                reopened_at,
                since,
                answered_at,
            ) in rows
        ]

    async def record(self, findings: Sequence[SlaFinding], at: datetime) -> int:
        findings = await self._not_yet_breached(findings)
        table = table_of(ChatSlaEvent)
        new = 0
        for first in range(0, len(findings), INSERT_BATCH):
            rows = [
                {
                    "session_id": f.chat_id,
                    "metric": f.metric.value,
                    "kind": f.kind.value,
                    "due_at": f.due_at,
                    "occurred_at": at,
                    "staff_id": f.staff_id,
                    "policy_id": f.policy_id,
                    "alerted_at": None,
                }
                for f in findings[first : first + INSERT_BATCH]
            ]
            # ON CONFLICT DO NOTHING: another worker storing the same finding at the same moment is not an
            # error, and the key (conversation, target, due time, kind) keeps each one stored once.
            statement = (
                insert_for(self._session, table)
                .values(rows)
                .on_conflict_do_nothing(index_elements=["session_id", "metric", "due_at", "kind"])
                .returning(table.c.id)
            )
            new += len((await self._session.execute(statement)).all())
        return new

    async def _not_yet_breached(self, findings: Sequence[SlaFinding]) -> Sequence[SlaFinding]:
        """The findings less first-response and resolution breaches whose clock already has a breach stored
        (due at or after the clock started): a policy edit moves the due time, not the miss. A next response
        can breach once per waiting period, and a reopened conversation's resolution clock once more."""
        once = [f for f in findings if f.kind is SlaKind.BREACH and f.metric in ONCE_PER_CLOCK]
        if not once:
            return findings
        latest: dict[tuple[int, str], datetime] = {}
        chat_ids = sorted({f.chat_id for f in once})
        for first in range(0, len(chat_ids), INSERT_BATCH):
            rows = await self._session.execute(
                select(ChatSlaEvent.session_id, ChatSlaEvent.metric, func.max(ChatSlaEvent.due_at))
                .where(
                    ChatSlaEvent.session_id.in_(chat_ids[first : first + INSERT_BATCH]),
                    ChatSlaEvent.kind == SlaKind.BREACH.value,
                    ChatSlaEvent.metric.in_([m.value for m in ONCE_PER_CLOCK]),
                )
                .group_by(ChatSlaEvent.session_id, ChatSlaEvent.metric)
            )
            latest.update({(chat_id, metric): due for chat_id, metric, due in rows})

        def redundant(f: SlaFinding) -> bool:
            stored = latest.get((f.chat_id, f.metric.value))
            return (
                f.kind is SlaKind.BREACH
                and f.metric in ONCE_PER_CLOCK
                and stored is not None
                and f.due_at != stored
                and (f.started_at is None or stored >= f.started_at)
            )

        return [f for f in findings if not redundant(f)]

    async def alerts_to_send(self, now: datetime, breaches_since: datetime, limit: int) -> list[SlaAlert]:
        rows = await self._session.execute(
            select(
                ChatSlaEvent,
                ChatSession.channel,
                Customer.id,
                Customer.name,
                StaffUser.name,
                Location.timezone,
                Location.code,
            )
            .join(ChatSession, ChatSession.id == ChatSlaEvent.session_id)
            .join(Customer, Customer.id == ChatSession.customer_id)
            .outerjoin(StaffUser, StaffUser.id == ChatSession.assigned_staff_id)
            .outerjoin(Location, Location.id == Customer.home_location_id)
            .where(
                ChatSlaEvent.alerted_at.is_(None),
                ChatSession.status.in_(ON_THE_CLOCK),
                or_(
                    and_(ChatSlaEvent.kind == SlaKind.WARNING.value, ChatSlaEvent.due_at > now),
                    and_(ChatSlaEvent.kind == SlaKind.BREACH.value, ChatSlaEvent.due_at >= breaches_since),
                ),
            )
            .order_by(ChatSlaEvent.occurred_at, ChatSlaEvent.id)
            .limit(limit)
        )
        return [
            SlaAlert(
                event_id=event.id,
                chat_id=event.session_id,
                metric=SlaMetric(event.metric),
                kind=SlaKind(event.kind),
                due_at=event.due_at,
                customer_name=customer,
                customer_id=customer_id,
                channel_words=CHAT_CHANNEL_WORDS.get(channel, channel),
                assigned_name=agent,
                policy_id=event.policy_id,
                timezone=timezone or self._business_tz,
                team=team,
            )
            for event, channel, customer_id, customer, agent, timezone, team in rows
        ]

    async def claim_alert(self, event_id: int, at: datetime) -> bool:
        result: CursorResult[Any] = await self._session.execute(  # type: ignore[assignment]
            update(ChatSlaEvent)
            .where(ChatSlaEvent.id == event_id, ChatSlaEvent.alerted_at.is_(None))
            .values(alerted_at=at)
        )
        return result.rowcount == 1

    async def release_alert(self, event_id: int, claimed_at: datetime) -> None:
        await self._session.execute(
            update(ChatSlaEvent)
            .where(ChatSlaEvent.id == event_id, ChatSlaEvent.alerted_at == claimed_at)
            .values(alerted_at=None)
        )


class SqlSlaUnitOfWork(SqlUnitOfWork):
    """Satisfies domain.conversations.sla_watch.SlaUnitOfWork."""

    sla: SqlSlaStore

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.sla = SqlSlaStore(self.session, self.business_tz)
        return self
