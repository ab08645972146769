"""The consent ledger use-case: record what a customer said about hearing from us, and its port."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from domain.consent.model import ChannelConsent
from domain.transaction import Transaction
from domain.vocabulary import Channel, ConsentStatus


@dataclass(frozen=True)
class ConsentChange:
    """One statement of consent: appended to the ledger, never overwritten."""

    customer_id: int
    channel: Channel
    status: ConsentStatus
    source: str  # e.g. "sms_keyword", "email_unsubscribe", "telegram_command"
    detail: str | None
    at: datetime


class CustomerErased(Exception):
    """The customer was erased at their request: their consent stays as the erasure closed it."""


@dataclass(frozen=True)
class ConsentRecorded:
    record_id: int
    status: ConsentStatus
    previous: ConsentStatus | None

    @property
    def changed(self) -> bool:
        return self.previous != self.status


class ConsentLedger(Protocol):
    async def record(self, change: ConsentChange) -> ConsentRecorded:
        """Append `change` to the ledger and make it the current consent, in the caller's transaction.
        Raises CustomerErased for an opt-in of an erased customer, checked under the erasure's own lock."""

    async def current(self, customer_id: int, channel: Channel) -> ChannelConsent: ...


class ConsentUnitOfWork(Transaction, Protocol):
    @property
    def consent(self) -> ConsentLedger: ...


async def record_consent(
    uow: ConsentUnitOfWork,
    customer_id: int,
    channel: Channel,
    status: ConsentStatus,
    source: str,
    detail: str | None,
    at: datetime,
    *,
    skip_if_unchanged: bool = False,
) -> ConsentRecorded | None:
    """Records one consent statement atomically; None when `skip_if_unchanged` and nothing would change.

    `skip_if_unchanged` suits repeatable clicks (a mailbox provider may POST one-click unsubscribe
    more than once); keywords a customer sends are each recorded, since each is a statement.
    """
    async with uow:
        if skip_if_unchanged:
            now = await uow.consent.current(customer_id, channel)
            if now.status == status:
                return None
        recorded = await uow.consent.record(ConsentChange(customer_id, channel, status, source, detail, at))
        await uow.commit()
    return recorded
