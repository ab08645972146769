"""Cross-system analyses: message-to-order attribution, message cost against attributed revenue, cohort retention.

Each analysis returns an Insight: a typed result, the exact period, timezone and parameters it
measured, and one sentence saying so. `store_insight` keeps it in business_intelligence; the caller
commits. Revenue is in the business currency and provider cost in USD; they are never converted.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from babel.dates import format_skeleton
from sqlalchemy.ext.asyncio import AsyncSession

from domain.messages.words import channel_words
from reports.answer import standing_alone
from reports.charts.spec import ChartSpec, Series
from reports.money import format_money
from reports.periods import PeriodSpec, TimeRange, add_months, local_midnight, month_start, zone
from reports.query import resolve_range
from storage.analytics.facts import NO_VALUE
from storage.analytics.insight import (
    MessageFact,
    attributable_messages,
    counted_orders,
    message_costs,
    messaged_customers,
    order_history,
)
from storage.database import Database
from storage.models import BusinessIntelligence

DEFAULT_WINDOW_DAYS = 7
DEFAULT_COHORT_MONTHS = 6
#: Provider prices (customer_communications.cost_micros) are quoted in US dollars.
COST_CURRENCY = "USD"


class InsightResult(Protocol):
    def as_dict(self) -> dict[str, Any]: ...


ResultT = TypeVar("ResultT", bound=InsightResult)


@dataclass(frozen=True)
class Insight(Generic[ResultT]):
    kind: str
    range: TimeRange
    parameters: dict[str, Any]
    result: ResultT
    summary: str
    computed_at: datetime


@dataclass(frozen=True)
class AttributionRow:
    """One channel or campaign: orders and net revenue attributed to it, and the customers it messaged."""

    key: str
    attributed_orders: int
    attributed_revenue: float
    customers_messaged: int
    conversion_rate: float | None


@dataclass(frozen=True)
class AttributionResult:
    window_days: int
    currency: str
    orders: int
    attributed_orders: int
    attributed_revenue: float
    by_channel: tuple[AttributionRow, ...]
    by_campaign: tuple[AttributionRow, ...]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ChannelCostRevenue:
    channel: str
    cost: float
    attributed_revenue: float


@dataclass(frozen=True)
class CostRevenueResult:
    window_days: int
    cost_currency: str
    revenue_currency: str
    total_cost: float
    total_attributed_revenue: float
    by_channel: tuple[ChannelCostRevenue, ...]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CohortRow:
    """Customers whose first counted order fell in `cohort` (a local month), and the share ordering again
    in each later month (index 0 is one month after); None where that month is not complete yet."""

    cohort: date
    customers: int
    retention: tuple[float | None, ...]


@dataclass(frozen=True)
class CohortRetentionResult:
    months: int
    rows: tuple[CohortRow, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "months": self.months,
            "rows": [
                {"cohort": r.cohort.isoformat(), "customers": r.customers, "retention": list(r.retention)}
                for r in self.rows
            ],
        }


def _percent(share: float | None) -> str:
    return "n/a" if share is None else f"{share:.1%}"


def _money(amount: float, currency: str, locale: str) -> str:
    """ "€79,480.23", "US$241.44": as every other answer writes money (the business's locale)."""
    return format_money(amount, currency, locale)


# --- attribution ---------------------------------------------------------------------------------


def last_message_before(
    messages: list[MessageFact], times: list[datetime], moment: datetime, window: timedelta
) -> MessageFact | None:
    """The customer's latest message strictly before `moment` and no more than `window` before it.

    `messages` are one customer's, sorted by (time, channel, campaign); `times` their times.
    """
    position = bisect.bisect_left(times, moment)
    if position == 0:
        return None
    candidate = messages[position - 1]
    return candidate if candidate.created_at >= moment - window else None


async def _attribute(
    database: Database, time_range: TimeRange, window_days: int
) -> tuple[int, dict[str, list[float]], dict[str, list[float]], dict[str, int], dict[str, int]]:
    """(orders, {channel: [orders, revenue]}, {campaign: [orders, revenue]}, messaged by channel, by campaign)."""
    window = timedelta(days=window_days)
    start, end = time_range.start, time_range.end
    async with database.analytics_sessions() as session:
        orders = await counted_orders(session, start, end)
        messages = await attributable_messages(
            session, start - window, end, ordered_from=start, ordered_until=end
        )
        by_channel_messaged, by_campaign_messaged = await messaged_customers(session, start - window, end)

    per_customer: dict[int, list[MessageFact]] = defaultdict(list)
    for message in messages:
        per_customer[message.customer_id].append(message)
    timelines: dict[int, tuple[list[MessageFact], list[datetime]]] = {}
    for customer, own in per_customer.items():
        own.sort(key=lambda m: (m.created_at, m.channel, m.campaign or ""))
        timelines[customer] = (own, [m.created_at for m in own])

    channels: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    campaigns: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for order in orders:
        timeline = timelines.get(order.customer_id)
        if timeline is None:
            continue
        last = last_message_before(*timeline, order.created_at, window)
        if last is None:
            continue
        revenue = order.net_amount_minor / 100
        for totals, key in ((channels, last.channel), (campaigns, last.campaign or NO_VALUE)):
            totals[key][0] += 1
            totals[key][1] += revenue
    return len(orders), channels, campaigns, by_channel_messaged, by_campaign_messaged


def _rows(attributed: dict[str, list[float]], messaged: dict[str, int]) -> tuple[AttributionRow, ...]:
    rows = []
    for key in sorted(attributed.keys() | messaged.keys()):
        orders, revenue = attributed.get(key, [0.0, 0.0])
        reached = messaged.get(key, 0)
        rows.append(
            AttributionRow(
                key, int(orders), round(revenue, 2), reached, orders / reached if reached else None
            )
        )
    return tuple(sorted(rows, key=lambda r: (-r.attributed_revenue, r.key)))


async def campaign_attribution(
    database: Database,
    period: PeriodSpec | TimeRange,
    *,
    now: datetime,
    business_tz: str,
    window_days: int = DEFAULT_WINDOW_DAYS,
    currency: str = "EUR",
    locale: str = "en_GB",
) -> Insight[AttributionResult]:
    """Attribute each counted order placed in the period to the customer's last outbound message (sent,
    delivered or read, by creation time) within `window_days` before it, per channel and per campaign.

    Revenue is net of refunds in the business currency; conversion rate is attributed orders over
    distinct customers messaged from `window_days` before the period start to its end.
    """
    if not 1 <= window_days <= 90:
        raise ValueError(f"attribution window must be 1 to 90 days, got {window_days}")
    time_range = resolve_range(period, now, business_tz)
    orders, channels, campaigns, by_channel, by_campaign = await _attribute(database, time_range, window_days)
    attributed = int(sum(v[0] for v in channels.values()))
    revenue = round(sum(v[1] for v in channels.values()), 2)
    result = AttributionResult(
        window_days,
        currency,
        orders,
        attributed,
        revenue,
        _rows(channels, by_channel),
        _rows(campaigns, by_campaign),
    )
    leader = result.by_channel[0] if result.by_channel and result.by_channel[0].attributed_orders else None
    lead = f"; {channel_words(leader.key)} led with {leader.attributed_orders:,} orders" if leader else ""
    summary = (
        f"Of {orders:,} counted orders placed {time_range.label} ({time_range.timezone}), {attributed:,} "
        f"({_percent(attributed / orders)}) followed an outbound message sent, delivered "
        f"or read to the same customer within {window_days} days before the order, bringing "
        f"{_money(revenue, currency, locale)} net of refunds{lead}."
        if orders
        else f"No counted order was placed {time_range.label} ({time_range.timezone}), so no revenue is "
        "credited to messages."
    )
    parameters = {"window_days": window_days, "currency": currency, "timezone": time_range.timezone}
    return Insight("attribution", time_range, parameters, result, summary, datetime.now(UTC))


# --- cost vs revenue -----------------------------------------------------------------------------


async def cost_vs_revenue(
    database: Database,
    period: PeriodSpec | TimeRange,
    *,
    now: datetime,
    business_tz: str,
    window_days: int = DEFAULT_WINDOW_DAYS,
    currency: str = "EUR",
    locale: str = "en_GB",
) -> Insight[CostRevenueResult]:
    """Provider cost of outbound messages created in the period (USD) next to the order revenue attributed
    to each channel (business currency, net of refunds); the currencies are reported, not converted."""
    attribution = await campaign_attribution(
        database,
        period,
        now=now,
        business_tz=business_tz,
        window_days=window_days,
        currency=currency,
        locale=locale,
    )
    time_range = attribution.range
    async with database.analytics_sessions() as session:
        costs = await message_costs(session, time_range.start, time_range.end)
    revenue = {row.key: row.attributed_revenue for row in attribution.result.by_channel}
    rows = tuple(
        ChannelCostRevenue(channel, round(costs.get(channel, 0) / 1_000_000, 6), revenue.get(channel, 0.0))
        for channel in sorted(costs.keys() | revenue.keys())
    )
    total_cost = round(sum(r.cost for r in rows), 6)
    total_revenue = round(sum(r.attributed_revenue for r in rows), 2)
    result = CostRevenueResult(window_days, COST_CURRENCY, currency, total_cost, total_revenue, rows)
    summary = (
        f"Outbound messages created {time_range.label} ({time_range.timezone}) cost "
        f"{_money(total_cost, COST_CURRENCY, locale)} in provider fees, against "
        f"{_money(total_revenue, currency, locale)} of "
        f"order revenue net of refunds attributed to them within {window_days} days; the two currencies are "
        "shown side by side, not converted."
    )
    parameters = {
        "window_days": window_days,
        "cost_currency": COST_CURRENCY,
        "revenue_currency": currency,
        "timezone": time_range.timezone,
    }
    return Insight("cost_vs_revenue", time_range, parameters, result, summary, datetime.now(UTC))


# --- cohort retention ----------------------------------------------------------------------------


def _months_between(first: date, later: date) -> int:
    return (later.year - first.year) * 12 + later.month - first.month


async def cohort_retention(
    database: Database,
    period: PeriodSpec | TimeRange,
    *,
    now: datetime,
    business_tz: str,
    months: int = DEFAULT_COHORT_MONTHS,
) -> Insight[CohortRetentionResult]:
    """Cohorts are local months of a customer's first counted order, for first orders in the period;
    cell k is the share of the cohort with a counted order in the k-th calendar month after it,
    counted only for months complete by the period end (None otherwise)."""
    if not 1 <= months <= 36:
        raise ValueError(f"cohort retention covers 1 to 36 months, got {months}")
    time_range = resolve_range(period, now, business_tz)
    local = zone(time_range.timezone)
    async with database.analytics_sessions() as session:
        history = await order_history(session, time_range.end)

    first_month: dict[int, date] = {}
    active: set[tuple[int, date]] = set()
    for customer, moment in history:
        month = month_start(moment.astimezone(local).date())
        first_month.setdefault(customer, month)
        active.add((customer, month))
    cohorts: dict[date, list[int]] = defaultdict(list)
    first_cohort = month_start(time_range.first_day)  # a period starting mid-month keeps that month's cohort
    for customer, month in first_month.items():
        if first_cohort <= month <= time_range.last_day:
            cohorts[month].append(customer)

    rows = []
    for cohort in sorted(cohorts):
        members = cohorts[cohort]
        cells: list[float | None] = []
        for k in range(1, months + 1):
            month = add_months(cohort, k)
            if local_midnight(add_months(month, 1), time_range.timezone) > time_range.end:
                cells.append(None)
                continue
            again = sum(1 for customer in members if (customer, month) in active)
            cells.append(again / len(members))
        rows.append(CohortRow(cohort, len(members), tuple(cells)))

    result = CohortRetentionResult(months, tuple(rows))
    customers = sum(r.customers for r in rows)
    measured = [(r.customers, r.retention[0]) for r in rows if r.retention and r.retention[0] is not None]
    base = sum(n for n, _ in measured)
    next_month = sum(n * (share or 0.0) for n, share in measured) / base if base else None
    summary = (
        f"No customer placed a first counted order in {time_range.label} ({time_range.timezone}), so there are "
        "no cohorts to follow yet."
        if not rows
        else f"Of {customers:,} customers whose first counted order fell {time_range.label} ({time_range.timezone}), "
        f"grouped into {len(rows)} monthly cohorts, "
        + (
            "none had a complete month after their first by the period's end, so no share is measured yet."
            if next_month is None
            else f"{_percent(next_month)} ordered again in the calendar month after their first; each cell is "
            f"the share of a cohort ordering in the k-th month after, for up to {months} complete months."
        )
    )
    parameters = {"months": months, "timezone": time_range.timezone}
    return Insight("cohort_retention", time_range, parameters, result, summary, datetime.now(UTC))


# --- storing and charts --------------------------------------------------------------------------


async def store_insight(session: AsyncSession, insight: Insight[Any]) -> BusinessIntelligence:
    """Add the insight to business_intelligence and flush; committing is the caller's decision."""
    row = BusinessIntelligence(
        kind=insight.kind,
        period_start=insight.range.start,
        period_end=insight.range.end,
        parameters={**insight.parameters, "period_label": insight.range.label},
        result=insight.result.as_dict(),
        summary=insight.summary,
        computed_at=insight.computed_at,
    )
    session.add(row)
    await session.flush()
    return row


def cohort_heatmap_chart(insight: Insight[CohortRetentionResult], locale: str = "en_GB") -> ChartSpec:
    return cohort_heatmap(
        insight.result,
        period_label=insight.range.label,
        timezone=insight.range.timezone,
        computed_at=insight.computed_at,
        summary=insight.summary,
        locale=locale,
        empty_cohort=insight.range.first_day,
    )


def cohort_heatmap(
    result: CohortRetentionResult,
    *,
    period_label: str,
    timezone: str,
    computed_at: datetime,
    summary: str,
    locale: str,
    empty_cohort: date,
) -> ChartSpec:
    rows = result.rows or (CohortRow(empty_cohort, 0, (None,) * result.months),)
    return ChartSpec(
        kind="cohort_heatmap",
        title="Cohort retention",
        period_label=period_label,
        data_as_of=computed_at,
        unit="percent",
        locale=locale,
        timezone=timezone,
        # "Jun 2026 (127)", as the table beside it writes the month (the CSV keeps the rows' labels).
        categories=tuple(f"{format_skeleton('yMMM', r.cohort, locale=locale)} ({r.customers})" for r in rows),
        heatmap=tuple(r.retention for r in rows),
        heatmap_columns=tuple(f"+{k}" for k in range(1, result.months + 1)),
        subtitle="share of each first-order cohort ordering again, by months after",
        summary=summary,
    )


def cost_revenue_chart(insight: Insight[CostRevenueResult], locale: str = "en_GB") -> ChartSpec:
    return cost_revenue_bars(
        insight.result,
        period_label=insight.range.label,
        timezone=insight.range.timezone,
        computed_at=insight.computed_at,
        summary=insight.summary,
        locale=locale,
    )


def cost_revenue_bars(
    result: CostRevenueResult,
    *,
    period_label: str,
    timezone: str,
    computed_at: datetime,
    summary: str,
    locale: str,
) -> ChartSpec:
    """Bars of the revenue attributed to each channel, each labelled with what its messages cost. Cost bars
    beside revenue bars on one axis (tens of dollars, thousands of euros) showed no cost at all, and revenue
    per unit of cost no bar but email's (an email costs a thousandth of an SMS); the table beside the chart
    gives both sums."""
    rows = result.by_channel or (ChannelCostRevenue("(no messages)", 0.0, 0.0),)
    return ChartSpec(
        kind="bar",
        title="Attributed revenue by channel, and what its messages cost",
        period_label=period_label,
        data_as_of=computed_at,
        unit="currency",
        currency=result.revenue_currency,
        locale=locale,
        timezone=timezone,
        categories=tuple(
            f"{standing_alone(channel_words(r.channel))}, {format_money(r.cost, result.cost_currency, locale)}"
            for r in rows
        ),
        series=(
            Series(
                f"Attributed revenue ({result.revenue_currency})", tuple(r.attributed_revenue for r in rows)
            ),
        ),
        subtitle=f"revenue within {result.window_days} days of a message; labels: message cost",
        summary=summary,
    )


# --- reading kept insights back ------------------------------------------------------------------


def cohort_result(data: dict[str, Any]) -> CohortRetentionResult:
    """A kept cohort retention (business_intelligence.result) as the result it was."""
    return CohortRetentionResult(
        int(data.get("months", 0)),
        tuple(
            CohortRow(
                date.fromisoformat(str(r["cohort"])), int(r["customers"]), tuple(r.get("retention", ()))
            )
            for r in data.get("rows", ())
        ),
    )


def cost_revenue_result(data: dict[str, Any]) -> CostRevenueResult:
    return CostRevenueResult(
        int(data["window_days"]),
        str(data["cost_currency"]),
        str(data["revenue_currency"]),
        float(data["total_cost"]),
        float(data["total_attributed_revenue"]),
        tuple(
            ChannelCostRevenue(str(r["channel"]), float(r["cost"]), float(r["attributed_revenue"]))
            for r in data.get("by_channel", ())
        ),
    )


def attribution_result(data: dict[str, Any]) -> AttributionResult:
    def rows(key: str) -> tuple[AttributionRow, ...]:
        return tuple(
            AttributionRow(
                str(r["key"]),
                int(r["attributed_orders"]),
                float(r["attributed_revenue"]),
                int(r["customers_messaged"]),
                None if r.get("conversion_rate") is None else float(r["conversion_rate"]),
            )
            for r in data.get(key, ())
        )

    return AttributionResult(
        int(data["window_days"]),
        str(data["currency"]),
        int(data["orders"]),
        int(data["attributed_orders"]),
        float(data["attributed_revenue"]),
        rows("by_channel"),
        rows("by_campaign"),
    )
