"""Real-time operational figures: outbox depth, send rate and outcomes, provider latency, webhook lag, report runs.

Counters and latencies are observed in-process as they happen; depths and lags are read from the
database when asked (on each `/metrics` scrape and on each periodic snapshot into `performance_metrics`).
`read_operations` gathers the same figures, and the send rate and provider errors, typed for the
performance page.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import Row, case, func, select

from domain.vocabulary import OUTBOUND_CHANNELS, MessageStatus
from reports.heartbeats import read_background_health
from storage.analytics.rollup_store import read_watermark
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
        #: Only what this process observes as it happens (its provider calls): what a worker, which serves
        #: no pages, exports on SWITCHBOARD_WORKER_METRICS_ADDRESS. The database-backed figures come from any
        #: web process's /metrics, so they are not counted once per worker.
        self.process_registry = CollectorRegistry()
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
        self.process_registry.register(self.sends)
        self.process_registry.register(self.latency)
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
        self.dead = Gauge(
            "switchboard_outbox_dead",
            "Messages given up on (dead letters), all time: alert on its increase",
            registry=self.registry,
        )
        self.report_run = Gauge(
            "switchboard_report_delivery_seconds_p50",
            "Median seconds from claim to delivery of scheduled reports (last 24 h)",
            registry=self.registry,
        )
        self.job_ok = Gauge(
            "switchboard_background_job_ok",
            "1 while a background job runs and its last pass succeeded in time, else 0 (see `status`)",
            ["job"],
            registry=self.registry,
        )
        self.job_since_success = Gauge(
            "switchboard_background_job_seconds_since_success",
            "Seconds since the job's last successful pass in any running worker process",
            ["job"],
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
            # Every status and channel has a value, 0 when nothing waits, so an alert's max() is 0, not absent.
            for status in ("planned", "sending"):
                for each in OUTBOUND_CHANNELS:
                    self.outbox_depth.labels(status, each.value).set(0)
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
            # Counted on the (status, next_attempt_at) index alone.
            dead = await session.scalar(
                select(func.count()).select_from(cc).where(cc.status == MessageStatus.DEAD.value)
            )
            self.dead.set(dead or 0)
            figures.append(Figure("outbox_dead", {}, float(dead or 0)))
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
        health = await read_background_health(database, now)
        self.job_ok.clear()
        self.job_since_success.clear()
        for job in health.jobs:
            self.job_ok.labels(job.job).set(1.0 if job.state in ("ok", "starting") else 0.0)
            if job.last_success_at is not None:
                self.job_since_success.labels(job.job).set((now - job.last_success_at).total_seconds())
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


# --- the performance page's view -------------------------------------------------------------------

#: Send rate and provider errors only look at messages created this recently, so the created_at index
#: bounds the scan; a message deferred longer than this before it was sent is not counted.
RECENT_MESSAGES = timedelta(days=2)
ERROR_WINDOW = timedelta(hours=24)
FAILED_STATUSES = ("failed", "undelivered", "dead")
#: How many of the latest periodic snapshots the page lists.
SNAPSHOTS_SHOWN = 12


@dataclass(frozen=True)
class ChannelFlow:
    """One channel's outbox right now and how fast it has been handed to its provider."""

    channel: str
    due_now: int
    scheduled_later: int
    sending: int
    sent_last_5_minutes: int
    sent_last_hour: int

    @property
    def per_minute(self) -> float:
        """Messages handed to the provider per minute, over the last five minutes."""
        return self.sent_last_5_minutes / 5


@dataclass(frozen=True)
class ProviderErrors:
    """Outbound messages of one provider whose outcome (handed over, or failed) fell in the error window."""

    provider: str
    outcomes: int
    failed: int
    top_error_code: str | None
    top_error_count: int

    @property
    def error_rate(self) -> float | None:
        return self.failed / self.outcomes if self.outcomes else None


@dataclass(frozen=True)
class ProviderLatency:
    """Provider send calls made by this process since it started."""

    provider: str
    calls: int
    mean_seconds: float
    #: The smallest histogram bound that 95 % of the calls stayed under; None when it is above the last.
    p95_under_seconds: float | None


@dataclass(frozen=True)
class WebhookLag:
    provider: str
    last_received_at: datetime


@dataclass(frozen=True)
class Snapshot:
    recorded_at: datetime
    waiting: int
    oldest_due_seconds: float | None
    failed_webhooks: int | None


@dataclass(frozen=True)
class OperationsView:
    now: datetime
    channels: tuple[ChannelFlow, ...]
    oldest_due_at: datetime | None
    providers: tuple[ProviderErrors, ...]
    latency: tuple[ProviderLatency, ...]
    webhooks: tuple[WebhookLag, ...]
    failed_webhooks: int
    reports_delivered: int
    reports_failed: int
    report_median_seconds: float | None
    rollups_as_of: datetime | None
    snapshots: tuple[Snapshot, ...]

    @property
    def waiting(self) -> int:
        return sum(c.due_now + c.scheduled_later + c.sending for c in self.channels)

    @property
    def oldest_due_seconds(self) -> float | None:
        return (
            None if self.oldest_due_at is None else max(0.0, (self.now - self.oldest_due_at).total_seconds())
        )


def latency_by_provider(metrics: OperationalMetrics) -> tuple[ProviderLatency, ...]:
    """Mean and 95th-percentile bound of this process's provider calls, from the latency histogram."""
    counts: dict[str, float] = {}
    sums: dict[str, float] = {}
    buckets: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for metric in metrics.latency.collect():
        for sample in metric.samples:
            provider = sample.labels.get("provider", "")
            if sample.name.endswith("_count"):
                counts[provider] = sample.value
            elif sample.name.endswith("_sum"):
                sums[provider] = sample.value
            elif sample.name.endswith("_bucket"):
                buckets[provider].append((float(sample.labels["le"]), sample.value))
    found = []
    for provider, calls in sorted(counts.items()):
        if not calls:
            continue
        bound = next((le for le, seen in sorted(buckets[provider]) if seen >= 0.95 * calls), None)
        found.append(
            ProviderLatency(
                provider,
                int(calls),
                sums.get(provider, 0.0) / calls,
                None if bound == float("inf") else bound,
            )
        )
    return tuple(found)


async def read_operations(database: Database, metrics: OperationalMetrics, now: datetime) -> OperationsView:
    """The figures of the performance page, each from an indexed query (or this process's own counters)."""
    cc = CustomerCommunication
    recent = cc.created_at >= now - RECENT_MESSAGES
    async with database.read_sessions() as session:
        queue = (
            await session.execute(
                select(cc.channel, cc.status, func.count(case((cc.next_attempt_at <= now, 1))), func.count())
                .where(cc.status.in_(["planned", "sending"]))
                .group_by(cc.channel, cc.status)
            )
        ).all()
        sent = (
            await session.execute(
                select(
                    cc.channel,
                    func.count(case((cc.sent_at >= now - timedelta(minutes=5), 1))),
                    func.count(),
                )
                .where(recent, cc.direction == "outbound", cc.sent_at >= now - timedelta(hours=1))
                .group_by(cc.channel)
            )
        ).all()
        oldest = await session.scalar(
            select(func.min(cc.next_attempt_at)).where(cc.status == "planned", cc.next_attempt_at <= now)
        )
        outcome_at = func.coalesce(cc.sent_at, cc.failed_at)
        # Grouped by an expression, not the column: SQLite would otherwise read the whole provider-ordered
        # index to group by provider (1.6 s at 2.5M messages) instead of the last two days by creation time.
        by_provider = func.coalesce(cc.provider, "")
        outcomes = (
            await session.execute(
                select(by_provider, func.count(), func.count(case((cc.status.in_(FAILED_STATUSES), 1))))
                .where(recent, cc.direction == "outbound", outcome_at >= now - ERROR_WINDOW)
                .group_by(by_provider)
            )
        ).all()
        codes = (
            await session.execute(
                select(by_provider, cc.error_code, func.count())
                .where(
                    recent,
                    cc.direction == "outbound",
                    outcome_at >= now - ERROR_WINDOW,
                    # Not the status index (every failure ever): the last two days by creation time.
                    func.coalesce(cc.status, "").in_(FAILED_STATUSES),
                    cc.error_code.is_not(None),
                )
                .group_by(by_provider, cc.error_code)
            )
        ).all()
        lags = (
            await session.execute(
                select(WebhookInbox.provider, func.max(WebhookInbox.received_at)).group_by(
                    WebhookInbox.provider
                )
            )
        ).all()
        failed_webhooks = await session.scalar(
            select(func.count()).select_from(WebhookInbox).where(WebhookInbox.status == "failed")
        )
        runs = (
            await session.execute(
                select(ReportDelivery.status, ReportDelivery.claimed_at, ReportDelivery.delivered_at).where(
                    ReportDelivery.claimed_at >= now - timedelta(days=1)
                )
            )
        ).all()
        watermark = await read_watermark(session)
        history = (
            await session.execute(
                select(PerformanceMetric.recorded_at, PerformanceMetric.name, PerformanceMetric.value)
                .where(
                    PerformanceMetric.name.in_(
                        ["outbox_depth", "outbox_oldest_due_seconds", "webhook_failed"]
                    ),
                    PerformanceMetric.recorded_at >= now - timedelta(hours=6),
                )
                .order_by(PerformanceMetric.recorded_at.desc())
            )
        ).all()

    flows: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for channel, status, due, count in queue:
        if status == "sending":
            flows[channel]["sending"] += count
        else:
            flows[channel]["due_now"] += due
            flows[channel]["scheduled_later"] += count - due
    for channel, last_5, last_hour in sent:
        flows[channel]["sent_last_5_minutes"] += last_5
        flows[channel]["sent_last_hour"] += last_hour
    top: dict[str, tuple[str, int]] = {}
    for provider, code, count in codes:
        if provider not in top or (count, code) > (top[provider][1], top[provider][0]):
            top[provider] = (str(code), int(count))
    durations = sorted((d - c).total_seconds() for status, c, d in runs if status == "delivered" and c and d)
    return OperationsView(
        now=now,
        channels=tuple(
            ChannelFlow(
                channel,
                f["due_now"],
                f["scheduled_later"],
                f["sending"],
                f["sent_last_5_minutes"],
                f["sent_last_hour"],
            )
            for channel, f in sorted(flows.items())
        ),
        oldest_due_at=oldest,
        providers=tuple(
            ProviderErrors(provider, int(total), int(failed), *top.get(provider, (None, 0)))
            for provider, total, failed in sorted(outcomes)
        ),
        latency=latency_by_provider(metrics),
        webhooks=tuple(WebhookLag(provider, last) for provider, last in sorted(lags) if last is not None),
        failed_webhooks=int(failed_webhooks or 0),
        reports_delivered=sum(1 for status, _, _ in runs if status == "delivered"),
        reports_failed=sum(1 for status, _, _ in runs if status == "failed"),
        report_median_seconds=durations[len(durations) // 2] if durations else None,
        rollups_as_of=watermark.as_of if watermark else None,
        snapshots=_snapshots(history),
    )


def _snapshots(history: Sequence[Row[datetime, str, float]]) -> tuple[Snapshot, ...]:
    waiting: dict[datetime, float] = defaultdict(float)
    oldest: dict[datetime, float] = {}
    failed: dict[datetime, float] = {}
    for recorded_at, name, value in history:
        if name == "outbox_depth":
            waiting[recorded_at] += value
        elif name == "outbox_oldest_due_seconds":
            oldest[recorded_at] = value
        else:
            failed[recorded_at] = value
    moments = sorted(waiting.keys() | oldest.keys() | failed.keys(), reverse=True)[:SNAPSHOTS_SHOWN]
    return tuple(
        Snapshot(
            moment,
            int(waiting.get(moment, 0)),
            oldest.get(moment),
            int(failed[moment]) if moment in failed else None,
        )
        for moment in moments
    )
