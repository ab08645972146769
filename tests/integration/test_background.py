"""The worker's background jobs, each run once: rollups kept current, campaigns planned to completion, heartbeats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from reports.periods import PeriodSpec
from reports.query import MetricQuery, run_query
from reports.rollups import rebuild_rollups
from storage.models import BulkMessaging, CustomerCommunication, Order, WorkerHeartbeat
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
                created_at=datetime.now(UTC) - timedelta(minutes=1),
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
        await BackgroundServices(container).tell_owner_report_failed(schedule, "channel_not_found")
        await container.close()
        emails = sandbox.state.emails
    assert len(emails) == 1
    assert emails[0].rcpt_tos == ["maria@northwind.example"]
    assert "Weekly revenue" in emails[0].subject and "channel_not_found" in emails[0].text


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
