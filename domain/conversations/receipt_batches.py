"""Group commit for delivery receipts: concurrent status webhooks are stored and applied together.

Providers send several status webhooks per message we send, so receipts are the webhook hot path.
Each webhook still gets its answer only after the transaction holding it has committed (a 2xx still
means "stored and applied"), but many webhooks share one transaction and a handful of statements.
A batch that cannot be applied as a whole (a malformed body, a receipt for an unknown message, an
inbound message among the receipts) falls back to one transaction per webhook, which keeps failures
in the inbox for replay exactly as the single path does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from domain.clock import utc_now
from domain.conversations.model import UnknownMessage, WebhookDelivery, WebhookOutcome
from domain.conversations.ports import InboundUnitOfWork, WebhookReader
from domain.conversations.use_cases import InboundPolicy, receive_webhook

log = logging.getLogger(__name__)

MAX_BATCH = 256


class NotOnlyReceipts(ValueError):
    """A webhook in a receipt batch carries more than receipts; it takes the single path instead."""


async def apply_receipt_batch(
    open_uow: Callable[[], InboundUnitOfWork],
    deliveries: Sequence[WebhookDelivery],
    reader: WebhookReader,
    now: datetime,
) -> list[WebhookOutcome]:
    """Stores and applies receipt-only webhooks in one transaction; raises if any is not that."""
    async with open_uow() as uow:
        ids = await uow.inbox.add_applied_many(deliveries, now)
        fresh = [(delivery, inbox_id) for delivery, inbox_id in zip(deliveries, ids, strict=True) if inbox_id]
        contents = [reader.read(delivery) for delivery, _ in fresh]
        if any(c.messages or c.sender_user_id is not None for c in contents):
            raise NotOnlyReceipts("an inbound message is among the receipts")
        results = await uow.outbox.apply_receipts([r for c in contents for r in c.receipts])
        unknown = [r for r in results if r.message_id is None]
        if unknown:
            raise UnknownMessage(f"{len(unknown)} receipts name messages we have no record of")
        await uow.commit()
    applied = iter(results)
    by_delivery = {
        id(delivery): sum(next(applied).applied for _ in c.receipts)
        for (delivery, _), c in zip(fresh, contents, strict=True)
    }
    return [
        WebhookOutcome(receipts_applied=by_delivery[id(d)]) if i else WebhookOutcome(duplicate=True)
        for d, i in zip(deliveries, ids, strict=True)
    ]


class ReceiptBatcher:
    """Queues receipt webhooks and applies whatever has queued while the previous batch was committing.

    No artificial wait: a lone webhook is applied at once; under load, batches grow by themselves.
    """

    def __init__(
        self,
        open_uow: Callable[[], InboundUnitOfWork],
        reader: WebhookReader,
        policy: InboundPolicy,
        *,
        max_batch: int = MAX_BATCH,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._open_uow, self._reader, self._policy = open_uow, reader, policy
        self._max_batch, self._clock = max_batch, clock
        self._queue: list[tuple[WebhookDelivery, asyncio.Future[WebhookOutcome]]] = []
        self._worker: asyncio.Task[None] | None = None
        self.batches = 0

    async def submit(self, delivery: WebhookDelivery) -> WebhookOutcome:
        future: asyncio.Future[WebhookOutcome] = asyncio.get_running_loop().create_future()
        self._queue.append((delivery, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain(), name="receipt batches")
        return await future

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            try:
                outcomes = await self._apply(batch)
            except BaseException as error:  # the database is gone: answer these callers with the error
                for _, future in batch:
                    if not future.done():
                        future.set_exception(
                            error if isinstance(error, Exception) else RuntimeError(str(error))
                        )
                raise
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)

    async def _apply(
        self, batch: list[tuple[WebhookDelivery, asyncio.Future[WebhookOutcome]]]
    ) -> list[WebhookOutcome]:
        deliveries = [delivery for delivery, _ in batch]
        try:
            outcomes = await apply_receipt_batch(self._open_uow, deliveries, self._reader, self._clock())
            self.batches += 1
            return outcomes
        except Exception as error:  # one bad webhook must not hold up or lose the others
            log.info("receipt batch of %d fell back to single webhooks: %s", len(batch), error)
        return [
            await receive_webhook(self._open_uow, delivery, self._reader, self._policy, self._clock)
            for delivery in deliveries
        ]
