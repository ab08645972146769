"""Operational figures: Prometheus exposition at /metrics and periodic snapshots into performance_metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from litestar.testing import AsyncTestClient
from sqlalchemy import insert, select

from api.app import create_app
from storage.database import Database
from storage.models import CustomerCommunication, PerformanceMetric, WebhookInbox
from switchboard.settings import Settings
from switchboard.wiring import build_container


async def add_outbox(database: Database, now: datetime) -> None:
    rows = [
        {
            "channel": channel,
            "provider": "twilio",
            "direction": "outbound",
            "source": "manual",
            "category": "marketing",
            "idempotency_key": f"k{i}{channel}",
            "to_address": "+4915100000000",
            "body": "x",
            "status": status,
            "next_attempt_at": now - timedelta(seconds=30),
            "attempts": 0,
            "created_at": now,
        }
        for i, (channel, status) in enumerate(
            [("sms", "planned")] * 3 + [("email", "sending")] + [("sms", "queued")] + [("sms", "dead")] * 2
        )
    ]
    async with database.engine.begin() as connection:
        await connection.execute(insert(CustomerCommunication), rows)
        await connection.execute(
            insert(WebhookInbox),
            [
                {
                    "provider": "twilio",
                    "kind": "status",
                    "dedupe_key": "a",
                    "status": "failed",
                    "body": "{}",
                    "received_at": now,
                }
            ],
        )


async def test_metrics_endpoint_exposes_queue_depth_latency_and_webhook_figures(database_url: str) -> None:
    settings = Settings(database_url=database_url)
    container = build_container(settings)
    now = datetime.now(UTC)
    await add_outbox(container.database, now)
    await container.database.dispose()  # the test client runs the app on its own event loop
    container.metrics.observe_send("sms", "twilio", "accepted", 0.042)
    app = create_app(settings, container)
    async with AsyncTestClient(app) as client:
        response = await client.get("/metrics")
    await container.close()
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"  # charset once
    text = response.text
    assert 'switchboard_outbox_depth{channel="sms",status="planned"} 3.0' in text
    assert 'switchboard_outbox_depth{channel="email",status="sending"} 1.0' in text
    # Nothing waits on WhatsApp: 0, not an absent series an alert's max() would skip.
    assert 'switchboard_outbox_depth{channel="whatsapp",status="planned"} 0.0' in text
    assert 'switchboard_provider_calls_total{channel="sms",outcome="accepted",provider="twilio"} 1.0' in text
    assert 'switchboard_provider_latency_seconds_bucket{le="0.05",provider="twilio"} 1.0' in text
    assert "switchboard_webhook_failed 1.0" in text
    assert "switchboard_outbox_dead 2.0" in text
    oldest = next(
        line for line in text.splitlines() if line.startswith("switchboard_outbox_oldest_due_seconds ")
    )
    assert float(oldest.split()[1]) >= 29


async def test_metrics_need_the_token_when_one_is_set(database_url: str) -> None:
    settings = Settings(database_url=database_url, metrics_token="scrape-me")  # type: ignore[arg-type]
    app = create_app(settings)
    async with AsyncTestClient(app) as client:
        missing = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        right = await client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert "switchboard_outbox_depth" not in missing.text
    assert "switchboard_outbox_depth" in right.text


async def test_snapshots_are_recorded_for_trends(database: Database) -> None:
    from reports.performance import OperationalMetrics

    now = datetime.now(UTC)
    await add_outbox(database, now)
    stored = await OperationalMetrics().record_snapshot(database, now)
    async with database.sessions() as session:
        rows = (await session.scalars(select(PerformanceMetric))).all()
    assert stored == len(rows) and stored >= 4
    depth = {
        (r.labels.get("status"), r.labels.get("channel")): r.value for r in rows if r.name == "outbox_depth"
    }
    assert depth[("planned", "sms")] == 3


async def test_metrics_tell_which_background_jobs_are_ok(database: Database) -> None:
    from reports.heartbeats import JobHealth, JobRecord, write_heartbeat
    from reports.performance import OperationalMetrics

    now = datetime.now(UTC)
    health = JobHealth(lambda: now)
    health.jobs.update(
        {
            "delivery": JobRecord(5, last_success_at=now - timedelta(seconds=3)),
            "rollups": JobRecord(
                60, last_failure_at=now, failing_since=now - timedelta(minutes=4), last_error="x"
            ),
        }
    )
    async with database.sessions() as session:
        await write_heartbeat(session, "w:1:worker", "worker", now, health, pid=1)
        await session.commit()
    metrics = OperationalMetrics()
    await metrics.refresh(database, now)
    text = metrics.exposition().decode()
    assert 'switchboard_background_job_ok{job="delivery"} 1.0' in text
    assert 'switchboard_background_job_ok{job="rollups"} 0.0' in text
    assert 'switchboard_background_job_ok{job="daily insight"} 0.0' in text  # not running at all
    assert 'switchboard_background_job_seconds_since_success{job="delivery"} 3.0' in text
    assert 'job_seconds_since_success{job="rollups"}' not in text  # it never succeeded
