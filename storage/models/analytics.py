"""Analytics tables: metric definitions, rollups, reports, dashboards, insight, trends and schedules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, BigId, Json, one_of, utcnow

GRAINS = ["hour", "day", "week", "month", "quarter"]
DELIVERY_STATUSES = ["claimed", "sending", "delivered", "retrying", "failed", "skipped"]


class KpiMetric(Base):
    """A KPI's definition as registered in code, mirrored here so reports and the dashboard can list it."""

    __tablename__ = "kpi_metrics"
    __table_args__ = (
        CheckConstraint(
            one_of("unit", ["currency", "percent", "count", "duration", "number"]), name="unit_known"
        ),
        CheckConstraint(
            one_of("direction", ["up_is_good", "down_is_good", "neutral"]), name="direction_known"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text)
    unit: Mapped[str] = mapped_column(String(16))
    aggregation: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(64))
    dimensions: Mapped[list[Any]] = mapped_column(default=list)
    grains: Mapped[list[Any]] = mapped_column(default=list)
    direction: Mapped[str] = mapped_column(String(16))
    target: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AnalyticsData(Base):
    """Pre-aggregated metric values per grain, bucket and dimension value (the rollups).

    Ratios keep numerator and denominator so buckets add up correctly; `dimension` is '' for the total.
    """

    __tablename__ = "analytics_data"
    __table_args__ = (
        UniqueConstraint("metric", "grain", "dimension", "bucket_start", "dimension_value"),
        CheckConstraint(one_of("grain", GRAINS), name="grain_known"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    metric: Mapped[str] = mapped_column(String(64))
    grain: Mapped[str] = mapped_column(String(8))
    bucket_start: Mapped[datetime]
    dimension: Mapped[str] = mapped_column(String(32), default="")
    dimension_value: Mapped[str] = mapped_column(String(128), default="")
    numerator: Mapped[float] = mapped_column(Float, default=0.0)
    denominator: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CustomerActivityDay(Base):
    """Which customers placed a counted order on one local business day, as a bitset of customer ids.

    Bit i of `customers` (little-endian bytes) is customer id i. Distinct customers over any run of whole
    days are the union of the days' sets, so active, returning and churned customers are read from these
    rows instead of the period's orders. Kept with the rollups (same timezone, same refresh) and recounted
    by `switchboard analytics verify`.
    """

    __tablename__ = "customer_activity_days"

    #: The UTC instant the local day starts (like analytics_data.bucket_start at day grain).
    day_start: Mapped[datetime] = mapped_column(primary_key=True)
    customers: Mapped[bytes] = mapped_column(LargeBinary)
    customer_count: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CustomReport(Base):
    """A saved report: a query definition plus a chart spec, owned by a user and optionally shared."""

    __tablename__ = "custom_reports"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    definition: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DashboardConfig(Base):
    """A user's dashboard layout: which widgets, where, for which period."""

    __tablename__ = "dashboard_configs"
    __table_args__ = (UniqueConstraint("owner_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64), default="default")
    page: Mapped[str] = mapped_column(String(32), default="executive")
    period: Mapped[str] = mapped_column(String(32), default="last_30_days")
    layout: Mapped[list[Any]] = mapped_column(default=list)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BusinessIntelligence(Base):
    """A computed cross-system analysis (attribution, cost vs revenue, cohort retention) and its summary."""

    __tablename__ = "business_intelligence"
    __table_args__ = (Index("ix_business_intelligence_kind", "kind", "computed_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    summary: Mapped[str] = mapped_column(Text, default="")
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)


class PerformanceMetric(Base):
    """An operational figure sampled over time: queue depth, send rate, provider latency, webhook lag."""

    __tablename__ = "performance_metrics"
    __table_args__ = (Index("ix_performance_metrics_name", "name", "recorded_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    value: Mapped[float] = mapped_column(Float)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class TrendAnalysis(Base):
    """A stored trend reading of one metric: change, moving average, forecast and anomalies."""

    __tablename__ = "trend_analysis"
    __table_args__ = (Index("ix_trend_analysis_metric", "metric", "computed_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    metric: Mapped[str] = mapped_column(String(64))
    grain: Mapped[str] = mapped_column(String(8))
    dimension: Mapped[str] = mapped_column(String(32), default="")
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    change_pct: Mapped[float | None] = mapped_column(Float)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    summary: Mapped[str] = mapped_column(Text, default="")
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReportSchedule(Base):
    """When a report is delivered, where to, and what to do about runs missed while we were down."""

    __tablename__ = "report_schedules"
    __table_args__ = (
        CheckConstraint(one_of("destination_kind", ["slack", "telegram", "email"]), name="destination_known"),
        CheckConstraint(one_of("missed_run_policy", ["skip", "deliver_late_once"]), name="policy_known"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("custom_reports.id", ondelete="CASCADE"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    cron: Mapped[str] = mapped_column(String(64))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    destination_kind: Mapped[str] = mapped_column(String(16))
    destination: Mapped[str] = mapped_column(String(254))
    attach_csv: Mapped[bool] = mapped_column(Boolean, default=False)
    missed_run_policy: Mapped[str] = mapped_column(String(24), default="deliver_late_once")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    next_due_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: This recipient's own filter values, added to the report's ({"dimension", "operator", "value"} each):
    #: each clinic manager gets their clinic. None or empty: the report as saved.
    filters: Mapped[list[Any] | None] = mapped_column(Json)


class ReportDelivery(Base):
    """The delivery log and the claim: one row per (schedule, due time, destination), so one process delivers.

    A claim is a lease: `claimed_by` holds the run until `claimed_until`; a holder that dies leaves a
    claim that expires, and another process takes it over (counting an attempt). `sending` says the
    destination may already have the report, so a takeover of it says so in `takeover_note`.

    A removed schedule's finished runs stay in the log under their report (`report_id`, `schedule_words`,
    `schedule_id` NULL); its unfinished ones go with it.
    """

    __tablename__ = "report_deliveries"
    __table_args__ = (
        UniqueConstraint("schedule_id", "due_at", "destination"),
        CheckConstraint(one_of("status", DELIVERY_STATUSES), name="status_known"),
        Index("ix_report_deliveries_open", "status", "claimed_until"),
        Index("ix_report_deliveries_report", "report_id", "due_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: NULL once its schedule was removed (`report_id` and `schedule_words` then say whose run it was).
    schedule_id: Mapped[int | None] = mapped_column(ForeignKey("report_schedules.id", ondelete="SET NULL"))
    #: Set when its schedule is removed: the report the run was of (the log goes when the report does).
    report_id: Mapped[int | None] = mapped_column(ForeignKey("custom_reports.id", ondelete="CASCADE"))
    #: Set when its schedule is removed: what the schedule was, in words ("every Monday at 08:00, Europe/Berlin").
    schedule_words: Mapped[str | None] = mapped_column(String(300))
    due_at: Mapped[datetime]
    destination: Mapped[str] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(16), default="claimed")
    claimed_by: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(String(500))
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Claimed or sending: when the holder's lease ends. Retrying: when the next attempt is due.
    claimed_until: Mapped[datetime | None]
    #: Why another process took the run over, and whether an earlier attempt may have delivered it.
    takeover_note: Mapped[str | None] = mapped_column(String(300))
    delivered_at: Mapped[datetime | None]
    #: How many times staff sent the run again (Send again); a report email's Message-ID carries it, so a
    #: late bounce of an earlier sending does not fail the later one.
    sent_again: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    #: Its email bounced after it was recorded delivered, and the schedule's owner is still to hear of it.
    owner_to_hear: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
