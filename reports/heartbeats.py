"""Heartbeats of the background work: each job's last success and failure, kept in memory and written every 15 s.

A process tracks its jobs (delivery, campaign planning, notifications, the report scheduler, rollups,
the daily insight and the performance snapshot) in a `JobHealth`; its heartbeat job writes them to
`job_heartbeats` with the process's own row in `worker_heartbeats`. Nothing is written per message or
per pass. `read_background_health` turns those rows into the words `status` and the performance page show.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.database import Database
from storage.models import JobHeartbeat, WorkerHeartbeat
from storage.sql import insert_for, table_of
from storage.unit_of_work import SqlUnitOfWork

#: The background jobs every worker process runs, in the order people read them.
BACKGROUND_JOBS: tuple[str, ...] = (
    "delivery",
    "campaign planning",
    "notifications",
    "waiting room",
    "video reminders",
    "video no-shows",
    "snoozed conversations",
    "live-chat SLAs",
    "report scheduler",
    "rollups",
    "daily insight",
    "performance snapshot",
    "retention",
)
#: How often the heartbeat writes; a process silent for STALE_AFTER is taken as not running.
HEARTBEAT_SECONDS = 15.0
STALE_AFTER = timedelta(minutes=2)
#: Processes silent for this long are forgotten (their rows deleted by any live process's heartbeat).
FORGET_AFTER = timedelta(days=1)
#: A failure this recent is still mentioned next to a job that has recovered.
RECENT_FAILURE = timedelta(hours=1)
REASON_LENGTH = 200
#: Processes that stopped this recently are still listed, and at most this many processes are.
RECENT_PROCESS = timedelta(hours=1)
PROCESSES_SHOWN = 10

JobState = Literal["ok", "failing", "late", "starting", "not running"]
Failure = BaseException | str


def in_words(seconds: float) -> str:
    """A span as people say it: 4 s, 12 min, 3 h, 2 days."""
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{round(seconds)} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 48 * 3600:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 86400)} days"


def ago(moment: datetime, now: datetime) -> str:
    return f"{in_words((now - moment).total_seconds())} ago"


def short_reason(failure: Failure) -> str:
    """One line a person can read: the error's kind and the first line of its message."""
    if isinstance(failure, str):
        text = failure
    else:
        first = (str(failure).strip().splitlines() or [""])[0]
        kind = type(failure).__name__
        text = first if kind in first else f"{kind}: {first}" if first else kind
    text = " ".join(text.split())
    return text if len(text) <= REASON_LENGTH else text[: REASON_LENGTH - 1] + "…"


@dataclass
class JobRecord:
    """What one process knows about one of its jobs since it started."""

    every_seconds: float
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    failing_since: datetime | None = None
    last_error: str | None = None

    def succeeded(self, at: datetime) -> None:
        self.last_success_at, self.failing_since = at, None

    def failed(self, at: datetime, failure: Failure) -> None:
        self.last_failure_at, self.last_error = at, short_reason(failure)
        if self.failing_since is None:
            self.failing_since = at


class JobHealth:
    """Each background job of this process and how it last fared; the heartbeat writes it out."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.jobs: dict[str, JobRecord] = {}

    def track(self, job: str, every_seconds: float) -> JobRecord:
        return self.jobs.setdefault(job, JobRecord(every_seconds))

    def reporter(self, job: str, every_seconds: float) -> Callable[[Failure | None], None]:
        """A callable for code that runs the job itself: call it with None after a pass, or with the failure."""
        record = self.track(job, every_seconds)

        def report(failure: Failure | None) -> None:
            if failure is None:
                record.succeeded(self.clock())
            else:
                record.failed(self.clock(), failure)

        return report


async def write_heartbeat(
    session: AsyncSession, worker_id: str, role: str, now: datetime, health: JobHealth, *, pid: int
) -> None:
    """This process's sign of life and its jobs' records, as one batch of upserts; the caller commits."""
    process = insert_for(session, table_of(WorkerHeartbeat)).values(
        worker_id=worker_id, role=role, started_at=now, seen_at=now, detail={"pid": pid}
    )
    await session.execute(
        process.on_conflict_do_update(
            index_elements=["worker_id"], set_={"seen_at": now, "detail": {"pid": pid}}
        )
    )
    rows = [
        {
            "worker_id": worker_id,
            "job": job,
            "every_seconds": record.every_seconds,
            "seen_at": now,
            "last_success_at": record.last_success_at,
            "last_failure_at": record.last_failure_at,
            "failing_since": record.failing_since,
            "last_error": record.last_error,
        }
        for job, record in health.jobs.items()
    ]
    if rows:
        jobs = insert_for(session, table_of(JobHeartbeat)).values(rows)
        await session.execute(
            jobs.on_conflict_do_update(
                index_elements=["worker_id", "job"],
                set_={
                    name: jobs.excluded[name]
                    for name in (
                        "every_seconds",
                        "seen_at",
                        "last_success_at",
                        "last_failure_at",
                        "failing_since",
                        "last_error",
                    )
                },
            )
        )
    await session.execute(delete(JobHeartbeat).where(JobHeartbeat.seen_at < now - FORGET_AFTER))
    await session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.seen_at < now - FORGET_AFTER))


async def mark_stopped(session: AsyncSession, worker_id: str, now: datetime, *, pid: int) -> None:
    """A process that stops cleanly says so, so readers need not wait for its heartbeat to go stale."""
    await session.execute(
        update(WorkerHeartbeat)
        .where(WorkerHeartbeat.worker_id == worker_id)
        .values(seen_at=now, detail={"pid": pid, "stopped": True})
    )


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessBeat:
    worker_id: str
    role: str
    started_at: datetime
    seen_at: datetime
    stopped: bool

    def running(self, now: datetime) -> bool:
        return not self.stopped and now - self.seen_at <= STALE_AFTER

    def describe(self, now: datetime) -> str:
        if self.stopped:
            return f"stopped {ago(self.seen_at, now)}"
        if not self.running(now):
            return f"not running, last seen {ago(self.seen_at, now)}"
        return (
            f"running for {in_words((now - self.started_at).total_seconds())}, seen {ago(self.seen_at, now)}"
        )


@dataclass(frozen=True)
class JobStatus:
    """One background job across every process that runs it, in words."""

    job: str
    state: JobState
    text: str
    processes: int
    last_success_at: datetime | None = None


@dataclass(frozen=True)
class BackgroundHealth:
    now: datetime
    processes: tuple[ProcessBeat, ...]
    jobs: tuple[JobStatus, ...]

    @property
    def running(self) -> tuple[ProcessBeat, ...]:
        return tuple(p for p in self.processes if p.running(self.now))

    @property
    def recent_processes(self) -> tuple[ProcessBeat, ...]:
        """Running processes, then those that stopped or fell silent within the hour, newest first (at most 10)."""
        recent = [p for p in self.processes if p.running(self.now) or self.now - p.seen_at <= RECENT_PROCESS]
        return tuple(recent[:PROCESSES_SHOWN])

    @property
    def troubled(self) -> tuple[JobStatus, ...]:
        """Jobs failing, late or not running (a job still on its first pass is not in trouble)."""
        return tuple(j for j in self.jobs if j.state not in ("ok", "starting"))

    @property
    def all_ok(self) -> bool:
        return bool(self.running) and not self.troubled

    def headline(self) -> str:
        if not self.running:
            last = max((p.seen_at for p in self.processes), default=None)
            seen = f" (the last one reported {ago(last, self.now)})" if last else ""
            return (
                f"No worker is running{seen}: messages are not delivered, campaigns not planned, "
                "notifications and scheduled reports not sent, and the rollups not kept current. "
                "Start `switchboard worker`, or `switchboard serve` with SWITCHBOARD_WORKER_IN_PROCESS=1."
            )
        count = len(self.running)
        processes = f"{count} worker process{'es' if count != 1 else ''} running"
        if self.troubled:
            return f"{processes}; needs a look: {', '.join(j.job for j in self.troubled)}."
        starting = [j.job for j in self.jobs if j.state == "starting"]
        if starting:
            return (
                f"{processes}; the other jobs are ok, these are on their first pass: {', '.join(starting)}."
            )
        return f"{processes}; every background job is ok."


def late_after(every_seconds: float) -> timedelta:
    """How long without a finished pass before a job counts as late (a slow pass is not a failure)."""
    return max(timedelta(seconds=3 * every_seconds), STALE_AFTER)


def _job_status(
    job: str, rows: Sequence[JobHeartbeat], beats: dict[str, ProcessBeat], now: datetime
) -> JobStatus:
    live = [r for r in rows if r.worker_id in beats and beats[r.worker_id].running(now)]
    if not live:
        known = [beats[r.worker_id] for r in rows if r.worker_id in beats]
        last = max(known, key=lambda p: p.seen_at, default=None)
        if last is None:
            return JobStatus(job, "not running", "not running", 0)
        how = "stopped" if last.stopped else "last reported"
        return JobStatus(job, "not running", f"not running ({how} {ago(last.seen_at, now)})", 0)
    failing = [r for r in live if r.failing_since is not None]
    succeeding = [r for r in live if r.failing_since is None and r.last_success_at is not None]
    every = min(r.every_seconds for r in live)
    if failing and not succeeding:
        since = min(r.failing_since for r in failing if r.failing_since is not None)
        newest = max(failing, key=lambda r: r.last_failure_at or since)
        success = max((r.last_success_at for r in live if r.last_success_at), default=None)
        before = f"; last success {ago(success, now)}" if success else "; no success since the start"
        text = f"failing since {in_words((now - since).total_seconds())}: {newest.last_error or 'no reason given'}"
        return JobStatus(job, "failing", text + before, len(live), success)
    if succeeding:
        success = max(r.last_success_at for r in succeeding if r.last_success_at is not None)
        late = now - success > late_after(every)
        text = (
            f"late: last success {ago(success, now)}, expected every {in_words(every)}"
            if late
            else f"ok, last success {ago(success, now)}"
        )
        if failing:
            since = min(r.failing_since for r in failing if r.failing_since is not None)
            text += (
                f"; failing in {len(failing)} of {len(live)} processes since "
                f"{in_words((now - since).total_seconds())}: {failing[0].last_error or 'no reason given'}"
            )
        else:
            recent = [
                (r.last_failure_at, r.last_error)
                for r in live
                if r.last_failure_at and now - r.last_failure_at <= RECENT_FAILURE
            ]
            if recent:
                failed_at, error = max(recent, key=lambda pair: pair[0])
                text += f" (last failure {ago(failed_at, now)}: {error})"
        return JobStatus(job, "late" if late else "ok", text, len(live), success)
    started = min(beats[r.worker_id].started_at for r in live)
    if now - started > late_after(every):
        text = f"late: no pass finished since the process started {ago(started, now)}"
        return JobStatus(job, "late", text, len(live))
    return JobStatus(job, "starting", "starting: no pass finished yet", len(live))


async def read_background_health(database: Database, now: datetime) -> BackgroundHealth:
    async with database.read_sessions() as session:
        processes = list(await session.scalars(select(WorkerHeartbeat).order_by(WorkerHeartbeat.worker_id)))
        rows = list(await session.scalars(select(JobHeartbeat)))
    beats = {
        p.worker_id: ProcessBeat(
            p.worker_id, p.role, p.started_at, p.seen_at, bool((p.detail or {}).get("stopped"))
        )
        for p in processes
    }
    by_job: dict[str, list[JobHeartbeat]] = {}
    for row in rows:
        by_job.setdefault(row.job, []).append(row)
    names = [*BACKGROUND_JOBS, *sorted(set(by_job) - set(BACKGROUND_JOBS))]
    return BackgroundHealth(
        now,
        tuple(sorted(beats.values(), key=lambda p: (not p.running(now), now - p.seen_at, p.worker_id))),
        tuple(_job_status(name, by_job.get(name, []), beats, now) for name in names),
    )


async def record_heartbeat(
    open_uow: Callable[[], SqlUnitOfWork],
    worker_id: str,
    role: str,
    now: datetime,
    health: JobHealth,
    *,
    pid: int,
    stopped: bool = False,
) -> None:
    """This process's sign of life and each job's last success and failure, in one transaction; with
    `stopped`, also the mark that it stopped cleanly (so readers need not wait for it to go stale)."""
    async with open_uow() as uow:
        await write_heartbeat(uow.session, worker_id, role, now, health, pid=pid)
        if stopped:
            await mark_stopped(uow.session, worker_id, now, pid=pid)
        await uow.commit()
