"""Channels as the per-channel pages show them: daily figures, failures, SMS segments, WhatsApp templates and windows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import func, select, text

from storage.database import Database
from storage.models import (
    CommunicationAnalytics,
    CommunicationChannel,
    Customer,
    CustomerCommunication,
    MessageTemplate,
)
from storage.models.communication import FAILED_MESSAGES

#: The daily figures communication_analytics keeps per channel.
FIGURES = ("sent", "delivered", "read", "failed", "replied", "opted_out")
#: SMS encodings and the prefix of their figures in communication_analytics (storage.message_feed).
ENCODINGS = {"GSM-7": "gsm7", "UCS-2": "ucs2"}
CA = CommunicationAnalytics


@dataclass
class DayFigures:
    day: date
    channel: str
    figures: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIGURES, 0))
    cost_micros: int = 0

    @property
    def delivery_rate(self) -> float | None:
        sent = self.figures["sent"]
        return self.figures["delivered"] / sent if sent else None


async def daily_figures(database: Database, first_day: date, channel: str | None = None) -> list[DayFigures]:
    """Sums per day and channel (over providers, campaigns and templates) since `first_day`."""
    query = (
        select(
            CA.day,
            CA.channel,
            *(func.sum(getattr(CA, name)).label(name) for name in FIGURES),
            func.sum(CA.cost_micros).label("cost_micros"),
        )
        .where(CA.day >= first_day)
        .group_by(CA.day, CA.channel)
        .order_by(CA.day.desc(), CA.channel)
    )
    if channel is not None:
        query = query.where(CA.channel == channel)
    async with database.read_sessions() as session:
        rows = (await session.execute(query)).all()
    return [
        DayFigures(
            r.day, r.channel, {name: int(getattr(r, name) or 0) for name in FIGURES}, int(r.cost_micros or 0)
        )
        for r in rows
    ]


@dataclass(frozen=True)
class FailedMessage:
    id: int
    at: datetime
    customer: str | None
    status: str
    error_code: str | None
    status_reason: str | None


async def latest_failures(database: Database, channel: str, limit: int = 20) -> list[FailedMessage]:
    """The channel's most recent messages that failed, went undelivered or were given up."""
    cc = CustomerCommunication
    async with database.read_sessions() as session:
        rows = (
            await session.execute(
                select(cc, Customer.name)
                .outerjoin(Customer, Customer.id == cc.customer_id)
                # Worded as ix_customer_communications_failures is, so both engines read the index.
                .where(cc.channel == channel, text(FAILED_MESSAGES))
                .order_by(
                    text(
                        "coalesce(customer_communications.failed_at, customer_communications.created_at) DESC"
                    ),
                    cc.id.desc(),
                )
                .limit(limit)
            )
        ).all()
    return [
        FailedMessage(m.id, m.failed_at or m.created_at, name, m.status, m.error_code, m.status_reason)
        for m, name in rows
    ]


async def channel_currency(database: Database, channel: str) -> str | None:
    """The currency the channel's provider charges in (communication_channels.currency), if it names one."""
    async with database.read_sessions() as session:
        currency: str | None = await session.scalar(
            select(CommunicationChannel.currency).where(CommunicationChannel.channel == channel)
        )
    return currency


async def provider_currencies(database: Database) -> dict[str, str | None]:
    """Each channel's provider currency, from communication_channels (None where it names none)."""
    async with database.read_sessions() as session:
        rows = (
            await session.execute(select(CommunicationChannel.channel, CommunicationChannel.currency))
        ).all()
    return {channel: currency for channel, currency in rows}


@dataclass(frozen=True)
class EncodingFigures:
    encoding: str
    messages: int
    segments: int
    longer_than_one: int


async def sms_segments(database: Database, first_day: date) -> list[EncodingFigures]:
    """SMS sent since the business day `first_day`, by encoding: messages, billed segments, multi-part ones.

    Read from the daily figures (counted once as each SMS is handed to Twilio), not from the messages."""
    names = [f"{prefix}_{figure}" for prefix in ENCODINGS.values() for figure in ("sent", "segments", "long")]
    async with database.read_sessions() as session:
        row = (
            await session.execute(
                select(*(func.coalesce(func.sum(getattr(CA, name)), 0) for name in names)).where(
                    CA.channel == "sms", CA.day >= first_day
                )
            )
        ).one()
    figures = dict(zip(names, (int(value) for value in row), strict=True))
    return [
        EncodingFigures(
            encoding, figures[f"{prefix}_sent"], figures[f"{prefix}_segments"], figures[f"{prefix}_long"]
        )
        for encoding, prefix in ENCODINGS.items()
        if figures[f"{prefix}_sent"]
    ]


@dataclass(frozen=True)
class WhatsAppTemplateUse:
    name: str
    locale: str
    whatsapp_name: str | None
    category: str
    status: str
    sent: int


async def whatsapp_templates(database: Database, first_day: date) -> list[WhatsAppTemplateUse]:
    """Templates registered with Meta under a name (the only kind WhatsApp takes outside the 24-hour window),
    with how many were sent since the business day `first_day` (from the daily figures)."""
    async with database.read_sessions() as session:
        templates = list(
            await session.scalars(
                select(MessageTemplate)
                .where(MessageTemplate.channel == "whatsapp", MessageTemplate.whatsapp_name.is_not(None))
                .order_by(MessageTemplate.name, MessageTemplate.locale)
            )
        )
        used = dict(
            (
                await session.execute(
                    select(CA.template_id, func.sum(CA.sent))
                    .where(
                        CA.channel == "whatsapp",
                        CA.day >= first_day,
                        CA.template_id.in_([t.id for t in templates]),
                    )
                    .group_by(CA.template_id)
                )
            ).all()
        )
    return [
        WhatsAppTemplateUse(
            t.name,
            t.whatsapp_language or t.locale,
            t.whatsapp_name,
            t.category,
            t.status,
            int(used.get(t.id, 0)),
        )
        for t in templates
    ]


async def open_whatsapp_windows(
    database: Database, now: datetime, window: timedelta
) -> list[tuple[int, str, datetime]]:
    """Customers whose last inbound WhatsApp message is within `window`: (id, name, when it closes), soonest first."""
    cc = CustomerCommunication
    last = func.max(cc.created_at)
    async with database.read_sessions() as session:
        rows = (
            await session.execute(
                select(cc.customer_id, Customer.name, last)
                .join(Customer, Customer.id == cc.customer_id)
                .where(
                    cc.channel == "whatsapp",
                    cc.direction == "inbound",
                    cc.created_at > now - window,
                    cc.created_at <= now,
                )
                .group_by(cc.customer_id, Customer.name)
                .order_by(last, cc.customer_id)
            )
        ).all()
    return [(customer_id, name, at + window) for customer_id, name, at in rows if customer_id is not None]
