"""Scheduled report delivery: ticks on APScheduler, claims each (schedule, due time, destination) in the database.

APScheduler 3 cannot share a job store between processes, so it only drives the ticking here; the
claim row in `report_deliveries` (unique per schedule, due time and destination) decides which of
several processes delivers, so each run is delivered exactly once however many schedulers run.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from domain.audit import AuditEntry
from reports.destinations import DeliveryFailed, RenderedReport, ReportDestination
from reports.schedules import MissedRunPolicy, plan_runs
from storage.database import Database
from storage.schedules import DueSchedule, SqlScheduleStore
from storage.unit_of_work import SqlUnitOfWork

log = logging.getLogger(__name__)

ReportRenderer = Callable[[DueSchedule, datetime, bool], Awaitable[RenderedReport]]
OwnerNotifier = Callable[[DueSchedule, str], Awaitable[None]]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ScheduleRunner:
    database: Database
    render: ReportRenderer
    destinations: Mapping[str, ReportDestination]
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    clock: Callable[[], datetime] = utc_now
    max_attempts: int = 4
    retry_base: timedelta = timedelta(minutes=1)
    notify_owner: OwnerNotifier | None = None
    #: Told after every tick (None) and of every failure (the error or a sentence); feeds the job heartbeat.
    report_pass: Callable[[BaseException | str | None], None] = lambda _failure: None

    async def tick(self) -> int:
        """One pass: claim and deliver every due run, then due retries; returns how many deliveries were attempted."""
        now = self.clock()
        async with SqlUnitOfWork(self.database, read_only=True) as uow:
            schedules = await SqlScheduleStore(uow.session).due(now)
        attempted = 0
        for schedule in schedules:
            for delivery_id, due_at, late in await self._claim_runs(schedule, now):
                await self._deliver(schedule, delivery_id, due_at, late, attempts=0)
                attempted += 1
        attempted += await self._retry(now)
        return attempted

    async def _claim_runs(self, schedule: DueSchedule, now: datetime) -> list[tuple[int, datetime, bool]]:
        policy: MissedRunPolicy = "skip" if schedule.missed_run_policy == "skip" else "deliver_late_once"
        plan = plan_runs(schedule.cron, schedule.timezone, schedule.next_due_at, now, policy)
        claimed: list[tuple[int, datetime, bool]] = []
        async with SqlUnitOfWork(self.database) as uow:
            store = SqlScheduleStore(uow.session)
            for due_at in plan.skip:
                await store.claim(
                    schedule.id,
                    due_at,
                    schedule.destination,
                    self.worker_id,
                    now,
                    late=True,
                    status="skipped",
                )
            for due_at, late in plan.deliver:
                delivery_id = await store.claim(
                    schedule.id, due_at, schedule.destination, self.worker_id, now, late=late
                )
                if delivery_id is not None:
                    claimed.append((delivery_id, due_at, late))
            if plan.next_due_at is not None:
                await store.advance(schedule.id, schedule.next_due_at, plan.next_due_at)
            await uow.commit()
        return claimed

    async def _deliver(
        self, schedule: DueSchedule, delivery_id: int, due_at: datetime, late: bool, attempts: int
    ) -> None:
        attempts += 1
        try:
            report = await self.render(schedule, due_at, late)
            destination = self.destinations.get(schedule.destination_kind)
            if destination is None:
                raise DeliveryFailed(f"no {schedule.destination_kind} destination is configured")
            await destination.deliver(schedule.destination, report)
        except Exception as error:  # rendering or delivery: retried, then reported to the owner
            await self._failed(schedule, delivery_id, attempts, str(error) or error.__class__.__name__)
            return
        async with SqlUnitOfWork(self.database) as uow:
            await SqlScheduleStore(uow.session).mark(
                delivery_id, "delivered", attempts=attempts, delivered_at=self.clock()
            )
            await uow.commit()

    async def _failed(self, schedule: DueSchedule, delivery_id: int, attempts: int, error: str) -> None:
        final = attempts >= self.max_attempts
        retry_at = self.clock() + self.retry_base * 2 ** (attempts - 1)
        async with SqlUnitOfWork(self.database) as uow:
            store = SqlScheduleStore(uow.session)
            await store.mark(
                delivery_id,
                "failed" if final else "retrying",
                attempts=attempts,
                error=error,
                retry_at=None if final else retry_at,
            )
            if final:
                uow.audit.record(
                    AuditEntry(
                        actor="scheduler",
                        via="system",
                        action="report.delivery_failed",
                        target=f"schedule:{schedule.id}",
                        detail={"error": error[:300], "attempts": attempts},
                    )
                )
            await uow.commit()
        self.report_pass(
            f"{schedule.report_name} to {schedule.destination_kind} {schedule.destination}: {error}"
        )
        log.warning(
            "report schedule %s delivery %s failed (attempt %s): %s",
            schedule.id,
            delivery_id,
            attempts,
            error,
        )
        if final and self.notify_owner is not None:
            try:
                await self.notify_owner(schedule, error)
            except Exception:  # telling the owner is best effort; the failure is in the delivery log already
                log.exception("could not tell the owner of schedule %s", schedule.id)

    async def _retry(self, now: datetime) -> int:
        async with SqlUnitOfWork(self.database, read_only=True) as uow:
            pending = await SqlScheduleStore(uow.session).retries_due(now)
        attempted = 0
        for retry in pending:
            async with SqlUnitOfWork(self.database) as uow:
                store = SqlScheduleStore(uow.session)
                taken = await store.take_retry(retry.delivery_id, self.worker_id, now)
                schedule = await store.get(retry.schedule_id) if taken else None
                await uow.commit()
            if schedule is not None:
                await self._deliver(schedule, retry.delivery_id, retry.due_at, retry.late, retry.attempts)
                attempted += 1
        return attempted


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
        self.scheduler.shutdown(wait=False)
