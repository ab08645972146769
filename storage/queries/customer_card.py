"""The customer card beside a conversation: consent per channel, preferences, recent orders and appointments,
and the customer's other open conversations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from domain.vocabulary import ChatStatus
from storage.database import Database
from storage.models import Appointment, ChatSession, CustomerTag, Order, Service
from storage.queries.customers import CustomerPreferences, customer_preferences

#: How many orders and appointments the card lists (the latest first).
RECENT = 5
#: Conversations that still need staff: open, pending or snoozed.
UNFINISHED = (ChatStatus.OPEN.value, ChatStatus.PENDING.value, ChatStatus.SNOOZED.value)


@dataclass(frozen=True)
class RecentOrder:
    id: int
    order_number: str
    status: str
    amount_minor: int
    currency: str
    created_at: datetime


@dataclass(frozen=True)
class RecentAppointment:
    id: int
    service: str
    kind: str
    status: str
    scheduled_at: datetime
    price_minor: int
    currency: str


@dataclass(frozen=True)
class OtherConversation:
    id: int
    channel: str
    status: str
    last_message_at: datetime | None


@dataclass(frozen=True)
class CustomerCard:
    customer_id: int
    preferences: CustomerPreferences  # consent per channel, preferred channel, quiet hours, marketing cap
    orders: tuple[RecentOrder, ...]  # the latest RECENT, newest first
    appointments: tuple[RecentAppointment, ...]  # the latest RECENT by appointment time, latest first
    other_conversations: tuple[OtherConversation, ...]  # unfinished, not this one, latest activity first
    tags: tuple[str, ...] = ()  # e.g. "first-contact:whatsapp" on a record a first message made


async def customer_card(database: Database, customer_id: int, chat_id: int | None) -> CustomerCard | None:
    """The card for the customer of conversation `chat_id`, or for the customer page (`chat_id` None: every
    unfinished conversation is an "other" one). None: no such customer."""
    preferences = await customer_preferences(database, customer_id)
    if preferences is None:
        return None
    orders = (
        select(Order)
        .where(Order.customer_id == customer_id)
        .order_by(Order.created_at.desc(), Order.id.desc())
        .limit(RECENT)
    )
    appointments = (
        select(Appointment, Service.name)
        .join(Service, Service.id == Appointment.service_id)
        .where(Appointment.customer_id == customer_id)
        .order_by(Appointment.scheduled_at.desc(), Appointment.id.desc())
        .limit(RECENT)
    )
    others = (
        select(ChatSession.id, ChatSession.channel, ChatSession.status, ChatSession.last_message_at)
        .where(
            ChatSession.customer_id == customer_id,
            ChatSession.id != (chat_id or 0),
            ChatSession.status.in_(UNFINISHED),
        )
        .order_by(ChatSession.last_message_at.desc(), ChatSession.id.desc())
        .limit(20)
    )
    async with database.read_sessions() as session:
        order_rows = list(await session.scalars(orders))
        appointment_rows = (await session.execute(appointments)).all()
        other_rows = (await session.execute(others)).all()
        tags = tuple(
            await session.scalars(
                select(CustomerTag.tag)
                .where(CustomerTag.customer_id == customer_id)
                .order_by(CustomerTag.tag)
            )
        )
    return CustomerCard(
        customer_id,
        preferences,
        tuple(
            RecentOrder(o.id, o.order_number, o.status, o.amount_minor, o.currency, o.created_at)
            for o in order_rows
        ),
        tuple(
            RecentAppointment(a.id, name, a.kind, a.status, a.scheduled_at, a.price_minor, a.currency)
            for a, name in appointment_rows
        ),
        tuple(OtherConversation(*row) for row in other_rows),
        tags,
    )
