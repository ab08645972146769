"""Scheduled reports under faults: workers that die holding a claim, on SQLite and PostgreSQL.

Three workers race over the due runs and one dies right after a claim, or right after the destination
accepted its report. Every due run must reach its destination exactly once (email: one message per
Message-ID at the mailbox) and none may stay `claimed` or `sending`; the delivery log and `status`
say in words which run was taken over. The in-process tests abandon a claim by cancelling a
runner mid-delivery; the process tests SIGKILL a real worker.

Run as a module (`python -m tests.faults.test_scheduler_faults ...`) this file is the worker process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from api.app import create_app
from api.auth import login_link
from api.sandbox.config import SandboxConfig
from api.sandbox.server import RunningSandbox, run_sandbox
from bot.commands.context import CommandContext
from bot.console import ask, render_reply
from reports.destinations import EmailDestination, RenderedReport, ReportDestination, TelegramDestination
from reports.heartbeats import JobHealth, write_heartbeat
from reports.scheduler import ScheduleRunner
from storage.database import Database
from storage.models import CustomReport, ReportDelivery, ReportSchedule, StaffUser
from storage.schedules import DueSchedule
from switchboard.settings import Settings

DUE = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # Monday 08:00 in Europe/Berlin
OWNER = "maria@northwind.example"
SENDER = "Northwind reports <reports@northwind.example>"
CREDENTIALS = SandboxConfig()
#: A PNG signature is all the sandbox's Telegram needs to take it as a photo.
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)
#: Long after any claim lease (five minutes by default): every expired claim may be taken over.
LONG_AFTER = timedelta(hours=1)
#: The worker processes use a short lease so a takeover happens within seconds of real time.
PROCESS_LEASE = timedelta(seconds=6)
PROCESS_TIME_LIMIT = 5.0


@dataclass(frozen=True)
class Target:
    schedule_id: int
    kind: str
    destination: str


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Stall:
    """Where a dying worker stops: it says it got there, then waits until it is cancelled or killed."""

    def __init__(self, marker: Path | None = None) -> None:
        self.reached = asyncio.Event()
        self.release = asyncio.Event()
        self.marker = marker

    async def here(self) -> None:
        self.reached.set()
        if self.marker is not None:
            self.marker.write_text("stalled")
        await self.release.wait()


class SendsThenStalls:
    """A destination whose worker dies after the real destination accepted the report."""

    def __init__(self, inner: ReportDestination, stall: Stall) -> None:
        self.inner, self.stall = inner, stall

    def __getattr__(self, name: str) -> Any:  # kind, time limit: the real destination's
        return getattr(self.inner, name)

    async def deliver(self, destination: str, report: RenderedReport) -> None:
        await self.inner.deliver(destination, report)
        await self.stall.here()


async def render(schedule: DueSchedule, due_at: datetime, late: bool) -> RenderedReport:
    return RenderedReport(
        schedule.report_name,
        "42 things happened.",
        PNG,
        None,
        due_at,
        late,
        schedule.report_slug,
        schedule.timezone,
    )


def stalls_rendering(stall: Stall) -> Callable[[DueSchedule, datetime, bool], Awaitable[RenderedReport]]:
    async def render_then_stall(schedule: DueSchedule, due_at: datetime, late: bool) -> RenderedReport:
        await stall.here()
        return await render(schedule, due_at, late)

    return render_then_stall


def destinations(
    base_url: str, smtp_port: int, time_limit: float | None = None
) -> dict[str, ReportDestination]:
    limit = {} if time_limit is None else {"timeout_seconds": time_limit}
    return {
        "telegram": TelegramDestination(CREDENTIALS.telegram_bot_token, base_url, **limit),
        "email": EmailDestination("127.0.0.1", smtp_port, None, None, SENDER, **limit),
    }


async def add_schedules(database: Database, kinds: list[str], due: list[datetime]) -> list[Target]:
    """One saved report per schedule, each to a destination of its own, due at the given times."""
    targets: list[Target] = []
    # Their next regular run half a day after the runs given due, on the test's clock (the real time for
    # the worker processes, 23 November for the in-process runners): each schedule has exactly the one
    # run it was given due. A regular run within the test's hour would fall due during it and deliver twice.
    later = min(due).astimezone(ZoneInfo("Europe/Berlin")) + timedelta(hours=12)
    async with database.sessions() as session:
        owner = StaffUser(email=OWNER, name="Maria", role="manager")
        session.add(owner)
        await session.flush()
        for index, (kind, due_at) in enumerate(zip(kinds, due, strict=True)):
            report = CustomReport(
                slug=f"weekly-revenue-{index}",
                name=f"Weekly revenue {index}",
                owner_id=owner.id,
                definition={"query": {"metrics": ["revenue"]}},
            )
            session.add(report)
            await session.flush()
            destination = f"report-{index}@clinic.example" if kind == "email" else str(424_200 + index)
            schedule = ReportSchedule(
                report_id=report.id,
                owner_id=owner.id,
                cron=f"0 {later.hour} * * *",
                timezone="Europe/Berlin",
                destination_kind=kind,
                destination=destination,
                next_due_at=due_at,
            )
            session.add(schedule)
            await session.flush()
            targets.append(Target(schedule.id, kind, destination))
        await session.commit()
    return targets


def received(sandbox: RunningSandbox) -> Counter[tuple[str, str]]:
    """Reports each destination got: Telegram photos per chat, and distinct emails per mailbox."""
    state = sandbox.state
    with state.lock:
        photos = [c for c in state.telegram_calls if str(c["method"]).lower() == "sendphoto"]
        emails = list(state.emails)
    counts: Counter[tuple[str, str]] = Counter(("telegram", str(c["params"]["chat_id"])) for c in photos)
    counts.update(("email", to) for email in emails for to in email.rcpt_tos)
    return counts


def email_copies(sandbox: RunningSandbox, address: str) -> list[int]:
    """How many copies of each message to `address` came in over SMTP (the mailbox keeps the first)."""
    with sandbox.state.lock:
        ids = [e.message_id for e in sandbox.state.emails if address in e.rcpt_tos]
        return [sandbox.state.email_copies[i] for i in ids]


async def deliveries(database: Database) -> list[ReportDelivery]:
    async with database.read_sessions() as session:
        return list(await session.scalars(select(ReportDelivery).order_by(ReportDelivery.schedule_id)))


def assert_each_run_once(rows: list[ReportDelivery], targets: list[Target], sandbox: RunningSandbox) -> None:
    stuck = [(r.schedule_id, r.status) for r in rows if r.status != "delivered"]
    assert stuck == [], f"runs not delivered: {stuck}"
    assert sorted(r.schedule_id for r in rows) == sorted(t.schedule_id for t in targets)
    got = received(sandbox)
    assert {(t.kind, t.destination): got[(t.kind, t.destination)] for t in targets} == {
        (t.kind, t.destination): 1 for t in targets
    }
    assert sum(got.values()) == len(targets), f"reports went elsewhere: {got}"


#: Telegram destinations the in-process runners opened, closed after each test.
OPENED: list[TelegramDestination] = []


def runner(database: Database, sandbox: RunningSandbox, clock: Clock, worker: str) -> ScheduleRunner:
    to = destinations(sandbox.base_url, sandbox.smtp_port)
    OPENED.extend(d for d in to.values() if isinstance(d, TelegramDestination))
    return ScheduleRunner(
        database=database,
        render=render,
        destinations=to,
        worker_id=worker,
        clock=clock,
        retry_base=timedelta(seconds=0),
    )


async def die_mid_tick(victim: ScheduleRunner, stall: Stall) -> None:
    """Runs the victim's tick until it stalls, then abandons it there: its process died."""
    task = asyncio.create_task(victim.tick())
    await asyncio.wait_for(stall.reached.wait(), timeout=30)
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    async with run_sandbox(replace(CREDENTIALS, port=0, smtp_port=0, send_status_webhooks=False)) as running:
        yield running


@pytest.fixture(autouse=True)
async def close_destinations() -> AsyncIterator[None]:
    yield
    while OPENED:
        await OPENED.pop().close()


@pytest.fixture
async def three_databases(database_url: str) -> AsyncIterator[list[Database]]:
    """Three connections of their own, as three worker processes would have."""
    databases = [Database.connect(database_url) for _ in range(3)]
    yield databases
    for database in databases:
        await database.dispose()


async def test_a_run_claimed_by_a_worker_that_died_is_delivered_once_by_the_others(
    three_databases: list[Database], sandbox: RunningSandbox
) -> None:
    kinds = ["telegram", "email"] * 3
    targets = await add_schedules(three_databases[0], kinds, [DUE] * len(kinds))
    clock = Clock(DUE + timedelta(seconds=20))
    stall = Stall()
    victim = runner(three_databases[0], sandbox, clock, "victim")
    victim.render = stalls_rendering(stall)
    survivors = [runner(db, sandbox, clock, f"survivor-{i}") for i, db in enumerate(three_databases[1:])]

    await die_mid_tick(victim, stall)
    await asyncio.gather(*(s.tick() for s in survivors))
    held = [r for r in await deliveries(three_databases[1]) if r.claimed_by == "victim"]
    assert [r.status for r in held] == ["claimed"], "the victim died holding exactly one claim"
    assert sum(received(sandbox).values()) == len(targets) - 1, "a live claim is left alone"

    clock.now += LONG_AFTER
    for _round in range(2):
        await asyncio.gather(*(s.tick() for s in survivors))

    rows = await deliveries(three_databases[1])
    assert_each_run_once(rows, targets, sandbox)
    taken = next(r for r in rows if r.schedule_id == held[0].schedule_id)
    assert taken.claimed_by in ("survivor-0", "survivor-1") and taken.attempts == 2
    assert taken.error == "Taken over from victim, which stopped before sending it."


async def test_a_worker_that_stalls_past_its_lease_sends_nothing_once_another_took_over(
    three_databases: list[Database], sandbox: RunningSandbox
) -> None:
    targets = await add_schedules(three_databases[0], ["telegram"], [DUE])
    clock = Clock(DUE + timedelta(seconds=20))
    stall = Stall()
    slow = runner(three_databases[0], sandbox, clock, "slow")
    slow.render = stalls_rendering(stall)
    task = asyncio.create_task(slow.tick())
    await asyncio.wait_for(stall.reached.wait(), timeout=30)

    clock.now += LONG_AFTER
    await runner(three_databases[1], sandbox, clock, "survivor").tick()
    assert sum(received(sandbox).values()) == 1, (
        "the run was taken over and delivered while the holder stalled"
    )
    stall.release.set()  # the stalled worker wakes up, its claim long gone
    await asyncio.wait_for(task, timeout=30)

    rows = await deliveries(three_databases[2])
    assert_each_run_once(rows, targets, sandbox)
    assert (rows[0].claimed_by, rows[0].attempts) == ("survivor", 2)


@pytest.mark.parametrize("kind", ["email", "telegram"])
async def test_a_takeover_after_the_destination_accepted_is_said_in_the_delivery_log_and_status(
    three_databases: list[Database], sandbox: RunningSandbox, kind: str
) -> None:
    other = "telegram" if kind == "email" else "email"
    # The victim's run falls due first, so its first claim is that one.
    targets = await add_schedules(three_databases[0], [kind, other], [DUE, DUE + timedelta(seconds=10)])
    clock = Clock(DUE + timedelta(seconds=20))
    stall = Stall()
    victim = runner(three_databases[0], sandbox, clock, "victim")
    victim.destinations = {
        name: SendsThenStalls(destination, stall) for name, destination in victim.destinations.items()
    }
    await die_mid_tick(victim, stall)
    rows = await deliveries(three_databases[1])
    assert [(r.schedule_id, r.claimed_by) for r in rows] == [(targets[0].schedule_id, "victim")]
    assert received(sandbox)[(kind, targets[0].destination)] == 1, "the destination took it before the kill"

    clock.now += LONG_AFTER
    health = JobHealth(clock)
    survivors = [runner(db, sandbox, clock, f"survivor-{i}") for i, db in enumerate(three_databases[1:])]
    for survivor in survivors:
        survivor.report_pass = health.reporter("report scheduler", 15.0)
    await asyncio.gather(*(s.tick() for s in survivors))
    survivors[0].report_pass(None)  # as ReportScheduler does after each tick

    rows = await deliveries(three_databases[1])
    taken = rows[0]
    assert (taken.schedule_id, taken.status, taken.attempts) == (targets[0].schedule_id, "delivered", 2)
    assert taken.error is not None
    assert taken.error.startswith(
        "Taken over from victim; it may have been delivered before the worker stopped."
    )
    if kind == "email":
        # Sent twice over SMTP, kept once by the mailbox: both copies carry the run's Message-ID.
        assert email_copies(sandbox, taken.destination) == [2]
        assert_each_run_once(rows, targets, sandbox)
        assert "same Message-ID" in taken.error
    else:  # Telegram has no idempotency key: this second copy is what the delivery log warns of
        assert received(sandbox)[("telegram", taken.destination)] == 2
        assert received(sandbox)[(other, targets[1].destination)] == 1

    async with three_databases[1].sessions() as session:
        await write_heartbeat(session, "clinic-1:812:worker", "worker", clock.now, health, pid=812)
        await session.commit()
    context = CommandContext(Settings(database_url=three_databases[1].url), three_databases[1], clock=clock)
    status = render_reply(await ask(context, "status", as_email=OWNER))
    scheduler_line = next(line for line in status.splitlines() if "Report scheduler" in line)
    assert "ok, last success 0 s ago (last failure 0 s ago: Weekly revenue" in scheduler_line
    assert "taken over from victim; it may have been delivered before the worker stopped" in scheduler_line

    page = await dashboard_reports_page(three_databases[1].url)
    assert "Taken over from victim; it may have been delivered before the worker stopped." in page
    assert page.count("status-delivered") == 2


async def test_a_worker_dying_during_the_last_attempt_allowed_fails_the_run_and_tells_the_owner(
    three_databases: list[Database], sandbox: RunningSandbox
) -> None:
    targets = await add_schedules(three_databases[0], ["telegram"], [DUE])
    clock = Clock(DUE + timedelta(seconds=20))
    stall = Stall()
    victim = runner(three_databases[0], sandbox, clock, "victim")
    victim.render = stalls_rendering(stall)
    await die_mid_tick(victim, stall)

    clock.now += LONG_AFTER
    told: list[str] = []

    async def tell(schedule: DueSchedule, error: str) -> None:
        told.append(f"{schedule.owner_email}: {error}")

    survivor = runner(three_databases[1], sandbox, clock, "survivor")
    survivor.max_attempts, survivor.notify_owner = 1, tell
    await survivor.tick()

    rows = await deliveries(three_databases[1])
    reason = "Gave up after 1 attempt: victim stopped during the last one, before sending it."
    assert [(r.schedule_id, r.status, r.attempts, r.error) for r in rows] == [
        (targets[0].schedule_id, "failed", 1, reason)
    ]
    assert told == [f"{OWNER}: {reason}"]
    assert sum(received(sandbox).values()) == 0


async def dashboard_reports_page(database_url: str) -> str:
    """The saved-reports page with its delivery log, as the schedules' owner sees it."""
    settings = Settings(database_url=database_url, worker_in_process=False)  # type: ignore[arg-type]
    database = Database.connect(database_url)
    async with database.read_sessions() as session:
        owner_id = await session.scalar(select(StaffUser.id).where(StaffUser.email == OWNER))
    await database.dispose()
    assert owner_id is not None
    async with AsyncTestClient(create_app(settings)) as client:
        link = login_link("http://testserver.local", settings.session_secret, owner_id, 15, datetime.now(UTC))
        signed_in = await client.get(link.removeprefix("http://testserver.local"), follow_redirects=False)
        assert signed_in.status_code == 303, signed_in.text
        page = await client.get("/analytics/reports")
        assert page.status_code == 200, page.text
        return page.text


# --- real worker processes, SIGKILL ---------------------------------------------------------------

WORKER = [sys.executable, "-m", "tests.faults.test_scheduler_faults"]
ROOT = Path(__file__).resolve().parents[2]


def start_worker(
    database_url: str, sandbox: RunningSandbox, worker_id: str, dies: str, marker: Path
) -> subprocess.Popen[bytes]:
    arguments = [database_url, sandbox.base_url, str(sandbox.smtp_port), worker_id, dies, str(marker)]
    return subprocess.Popen([*WORKER, *arguments], cwd=ROOT, stderr=subprocess.PIPE)


async def wait_for(condition: Callable[[], Awaitable[bool]], seconds: float) -> bool:
    """Whether `condition` came true within `seconds`; the assertions after it say what did not."""
    deadline = time.monotonic() + seconds
    while not await condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.2)
    return True


@pytest.mark.slow
@pytest.mark.parametrize("dies", ["after the claim", "after the destination accepted"])
async def test_three_worker_processes_one_killed_deliver_every_due_run_once(
    database_url: str, sandbox: RunningSandbox, tmp_path: Path, dies: str
) -> None:
    database = Database.connect(database_url)
    now = datetime.now(UTC)
    kinds = ["email", "telegram", "email", "telegram", "email", "telegram"]
    # The first run falls due first, so the victim, starting alone, claims it (an email).
    due = [now - timedelta(seconds=40), *[now - timedelta(seconds=30)] * (len(kinds) - 1)]
    targets = await add_schedules(database, kinds, due)
    marker = tmp_path / "victim-stalled"
    workers: list[subprocess.Popen[bytes]] = []
    try:
        # All three start together; the survivors tick once the victim holds its claim.
        workers.append(start_worker(database_url, sandbox, "victim", dies, marker))
        workers += [start_worker(database_url, sandbox, f"survivor-{i}", "never", marker) for i in (1, 2)]
        assert await wait_for(_exists(marker, workers[0]), 60), "the victim never got to hold a claim"
        workers[0].send_signal(signal.SIGKILL)
        assert workers[0].wait(timeout=10) == -signal.SIGKILL

        async def all_delivered() -> bool:
            rows = await deliveries(database)
            return len(rows) == len(targets) and all(r.status == "delivered" for r in rows)

        await wait_for(all_delivered, 90)
    finally:
        errors = _stop(workers)
    rows = await deliveries(database)
    await database.dispose()

    assert_each_run_once(rows, targets, sandbox)
    taken = next(r for r in rows if r.schedule_id == targets[0].schedule_id)
    assert taken.claimed_by in ("survivor-1", "survivor-2") and taken.attempts == 2, errors
    copies = email_copies(sandbox, targets[0].destination)
    if dies == "after the claim":
        assert taken.error == "Taken over from victim, which stopped before sending it."
        assert copies == [1]
    else:
        assert taken.error is not None and "may have been delivered before the worker stopped" in taken.error
        assert copies == [2], "sent again after the kill, with the same Message-ID"
    engine = database_url.split("+", 1)[0]
    got = received(sandbox)
    with sandbox.state.lock:
        dropped = sum(n - 1 for n in sandbox.state.email_copies.values())
    print(
        f"\nscheduler faults ({engine}, worker killed {dies}): {len(targets)} due runs, "
        f"{sum(got.values())} received, {sum(n - 1 for n in got.values() if n > 1)} duplicates, "
        f"{sum(1 for t in targets if not got[(t.kind, t.destination)])} lost, "
        f"{sum(1 for r in rows if r.status in ('claimed', 'sending'))} stuck, "
        f"{sum(1 for r in rows if r.attempts > 1)} taken over, "
        f"{dropped} email{'' if dropped == 1 else 's'} sent again"
        + (" (same Message-ID, kept once)" if dropped else "")
    )


def _exists(marker: Path, victim: subprocess.Popen[bytes]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        if victim.poll() is not None:
            stderr = victim.stderr.read().decode() if victim.stderr else ""
            raise AssertionError(f"the victim worker exited early:\n{stderr}")
        return marker.exists()

    return check


def _stop(workers: list[subprocess.Popen[bytes]]) -> str:
    """Kills the workers still running; returns what they wrote to stderr, for a failing assertion."""
    errors: list[str] = []
    for worker in workers:
        if worker.poll() is None:
            worker.kill()
        worker.wait(timeout=10)
        if worker.stderr is not None:
            errors.append(worker.stderr.read().decode(errors="replace")[-2000:])
    return "\n".join(e for e in errors if e)


async def _work(
    database_url: str, base_url: str, smtp_port: int, worker_id: str, dies: str, marker: Path
) -> None:
    """A worker process: ticks every 0.2 s until killed; the victim stalls at its first claim, and the
    others start ticking once it has."""
    database = Database.connect(database_url)
    stall = Stall(marker)
    work = ScheduleRunner(
        database=database,
        render=render,
        destinations=destinations(base_url, smtp_port, PROCESS_TIME_LIMIT),
        worker_id=worker_id,
        lease=PROCESS_LEASE,
        retry_base=timedelta(seconds=0.5),
    )
    if dies == "after the claim":
        work.render = stalls_rendering(stall)
    elif dies == "after the destination accepted":
        work.destinations = {kind: SendsThenStalls(d, stall) for kind, d in work.destinations.items()}
    while dies == "never" and not marker.exists():
        await asyncio.sleep(0.05)
    while True:
        await work.tick()
        await asyncio.sleep(0.2)


def _main(arguments: list[str]) -> None:
    database_url, base_url, smtp_port, worker_id, dies, marker = arguments
    asyncio.run(_work(database_url, base_url, int(smtp_port), worker_id, dies, Path(marker)))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    _main(sys.argv[1:])
