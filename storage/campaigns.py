"""Campaign storage: the repository, the audience query, the template catalogue and the bulk outbox insert."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Self

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from domain.campaigns.model import (
    Audience,
    Campaign,
    CampaignDraft,
    CampaignProgress,
    FallbackCandidate,
    FallbacksWaiting,
)
from domain.delivery.outbox import OutboxEntry
from domain.messages.model import StoredTemplate
from domain.messages.pricing import DEFAULT_PRICE_BOOK
from domain.messages.words import failure_words
from domain.templates.model import MessageTemplate as TemplateVariant
from domain.vocabulary import (
    AppointmentStatus,
    CampaignStatus,
    Channel,
    ConsentStatus,
    MessageCategory,
    MessageStatus,
)
from storage.analytics.facts import COUNTED_OPT_OUT, OPT_OUT_WINDOW, SecondsBetween
from storage.models import (
    Appointment,
    BulkMessaging,
    ConsentRecord,
    Customer,
    CustomerCommunication,
    CustomerConsent,
    CustomerTag,
    Location,
    MessageTemplate,
)
from storage.models.base import utcnow
from storage.outbox_insert import insert_outbox_entries
from storage.recipients import ADDRESS_COLUMNS, SqlRecipientDirectory
from storage.unit_of_work import SqlUnitOfWork

#: Audience fields that are a plain "column IN (values)" test; the only way a field name reaches SQL.
AUDIENCE_COLUMNS: dict[str, Any] = {
    "segments": Customer.segment,
    "countries": Customer.country,
    "locales": Customer.locale,
}

#: Messages that never left or never will, which therefore do not count towards caps or progress.
NOT_SENT = (MessageStatus.SUPPRESSED.value, MessageStatus.CANCELLED.value)
#: Messages that went wrong on the way: their progress says why.
NOT_DELIVERED = (MessageStatus.FAILED.value, MessageStatus.UNDELIVERED.value, MessageStatus.DEAD.value)
#: Statuses after which, past the fallback delay, the next channel is tried.
FALLBACK_STATUSES = (
    MessageStatus.QUEUED.value,
    MessageStatus.SENT.value,
    MessageStatus.FAILED.value,
    MessageStatus.UNDELIVERED.value,
    MessageStatus.DEAD.value,
)
#: Channels whose "sent" says nothing about delivery (email: a relay reports a bounce, and a delivery only when
#: it offers DSN), so only a failure falls back on them: a fallback never double-sends what may have arrived.
FALLBACK_ON_FAILURE_ONLY = (Channel.EMAIL.value,)


def audience_conditions(audience: Audience) -> list[ColumnElement[bool]]:
    """The WHERE conditions over Customer for ``audience``; every value is a bound parameter."""
    conditions: list[ColumnElement[bool]] = [
        column.in_(getattr(audience, name))
        for name, column in AUDIENCE_COLUMNS.items()
        if getattr(audience, name)
    ]
    if audience.tags_any:
        conditions.append(_has_tag(CustomerTag.tag.in_(audience.tags_any)))
    conditions += [_has_tag(CustomerTag.tag == tag) for tag in audience.tags_all]
    if audience.exclude_tags:
        conditions.append(~_has_tag(CustomerTag.tag.in_(audience.exclude_tags)))
    if audience.created_before is not None:
        conditions.append(Customer.created_at < audience.created_before)
    if audience.created_after is not None:
        # Customers since then joined since then: a customer list's patients came before their import.
        conditions.append(Customer.created_at >= audience.created_after)
        conditions.append(Customer.imported_at.is_(None))
    if audience.has_channel:
        conditions.append(or_(*(ADDRESS_COLUMNS[channel].is_not(None) for channel in audience.has_channel)))
    if audience.opted_in_on:
        conditions.append(
            exists().where(
                CustomerConsent.customer_id == Customer.id,
                CustomerConsent.channel.in_([c.value for c in audience.opted_in_on]),
                CustomerConsent.status == ConsentStatus.OPTED_IN.value,
            )
        )
    if audience.locations:
        conditions.append(
            Customer.home_location_id.in_(select(Location.id).where(Location.code.in_(audience.locations)))
        )
    if audience.visited_since is not None:
        conditions.append(_visited_since(audience.visited_since))
    if audience.not_visited_since is not None:
        conditions.append(~_visited_since(audience.not_visited_since))
    return conditions


def _visited_since(moment: datetime) -> ColumnElement[bool]:
    """The customer had a completed appointment at or after `moment`."""
    return exists().where(
        Appointment.customer_id == Customer.id,
        Appointment.status == AppointmentStatus.COMPLETED.value,
        Appointment.scheduled_at >= moment,
    )


def _has_tag(tag_test: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists().where(CustomerTag.customer_id == Customer.id, tag_test)


class SqlOutboxWriter:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_many(self, entries: Sequence[OutboxEntry], now: datetime) -> Counter[str]:
        return await insert_outbox_entries(self._session, entries, now)


class SqlTemplateCatalogue:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def variants(self, name: str) -> list[StoredTemplate]:
        rows = await self._session.scalars(
            select(MessageTemplate)
            .where(MessageTemplate.name == name, MessageTemplate.status == "active")
            .order_by(MessageTemplate.id)
        )
        return [stored_template(row) for row in rows]


def stored_template(row: MessageTemplate) -> StoredTemplate:
    return StoredTemplate(
        row.id,
        TemplateVariant(
            name=row.name,
            channel=Channel(row.channel),
            locale=row.locale,
            body=row.body,
            category=MessageCategory(row.category),
            variables=tuple(row.variables or ()),
            subject=row.subject,
            html_body=row.html_body,
            whatsapp_name=row.whatsapp_name,
            whatsapp_language=row.whatsapp_language,
            whatsapp_params=tuple(row.whatsapp_params or ()),
        ),
    )


class SqlCampaignRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, draft: CampaignDraft, audience: Audience, now: datetime) -> Campaign:
        row = BulkMessaging(
            slug=draft.slug,
            name=draft.name,
            status=CampaignStatus.DRAFT.value,
            category=draft.category.value,
            template_name=draft.template_name,
            channel_order=[Channel(c).value for c in draft.channel_order],
            fallback_after_minutes=draft.fallback_after_minutes,
            audience=audience.to_json(),
            variables=dict(draft.variables),
            respect_quiet_hours=draft.respect_quiet_hours,
            scheduled_at=draft.scheduled_at,
            created_by=draft.created_by,
            created_at=now,
            planning_cursor=0,
            planning_done=False,
            planned_count=0,
            excluded_count=0,
        )
        self._session.add(row)
        await self._session.flush()
        return _campaign(row)

    async def get(self, campaign_id: int, *, for_update: bool = False) -> Campaign | None:
        query = select(BulkMessaging).where(BulkMessaging.id == campaign_id)
        if for_update:
            # Serialises planners of one campaign on PostgreSQL; SQLite's BEGIN IMMEDIATE already does.
            query = query.with_for_update()
        row = await self._session.scalar(query.execution_options(populate_existing=True))
        return None if row is None else _campaign(row)

    async def running(self) -> list[Campaign]:
        query = select(BulkMessaging).where(BulkMessaging.status == CampaignStatus.RUNNING.value)
        return [_campaign(row) for row in await self._session.scalars(query.order_by(BulkMessaging.id))]

    async def set_status(
        self, campaign_id: int, status: CampaignStatus, *, launched_at: datetime | None = None
    ) -> None:
        values: dict[str, Any] = {"status": status.value}
        if launched_at is not None:
            values["launched_at"] = launched_at
        if status in (CampaignStatus.CANCELLED, CampaignStatus.COMPLETED):
            values["completed_at"] = utcnow()
        await self._session.execute(
            update(BulkMessaging).where(BulkMessaging.id == campaign_id).values(**values),
            execution_options={"synchronize_session": False},
        )

    async def record_planning(
        self, campaign_id: int, *, cursor: int, planned: int, excluded: int, done: bool
    ) -> None:
        await self._session.execute(
            update(BulkMessaging)
            .where(BulkMessaging.id == campaign_id)
            .values(
                planning_cursor=cursor,
                planned_count=BulkMessaging.planned_count + planned,
                excluded_count=BulkMessaging.excluded_count + excluded,
                planning_done=done,
            ),
            execution_options={"synchronize_session": False},
        )

    async def cancel_planned(self, campaign_id: int, reason: str) -> int:
        result = await self._session.execute(
            update(CustomerCommunication)
            .where(
                CustomerCommunication.campaign_id == campaign_id,
                CustomerCommunication.status == MessageStatus.PLANNED.value,
            )
            .values(status=MessageStatus.CANCELLED.value, status_reason=reason),
            execution_options={"synchronize_session": False},
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def progress(self, campaign_id: int) -> CampaignProgress:
        status = await self._session.scalar(
            select(BulkMessaging.status).where(BulkMessaging.id == campaign_id)
        )
        rows = await self._session.execute(
            select(CustomerCommunication.status, CustomerCommunication.status_reason, func.count())
            .where(CustomerCommunication.campaign_id == campaign_id)
            .group_by(CustomerCommunication.status, CustomerCommunication.status_reason)
        )
        by_status: Counter[str] = Counter()
        suppressed: Counter[str] = Counter()
        failed: Counter[str] = Counter()
        for message_status, reason, count in rows:
            by_status[message_status] += count
            if message_status == MessageStatus.SUPPRESSED.value:
                suppressed[reason or "unknown"] += count
            if message_status in NOT_DELIVERED:
                failed[failure_words(reason) if reason else "no reason given"] += count
        # Recipients who opted out of the channel within OPT_OUT_WINDOW after their message of this campaign
        # went out, before another campaign reached them there (its unsubscribes: each opt-out is credited to
        # one campaign at most, so the campaigns' figures add up). Those already opted out before are among
        # the suppressed, not here.
        message, record = CustomerCommunication, ConsentRecord
        later = aliased(CustomerCommunication)
        opted_out = int(
            await self._session.scalar(
                select(func.count(func.distinct(message.customer_id))).where(
                    message.campaign_id == campaign_id,
                    message.sent_at.is_not(None),
                    exists().where(
                        record.customer_id == message.customer_id,
                        record.channel == message.channel,
                        COUNTED_OPT_OUT,  # not an erasure, nor a customer list's "no"
                        record.recorded_at >= message.sent_at,
                        SecondsBetween(message.sent_at, record.recorded_at) < OPT_OUT_WINDOW.total_seconds(),
                        ~exists()
                        .where(
                            later.customer_id == message.customer_id,
                            later.channel == message.channel,
                            later.campaign_id.is_not(None),
                            later.campaign_id != campaign_id,
                            later.sent_at > message.sent_at,
                            later.sent_at <= record.recorded_at,
                        )
                        .correlate_except(later),  # tied to this campaign's message, not any message
                    ),
                )
            )
            or 0
        )
        # Only what was handed to a provider costs anything (a planned message carries its estimate).
        costs = await self._session.execute(
            select(CustomerCommunication.currency, func.sum(CustomerCommunication.cost_micros))
            .where(
                CustomerCommunication.campaign_id == campaign_id,
                CustomerCommunication.sent_at.is_not(None),
                CustomerCommunication.cost_micros.is_not(None),
            )
            .group_by(CustomerCommunication.currency)
        )
        next_send_at = await self._session.scalar(
            select(func.min(CustomerCommunication.next_attempt_at)).where(
                CustomerCommunication.campaign_id == campaign_id,
                CustomerCommunication.status == MessageStatus.PLANNED.value,
            )
        )
        cost: Counter[str] = Counter()
        for currency, micros in costs:
            cost[currency or DEFAULT_PRICE_BOOK.currency] += int(micros or 0)
        return CampaignProgress(
            campaign_id,
            CampaignStatus(status or CampaignStatus.DRAFT.value),
            dict(by_status),
            dict(suppressed),
            opted_out,
            dict(failed),
            dict(cost),
            next_send_at,
        )

    async def fallback_candidates(
        self, campaign: Campaign, undelivered_since: datetime, limit: int
    ) -> list[FallbackCandidate]:
        message = CustomerCommunication
        rows = await self._session.execute(
            select(message.customer_id, message.channel)
            .where(*_waiting_for_fallback(campaign), _last_seen() <= undelivered_since)
            .order_by(message.id)
            .limit(limit)
        )
        return [FallbackCandidate(int(customer_id or 0), Channel(channel)) for customer_id, channel in rows]

    async def fallbacks_waiting(self, campaign: Campaign) -> FallbacksWaiting:
        message = CustomerCommunication
        failed = message.status.in_(NOT_DELIVERED)
        found = (
            await self._session.execute(
                select(
                    func.count().filter(failed),
                    func.count().filter(~failed),
                    func.min(_last_seen()).filter(failed),
                ).where(*_waiting_for_fallback(campaign))
            )
        ).one()
        since = found[2]
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)  # SQLite hands back naive UTC
        return FallbacksWaiting(int(found[0] or 0), int(found[1] or 0), since)


def _last_seen() -> Any:
    """When a campaign message was last heard of: sent, failed, or (never sent) due or made."""
    message = CustomerCommunication
    return func.coalesce(message.sent_at, message.failed_at, message.next_attempt_at, message.created_at)


def _waiting_for_fallback(campaign: Campaign) -> list[Any]:
    """A recipient's latest message of the campaign, not delivered, on a channel with another after it."""
    message = CustomerCommunication
    later = aliased(CustomerCommunication)
    return [
        message.campaign_id == campaign.id,
        message.status.in_(FALLBACK_STATUSES),
        or_(message.channel.not_in(FALLBACK_ON_FAILURE_ONLY), message.status.in_(NOT_DELIVERED)),
        message.channel.in_([c.value for c in campaign.channel_order[:-1]]),
        message.customer_id.is_not(None),
        ~exists().where(
            and_(
                later.campaign_id == campaign.id,
                later.customer_id == message.customer_id,
                later.id > message.id,
            )
        ),
    ]


def _campaign(row: BulkMessaging) -> Campaign:
    return Campaign(
        id=row.id,
        slug=row.slug,
        name=row.name,
        status=CampaignStatus(row.status),
        category=MessageCategory(row.category),
        template_name=row.template_name,
        channel_order=tuple(Channel(c) for c in row.channel_order),
        audience=Audience.from_json(row.audience or {}),
        variables=dict(row.variables or {}),
        fallback_after_minutes=row.fallback_after_minutes,
        respect_quiet_hours=row.respect_quiet_hours,
        scheduled_at=row.scheduled_at,
        planning_cursor=row.planning_cursor,
        planning_done=row.planning_done,
        planned_count=row.planned_count,
        excluded_count=row.excluded_count,
        launched_at=row.launched_at,
    )


class SqlCampaignUnitOfWork(SqlUnitOfWork):
    """The unit of work campaign use-cases take: the campaign, template, recipient and outbox repositories."""

    campaigns: SqlCampaignRepository
    templates: SqlTemplateCatalogue
    recipients: SqlRecipientDirectory
    outbox_writer: SqlOutboxWriter

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.campaigns = SqlCampaignRepository(self.session)
        self.templates = SqlTemplateCatalogue(self.session)
        self.recipients = SqlRecipientDirectory(self.session, audience_conditions)
        self.outbox_writer = SqlOutboxWriter(self.session)
        return self
