"""The chat widget's storage: visitors (and the customers they are), and their website-chat address.

Kept free of the conversation store so that the recipient directory can ask it for addresses.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.vocabulary import Channel, Direction
from domain.widget.model import UNNAMED_VISITOR, Visitor
from storage.models import (
    ChatWidgetKey,
    ChatWidgetVisitor,
    Customer,
    CustomerCommunication,
    CustomerTag,
    Location,
)


def visitor_address(visitor_id: int) -> str:
    """A visitor as the inbound path and the outbox name them."""
    return f"visitor:{visitor_id}"


def visitor_id_of(address: str) -> int | None:
    prefix, _, number = address.strip().partition(":")
    return int(number) if prefix == "visitor" and number.isdigit() and len(number) < 19 else None


async def widget_addresses(session: AsyncSession, customer_ids: Sequence[int]) -> dict[int, str]:
    """Each customer's latest widget visitor, as their website-chat address (customers without one have none)."""
    if not customer_ids:
        return {}
    rows = (
        await session.execute(
            select(ChatWidgetVisitor.customer_id, func.max(ChatWidgetVisitor.id))
            .where(ChatWidgetVisitor.customer_id.in_(sorted(set(customer_ids))))
            .group_by(ChatWidgetVisitor.customer_id)
        )
    ).all()
    return {
        int(customer_id): visitor_address(int(visitor_id))
        for customer_id, visitor_id in rows
        if customer_id is not None
    }


class SqlVisitors:
    """domain.widget.ports.VisitorStore; nothing here commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def visitor(self, token_hash: str) -> Visitor | None:
        row = (
            await self.session.execute(
                select(
                    ChatWidgetVisitor.id, ChatWidgetVisitor.key_id, Customer.id, Customer.name, Customer.email
                )
                .outerjoin(Customer, Customer.id == ChatWidgetVisitor.customer_id)
                .where(ChatWidgetVisitor.token_hash == token_hash)
            )
        ).first()
        return None if row is None else Visitor(row[0], row[1], row[2], row[3] or UNNAMED_VISITOR, row[4])

    async def visitor_customer(self, visitor_id: int) -> int | None:
        found: int | None = await self.session.scalar(
            select(ChatWidgetVisitor.customer_id).where(ChatWidgetVisitor.id == visitor_id)
        )
        return found

    async def add_customer(
        self,
        name: str,
        email: str | None,
        home_location_id: int | None,
        at: datetime,
        *,
        timezone: str = "UTC",
        locale: str = "en",
        tag: str | None = None,
    ) -> int:
        customer = Customer(
            name=name,
            email=email,
            home_location_id=home_location_id,
            timezone=timezone,
            locale=locale,
            created_at=at,
            updated_at=at,
        )
        self.session.add(customer)
        await self.session.flush()
        if tag:
            self.session.add(CustomerTag(customer_id=customer.id, tag=tag))
            await self.session.flush()
        return customer.id

    async def add_visitor(self, key_id: int, token_hash: str, at: datetime) -> Visitor:
        visitor = ChatWidgetVisitor(
            token_hash=token_hash, key_id=key_id, customer_id=None, created_at=at, last_seen_at=at
        )
        self.session.add(visitor)
        await self.session.flush()
        return Visitor(visitor.id, key_id, None, UNNAMED_VISITOR, None)

    async def customer_of(self, visitor_id: int) -> int | None:
        return await self.visitor_customer(visitor_id)

    async def link_customer(self, visitor_id: int, customer_id: int) -> None:
        await self.session.execute(
            update(ChatWidgetVisitor)
            .where(ChatWidgetVisitor.id == visitor_id)
            .values(customer_id=customer_id)
        )

    async def set_contact(self, customer_id: int, name: str | None, email: str | None) -> None:
        values: dict[str, str] = {}
        if name:
            values["name"] = name
        if email:
            values["email"] = email
        if values:
            await self.session.execute(update(Customer).where(Customer.id == customer_id).values(**values))

    async def seen(self, visitor_id: int, at: datetime) -> None:
        await self.session.execute(
            update(ChatWidgetVisitor).where(ChatWidgetVisitor.id == visitor_id).values(last_seen_at=at)
        )

    async def own_replies(self, customer_id: int, message_ids: Sequence[int]) -> list[int]:
        if not message_ids:
            return []
        cc = CustomerCommunication
        found = await self.session.scalars(
            select(cc.id).where(
                cc.id.in_(sorted(set(message_ids))),
                cc.customer_id == customer_id,
                cc.channel == Channel.CHAT.value,
                cc.direction == Direction.OUTBOUND.value,
            )
        )
        return list(found)


class SqlWidgetKeys:
    """domain.widget.ports.WidgetKeyStore; nothing here commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self, key: str, name: str, origins: Sequence[str], location_id: int | None, at: datetime
    ) -> int | None:
        if await self.session.scalar(select(ChatWidgetKey.id).where(ChatWidgetKey.key == key)) is not None:
            return None
        row = ChatWidgetKey(
            key=key,
            name=name,
            allowed_origins=list(origins),
            location_id=location_id,
            enabled=True,
            created_at=at,
        )
        self.session.add(row)
        await self.session.flush()
        return row.id

    async def location_id(self, code: str) -> int | None:
        found: int | None = await self.session.scalar(select(Location.id).where(Location.code == code))
        return found

    async def set_enabled(self, key_id: int, enabled: bool) -> bool | None:
        current = await self.session.scalar(select(ChatWidgetKey.enabled).where(ChatWidgetKey.id == key_id))
        if current is None:
            return None
        if bool(current) == enabled:
            return False
        await self.session.execute(
            update(ChatWidgetKey).where(ChatWidgetKey.id == key_id).values(enabled=enabled)
        )
        return True
