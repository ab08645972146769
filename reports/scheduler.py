"""Scheduled report delivery: ticks on APScheduler, claims each (schedule, due time, destination) in the database.

APScheduler 3 cannot share a job store between processes, so it only drives the ticking here; the
claim row in `report_deliveries` (unique per schedule, due time and destination) decides which of
several processes delivers. A claim is a lease: a process that dies holding one leaves it to expire,
and the next tick anywhere takes the run over as a new attempt, so no run is lost. The one case a run
can reach its destination twice is a worker dying after the destination accepted it and before the
outcome was written; the row then says `sending`, and the takeover says so in the delivery log
(email carries one Message-ID per run, so a mailbox can drop the second copy).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from domain.audit import AuditEntry
from domain.clock import utc_now
from domain.dates_said import day_month_year
from reports.destinations import DeliveryFailed, RenderedReport, ReportDestination
from reports.heartbeats import in_words
from reports.periods import zone
from reports.saved import ReportDefinitionError
from reports.schedules import MissedRunPolicy, plan_runs
from storage.database import Database
from storage.schedules import HELD, ClaimedRun, DueSchedule, OpenRun, SqlScheduleStore
from storage.unit_of_work import SqlUnitOfWork

log = logging.getLogger(__name__)

ReportRenderer = Callable[[DueSchedule, datetime, bool], Awaitable[RenderedReport]]
OwnerNotifier = Callable[[DueSchedule, str], Awaitable[None]]

#: How long a claim holds. Longer than any destination's time limit (checked at start), so a live holder
#: always records its outcome first; a dead holder's runs are taken over this long after its last claim.
DEFAULT_LEASE = timedelta(minutes=5)
#: Open runs (expired claims, due retries) one process takes per tick, one at a time.
TAKEOVERS_PER_TICK = 20

#: How a run reads when the saved report itself cannot be made for this schedule (a changed report no longer
#: split by what the schedule narrows it to): failed at once, and its owner told to change the report or the
#: schedule rather than to check the destination.
REPORT_CANNOT_BE_MADE = "the report cannot be made for this schedule"


class LeaseTooShort(ValueError):
    """The claim lease would run out before a destination gives up: another process could send a second copy."""


def check_lease(lease: timedelta, destinations: Mapping[str, ReportDestination]) -> None:
    """Refuses a lease that does not outlast every destination's time limit, in one sentence saying which."""
    slow = [
        f"{kind} allows {in_words(destination.timeout_seconds)}"
        for kind, destination in sorted(destinations.items())
        if destination.timeout_seconds >= lease.total_seconds()
    ]
    if slow:
        raise LeaseTooShort(
            f"the report scheduler's claim lease ({in_words(lease.total_seconds())}) must be longer than "
            f"the time each destination may take to deliver, but {', '.join(slow)}; a worker could still be "
            "sending when another takes the run over and sends it again"
        )


def delivery_key(schedule: DueSchedule, due_at: datetime, sent_again: int = 0) -> str:
    """The same for every attempt at one run (schedule, due time, destination): an email's Message-ID. A run
    staff sent again is another email (`-again1`, …), so a late bounce of the first does not fail it."""
    where = hashlib.sha256(schedule.destination.encode()).hexdigest()[:8]
    again = f"-again{sent_again}" if sent_again else ""
    return f"report-{schedule.id}-{due_at.astimezone(UTC):%Y%m%dT%H%M%SZ}-{where}{again}"


@dataclass
class ScheduleRunner:
    database: Database
    render: ReportRenderer
    destinations: Mapping[str, ReportDestination]
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    clock: Callable[[], datetime] = utc_now
    max_attempts: int = 4
    retry_base: timedelta = timedelta(minutes=1)
    lease: timedelta = DEFAULT_LEASE
    notify_owner: OwnerNotifier | None = None
    #: Tells a schedule's owner that a run recorded delivered bounced afterwards (its email did not arrive).
    notify_owner_of_bounce: OwnerNotifier | None = None
    #: Told after every tick (None) and of every failure (the error or a sentence); feeds the job heartbeat.
    report_pass: Callable[[BaseException | str | None], None] = lambda _failure: None
    #: The business's timezone, which every unit of work of the process carries.
    business_tz: str = "UTC"

    def __post_init__(self) -> None:
        check_lease(self.lease, self.destinations)

    def _unit_of_work(self, *, read_only: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.database, read_only=read_only, business_tz=self.business_tz)

    async def tick(self) -> int:
        """One pass: claim and deliver every due run, then take over expired claims and due retries;
        returns how many deliveries were attempted."""
        now = self.clock()
        async with self._unit_of_work(read_only=True) as uow:
            schedules = await SqlScheduleStore(uow.session).due(now)
        attempted = 0
        for schedule in schedules:
            for run in await self._claim_runs(schedule, now):
                await self._deliver(schedule, run)
                attempted += 1
        for _ in range(TAKEOVERS_PER_TICK):
            taken = await self._take_open_run()
            if taken is None:
                break
            owner, taken_run = taken
            if taken_run is not None:
                await self._deliver(owner, taken_run)
                attempted += 1
        await self._tell_owners_of_bounces()
        return attempted

    async def _tell_owners_of_bounces(self) -> None:
        """Each run whose email bounced after it was recorded delivered is told to its schedule's owner once."""
        for _ in range(TAKEOVERS_PER_TICK):
            async with self._unit_of_work() as uow:
                store = SqlScheduleStore(uow.session)
                bounced = await store.next_bounce_to_tell()
                if bounced is None:
                    return
                schedule = await store.get(bounced.schedule_id)
                await uow.commit()
            if schedule is not None and self.notify_owner_of_bounce is not None:
                try:
                    await self.notify_owner_of_bounce(schedule, bounced.error)
                except Exception:  # best effort, as for a failure: the report's page says it already
                    log.exception("could not tell the owner of schedule %s of a bounce", schedule.id)

    async def _claim_runs(self, schedule: DueSchedule, now: datetime) -> list[ClaimedRun]:
        policy: MissedRunPolicy = "skip" if schedule.missed_run_policy == "skip" else "deliver_late_once"
        plan = plan_runs(schedule.cron, schedule.timezone, schedule.next_due_at, now, policy)
        claimed: list[ClaimedRun] = []
        async with self._unit_of_work() as uow:
            store = SqlScheduleStore(uow.session)
            for due_at in plan.skip:
                await store.claim(
                    schedule.id,
                    due_at,
                    schedule.destination,
                    self.worker_id,
                    now,
                    until=None,
                    late=True,
                    status="skipped",
                )
            for due_at, late in plan.deliver:
                run = await store.claim(
                    schedule.id,
                    due_at,
                    schedule.destination,
                    self.worker_id,
                    now,
                    until=now + self.lease,
                    late=late,
                )
                if run is not None:
                    claimed.append(run)
            if plan.next_due_at is not None:
                await store.advance(schedule.id, schedule.next_due_at, plan.next_due_at)
            await uow.commit()
        return claimed

    async def _take_open_run(self) -> tuple[DueSchedule, ClaimedRun | None] | None:
        """Takes the next expired claim or due retry: None when there is none; the run is None when it is
        given up instead (its holder died during the last attempt allowed) or another process won it."""
        now = self.clock()
        async with self._unit_of_work() as uow:
            store = SqlScheduleStore(uow.session)
            found = await store.next_open_run(now)
            if found is None:
                return None
            schedule = await store.get(found.schedule_id)
            if schedule is None:  # the schedule was deleted (its runs go with it)
                return None
            if found.status in HELD and found.attempts >= self.max_attempts:
                error = last_attempt_lost(found)
                if not await store.give_up(found, now, error=error, takeover_note=found.takeover_note):
                    return schedule, None
                self._audit_failure(uow, schedule, error, found.attempts)
                await uow.commit()
                await self._tell_owner(schedule, error)
                return schedule, None
            note = takeover_note(found, schedule)
            run = await store.take(found, self.worker_id, now, until=now + self.lease, takeover_note=note)
            await uow.commit()
        if run is not None and found.status in HELD:
            log.warning("report schedule %s delivery %s: %s", schedule.id, run.delivery_id, note)
            self.report_pass(f"{describe_run(schedule, run.due_at)}: {takeover_headline(found)}")
        return schedule, run

    async def _deliver(self, schedule: DueSchedule, run: ClaimedRun) -> None:
        try:
            report = await self.render(schedule, run.due_at, run.late)
            destination = self.destinations.get(schedule.destination_kind)
            if destination is None:
                raise DeliveryFailed(f"no {schedule.destination_kind} destination is configured")
        except ReportDefinitionError as error:  # the report cannot be made as it now is: no retry helps
            await self._failed(schedule, run, f"{REPORT_CANNOT_BE_MADE}: {error}", permanent=True)
            return
        except Exception as error:  # rendering: retried, then reported to the owner
            await self._failed(schedule, run, str(error) or error.__class__.__name__)
            return
        if not await self._start_sending(run):
            log.warning(
                "report schedule %s delivery %s: the claim ran out while rendering and another process "
                "took the run over; not sending it from here",
                schedule.id,
                run.delivery_id,
            )
            return
        try:
            async with asyncio.timeout(destination.timeout_seconds):
                await destination.deliver(
                    schedule.destination,
                    replace(report, delivery_key=delivery_key(schedule, run.due_at, run.sent_again)),
                )
        except TimeoutError:
            limit = in_words(destination.timeout_seconds)
            await self._failed(schedule, run, f"{destination.kind} did not answer within {limit}")
            return
        except Exception as error:  # delivery: retried, then reported to the owner
            permanent = isinstance(error, DeliveryFailed) and error.permanent
            await self._failed(schedule, run, str(error) or error.__class__.__name__, permanent=permanent)
            return
        async with self._unit_of_work() as uow:
            recorded = await SqlScheduleStore(uow.session).finish(
                run, "delivered", error=run.takeover_note, delivered_at=self.clock()
            )
            await uow.commit()
        if not recorded:
            log.error(
                "report schedule %s delivery %s was delivered, but its claim had been taken over meanwhile "
                "(the delivery took longer than the lease); the other process may send it again",
                schedule.id,
                run.delivery_id,
            )

    async def _start_sending(self, run: ClaimedRun) -> bool:
        async with self._unit_of_work() as uow:
            started = await SqlScheduleStore(uow.session).start_sending(run, self.clock() + self.lease)
            await uow.commit()
        return started

    async def _failed(
        self, schedule: DueSchedule, run: ClaimedRun, error: str, *, permanent: bool = False
    ) -> None:
        # A refusal that sending again cannot change (no such mailbox) fails at once, with the owner told.
        final = permanent or run.attempt >= self.max_attempts
        retry_at = self.clock() + self.retry_base * 2 ** (run.attempt - 1)
        logged = f"{error} ({run.takeover_note})" if run.takeover_note else error
        async with self._unit_of_work() as uow:
            recorded = await SqlScheduleStore(uow.session).finish(
                run, "failed" if final else "retrying", error=logged, retry_at=None if final else retry_at
            )
            if final and recorded:
                self._audit_failure(uow, schedule, error, run.attempt)
            await uow.commit()
        self.report_pass(
            f"{schedule.report_name} to {schedule.destination_kind} {schedule.destination}: {error}"
        )
        log.warning(
            "report schedule %s delivery %s failed (attempt %s): %s",
            schedule.id,
            run.delivery_id,
            run.attempt,
            error,
        )
        if final and recorded:
            await self._tell_owner(schedule, error)

    def _audit_failure(self, uow: SqlUnitOfWork, schedule: DueSchedule, error: str, attempts: int) -> None:
        uow.audit.record(
            AuditEntry(
                actor="scheduler",
                via="system",
                action="report.delivery_failed",
                target=f"schedule:{schedule.id}",
                detail={"error": error[:300], "attempts": attempts},
            )
        )

    async def _tell_owner(self, schedule: DueSchedule, error: str) -> None:
        if self.notify_owner is None:
            return
        try:
            await self.notify_owner(schedule, error)
        except Exception:  # telling the owner is best effort; the failure is in the delivery log already
            log.exception("could not tell the owner of schedule %s", schedule.id)


def describe_run(schedule: DueSchedule, due_at: datetime) -> str:
    """ "Weekly revenue due 2 Dec 2026 08:00 CET to slack C0123": in the schedule's own time."""
    local = due_at.astimezone(zone(schedule.timezone))
    return (
        f"{schedule.report_name} due {day_month_year(local)} {local:%H:%M %Z} "
        f"to {schedule.destination_kind} {schedule.destination}"
    )


def last_attempt_lost(run: OpenRun) -> str:
    """Why a run is given up when its holder stopped during the last attempt allowed."""
    how = "and may have delivered it before it stopped" if run.status == "sending" else "before sending it"
    attempts = f"{run.attempts} attempt{'' if run.attempts == 1 else 's'}"
    return f"Gave up after {attempts}: {run.holder} stopped during the last one, {how}."


def takeover_headline(run: OpenRun) -> str:
    """In a few words, what happened to a run whose holder stopped: for `status` and the delivery log."""
    if run.status == "sending":
        return f"taken over from {run.holder}; it may have been delivered before the worker stopped"
    return f"taken over from {run.holder}, which stopped before sending it"


def takeover_note(run: OpenRun, schedule: DueSchedule) -> str | None:
    """What the delivery log says about a run taken over from a holder that stopped (a retry keeps its note)."""
    if run.status not in HELD:
        return run.takeover_note
    headline = takeover_headline(run)
    note = headline[0].upper() + headline[1:] + "."
    if run.status == "sending" and schedule.destination_kind == "email":
        note += " A second copy has the same Message-ID, so the mailbox can drop it."
    elif run.takeover_note and "may have been delivered" in run.takeover_note:
        note += " An earlier attempt may have delivered it."
    return note[:300]


class ReportScheduler:
    """Runs `ScheduleRunner.tick` every `interval` seconds on APScheduler's asyncio scheduler."""

    def __init__(self, runner: ScheduleRunner, interval_seconds: float = 15.0) -> None:
        self.runner = runner
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.scheduler.add_job(
            self._tick,
            "interval",
            seconds=interval_seconds,
            max_instances=1,
            coalesce=True,
            next_run_time=utc_now(),
        )

    async def _tick(self) -> None:
        try:
            await self.runner.tick()
        except Exception as error:  # a bad tick must not stop the scheduler; the next tick tries again
            log.exception("report scheduler tick failed")
            self.runner.report_pass(error)
        else:
            self.runner.report_pass(None)

    def start(self) -> None:
        self.scheduler.start()

    def stop(self) -> None:
        if self.scheduler.running:  # a worker that failed to start may stop a scheduler never started
            self.scheduler.shutdown(wait=False)
