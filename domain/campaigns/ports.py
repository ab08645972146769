"""The storage a campaign use-case needs, as Protocols that storage/ implements and tests fake."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from domain.audit import AuditTrail
from domain.campaigns.model import (
    Audience,
    Campaign,
    CampaignDraft,
    CampaignProgress,
    FallbackCandidate,
    FallbacksWaiting,
)
from domain.delivery.outbox import OutboxEntry
from domain.messages.model import Recipient, StoredTemplate
from domain.transaction import Transaction
from domain.vocabulary import CampaignStatus, Channel


class CampaignRepository(Protocol):
    async def add(self, draft: CampaignDraft, audience: Audience, now: datetime) -> Campaign: ...

    async def get(self, campaign_id: int, *, for_update: bool = False) -> Campaign | None: ...

    async def running(self) -> list[Campaign]:
        """Every campaign whose status is running, oldest first."""

    async def set_status(
        self, campaign_id: int, status: CampaignStatus, *, launched_at: datetime | None = None
    ) -> None: ...

    async def record_planning(
        self, campaign_id: int, *, cursor: int, planned: int, excluded: int, done: bool
    ) -> None:
        """Advance the cursor and add to the counts; called in the transaction that inserted the rows."""

    async def cancel_planned(self, campaign_id: int, reason: str) -> int: ...

    async def progress(self, campaign_id: int) -> CampaignProgress: ...

    async def fallback_candidates(
        self, campaign: Campaign, undelivered_since: datetime, limit: int
    ) -> list[FallbackCandidate]: ...

    async def fallbacks_waiting(self, campaign: Campaign) -> FallbacksWaiting:
        """Who may still go on to their next channel: those whose message failed (and since when the first
        did), and those whose message has no delivery confirmed yet."""


class TemplateCatalogue(Protocol):
    async def variants(self, name: str) -> list[StoredTemplate]:
        """Every active variant (channel, locale) of the named template."""


class RecipientDirectory(Protocol):
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
        """The next ``limit`` audience members by id after ``after_id``, with their facts loaded in bulk."""

    async def by_ids(
        self,
        customer_ids: Sequence[int],
        *,
        channels: Sequence[Channel],
        now: datetime,
        campaign_type: str | None = None,
        exclude_campaign_id: int | None = None,
    ) -> list[Recipient]: ...


class OutboxWriter(Protocol):
    async def add_many(self, entries: Sequence[OutboxEntry], now: datetime) -> Counter[str]:
        """Insert entries, skipping any whose idempotency key exists; the statuses actually inserted."""


class PlanningUnitOfWork(Transaction, Protocol):
    """What every use-case that plans messages into the outbox needs."""

    @property
    def templates(self) -> TemplateCatalogue: ...

    @property
    def recipients(self) -> RecipientDirectory: ...

    @property
    def outbox_writer(self) -> OutboxWriter: ...


class CampaignUnitOfWork(PlanningUnitOfWork, Protocol):
    @property
    def campaigns(self) -> CampaignRepository: ...

    @property
    def audit(self) -> AuditTrail: ...
