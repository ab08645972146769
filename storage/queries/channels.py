"""Channels as the per-channel pages show them: daily figures, failures, SMS segments, WhatsApp templates and windows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import case, func, select

from storage.database import Database
from storage.models import (
    CommunicationAnalytics,
    CommunicationChannel,
    Customer,
    CustomerCommunication,
    MessageTemplate,
)

#: The daily figures communication_analytics keeps per channel.
FIGURES = ("sent", "delivered", "read", "failed", "replied", "opted_out")
FAILED_STATUSES = ("failed", "undelivered", "dead")
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
                .where(cc.channel == channel, cc.status.in_(FAILED_STATUSES))
                .order_by(func.coalesce(cc.failed_at, cc.created_at).desc(), cc.id.desc())
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


async def sms_segments(database: Database, since: datetime) -> list[EncodingFigures]:
    """Outbound SMS handed to Twilio since `since`, by encoding: messages, billed segments, multi-part ones."""
    cc = CustomerCommunication
    async with database.read_sessions() as session:
        rows = (
            await session.execute(
                select(
                    cc.encoding,
                    func.count(),
                    func.coalesce(func.sum(cc.segments), 0),
                    func.count(case((cc.segments > 1, 1))),
                )
                .where(
                    cc.channel == "sms",
                    cc.direction == "outbound",
                    cc.created_at >= since,
                    cc.sent_at.is_not(None),
                    cc.segments.is_not(None),
                )
                .group_by(cc.encoding)
                .order_by(cc.encoding)
            )
        ).all()
    return [
        EncodingFigures(encoding or "unknown", int(n), int(segments or 0), int(long))
        for encoding, n, segments, long in rows
    ]


@dataclass(frozen=True)
class WhatsAppTemplateUse:
    name: str
    locale: str
    whatsapp_name: str | None
    category: str
    status: str
    sent: int


async def whatsapp_templates(database: Database, since: datetime) -> list[WhatsAppTemplateUse]:
    """Templates registered with Meta under a name (the only kind WhatsApp takes outside the 24-hour window)."""
    cc = CustomerCommunication
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
                    select(cc.template_id, func.count())
                    .where(
                        cc.channel == "whatsapp",
                        cc.direction == "outbound",
                        cc.created_at >= since,
                        cc.sent_at.is_not(None),
                        cc.template_id.in_([t.id for t in templates]),
                    )
                    .group_by(cc.template_id)
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
