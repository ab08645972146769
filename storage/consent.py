"""The consent ledger repository: append a ledger row and move the current consent, in one transaction."""

from __future__ import annotations

from collections import Counter
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.consent.ledger import ConsentChange, ConsentRecorded, CustomerErased
from domain.consent.model import ChannelConsent
from domain.consent.rules import OPTED_OUT
from domain.consent.sources import source_words
from domain.conversations.model import REPLY_WINDOW
from domain.vocabulary import PROVIDER_FOR_CHANNEL, Channel, ConsentStatus
from storage.conversations import SqlConversations
from storage.message_feed import bump_feed
from storage.models import ConsentRecord, Customer, CustomerConsent
from storage.outbox import SqlOutbox
from storage.sql import insert_for, table_of

RECORDS = table_of(ConsentRecord)
CURRENT = table_of(CustomerConsent)
CUSTOMERS = table_of(Customer)


class SqlConsentLedger:
    """consent_records is append-only; customer_consents follows it. Nothing here commits."""

    def __init__(self, session: AsyncSession, *, business_tz: str = "UTC") -> None:
        self.session = session
        self._business_tz = business_tz

    async def current(self, customer_id: int, channel: Channel) -> ChannelConsent:
        row = (
            await self.session.execute(
                select(CURRENT.c.status, CURRENT.c.source, CURRENT.c.changed_at).where(
                    CURRENT.c.customer_id == customer_id, CURRENT.c.channel == channel.value
                )
            )
        ).first()
        if row is None:
            return ChannelConsent()
        return ChannelConsent(ConsentStatus(row.status), row.source, row.changed_at)

    async def record(self, change: ConsentChange) -> ConsentRecorded:
        if change.status is ConsentStatus.OPTED_IN:
            # Read under a share lock: an erasure holds the customer row for update until it commits, so an
            # opt-in racing it waits and then sees it (an opt-out changes nothing the erasure left open).
            erased_at = await self.session.scalar(
                select(CUSTOMERS.c.erased_at)
                .where(CUSTOMERS.c.id == change.customer_id)
                .with_for_update(read=True)
            )
            if erased_at is not None:
                raise CustomerErased(f"customer {change.customer_id} was erased at their request")
        previous = await self.session.scalar(
            select(CURRENT.c.status)
            .where(CURRENT.c.customer_id == change.customer_id, CURRENT.c.channel == change.channel.value)
            .with_for_update()
        )
        record_id: int = (
            await self.session.execute(
                RECORDS.insert()
                .values(
                    customer_id=change.customer_id,
                    channel=change.channel.value,
                    status=change.status.value,
                    source=change.source[:32],
                    detail=change.detail[:255] if change.detail else None,
                    recorded_at=change.at,
                )
                .returning(RECORDS.c.id)
            )
        ).scalar_one()
        upsert = insert_for(self.session, CURRENT).values(
            customer_id=change.customer_id,
            channel=change.channel.value,
            status=change.status.value,
            source=change.source[:32],
            record_id=record_id,
            changed_at=change.at,
        )
        await self.session.execute(
            upsert.on_conflict_do_update(
                index_elements=["customer_id", "channel"],
                set_={
                    name: upsert.excluded[name] for name in ("status", "source", "record_id", "changed_at")
                },
            )
        )
        recorded = ConsentRecorded(record_id, change.status, ConsentStatus(previous) if previous else None)
        if change.status is ConsentStatus.OPTED_OUT:
            await SqlOutbox(self.session).withdraw_planned(
                change.customer_id,
                change.channel.value,
                OPTED_OUT,
                f"Withdrawn: the customer opted out of {change.channel.value} ({source_words(change.source)}) "
                "before it was sent.",
                change.at,
            )
            if recorded.changed:
                await self._count_opt_out(change)
        return recorded

    async def _count_opt_out(self, change: ConsentChange) -> None:
        """Counts the opt-out under the campaign/template of our latest message on the channel, if any."""
        conversations = SqlConversations(self.session, business_tz=self._business_tz)
        latest = await conversations.latest_outbound(
            change.customer_id, change.channel, change.at - REPLY_WINDOW
        )
        if latest is not None:
            await conversations.count_in_feed(latest, "opted_out", change.at)
            return
        provider = PROVIDER_FOR_CHANNEL.get(change.channel)
        key = (change.channel.value, provider.value if provider else "internal", 0, 0, "opted_out")
        day = change.at.astimezone(ZoneInfo(self._business_tz)).date()
        await bump_feed(self.session, day, Counter({key: 1}))


__all__ = ["SqlConsentLedger"]
