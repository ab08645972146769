"""The rows cross-system analyses read: counted orders with net amounts, outbound messages, costs, and order history.

Plain Core selects with bound values; the joins across systems (which message preceded which
order, which month a customer first ordered in) happen in reports/insight.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.vocabulary import Direction, MessageStatus
from storage.analytics.facts import COUNTED_ORDER_STATUSES, NO_VALUE
from storage.models import BulkMessaging, CustomerCommunication, Order, Refund
from storage.models.base import UtcDateTime

#: Outbound messages that reached the provider and, as far as we know, the customer.
ATTRIBUTABLE_STATUSES = (MessageStatus.SENT.value, MessageStatus.DELIVERED.value, MessageStatus.READ.value)


@dataclass(frozen=True)
class OrderFact:
    order_id: int
    customer_id: int
    created_at: datetime
    net_amount_minor: int


@dataclass(frozen=True)
class MessageFact:
    customer_id: int
    created_at: datetime
    channel: str
    campaign: str | None


def _between(column: Any, start: datetime, end: datetime) -> Any:
    return and_(column >= literal(start, UtcDateTime), column < literal(end, UtcDateTime))


def _attributable_message() -> Any:
    return and_(
        CustomerCommunication.direction == Direction.OUTBOUND.value,
        CustomerCommunication.status.in_(ATTRIBUTABLE_STATUSES),
        CustomerCommunication.customer_id.is_not(None),
    )


async def counted_orders(session: AsyncSession, start: datetime, end: datetime) -> list[OrderFact]:
    """Counted orders placed in [start, end), each with its amount net of refunds (minor units)."""
    refunded = (
        select(func.coalesce(func.sum(Refund.amount_minor), 0))
        .where(Refund.order_id == Order.id)
        .correlate(Order.__table__)
        .scalar_subquery()
    )
    statement = select(Order.id, Order.customer_id, Order.created_at, Order.amount_minor - refunded).where(
        Order.status.in_(COUNTED_ORDER_STATUSES), _between(Order.created_at, start, end)
    )
    return [OrderFact(i, c, t, int(a)) for i, c, t, a in await session.execute(statement)]


async def attributable_messages(
    session: AsyncSession, start: datetime, end: datetime, *, ordered_from: datetime, ordered_until: datetime
) -> list[MessageFact]:
    """Outbound sent/delivered/read messages created in [start, end) to customers who placed a counted
    order in [ordered_from, ordered_until), with their channel and campaign slug."""
    ordered = exists(
        select(literal(1)).where(
            Order.customer_id == CustomerCommunication.customer_id,
            Order.status.in_(COUNTED_ORDER_STATUSES),
            _between(Order.created_at, ordered_from, ordered_until),
        )
    )
    statement = (
        select(
            CustomerCommunication.customer_id,
            CustomerCommunication.created_at,
            CustomerCommunication.channel,
            BulkMessaging.slug,
        )
        .outerjoin(BulkMessaging, BulkMessaging.id == CustomerCommunication.campaign_id)
        .where(_attributable_message(), _between(CustomerCommunication.created_at, start, end), ordered)
    )
    rows = await session.execute(statement)
    return [MessageFact(c, t, ch, slug) for c, t, ch, slug in rows if c is not None]


async def messaged_customers(
    session: AsyncSession, start: datetime, end: datetime
) -> tuple[dict[str, int], dict[str, int]]:
    """Distinct customers sent an attributable message in [start, end): by channel, and by campaign slug."""
    window = and_(_attributable_message(), _between(CustomerCommunication.created_at, start, end))
    customers = func.count(func.distinct(CustomerCommunication.customer_id))
    by_channel = await session.execute(
        select(CustomerCommunication.channel, customers).where(window).group_by(CustomerCommunication.channel)
    )
    campaign = func.coalesce(BulkMessaging.slug, NO_VALUE)
    by_campaign = await session.execute(
        select(campaign, customers)
        .outerjoin(BulkMessaging, BulkMessaging.id == CustomerCommunication.campaign_id)
        .where(window)
        .group_by(campaign)
    )
    return {str(k): int(v) for k, v in by_channel}, {str(k): int(v) for k, v in by_campaign}


async def message_costs(session: AsyncSession, start: datetime, end: datetime) -> dict[str, int]:
    """Provider cost (micros) of outbound messages created in [start, end), by channel."""
    statement = (
        select(CustomerCommunication.channel, func.coalesce(func.sum(CustomerCommunication.cost_micros), 0))
        .where(
            CustomerCommunication.direction == Direction.OUTBOUND.value,
            _between(CustomerCommunication.created_at, start, end),
        )
        .group_by(CustomerCommunication.channel)
    )
    return {str(channel): int(micros or 0) for channel, micros in await session.execute(statement)}


async def order_history(session: AsyncSession, until: datetime) -> Sequence[tuple[int, datetime]]:
    """(customer, time) of every counted order before `until`, oldest first."""
    statement = (
        select(Order.customer_id, Order.created_at)
        .where(Order.status.in_(COUNTED_ORDER_STATUSES), Order.created_at < literal(until, UtcDateTime))
        .order_by(Order.created_at)
    )
    return [(c, t) for c, t in await session.execute(statement) if c is not None]
