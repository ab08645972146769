"""The delivery worker's use-case: claim due messages, send them through their drivers at a steady pace, record outcomes."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from domain.clock import utc_now
from domain.delivery.outbox import Accepted, ClaimedMessage, Dead, Held, Outcome, Rescheduled, RetryPolicy
from domain.delivery.pacing import TokenBucket
from domain.delivery.ports import (
    Choices,
    DeliveryUnitOfWork,
    MessageDriver,
    OutboundFile,
    OutboundMessage,
    ProviderError,
    WhatsAppTemplateCall,
)
from domain.vocabulary import Channel

log = logging.getLogger(__name__)

#: A Message-ID an email reply may thread under: one clean id, nothing a customer could bend into a header
#: the mail library refuses (and so fail every reply in the conversation).
_MESSAGE_ID = re.compile(r"<[^<>\s@]{1,400}@[^<>\s@]{1,400}>")


#: Why a claimed message went back unsent: its turn came too late to be sure the claim was still ours.
CLAIM_RAN_OUT = "its claim could have run out while it waited its turn; back to the outbox unsent"

#: Why a claimed message went back unsent when its worker was told to stop.
STOPPING = "its worker was stopping before its turn came; back to the outbox unsent"

#: Why a claimed message went back unsent when its hand-over could not be noted first.
HAND_OVER_NOT_NOTED = "the start of its send could not be noted; back to the outbox unsent"

#: How long a channel's provider may have asked us to wait before its messages are left unclaimed.
HELD_OFF_SECONDS = 1.0

#: How long an outcome whose record keeps failing is tried again before it is left to its lease.
UNRECORDED_GIVE_UP_SECONDS = 600.0

#: Why an in-doubt send on a channel whose receipts cannot confirm it is not sent again.
IN_DOUBT_NOT_REPEATED = (
    "in doubt: the send may have arrived, and this provider cannot tell us whether it did; "
    "not sent again so the customer never gets it twice"
)


def not_repeated(reason: str, provider: str) -> str:
    return f"in doubt ({reason}); {provider} cannot tell us whether it arrived, so it is not sent again"


@dataclass
class DispatchStats:
    claimed: int = 0
    accepted: int = 0
    rescheduled: int = 0
    dead: int = 0
    released: int = 0
    held: int = 0
    #: Outcomes whose record failed once and were recorded again later (as records, never as sends).
    recorded_late: int = 0


@dataclass
class Dispatcher:
    """One delivery worker. Many may run, in one process or several; the outbox claim keeps them apart.

    A pipeline, not batches: up to `concurrency` provider calls per channel are in flight and about as
    many messages wait claimed behind them; as each call ends its outcome is queued for recording and its
    place goes to the next claim. One slow or hanging call holds one place until the driver's timeout,
    never the rest, and a channel whose provider asked us to wait holds none of another channel's places.
    Outcomes are recorded in small groups a few times a second; a group that fails is recorded outcome by
    outcome, and an outcome whose record still fails is kept and recorded again — a message handed to a
    provider is never sent again because its bookkeeping failed.

    Where receipts cannot confirm a send (email, Telegram), the start of each provider call is noted
    first (in small groups, with the claim renewed): a worker that dies leaves its never-started claims to
    go back to the outbox, and only the ones it may have sent end in doubt.
    """

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
    #: Told of every provider call: (channel, provider, outcome, seconds); feeds the operational metrics.
    observe: Callable[[str, str, str, float], None] = lambda _c, _p, _o, _s: None
    #: Told after every pass: None when it went through, else what went wrong; feeds the job heartbeat.
    report_pass: Callable[[BaseException | None], None] = lambda _failure: None
    #: Whether a database error is worth retrying as it is (a deadlock, a busy database).
    transient: Callable[[BaseException], bool] = lambda _error: False
    #: A kept conversation file's bytes by (chat id, sha256), for channels that carry the file itself.
    kept_file: Callable[[int, str], Awaitable[bytes | None]] | None = None
    #: The channels whose message carries a staff file itself (email's MIME part, Telegram's upload), not
    #: only its link.
    file_content_channels: frozenset[Channel] = frozenset({Channel.EMAIL, Channel.TELEGRAM})
    #: How often the sends in flight look whether one of their campaigns was paused or cancelled.
    hold_check_seconds: float = 1.0
    #: How long outcomes gather before they are recorded together.
    record_every_seconds: float = 0.05
    _on_hold: frozenset[int] = field(default=frozenset(), init=False, repr=False)
    _in_flight: dict[int, ClaimedMessage] = field(default_factory=dict, init=False, repr=False)
    #: Until when each message claimed by this worker is surely still ours (its lease, as last renewed).
    _ours_until: dict[int, datetime] = field(default_factory=dict, init=False, repr=False)
    #: When each message claimed by this worker and not yet recorded was created: passed with its id, so the
    #: outbox reads only its month (forgotten once its outcome is recorded or given up on).
    _created: dict[int, datetime] = field(default_factory=dict, init=False, repr=False)
    _outcomes: list[Outcome] = field(default_factory=list, init=False, repr=False)
    _unrecorded: list[Outcome] = field(default_factory=list, init=False, repr=False)
    _gates: dict[Channel, asyncio.Semaphore] = field(default_factory=dict, init=False, repr=False)
    #: Set while the worker stops: messages not yet handed to a provider go back unsent.
    _stop: asyncio.Event | None = field(default=None, init=False, repr=False)
    #: Set to end the idle sleep early: sends ended, the worker stops, or `nudge()` (something was queued).
    _room_made: asyncio.Event | None = field(default=None, init=False, repr=False)
    _hand_overs: list[tuple[int, asyncio.Future[bool]]] = field(default_factory=list, init=False, repr=False)
    _noting: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    #: When each outcome whose record failed first failed (given up on after UNRECORDED_GIVE_UP_SECONDS).
    _unrecorded_since: dict[int, float] = field(default_factory=dict, init=False, repr=False)
    _last_unrecorded_try: float = field(default=0.0, init=False, repr=False)

    def __post_init__(self) -> None:
        slowest_call = max((driver.timeout_seconds for driver in self.drivers.values()), default=0.0)
        if self.policy.lease.total_seconds() * 2 / 3 - self.hold_check_seconds < slowest_call + 0.5:
            raise ValueError(
                f"the claim lease ({self.policy.lease.total_seconds():g} s) is too short for the slowest provider "
                f"call ({slowest_call:g} s): two thirds of it, less a second, must outlast a call by half a "
                "second, or a send could outlive its claim"
            )

    @property
    def waiting_room(self) -> int:
        """Messages claimed ahead of the provider calls: enough to keep every call busy for about a second
        at the slowest pace (a claim is a transaction: fewer, larger ones when sends are fast), no more."""
        slowest = min((bucket.rate for bucket in self.pacing.values()), default=1000.0)
        return max(self.concurrency, min(self.batch_size, int(slowest)))

    def longest_wait_seconds(self) -> float:
        """The longest a claimed message can wait for its turn at the slowest provider's pace."""
        slowest = min((bucket.rate for bucket in self.pacing.values()), default=1000.0)
        return (self.concurrency + self.waiting_room) / slowest

    async def run(self, stop: asyncio.Event, idle_sleep: float = 0.25) -> None:
        """Delivers until `stop` is set; then lets the calls in flight finish and records every outcome."""
        loop = asyncio.get_running_loop()
        last_release = -1e9
        tasks: set[asyncio.Task[None]] = set()
        self._stop = stop
        # The watcher (holds, claim renewals) and the recorder go on until the last send is over.
        drained = asyncio.Event()
        watcher = asyncio.create_task(self._watch_holds(drained), name="campaign holds")
        recorder = asyncio.create_task(self._record_continuously(drained), name="record outcomes")
        # Set when enough sends have ended to make a claim worth its transaction (or the worker stops).
        room_made = self._room_made = asyncio.Event()
        stop_waiter = asyncio.create_task(self._relay(stop, room_made))
        chunk = max(1, self.concurrency // 2)
        capacity = self.concurrency + self.waiting_room
        try:
            while not stop.is_set():
                room_made.clear()
                claimed = 0
                try:
                    if loop.time() - last_release > 5:
                        await self.release_expired_leases()
                        last_release = loop.time()
                    room = capacity - len(tasks)
                    # Claim in useful chunks (each claim is a transaction), or at once when idle; not while
                    # outcomes wait to be recorded (the database is refusing writes: send no more).
                    if (room >= chunk or not tasks) and not self._unrecorded:
                        for message in await self._claim(room):
                            tasks.add(
                                self._start(message, tasks, lambda: capacity - len(tasks) >= chunk, room_made)
                            )
                            claimed += 1
                except Exception as error:
                    # A database hiccup must not kill the worker; the leases protect what was claimed.
                    log.exception("delivery pass failed; retrying shortly")
                    self.report_pass(error)
                else:
                    self.report_pass(None)
                if claimed and capacity - len(tasks) >= chunk:
                    await asyncio.sleep(0)  # more is due: let the new calls start, then claim again
                    continue
                try:
                    await asyncio.wait_for(room_made.wait(), timeout=idle_sleep)
                except TimeoutError:
                    pass
        finally:
            if tasks:
                # Those handed to providers are seen through; those still waiting their turn go back unsent.
                await asyncio.gather(*tasks, return_exceptions=True)
            drained.set()
            for task in (stop_waiter, watcher):
                task.cancel()
            await asyncio.gather(stop_waiter, watcher, recorder, return_exceptions=True)
            await self.finish()
            self._stop = None

    def nudge(self) -> None:
        """Something was just queued: look for it now rather than after the idle sleep."""
        if self._room_made is not None:
            self._room_made.set()

    @staticmethod
    async def _relay(stop: asyncio.Event, wake: asyncio.Event) -> None:
        await stop.wait()
        wake.set()

    def _start(
        self,
        message: ClaimedMessage,
        tasks: set[asyncio.Task[None]],
        room_for_a_claim: Callable[[], bool],
        room_made: asyncio.Event,
    ) -> asyncio.Task[None]:
        self._in_flight[message.id] = message

        async def send() -> None:
            to_record = False
            try:
                outcome = await self._send_one(message, self._gate_for(Channel(message.channel)))
                # Appended only now: the recorder swaps the list while sends are under way.
                self._outcomes.append(outcome)
                to_record = True
            finally:
                self._in_flight.pop(message.id, None)
                self._ours_until.pop(message.id, None)
                if not to_record:
                    self._created.pop(message.id, None)

        def ended(task: asyncio.Task[None]) -> None:
            tasks.discard(task)
            if room_for_a_claim():
                room_made.set()

        task = asyncio.create_task(send())
        task.add_done_callback(ended)
        return task

    def _gate_for(self, channel: Channel) -> asyncio.Semaphore:
        """Each channel has its own places for calls in flight: a slow provider never holds another's."""
        gate = self._gates.get(channel)
        if gate is None:
            gate = self._gates[channel] = asyncio.Semaphore(self.concurrency)
        return gate

    def _claimable_channels(self) -> list[str]:
        """The channels worth claiming for: not those whose provider asked us to wait (their claims would
        only sit in the waiting room, keeping other channels' messages out)."""
        return [
            channel.value
            for channel in self.drivers
            if (bucket := self.pacing.get(channel)) is None or bucket.wait_seconds() <= HELD_OFF_SECONDS
        ]

    async def _claim(self, limit: int) -> list[ClaimedMessage]:
        channels = self._claimable_channels()
        if not channels:
            return []
        now = self.clock()
        async with self.open_uow() as uow:
            claimed = await uow.outbox.claim_due(self.worker_id, now, limit, self.policy.lease, channels)
            await uow.commit()
        self.stats.claimed += len(claimed)
        until = now + self.policy.lease  # exactly what the claim wrote
        for message in claimed:
            self._ours_until[message.id] = until
            if message.created_at is not None:
                self._created[message.id] = message.created_at
        return claimed

    async def release_expired_leases(self) -> int:
        confirmable = [c.value for c, driver in self.drivers.items() if driver.receipts_name_our_id]
        async with self.open_uow() as uow:
            released = await uow.outbox.release_expired_leases(
                self.clock(), self.policy.in_doubt_grace, confirmable, IN_DOUBT_NOT_REPEATED
            )
            await uow.commit()
        self.stats.released += released
        return released

    async def deliver_batch(self) -> int:
        """Claims up to one batch, sends it and records every outcome; returns how many were claimed.

        The one-shot form of `run` (tests and benchmarks drive it directly)."""
        self._on_hold = frozenset()
        claimed = await self._claim(self._batch_limit())
        if not claimed:
            await self.finish()
            return 0
        gates = {channel: asyncio.Semaphore(self.concurrency) for channel in self.drivers}
        for message in claimed:
            self._in_flight[message.id] = message
        watcher = asyncio.create_task(self._watch_holds(asyncio.Event()))
        outcomes: list[Outcome] = []
        try:
            outcomes = await asyncio.gather(
                *(self._send_one(message, gates[Channel(message.channel)]) for message in claimed)
            )
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            for message in claimed:
                self._in_flight.pop(message.id, None)
                self._ours_until.pop(message.id, None)
                if not outcomes:
                    self._created.pop(message.id, None)
        self._outcomes.extend(outcomes)
        await self.finish()
        return len(claimed)

    async def finish(self) -> None:
        """Records every outcome gathered so far (and retries those whose record failed before)."""
        for _ in range(5):
            await self._record_gathered(now=True)
            if not self._unrecorded:
                return
            await asyncio.sleep(0.2)
        log.error(
            "%d outcomes could not be recorded; their messages stay claimed until the lease runs out",
            len(self._unrecorded),
        )

    async def _record_continuously(self, until: asyncio.Event) -> None:
        while not until.is_set():
            try:
                await self._record_gathered()
            except Exception:  # recording never kills the worker; the next round tries again
                log.exception("recording outcomes failed")
            try:
                await asyncio.wait_for(until.wait(), timeout=self.record_every_seconds)
            except TimeoutError:
                pass

    async def _record_gathered(self, *, now: bool = False) -> None:
        outcomes, self._outcomes = self._outcomes, []
        clock = time.monotonic()
        # Records that failed are tried again once a second (or at once when finishing), not every round.
        if self._unrecorded and (now or clock - self._last_unrecorded_try >= 1.0):
            self._last_unrecorded_try = clock
            retry, self._unrecorded = self._unrecorded, []
            await self._keep_claims(retry)
            self.stats.recorded_late += await self._record_one_by_one(retry)
            self._give_up_on_old_records(clock)
        if outcomes and not await self._record_together(outcomes):
            await self._record_one_by_one(outcomes)

    def _give_up_on_old_records(self, clock: float) -> None:
        """An outcome whose record has failed for ten minutes is left to its lease: when the claim runs
        out, the outbox treats the message as in doubt (never sent twice), and the log names it."""
        still = {outcome.message_id for outcome in self._unrecorded}
        self._unrecorded_since = {i: t for i, t in self._unrecorded_since.items() if i in still}
        stale = [
            o
            for o in self._unrecorded
            if clock - self._unrecorded_since[o.message_id] > UNRECORDED_GIVE_UP_SECONDS
        ]
        if stale:
            log.error(
                "giving up recording the outcomes of messages %s after %g s; their claims run out and they are "
                "treated as in doubt",
                [o.message_id for o in stale],
                UNRECORDED_GIVE_UP_SECONDS,
            )
            self._unrecorded = [o for o in self._unrecorded if o not in stale]
            for outcome in stale:
                self._unrecorded_since.pop(outcome.message_id, None)
                self._created.pop(outcome.message_id, None)

    async def _record_together(self, outcomes: list[Outcome]) -> bool:
        """One transaction for the group; a deadlock or busy database is tried again as a whole."""
        for attempt in range(3):
            try:
                await self._write(outcomes)
                return True
            except Exception as error:
                if not self.transient(error) or attempt == 2:
                    log.warning(
                        "recording %d outcomes together failed (%s); one by one", len(outcomes), error
                    )
                    self.report_pass(error)
                    return False
                await asyncio.sleep(0.05 * (attempt + 1) * (1 + self.rng.random()))
        return False

    async def _record_one_by_one(self, outcomes: list[Outcome]) -> int:
        """Each outcome in its own transaction, so one bad row cannot undo the others; failures are kept."""
        recorded = 0
        for outcome in outcomes:
            try:
                await self._write([outcome])
                recorded += 1
            except Exception as error:
                log.error("recording the outcome of message %s failed: %s", outcome.message_id, error)
                self._unrecorded.append(outcome)
                self._unrecorded_since.setdefault(outcome.message_id, time.monotonic())
        return recorded

    async def _keep_claims(self, outcomes: list[Outcome]) -> None:
        """Outcomes still to record keep their messages claimed by us, so no worker takes them as in doubt."""
        try:
            async with self.open_uow() as uow:
                await uow.outbox.extend_claims(
                    self.worker_id,
                    [o.message_id for o in outcomes],
                    self.clock() + self.policy.lease,
                    self._created,
                )
                await uow.commit()
        except Exception as error:  # the record below is tried anyway
            log.warning("could not extend the claims of %d unrecorded outcomes: %s", len(outcomes), error)

    async def _write(self, outcomes: list[Outcome]) -> None:
        async with self.open_uow() as uow:
            await uow.outbox.record_outcomes(outcomes, self.worker_id, self._created)
            await uow.commit()
        for outcome in outcomes:
            self._created.pop(outcome.message_id, None)
            if isinstance(outcome, Accepted):
                self.stats.accepted += 1
            elif isinstance(outcome, Rescheduled):
                self.stats.rescheduled += 1
            elif isinstance(outcome, Held):
                self.stats.held += 1
            else:
                self.stats.dead += 1

    async def _watch_holds(self, until: asyncio.Event) -> None:
        """While sends are under way (a paced batch takes seconds, a provider's Retry-After longer), notice a
        pause or cancel within a second, and keep the claims of everything still waiting alive."""
        while not until.is_set():
            await asyncio.sleep(self.hold_check_seconds)
            waiting = dict(self._in_flight)
            campaigns = {m.campaign_id for m in waiting.values() if m.campaign_id is not None}
            # Renewed once a third of a lease has gone by, so a claim always has two thirds left.
            soonest = min((self._ours_until[i] for i in waiting if i in self._ours_until), default=None)
            renew = soonest is not None and soonest - self.clock() < self.policy.lease * 2 / 3
            if not campaigns and not renew:
                self._on_hold = frozenset()
                continue
            try:
                async with self.open_uow() as uow:
                    if campaigns:
                        self._on_hold = frozenset(await uow.outbox.campaigns_on_hold(campaigns))
                    if renew:
                        renewed_until = self.clock() + self.policy.lease
                        # Only the claims still ours are renewed; one another worker took over keeps the
                        # old end, so its send is held back rather than made twice.
                        kept = await uow.outbox.extend_claims(
                            self.worker_id, sorted(waiting), renewed_until, self._created
                        )
                        await uow.commit()
                        for message_id in kept:
                            if message_id in self._ours_until:
                                self._ours_until[message_id] = renewed_until
            except Exception:  # the next look tries again; the sends go on meanwhile
                log.warning("could not check for paused campaigns or renew claims", exc_info=True)

    def _stopping(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    async def _turn(self, bucket: TokenBucket) -> bool:
        """Waits for the channel's pace to allow a send; False if the worker is told to stop meanwhile (a
        provider's Retry-After can be long, and a stopping worker does not start new sends)."""
        if self._stop is None or bucket.wait_seconds() <= HELD_OFF_SECONDS:
            await bucket.acquire()
            return not self._stopping()
        turn = asyncio.ensure_future(bucket.acquire())
        stopped = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({turn, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (turn, stopped):
                waiter.cancel()
            await asyncio.gather(turn, stopped, return_exceptions=True)
        return not turn.cancelled() and turn.exception() is None and not self._stopping()

    async def _note_hand_over(self, message_id: int) -> bool:
        """Notes that this message's provider call starts now (with its claim renewed), in a group with the
        others starting meanwhile; False if that could not be written or the claim is no longer ours."""
        noted: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._hand_overs.append((message_id, noted))
        if self._noting is None or self._noting.done():
            self._noting = asyncio.create_task(self._write_hand_overs())
        return await noted

    async def _write_hand_overs(self) -> None:
        await asyncio.sleep(0)  # let the sends starting in this same moment join the group
        while self._hand_overs:
            group, self._hand_overs = self._hand_overs, []
            now = self.clock()
            until = now + self.policy.lease
            try:
                async with self.open_uow() as uow:
                    kept = set(
                        await uow.outbox.note_hand_over(
                            self.worker_id, [i for i, _ in group], now, until, self._created
                        )
                    )
                    await uow.commit()
            except Exception as error:
                log.warning("could not note the start of %d sends: %s", len(group), error)
                self.report_pass(error)
                kept = set()
            for message_id, noted in group:
                if message_id in kept:
                    self._ours_until[message_id] = until
                if not noted.done():
                    noted.set_result(message_id in kept)

    def _claim_may_lapse(self, message: ClaimedMessage, driver: MessageDriver) -> bool:
        """Whether the claim could run out before this send is over (a renewal failed): then another worker
        may take the message as in doubt, so this one must not send it."""
        until = self._ours_until.get(message.id)
        return until is not None and self.clock() + timedelta(seconds=driver.timeout_seconds + 0.5) > until

    def _held(self, message: ClaimedMessage) -> bool:
        return message.campaign_id is not None and message.campaign_id in self._on_hold

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
            if self._stopping():
                return Held(message.id, self.clock(), STOPPING)
            if bucket is not None and not await self._turn(bucket):
                return Held(message.id, self.clock(), STOPPING)
            if self._held(message):  # paused while this one waited for its turn
                return Held(message.id, self.clock())
            if self._claim_may_lapse(message, driver):
                return Held(message.id, self.clock(), CLAIM_RAN_OUT)
            try:
                outbound = self._outbound(message)
            except Exception as error:  # a payload we wrote wrongly: nothing was sent, nothing will be
                log.exception("message %s could not be prepared for sending", message.id)
                return Dead(message.id, self.clock(), f"could not be prepared for sending: {error!r}"[:255])
            outbound = await self._with_file_content(outbound)
            if not driver.receipts_name_our_id and not await self._note_hand_over(message.id):
                return Held(message.id, self.clock(), HAND_OVER_NOT_NOTED)
            started = time.perf_counter()
            try:
                # The driver times its own call; this is the backstop for a driver that does not.
                async with asyncio.timeout(driver.timeout_seconds + 5):
                    acceptance = await driver.send(outbound)
            except TimeoutError:
                outcome = self._after_error(
                    message,
                    ProviderError(f"no answer within {driver.timeout_seconds:g} s", maybe_accepted=True),
                    bucket,
                    driver,
                )
                self.observe(message.channel, driver.provider, "timeout", time.perf_counter() - started)
                return outcome
            except ProviderError as error:
                outcome = self._after_error(message, error, bucket, driver)
                self.observe(
                    message.channel,
                    driver.provider,
                    type(outcome).__name__.lower(),
                    time.perf_counter() - started,
                )
                return outcome
            except Exception as error:  # a driver bug: do not lose the message, do not risk a blind re-send
                log.exception("driver %s crashed on message %s", driver.provider, message.id)
                self.observe(message.channel, driver.provider, "driver_error", time.perf_counter() - started)
                return self._after_error(
                    message, ProviderError(f"driver error: {error!r}", maybe_accepted=True), bucket, driver
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
        self, message: ClaimedMessage, error: ProviderError, bucket: TokenBucket | None, driver: MessageDriver
    ) -> Outcome:
        now = self.clock()
        reason = f"{error.code + ': ' if error.code else ''}{error}"
        if error.permanent:
            return Dead(message.id, now, reason, error.code or None)
        if error.maybe_accepted and not driver.receipts_name_our_id:
            return Dead(message.id, now, not_repeated(reason, driver.provider), error.code or None)
        if error.retry_after is not None and error.channel_wide and bucket is not None:
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

    async def _with_file_content(self, outbound: OutboundMessage) -> OutboundMessage:
        """The message with its kept file's bytes where the channel carries the file itself; when they
        cannot be read it goes with the link in its words alone (said in the log), never not at all."""
        file = outbound.attachment
        if (
            file is None
            or file.chat_id is None
            or not file.sha256
            or self.kept_file is None
            or outbound.channel not in self.file_content_channels
        ):
            return outbound
        try:
            content = await self.kept_file(file.chat_id, file.sha256)
        except Exception as error:  # a read that fails must not hold the message back
            log.warning("message %s goes with the file's link only: %r", outbound.message_id, error)
            return outbound
        if content is None:
            log.warning(
                "message %s goes with the file's link only: the file is no longer kept", outbound.message_id
            )
            return outbound
        return replace(outbound, attachment=replace(file, content=content))

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
        answered = payload.get("in_reply_to")
        # An email reply threads under the customer's email in their mail program (RFC 5322 3.6.4).
        threading = (
            {"In-Reply-To": answered, "References": answered}
            if isinstance(answered, str)
            and _MESSAGE_ID.fullmatch(answered)
            and message.channel == Channel.EMAIL.value
            else {}
        )
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
            attachment=OutboundFile.from_payload(payload.get("attachment")),
            choices=Choices.from_payload(payload.get("choices")),
            headers=threading,
        )
