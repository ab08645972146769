"""Live-chat SLAs as admins read them: the policies, and the warnings and breaches recorded in a time span."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from domain.conversations.sla import SlaKind, SlaMetric, SlaPolicy
from storage.database import Database
from storage.models import ChatSession, ChatSlaEvent, Customer, Location, StaffUser
from storage.models import SlaPolicy as SlaPolicyRow
from storage.sla import all_policies


@dataclass(frozen=True)
class PolicyView:
    policy: SlaPolicy
    #: The location's name; None for the default policy.
    location: str | None


@dataclass(frozen=True)
class SlaEventView:
    chat_id: int
    customer: str
    channel: str
    metric: SlaMetric
    kind: SlaKind
    due_at: datetime
    occurred_at: datetime
    staff: str | None
    alerted: bool


async def sla_policies(database: Database) -> list[PolicyView]:
    async with database.read_sessions() as session:
        policies = await all_policies(session)
        names = {row.id: row.name for row in await session.execute(select(Location.id, Location.name))}
    return [PolicyView(p, names.get(p.location_id) if p.location_id else None) for p in policies]


async def sla_events(
    database: Database, since: datetime, until: datetime, *, limit: int = 50
) -> list[SlaEventView]:
    """Warnings and breaches recorded in [since, until), newest first."""
    query: Any = (
        select(ChatSlaEvent, Customer.name, ChatSession.channel, StaffUser.name)
        .join(ChatSession, ChatSession.id == ChatSlaEvent.session_id)
        .join(Customer, Customer.id == ChatSession.customer_id)
        .outerjoin(StaffUser, StaffUser.id == ChatSlaEvent.staff_id)
        .where(ChatSlaEvent.occurred_at >= since, ChatSlaEvent.occurred_at < until)
        .order_by(ChatSlaEvent.occurred_at.desc(), ChatSlaEvent.id.desc())
        .limit(limit)
    )
    async with database.read_sessions() as session:
        rows = (await session.execute(query)).all()
    return [
        SlaEventView(
            event.session_id,
            customer,
            channel,
            SlaMetric(event.metric),
            SlaKind(event.kind),
            event.due_at,
            event.occurred_at,
            staff,
            event.alerted_at is not None,
        )
        for event, customer, channel, staff in rows
    ]


async def sla_policy_values(database: Database, policy_id: int) -> tuple[dict[str, Any], str | None] | None:
    """One policy's stored values and its clinic's code (None: the default), to edit; None: no such policy."""
    async with database.read_sessions() as session:
        row = (
            await session.execute(
                select(SlaPolicyRow, Location.code)
                .outerjoin(Location, Location.id == SlaPolicyRow.location_id)
                .where(SlaPolicyRow.id == policy_id)
            )
        ).first()
    if row is None:
        return None
    policy, code = row
    values = {
        "name": policy.name,
        "first_response_minutes": policy.first_response_minutes,
        "next_response_minutes": policy.next_response_minutes,
        "resolution_minutes": policy.resolution_minutes,
        "warn_before_minutes": policy.warn_before_minutes,
        "business_hours": dict(policy.business_hours or {}),
        "holidays": list(policy.holidays or []),
        "enabled": policy.enabled,
    }
    return values, code
