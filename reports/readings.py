"""Trend readings of headline KPIs: change, moving average, forecast, anomalies and what drove the change."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from reports.metrics import get_metric
from reports.money import is_money, plan_money
from reports.periods import PeriodSpec
from reports.query import MetricQuery, run_query
from reports.trends import (
    TrendReading,
    anomalies,
    change_pct,
    describe_contributors,
    moving_average,
    seasonal_naive_forecast,
    summarise,
    top_contributors,
)
from storage.database import Database

#: The KPIs read every day, each with the dimension whose values explain its moves.
HEADLINE_TRENDS: tuple[tuple[str, str], ...] = (
    ("revenue", "source_channel"),
    ("orders", "source_channel"),
    ("messages_sent", "channel"),
    ("appointments", "location"),
)


async def read_trend(
    database: Database,
    metric_name: str,
    dimension: str,
    *,
    now: datetime,
    business_tz: str,
    days: int = 90,
    locale: str = "en_GB",
    currency: str = "EUR",
) -> TrendReading:
    """The last `days` complete days of one KPI against the days before, with its daily shape and drivers."""
    metric = get_metric(metric_name)
    period = PeriodSpec.last_n_days(days)
    whole = MetricQuery((metric.name,), period, comparison="previous_period")
    if is_money(metric):  # one currency only; the others are never added in
        plan = await plan_money(
            database, metric, whole, now=now, business_tz=business_tz, business_currency=currency
        )
        whole, currency = plan.query, plan.currency
    daily = await run_query(database, replace(whole, grain="day"), now=now, business_tz=business_tz)
    split = await run_query(
        database, replace(whole, dimensions=(dimension,)), now=now, business_tz=business_tz
    )
    series = daily.series[0]
    values = [value for _, value in series.points]
    current = {s.dimension_value or "": s.total or 0.0 for s in split.series}
    previous = {s.dimension_value or "": s.comparison_total or 0.0 for s in split.series}
    drivers = top_contributors(current, previous) if metric.aggregation in ("sum", "count") else []
    note = f"; {describe_contributors(drivers, locale=locale)}" if drivers else ""
    summary = summarise(
        metric,
        series.total,
        period_label=daily.range.label,
        timezone=business_tz,
        previous=series.comparison_total,
        previous_label=daily.comparison_range.label if daily.comparison_range else None,
        locale=locale,
        currency=currency if metric.unit == "currency" else None,
    )
    return TrendReading(
        metric=metric.name,
        grain="day",
        dimension=dimension,
        period_start=daily.range.start,
        period_end=daily.range.end,
        change_pct=change_pct(series.total, series.comparison_total),
        moving_average=moving_average(values, 7),
        forecast=seasonal_naive_forecast(values),
        anomalies=anomalies(values),
        contributors=drivers,
        summary=summary.rstrip(".") + note + ".",
    )
