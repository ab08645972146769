"""Real-time operational figures: outbox depth, send rate and outcomes, provider latency, webhook lag, report runs.

Counters and latencies are observed in-process as they happen; depths and lags are read from the
database when asked (on each `/metrics` scrape and on each periodic snapshot into `performance_metrics`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select

from storage.database import Database
from storage.models import CustomerCommunication, PerformanceMetric, ReportDelivery, WebhookInbox

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class Figure:
    name: str
    labels: dict[str, str]
    value: float


class OperationalMetrics:
    """One per process; the dispatcher reports into it and `/metrics` renders it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.sends = Counter(
            "switchboard_provider_calls",
            "Provider send calls by outcome",
            ["channel", "provider", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "switchboard_provider_latency_seconds",
            "Provider send call latency",
            ["provider"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.outbox_depth = Gauge(
            "switchboard_outbox_depth",
            "Outbox messages waiting, by status and channel",
            ["status", "channel"],
            registry=self.registry,
        )
        self.oldest_due = Gauge(
            "switchboard_outbox_oldest_due_seconds",
            "How long the longest-waiting due message has waited",
            registry=self.registry,
        )
        self.webhook_lag = Gauge(
            "switchboard_webhook_lag_seconds",
            "Seconds since the last webhook received, by provider",
            ["provider"],
            registry=self.registry,
        )
        self.webhook_failed = Gauge(
            "switchboard_webhook_failed", "Webhooks kept for replay after failing", registry=self.registry
        )
        self.report_run = Gauge(
            "switchboard_report_delivery_seconds_p50",
            "Median seconds from claim to delivery of scheduled reports (last 24 h)",
            registry=self.registry,
        )
        self._figures: list[Figure] = []

    def observe_send(self, channel: str, provider: str, outcome: str, seconds: float) -> None:
        self.sends.labels(channel, provider, outcome).inc()
        self.latency.labels(provider).observe(seconds)

    async def refresh(self, database: Database, now: datetime) -> list[Figure]:
        """Reads the database-backed figures (indexed queries only) and updates the gauges."""
        figures: list[Figure] = []
        cc = CustomerCommunication
        async with database.read_sessions() as session:
            depth = await session.execute(
                select(cc.status, cc.channel, func.count())
                .where(cc.status.in_(["planned", "sending"]))
                .group_by(cc.status, cc.channel)
            )
            self.outbox_depth.clear()
            for status, channel, count in depth.all():
                self.outbox_depth.labels(status, channel).set(count)
                figures.append(Figure("outbox_depth", {"status": status, "channel": channel}, float(count)))
            oldest = await session.scalar(
                select(func.min(cc.next_attempt_at)).where(cc.status == "planned", cc.next_attempt_at <= now)
            )
            waited = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
            self.oldest_due.set(waited)
            figures.append(Figure("outbox_oldest_due_seconds", {}, waited))
            lags = await session.execute(
                select(WebhookInbox.provider, func.max(WebhookInbox.received_at)).group_by(
                    WebhookInbox.provider
                )
            )
            for provider, last in lags.all():
                lag = (now - last).total_seconds() if last else 0.0
                self.webhook_lag.labels(provider).set(lag)
                figures.append(Figure("webhook_lag_seconds", {"provider": provider}, lag))
            failed = await session.scalar(
                select(func.count()).select_from(WebhookInbox).where(WebhookInbox.status == "failed")
            )
            self.webhook_failed.set(failed or 0)
            figures.append(Figure("webhook_failed", {}, float(failed or 0)))
            runs = (
                await session.execute(
                    select(ReportDelivery.claimed_at, ReportDelivery.delivered_at).where(
                        ReportDelivery.delivered_at.is_not(None),
                        ReportDelivery.delivered_at >= now - timedelta(days=1),
                    )
                )
            ).all()
            durations = sorted((d - c).total_seconds() for c, d in runs if c and d)
            median = durations[len(durations) // 2] if durations else 0.0
            self.report_run.set(median)
            figures.append(Figure("report_delivery_seconds_p50", {}, median))
        for metric in self.sends.collect():
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    figures.append(Figure("provider_calls_total", dict(sample.labels), sample.value))
        self._figures = figures
        return figures

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    async def record_snapshot(self, database: Database, now: datetime) -> int:
        """Stores the current figures in `performance_metrics` for trend views."""
        figures = await self.refresh(database, now)
        async with database.sessions() as session:
            session.add_all(
                PerformanceMetric(name=f.name, labels=f.labels, value=f.value, recorded_at=now)
                for f in figures
            )
            await session.commit()
        return len(figures)
