"""The delivery worker's use-case: claim due messages, send them through their drivers at a steady pace, record outcomes."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from domain.delivery.outbox import Accepted, ClaimedMessage, Dead, Held, Outcome, Rescheduled, RetryPolicy
from domain.delivery.pacing import TokenBucket
from domain.delivery.ports import (
    DeliveryUnitOfWork,
    MessageDriver,
    OutboundMessage,
    ProviderError,
    WhatsAppTemplateCall,
)
from domain.vocabulary import Channel

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class DispatchStats:
    claimed: int = 0
    accepted: int = 0
    rescheduled: int = 0
    dead: int = 0
    released: int = 0
    held: int = 0


@dataclass
class Dispatcher:
    """One delivery worker. Many may run, in one process or several; the outbox claim keeps them apart."""

    open_uow: Callable[[], DeliveryUnitOfWork]
    drivers: Mapping[Channel, MessageDriver]
    pacing: Mapping[Channel, TokenBucket]
    worker_id: str
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    concurrency: int = 32
    batch_size: int = 200
    clock: Callable[[], datetime] = utc_now
    unsubscribe_url: Callable[[ClaimedMessage], str | None] = lambda _message: None
    rng: random.Random = field(default_factory=random.Random)
    stats: DispatchStats = field(default_factory=DispatchStats)
    _recording: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    #: Told of every provider call: (channel, provider, outcome, seconds); feeds the operational metrics.
    observe: Callable[[str, str, str, float], None] = lambda _c, _p, _o, _s: None
    #: Told after every pass: None when it went through, else what went wrong; feeds the job heartbeat.
    report_pass: Callable[[BaseException | None], None] = lambda _failure: None
    #: How often a batch in flight looks whether one of its campaigns was paused or cancelled.
    hold_check_seconds: float = 1.0
    _on_hold: frozenset[int] = field(default=frozenset(), init=False, repr=False)

    async def run(self, stop: asyncio.Event, idle_sleep: float = 0.25) -> None:
        """Delivers until `stop` is set; sleeps briefly whenever the outbox has nothing due."""
        last_release = 0.0
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            try:
                if loop.time() - last_release > 5:
                    await self.release_expired_leases()
                    last_release = loop.time()
                sent = await self.deliver_batch()
            except Exception as error:
                # A database hiccup must not kill the worker; the lease protects the batch.
                log.exception("delivery batch failed; retrying shortly")
                self.report_pass(error)
                sent = 0
            else:
                self.report_pass(None)
            if sent == 0:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=idle_sleep)
                except TimeoutError:
                    pass
        await self.finish()

    async def release_expired_leases(self) -> int:
        async with self.open_uow() as uow:
            released = await uow.outbox.release_expired_leases(self.clock(), self.policy.in_doubt_grace)
            await uow.commit()
        self.stats.released += released
        return released

    async def deliver_batch(self) -> int:
        """Claims one batch and sends it; returns how many were claimed.

        Its outcomes are recorded in one transaction while the next batch is already being sent, so a
        paced provider never sits idle during the bookkeeping. At most one recording is outstanding, and
        `finish()` waits for it. Until recorded, messages stay "sending" under their lease, so a crash in
        between leaves them in doubt (retried after the grace period), never lost or sent twice.
        """
        async with self.open_uow() as uow:
            claimed = await uow.outbox.claim_due(
                self.worker_id,
                self.clock(),
                self._batch_limit(),
                self.policy.lease,
                [c.value for c in self.drivers],
            )
            await uow.commit()
        if not claimed:
            await self.finish()
            return 0
        self.stats.claimed += len(claimed)
        gate = asyncio.Semaphore(self.concurrency)
        campaigns = {m.campaign_id for m in claimed if m.campaign_id is not None}
        watcher = asyncio.create_task(self._watch_holds(campaigns)) if campaigns else None
        try:
            outcomes = await asyncio.gather(*(self._send_one(message, gate) for message in claimed))
        finally:
            if watcher is not None:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
            self._on_hold = frozenset()
        await self.finish()
        self._recording = asyncio.create_task(self._record(outcomes), name="record outcomes")
        return len(claimed)

    async def _watch_holds(self, campaign_ids: set[int]) -> None:
        """While a batch is sent (a paced one takes seconds), notice a pause or cancel within a second."""
        while True:
            await asyncio.sleep(self.hold_check_seconds)
            try:
                async with self.open_uow() as uow:
                    self._on_hold = frozenset(await uow.outbox.campaigns_on_hold(campaign_ids))
            except Exception:  # the next look tries again; the batch goes on meanwhile
                log.warning("could not check for paused campaigns", exc_info=True)

    def _held(self, message: ClaimedMessage) -> bool:
        return message.campaign_id is not None and message.campaign_id in self._on_hold

    async def finish(self) -> None:
        """Waits until every outcome sent so far is recorded."""
        recording, self._recording = self._recording, None
        if recording is not None:
            await recording

    async def _record(self, outcomes: list[Outcome]) -> None:
        try:
            async with self.open_uow() as uow:
                await uow.outbox.record_outcomes(outcomes)
                await uow.commit()
        except Exception as error:
            # The lease returns these messages to the outbox as in doubt; nothing is lost.
            log.exception("recording %d outcomes failed", len(outcomes))
            self.report_pass(error)
            return
        for outcome in outcomes:
            if isinstance(outcome, Accepted):
                self.stats.accepted += 1
            elif isinstance(outcome, Rescheduled):
                self.stats.rescheduled += 1
            elif isinstance(outcome, Held):
                self.stats.held += 1
            else:
                self.stats.dead += 1

    def _batch_limit(self) -> int:
        # A batch must finish well inside its lease even at the slowest configured pace.
        slowest = min((bucket.rate for bucket in self.pacing.values()), default=1000.0)
        return max(1, min(self.batch_size, int(slowest * self.policy.lease.total_seconds() / 4)))

    async def _send_one(self, message: ClaimedMessage, gate: asyncio.Semaphore) -> Outcome:
        channel = Channel(message.channel)
        driver = self.drivers[channel]
        bucket = self.pacing.get(channel)
        async with gate:
            if self._held(message):
                return Held(message.id, self.clock())
            if bucket is not None:
                await bucket.acquire()
            if self._held(message):  # paused while this one waited for its turn
                return Held(message.id, self.clock())
            started = time.perf_counter()
            try:
                acceptance = await driver.send(self._outbound(message))
            except ProviderError as error:
                outcome = self._after_error(message, error, bucket)
                self.observe(
                    message.channel,
                    driver.provider,
                    type(outcome).__name__.lower(),
                    time.perf_counter() - started,
                )
                return outcome
            except Exception as error:  # a driver bug: do not lose the message, do not risk a blind re-send
                log.exception("driver %s crashed on message %s", driver.provider, message.id)
                return self._after_error(
                    message, ProviderError(f"driver error: {error!r}", maybe_accepted=True), bucket
                )
            self.observe(message.channel, driver.provider, "accepted", time.perf_counter() - started)
        return Accepted(
            message.id,
            acceptance.provider_message_id,
            acceptance.status,
            self.clock(),
            acceptance.cost_micros,
        )

    def _after_error(
        self, message: ClaimedMessage, error: ProviderError, bucket: TokenBucket | None
    ) -> Outcome:
        now = self.clock()
        reason = f"{error.code + ': ' if error.code else ''}{error}"
        if error.permanent:
            return Dead(message.id, now, reason, error.code or None)
        if error.retry_after is not None and bucket is not None:
            bucket.hold_off(error.retry_after)
        if self.policy.exhausted(message.attempts):
            return Dead(
                message.id, now, f"gave up after {message.attempts} attempts: {reason}", error.code or None
            )
        if error.maybe_accepted:
            return Rescheduled(
                message.id, now + self.policy.in_doubt_grace, f"in doubt: {reason}", error.code or None
            )
        at = self.policy.next_attempt(now, message.attempts, error.retry_after, self.rng)
        return Rescheduled(message.id, at, reason, error.code or None)

    def _outbound(self, message: ClaimedMessage) -> OutboundMessage:
        payload = message.payload or {}
        template = payload.get("whatsapp_template")
        whatsapp_template = None
        if isinstance(template, dict):
            whatsapp_template = WhatsAppTemplateCall(
                name=str(template["name"]),
                language=str(template["language"]),
                components=tuple(template.get("components") or ()),
            )
        html = payload.get("html_body")
        return OutboundMessage(
            message_id=message.id,
            idempotency_key=message.idempotency_key,
            channel=Channel(message.channel),
            to=message.to_address,
            body=message.body,
            subject=message.subject,
            html_body=html if isinstance(html, str) else None,
            whatsapp_template=whatsapp_template,
            unsubscribe_url=self.unsubscribe_url(message),
        )
