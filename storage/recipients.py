"""Loads recipients and the facts their send decisions need, a batch at a time with a few set-based queries.

Per batch: one query for the customers (with preferences), one for current consents, one for recent
marketing counts, and one for the last inbound WhatsApp message; never one query per customer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, time, timedelta
from types import MappingProxyType
from typing import Any

from sqlalchemy import ColumnElement, Executable, Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.campaigns.model import Audience
from domain.consent.model import ChannelConsent, QuietHours
from domain.messages.model import Recipient
from domain.vocabulary import Channel, ConsentStatus, Direction, MessageCategory, MessageStatus
from storage.models import (
    BulkMessaging,
    CommunicationPreference,
    Customer,
    CustomerCommunication,
    CustomerConsent,
)
from storage.widget import widget_addresses

_NONE: Mapping[Channel, Any] = MappingProxyType({})

AudienceFilter = Callable[[Audience], list[ColumnElement[bool]]]

#: Where each channel's address lives on the customer; WhatsApp falls back to the phone number.
ADDRESS_COLUMNS: dict[Channel, Any] = {
    Channel.SMS: Customer.phone_e164,
    Channel.EMAIL: Customer.email,
    Channel.WHATSAPP: func.coalesce(Customer.whatsapp_id, Customer.phone_e164),
    Channel.TELEGRAM: Customer.telegram_chat_id,
}

#: Outbound messages that never left and never will, so they count towards no frequency cap.
_NEVER_SENT = (
    MessageStatus.SUPPRESSED.value,
    MessageStatus.CANCELLED.value,
    MessageStatus.DEAD.value,
)


def customer_query() -> Select[Any]:
    """The customer columns a recipient needs, with their standing preferences."""
    preference = CommunicationPreference
    query: Select[Any] = select(  # type: ignore[assignment]
        Customer.id,
        Customer.name,
        Customer.locale,
        Customer.timezone,
        Customer.phone_e164,
        Customer.email,
        Customer.whatsapp_id,
        Customer.telegram_chat_id,
        preference.preferred_channel,
        preference.quiet_hours_start,
        preference.quiet_hours_end,
        preference.marketing_max_per_week,
    ).outerjoin(preference, preference.customer_id == Customer.id)
    return query


def _among(column: Any, ids: Sequence[int]) -> ColumnElement[bool]:
    """``column`` is one of ``ids`` (sorted); a dense keyset page becomes a range, which is far cheaper to
    bind and plan than ten thousand IN parameters. Rows in the range but not in ``ids`` are ignored later.
    """
    first, last = ids[0], ids[-1]
    if last - first < 2 * len(ids):
        result: ColumnElement[bool] = column.between(first, last)
        return result
    in_list: ColumnElement[bool] = column.in_(ids)
    return in_list


class SqlRecipientDirectory:
    def __init__(self, session: AsyncSession, audience_filter: AudienceFilter | None = None) -> None:
        self._session = session
        self._audience_filter = audience_filter
        self._quiet_hours: dict[tuple[time, time], QuietHours] = {}

    async def page(
        self,
        audience: Audience,
        *,
        after_id: int,
        limit: int,
        channels: Sequence[Channel],
        now: datetime,
        exclude_campaign_id: int | None = None,
    ) -> list[Recipient]:
        if self._audience_filter is None:
            raise RuntimeError("this recipient directory was built without an audience filter")
        # Keyset pagination on the primary key: each page is an index range scan, however deep.
        query = (
            customer_query()
            .where(Customer.id > after_id, *self._audience_filter(audience))
            .order_by(Customer.id)
            .limit(limit)
        )
        rows = await self._rows(query)
        return await self._recipients(rows, channels, now, audience.campaign_type, exclude_campaign_id)

    async def by_ids(
        self,
        customer_ids: Sequence[int],
        *,
        channels: Sequence[Channel],
        now: datetime,
        campaign_type: str | None = None,
        exclude_campaign_id: int | None = None,
    ) -> list[Recipient]:
        if not customer_ids:
            return []
        query = customer_query().where(Customer.id.in_(sorted(set(customer_ids)))).order_by(Customer.id)
        rows = await self._rows(query)
        return await self._recipients(rows, channels, now, campaign_type, exclude_campaign_id)

    async def _recipients(
        self,
        rows: Sequence[Any],
        channels: Sequence[Channel],
        now: datetime,
        campaign_type: str | None,
        exclude_campaign_id: int | None,
    ) -> list[Recipient]:
        if not rows:
            return []
        ids = [row[0] for row in rows]
        consents = await self._consents(ids, channels)
        day, week, of_type = await self._marketing_counts(ids, now, campaign_type, exclude_campaign_id)
        inbound = await self._last_inbound_whatsapp(ids) if Channel.WHATSAPP in channels else {}
        # The website chat reaches a customer through their widget: only those who have opened one.
        widgets = await widget_addresses(self._session, ids) if Channel.CHAT in channels else {}
        recipients = []
        for (
            customer_id,
            name,
            locale,
            timezone,
            phone,
            email,
            whatsapp_id,
            telegram_id,
            preferred,
            quiet_start,
            quiet_end,
            marketing_cap,
        ) in rows:
            recipients.append(
                Recipient(
                    customer_id=customer_id,
                    name=name,
                    locale=locale,
                    timezone=timezone,
                    addresses=_addresses(channels, phone, email, whatsapp_id, telegram_id)
                    | ({Channel.CHAT: widgets[customer_id]} if customer_id in widgets else {}),
                    # Most customers have none of these, and share the one empty mapping.
                    consents=consents.get(customer_id, _NONE),
                    quiet_hours=self._hours(quiet_start, quiet_end),
                    preferred_channel=Channel(preferred) if preferred else None,
                    marketing_24h=day.get(customer_id, _NONE),
                    marketing_7d=week.get(customer_id, _NONE),
                    campaign_type_7d=of_type.get(customer_id, 0),
                    last_inbound_whatsapp_at=inbound.get(customer_id),
                    marketing_max_per_week=marketing_cap,
                )
            )
        return recipients

    async def _rows(self, query: Executable) -> list[Any]:
        """Plain Core rows on the session's connection, skipping the ORM's per-row result handling."""
        connection = await self._session.connection()
        return list((await connection.execute(query)).all())

    def _hours(self, start: time | None, end: time | None) -> QuietHours | None:
        if start is None or end is None:
            return None
        hours = self._quiet_hours.get((start, end))
        if hours is None:
            hours = self._quiet_hours[(start, end)] = QuietHours(start, end)
        return hours

    async def _consents(
        self, ids: Sequence[int], channels: Sequence[Channel]
    ) -> dict[int, dict[Channel, ChannelConsent]]:
        rows = await self._rows(
            select(
                CustomerConsent.customer_id,
                CustomerConsent.channel,
                CustomerConsent.status,
                CustomerConsent.source,
                CustomerConsent.changed_at,
            ).where(
                _among(CustomerConsent.customer_id, ids),
                CustomerConsent.channel.in_([c.value for c in channels]),
            )
        )
        consents: dict[int, dict[Channel, ChannelConsent]] = {}
        for customer_id, channel, status, source, changed_at in rows:
            consents.setdefault(customer_id, {})[Channel(channel)] = ChannelConsent(
                ConsentStatus(status), source, changed_at
            )
        return consents

    async def _marketing_counts(
        self, ids: Sequence[int], now: datetime, campaign_type: str | None, exclude_campaign_id: int | None
    ) -> tuple[dict[int, dict[Channel, int]], dict[int, dict[Channel, int]], dict[int, int]]:
        """Marketing messages per customer and channel in the last 24 h and 7 days, and of the campaign type."""
        message = CustomerCommunication
        of_type_ids = await self._campaigns_of_type(campaign_type, exclude_campaign_id)
        same_type = (
            func.sum(case((message.campaign_id.in_(of_type_ids), 1), else_=0)) if of_type_ids else func.sum(0)
        )
        query = (
            select(
                message.customer_id,
                message.channel,
                func.count(),
                func.sum(case((message.created_at >= now - timedelta(hours=24), 1), else_=0)),
                same_type,
            )
            .where(
                _among(message.customer_id, ids),
                message.created_at >= now - timedelta(days=7),
                message.direction == Direction.OUTBOUND.value,
                message.category == MessageCategory.MARKETING.value,
                message.status.not_in(_NEVER_SENT),
            )
            .group_by(message.customer_id, message.channel)
        )
        if exclude_campaign_id is not None:
            # The campaign being planned must not cap itself when a batch is planned again.
            query = query.where(
                (message.campaign_id.is_(None)) | (message.campaign_id != exclude_campaign_id)
            )
        day: dict[int, dict[Channel, int]] = {}
        week: dict[int, dict[Channel, int]] = {}
        of_type: dict[int, int] = {}
        for customer_id, channel, in_week, in_day, typed in await self._rows(query):
            week.setdefault(customer_id, {})[Channel(channel)] = int(in_week)
            day.setdefault(customer_id, {})[Channel(channel)] = int(in_day or 0)
            of_type[customer_id] = of_type.get(customer_id, 0) + int(typed or 0)
        return day, week, of_type

    async def _campaigns_of_type(
        self, campaign_type: str | None, exclude_campaign_id: int | None
    ) -> list[int]:
        if campaign_type is None:
            return []
        query = select(BulkMessaging.id).where(
            BulkMessaging.audience["campaign_type"].as_string() == campaign_type
        )
        if exclude_campaign_id is not None:
            query = query.where(BulkMessaging.id != exclude_campaign_id)
        return list(await self._session.scalars(query))

    async def _last_inbound_whatsapp(self, ids: Sequence[int]) -> Mapping[int, datetime]:
        message = CustomerCommunication
        rows = await self._rows(
            select(message.customer_id, func.max(message.created_at))
            .where(
                _among(message.customer_id, ids),
                message.channel == Channel.WHATSAPP.value,
                message.direction == Direction.INBOUND.value,
            )
            .group_by(message.customer_id)
        )
        return {int(customer_id): _aware(at) for customer_id, at in rows if at is not None and customer_id}


def _addresses(
    channels: Sequence[Channel],
    phone: str | None,
    email: str | None,
    whatsapp_id: str | None,
    telegram_id: int | None,
) -> dict[Channel, str]:
    addresses: dict[Channel, str] = {}
    for channel in channels:
        if channel is Channel.SMS:
            if phone:
                addresses[channel] = phone
        elif channel is Channel.WHATSAPP:
            if whatsapp_id or phone:
                addresses[channel] = whatsapp_id or phone or ""
        elif channel is Channel.EMAIL:
            if email:
                addresses[channel] = email
        elif channel is Channel.TELEGRAM and telegram_id is not None:
            addresses[channel] = str(telegram_id)
    return addresses


def _aware(moment: datetime | str) -> datetime:
    """max() over a SQLite timestamp comes back as text, without the column type that would parse it."""
    from datetime import UTC

    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
