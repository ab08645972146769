"""The worker's background jobs: rollups kept current, campaigns planned to completion, every job's heartbeat."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, select, update

from reports.heartbeats import BACKGROUND_JOBS, JobHealth, JobRecord, read_background_health, write_heartbeat
from reports.periods import PeriodSpec
from reports.query import MetricQuery, run_query
from reports.rollups import rebuild_rollups
from storage.analytics.rollup_store import read_watermark
from storage.database import Database
from storage.message_months import month_of
from storage.models import BulkMessaging, CustomerCommunication, JobHeartbeat, Order, WorkerHeartbeat
from storage.seeding import SeedPlan, seed_database
from switchboard.background import BackgroundServices
from switchboard.settings import Settings
from switchboard.wiring import build_container

TZ = "Europe/Berlin"


async def test_background_jobs_keep_rollups_current_and_finish_campaigns(database_url: str) -> None:
    container = build_container(Settings(database_url=database_url, business_timezone=TZ))
    database = container.database
    today = datetime.now(UTC).date()
    await seed_database(database, SeedPlan(customers=40, days=20, seed=3, end_date=today - timedelta(days=1)))
    await rebuild_rollups(database, grains=("day",), business_tz=TZ)
    services = BackgroundServices(container)

    # A new order lands; after one refresh the rollups answer the same as the raw facts.
    async with database.sessions() as session:
        customer = await session.scalar(select(Order.customer_id).limit(1))
        session.add(
            Order(
                order_number="NW-NEW-1",
                customer_id=customer,
                status="paid",
                source_channel="web",
                amount_minor=12_345,
                currency="EUR",
                # A minute ago, or at midnight when the business's day is younger than that: "today".
                created_at=max(
                    datetime.now(UTC) - timedelta(minutes=1),
                    datetime.combine(datetime.now(ZoneInfo(TZ)).date(), time(0), ZoneInfo(TZ)),
                ),
            )
        )
        await session.commit()
    await services.refresh_rollups()
    query = MetricQuery(("orders",), PeriodSpec("today"), grain="day")
    now = datetime.now(UTC)
    from_rollups = await run_query(database, query, now=now, business_tz=TZ)
    from_raw = await run_query(database, query, now=now, business_tz=TZ, prefer_rollups=False)
    assert from_rollups.series[0].total == from_raw.series[0].total >= 1

    # A launched campaign is planned by the job, and completes once nothing is left to send.
    async with database.sessions() as session:
        draft = await session.scalar(select(BulkMessaging).where(BulkMessaging.status == "draft"))
        assert draft is not None
        draft.status, slug = "running", draft.slug
        await session.commit()
    planned = await services.plan_campaigns()
    async with database.sessions() as session:
        campaign = await session.scalar(select(BulkMessaging).where(BulkMessaging.slug == slug))
        assert campaign is not None and campaign.planning_done and planned == campaign.planned_count
        await session.execute(
            update(CustomerCommunication)
            .where(
                CustomerCommunication.campaign_id == campaign.id, CustomerCommunication.status == "planned"
            )
            .values(status="delivered")
        )
        await session.commit()
    await services.plan_campaigns()
    await services.heartbeat()
    async with database.sessions() as session:
        assert (
            await session.scalar(select(BulkMessaging.status).where(BulkMessaging.slug == slug))
            == "completed"
        )
        assert await session.scalar(select(func.count()).select_from(WorkerHeartbeat)) == 1
    await container.close()


async def test_the_owner_is_emailed_when_a_scheduled_report_finally_fails(database_url: str) -> None:
    from dataclasses import replace

    from api.sandbox.config import SandboxConfig
    from api.sandbox.server import run_sandbox
    from storage.schedules import DueSchedule

    async with run_sandbox(
        replace(SandboxConfig(), port=0, smtp_port=0, send_status_webhooks=False)
    ) as sandbox:
        container = build_container(Settings(database_url=database_url, smtp_port=sandbox.smtp_port))
        schedule = DueSchedule(
            id=1,
            report_id=1,
            report_slug="weekly",
            report_name="Weekly revenue",
            definition={},
            cron="0 8 * * 1",
            timezone=TZ,
            destination_kind="slack",
            destination="#ops",
            attach_csv=False,
            missed_run_policy="skip",
            next_due_at=datetime.now(UTC),
            owner_email="maria@northwind.example",
        )
        services = BackgroundServices(container)
        await services.tell_owner_report_failed(schedule, "channel_not_found")
        bounced = "The email did not arrive: the recipient's mail server answered “550 5.1.1 no such user”."
        to_email = replace(schedule, destination_kind="email", destination="board@northwind.example")
        await services.tell_owner_report_bounced(to_email, bounced)
        # The owner's own address bounced: telling them there would bounce again (the page says it).
        await services.tell_owner_report_bounced(
            replace(to_email, destination="Maria@northwind.example"), bounced
        )
        await container.close()
        emails = sandbox.state.emails
    assert len(emails) == 2
    failed, did_not_arrive = emails
    assert failed.rcpt_tos == did_not_arrive.rcpt_tos == ["maria@northwind.example"]
    assert failed.subject == "Scheduled report not delivered: Weekly revenue"
    assert "channel_not_found" in failed.text and "/analytics/reports/weekly" in failed.text
    assert did_not_arrive.subject == "Scheduled report did not arrive: Weekly revenue"
    assert "handed to the mail relay for board@northwind.example, but it bounced" in did_not_arrive.text
    assert bounced in did_not_arrive.text
    assert f"{container.settings.public_url}/analytics/reports/weekly" in did_not_arrive.text
    # Marked as our alert and signed, so a bounce of it is believed and not looked for in the outbox.
    assert {e.headers.get("X-Switchboard-Mail") for e in emails} == {"alert"}
    assert all(len(e.headers.get("X-Switchboard-Check", "")) == 32 for e in emails)


async def test_daily_insight_stores_trend_readings_and_analyses_once_a_day(database_url: str) -> None:
    from storage.models import BusinessIntelligence, TrendAnalysis

    container = build_container(Settings(database_url=database_url, business_timezone=TZ))
    today = datetime.now(UTC).date()
    await seed_database(
        container.database, SeedPlan(customers=60, days=120, seed=5, end_date=today - timedelta(days=1))
    )
    services = BackgroundServices(container)
    stored = await services.record_insights()
    assert await services.record_insights() == 0  # a second process (or pass) the same day leaves it alone
    async with container.database.sessions() as session:
        trends = (await session.scalars(select(TrendAnalysis))).all()
        kinds = set(await session.scalars(select(BusinessIntelligence.kind)))
    await container.close()
    assert stored == len(trends) + len(kinds) == 7
    revenue = next(t for t in trends if t.metric == "revenue")
    assert "Revenue, net of refunds" in revenue.summary and TZ in revenue.summary
    assert len(revenue.details["forecast"]) == 7 and revenue.dimension == "source_channel"


async def test_every_background_job_reports_its_heartbeat_and_a_failing_one_says_why(
    database_url: str,
) -> None:
    container = build_container(Settings(database_url=database_url, business_timezone=TZ))
    services = BackgroundServices(container, role="worker")

    async def rollups_fail() -> None:
        raise RuntimeError("rollup store unreachable\nSQL: SELECT 1")

    services.refresh_rollups = rollups_fail  # type: ignore[method-assign]
    await services.start()
    try:
        async with asyncio.timeout(60):
            while len(services.health.jobs) < len(BACKGROUND_JOBS) or any(
                r.last_success_at is None and r.last_failure_at is None for r in services.health.jobs.values()
            ):
                await asyncio.sleep(0.1)
        await services.heartbeat()
        health = await read_background_health(container.database, datetime.now(UTC))
    finally:
        await services.stop()
    jobs = {j.job: j for j in health.jobs}
    assert list(jobs) == list(BACKGROUND_JOBS)
    for name, job in jobs.items():
        if name != "rollups":
            assert job.state == "ok" and re.fullmatch(r"ok, last success \d+ s ago", job.text), job
    assert jobs["rollups"].state == "failing"
    assert re.fullmatch(
        r"failing since \d+ s: RuntimeError: rollup store unreachable; no success since the start",
        jobs["rollups"].text,
    ), jobs["rollups"].text
    assert health.headline() == "1 worker process running; needs a look: rollups."

    # A clean stop says so at once: nothing reads as running any more.
    after = await read_background_health(container.database, datetime.now(UTC))
    async with container.database.read_sessions() as session:
        rows = list(await session.scalars(select(JobHeartbeat)))
    await container.close()
    assert {r.job for r in rows} == set(BACKGROUND_JOBS) and len(rows) == len(BACKGROUND_JOBS)
    assert not after.running and after.headline().startswith("No worker is running")
    assert all(j.state == "not running" and "(stopped " in j.text for j in after.jobs)


def _record(every: float, **outcomes: datetime | str | None) -> JobRecord:
    return JobRecord(every, **outcomes)  # type: ignore[arg-type]


async def test_job_states_read_in_words_across_processes(database: Database) -> None:
    now = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    second = timedelta(seconds=1)
    minute = timedelta(minutes=1)

    async def beat(worker: str, at: datetime, records: dict[str, JobRecord]) -> None:
        health = JobHealth(lambda: at)
        health.jobs.update(records)
        async with database.sessions() as session:
            await write_heartbeat(session, worker, "worker", at, health, pid=1)
            await session.commit()

    await beat(
        "a:1:worker",
        now - 4 * second,
        {
            "delivery": _record(5, last_success_at=now - 4 * second),
            "rollups": _record(
                60,
                last_success_at=now - 30 * minute,
                last_failure_at=now - 5 * second,
                failing_since=now - 10 * minute,
                last_error="database is locked",
            ),
            "notifications": _record(2, last_success_at=now - 9 * minute),
            "report scheduler": _record(
                15, last_success_at=now - 6 * second, last_failure_at=now - 20 * minute, last_error="no route"
            ),
        },
    )
    await beat(
        "b:2:worker", now - 3 * minute, {"campaign planning": _record(2, last_success_at=now - 3 * minute)}
    )
    await beat("z:9:worker", now - timedelta(hours=2), {})
    health = await read_background_health(database, now)
    text = {j.job: j.text for j in health.jobs}
    assert text["delivery"] == "ok, last success 4 s ago"
    assert text["rollups"] == "failing since 10 min: database is locked; last success 30 min ago"
    assert text["notifications"] == "late: last success 9 min ago, expected every 2 s"
    assert text["report scheduler"] == "ok, last success 6 s ago (last failure 20 min ago: no route)"
    assert text["campaign planning"] == "not running (last reported 3 min ago)"
    assert text["daily insight"] == "not running"
    assert [p.worker_id for p in health.running] == ["a:1:worker"]
    assert [p.worker_id for p in health.recent_processes] == [
        "a:1:worker",
        "b:2:worker",
    ]  # not the 2 h old one
    assert health.headline() == (
        "1 worker process running; needs a look: campaign planning, notifications, waiting room, video reminders, "
        "video no-shows, snoozed conversations, live-chat SLAs, rollups, daily insight, performance snapshot, "
        "retention."
    )

    # A day later the silent processes are forgotten by the next heartbeat.
    await beat("c:3:worker", now + timedelta(days=1, minutes=5), {})
    async with database.read_sessions() as session:
        assert list(await session.scalars(select(WorkerHeartbeat.worker_id))) == ["c:3:worker"]
        assert list(await session.scalars(select(JobHeartbeat.job))) == []


async def test_the_dispatcher_and_the_report_scheduler_report_their_passes() -> None:
    from domain.delivery.dispatch import Dispatcher
    from reports.scheduler import ReportScheduler, ScheduleRunner

    told: list[BaseException | str | None] = []

    class Unreachable:
        async def __aenter__(self) -> None:
            raise ConnectionRefusedError("database at 10.0.0.5 refused the connection")

        async def __aexit__(self, *_: object) -> None:
            return None

    dispatcher = Dispatcher(
        open_uow=Unreachable,  # type: ignore[arg-type]
        drivers={},
        pacing={},
        worker_id="w",
        report_pass=told.append,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(dispatcher.run(stop, idle_sleep=0.01))
    await asyncio.sleep(0.05)
    stop.set()
    await running  # the failing release of expired leases no longer kills the loop
    assert told and all(isinstance(t, ConnectionRefusedError) for t in told)

    told.clear()
    runner = ScheduleRunner(database=None, render=None, destinations={}, report_pass=told.append)  # type: ignore[arg-type]
    scheduler = ReportScheduler(runner)

    async def failing_tick() -> int:
        raise TimeoutError("slack did not answer")

    async def quiet_tick() -> int:
        return 0

    runner.tick = failing_tick  # type: ignore[method-assign]
    await scheduler._tick()
    runner.tick = quiet_tick  # type: ignore[method-assign]
    await scheduler._tick()
    assert isinstance(told[0], TimeoutError) and told[1:] == [None]


async def test_the_heartbeat_migration_runs_down_and_up(database_url: str) -> None:
    from sqlalchemy import inspect

    from storage import migrate

    database = Database.connect(database_url)

    async def tables() -> set[str]:
        async with database.engine.connect() as connection:
            return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))

    try:
        await migrate.downgrade(database_url, "0001")
        assert "job_heartbeats" not in await tables() and "worker_heartbeats" in await tables()
        await migrate.upgrade(database_url)
        assert "job_heartbeats" in await tables()
        assert await migrate.current_revision(database.engine) == migrate.head_revision()
    finally:
        await database.dispose()


async def test_a_database_seeded_without_rollups_gets_them_built_quietly(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """`serve` or `worker` after `seed` without `rollups rebuild`: no traceback every minute, rollups appear."""
    container = build_container(Settings(database_url=database_url, business_timezone=TZ))
    database = container.database
    today = datetime.now(UTC).date()
    await seed_database(database, SeedPlan(customers=30, days=15, seed=4, end_date=today - timedelta(days=1)))
    services = BackgroundServices(container)
    with caplog.at_level(logging.INFO):
        await services.refresh_rollups()
        await services.refresh_rollups()  # the next pass is an ordinary incremental update
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("rollups were missing" in r.getMessage() for r in caplog.records)
    async with database.read_sessions() as session:
        watermark = await read_watermark(session)
    assert watermark is not None and watermark.timezone == TZ and "week" in watermark.grains
    query = MetricQuery(("revenue",), PeriodSpec.last_n_days(10), grain="day")
    now = datetime.now(UTC)
    from_rollups = await run_query(database, query, now=now, business_tz=TZ)
    from_raw = await run_query(database, query, now=now, business_tz=TZ, prefer_rollups=False)
    assert from_rollups.source == "rollup"
    assert from_rollups.series[0].total == pytest.approx(from_raw.series[0].total)

    # A change of business timezone makes the rollups wrong: they are rebuilt for the new zone.
    moved = build_container(Settings(database_url=database_url, business_timezone="America/New_York"))
    await BackgroundServices(moved).refresh_rollups()
    async with database.read_sessions() as session:
        rebuilt = await read_watermark(session)
    assert rebuilt is not None and rebuilt.timezone == "America/New_York"
    await moved.close()
    await container.close()


def test_a_job_on_its_first_pass_is_not_reported_as_trouble() -> None:
    from reports.heartbeats import BackgroundHealth, JobStatus, ProcessBeat

    now = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    process = ProcessBeat("a:1:web", "web", now - timedelta(seconds=8), now - timedelta(seconds=8), False)
    jobs = (
        JobStatus("delivery", "starting", "starting: no pass finished yet", 1),
        JobStatus("notifications", "ok", "ok, last success 8 s ago", 1),
    )
    health = BackgroundHealth(now, (process,), jobs)
    assert health.all_ok
    assert health.headline() == (
        "1 worker process running; the other jobs are ok, these are on their first pass: delivery."
    )
    late = BackgroundHealth(now, (process,), (*jobs, JobStatus("rollups", "late", "late: ...", 1)))
    assert not late.all_ok and late.headline() == "1 worker process running; needs a look: rollups."


async def test_the_retention_pass_keeps_the_partitions_once_and_logs_the_boundary_it_applied(
    database_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With SWITCHBOARD_MESSAGE_RETENTION_MONTHS=1 and a reminder planned two months ago still to be sent,
    the pass drops the older month only, and its log names that earlier boundary, not the setting's."""
    from storage import partitions

    container = build_container(
        Settings(database_url=database_url, business_timezone=TZ, message_retention_months=1)
    )
    database = container.database
    now = datetime.now(UTC)
    three_back, two_back = month_of(now, -3), month_of(now, -2)

    def message(n: int, created_at: datetime, status: str) -> dict[str, object]:
        return {
            "channel": "sms",
            "provider": "twilio",
            "direction": "outbound",
            "source": "notification",
            "source_ref": f"retention-{n}",
            "category": "transactional",
            "idempotency_key": f"notification:retention-{n}:sms",
            "to_address": f"+4915100000{n:03d}",
            "body": "Your appointment",
            "status": status,
            "attempts": 0,
            "created_at": created_at + timedelta(days=3),
            "next_attempt_at": now + timedelta(days=30),
        }

    async with database.sessions() as session:
        await session.execute(
            insert(CustomerCommunication),
            [message(1, three_back, "delivered"), message(2, two_back, "planned"), message(3, now, "sent")],
        )
        await session.commit()
    passes = 0
    keep = partitions.keep_month_partitions

    async def counted(*args: object) -> partitions.PartitionPass:
        nonlocal passes
        passes += 1
        return await keep(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(partitions, "keep_month_partitions", counted)
    with caplog.at_level(logging.INFO, logger="switchboard.background"):
        await BackgroundServices(container).apply_retention()
    async with database.sessions() as session:
        left = sorted(await session.scalars(select(CustomerCommunication.source_ref)))
    await container.close()

    assert left == ["retention-2", "retention-3"]
    assert passes == 1
    said = caplog.text
    assert f"retention: dropped 1 created before {two_back:%Y-%m-%d} with their status history" in said
    assert f"kept from {two_back:%Y-%m} on: a message created then is still to be sent" in said


async def test_a_business_without_slack_or_telegram_starts_its_web_and_worker_and_is_told_they_are_off(
    database_url: str,
) -> None:
    """The example environment file leaves the Slack and Telegram tokens empty: every process still starts,
    Slack's endpoint says it is off, and a report or message for Telegram fails in words, calling nobody."""
    from litestar.testing import AsyncTestClient

    from api.app import create_app
    from reports.destinations import DeliveryFailed, RenderedReport
    from switchboard.background import report_destinations

    settings = Settings(
        database_url=database_url,
        business_timezone=TZ,
        slack_bot_token="",  # type: ignore[arg-type]
        slack_signing_secret="",  # type: ignore[arg-type]
        telegram_bot_token="",  # type: ignore[arg-type]
    )
    assert not settings.slack_configured
    async with AsyncTestClient(create_app(settings)) as web:
        assert (await web.get("/healthz")).status_code == 200
        slack = await web.post("/slack/events", content=b"{}")
        assert slack.status_code == 503 and "Slack is not configured" in slack.text
    container = build_container(settings)
    worker = BackgroundServices(container)
    await worker.start()
    said: list[str] = []
    listener = logging.Handler(logging.INFO)
    listener.emit = lambda record: said.append(record.getMessage())  # type: ignore[method-assign]
    background_log = logging.getLogger("switchboard.background")
    background_log.addHandler(listener)
    level = background_log.level
    background_log.setLevel(logging.INFO)
    try:
        await worker.stop()
    finally:
        background_log.removeHandler(listener)
        background_log.setLevel(level)
    assert any(line.endswith("the rest go back unsent for another worker") for line in said), said
    assert any(
        re.search(r"stopped in \d+\.\d s: 0 sent and 0 put back unsent since it started$", line)
        for line in said
    )
    telegram = report_destinations(container)["telegram"]
    report = RenderedReport(
        title="Revenue",
        summary="Revenue was €1.",
        png=None,
        csv=None,
        due_at=datetime.now(UTC),
        late=False,
        filename_stem="revenue",
        timezone="Europe/Berlin",
        figures="Revenue: €1",
    )
    with pytest.raises(DeliveryFailed, match="Telegram is off: SWITCHBOARD_TELEGRAM_BOT_TOKEN is empty"):
        await telegram.deliver("12345", report)
    await container.close()
