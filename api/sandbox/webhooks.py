"""Fire-and-forget webhook delivery from the sandbox, with retries on 5xx like real providers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from api.sandbox.state import SandboxState, now_utc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WebhookDelivery:
    """One signed HTTP POST the sandbox owes Switchboard."""

    provider: str
    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    description: str = ""
    #: What the provider does with the receiver's answer (Twilio sends the SMS a TwiML answer holds).
    on_answer: Callable[[str, bytes], None] | None = None


class WebhookDispatcher:
    """A bounded queue drained by a few workers, so a slow receiver never blocks a send.

    Past SandboxConfig.webhook_queue_size a delivery is dropped: counted (webhook_failures, webhooks_dropped)
    and logged as a warning, never silently. (A real provider queues and retries for days instead.)
    """

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        config = state.config
        self.queue: asyncio.Queue[WebhookDelivery] = asyncio.Queue(maxsize=config.webhook_queue_size)
        self._workers: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._pending = 0

    async def start(self) -> None:
        self.state.loop = asyncio.get_running_loop()
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.state.config.webhook_timeout_seconds)
        )
        self._workers = [
            asyncio.create_task(self._work(), name=f"sandbox-webhook-{n}")
            for n in range(self.state.config.webhook_workers)
        ]

    async def stop(self) -> None:
        for task in [*self._workers, *self._background]:
            task.cancel()
        await asyncio.gather(*self._workers, *self._background, return_exceptions=True)
        self._workers.clear()
        self._background.clear()
        if self._session is not None:
            await self._session.close()

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run a status progression in the background, keeping a reference so it is not collected."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def submit(self, delivery: WebhookDelivery) -> bool:
        try:
            self.queue.put_nowait(delivery)
        except asyncio.QueueFull:
            self.state.count("webhook_failures", delivery.provider)
            self.state.count("webhooks_dropped", delivery.provider)
            self._log(delivery, status=None, attempts=0, outcome="dropped: queue full")
            log.warning(
                "sandbox webhook dropped, the queue is full: %s", delivery.description or delivery.url
            )
            return False
        self._pending += 1
        return True

    def submit_threadsafe(self, delivery: WebhookDelivery) -> None:
        """Submit from the SMTP server's thread onto the app's loop."""
        if self.state.loop is not None:
            self.state.loop.call_soon_threadsafe(self.submit, delivery)

    async def settle(self, limit_seconds: float = 10.0) -> None:
        """Wait until every pending status progression and webhook has finished (for tests)."""
        async with asyncio.timeout(limit_seconds):
            # Polling is fine here: two counters, test-only, and an Event would need both kept in step.
            while self._background or self._pending:  # noqa: ASYNC110
                await asyncio.sleep(0.02)

    async def _work(self) -> None:
        while True:
            delivery = await self.queue.get()
            try:
                await self._deliver(delivery)
            except Exception:  # a worker must survive anything one delivery throws
                log.exception("sandbox webhook delivery crashed")
            finally:
                self._pending -= 1
                self.queue.task_done()

    async def _deliver(self, delivery: WebhookDelivery) -> None:
        assert self._session is not None
        attempts = self.state.config.webhook_max_attempts
        status: int | None = None
        for attempt in range(1, attempts + 1):
            try:
                async with self._session.post(
                    delivery.url, data=delivery.body, headers=delivery.headers
                ) as answer:
                    status = answer.status
                    content = await answer.read()
                    if status < 300 and delivery.on_answer is not None:
                        delivery.on_answer(answer.content_type, content)
            except (aiohttp.ClientError, TimeoutError):
                status = None
            if status is not None and status < 500:
                ok = status < 400
                self.state.count("webhooks_sent" if ok else "webhook_failures", delivery.provider)
                self._log(delivery, status=status, attempts=attempt, outcome="delivered" if ok else "refused")
                return
            if attempt < attempts:
                await asyncio.sleep(min(2.0, 0.1 * 2**attempt))
        self.state.count("webhook_failures", delivery.provider)
        self._log(delivery, status=status, attempts=attempts, outcome="gave up")

    def _log(self, delivery: WebhookDelivery, *, status: int | None, attempts: int, outcome: str) -> None:
        self.state.webhook_log.append(
            {
                "provider": delivery.provider,
                "url": delivery.url,
                "description": delivery.description,
                "status": status,
                "attempts": attempts,
                "outcome": outcome,
                "at": now_utc().isoformat(),
            }
        )
