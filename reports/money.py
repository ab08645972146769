"""Money is never added across currencies: which currency a money answer is in, and what is left out of it.

Orders carry the currency they were paid in and messages the currency their provider prices in (Twilio and
Meta bill in US dollars), so a money metric can hold several currencies at once. Every money answer is in
one currency: the only one there is, or — when there are several — the business's own (else the largest),
with the amounts in the other currencies stated beside it, never summed into it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from babel import UnknownLocaleError
from babel.numbers import format_currency

from reports.metrics import Metric
from reports.query import Filter, MetricQuery, run_query
from storage.analytics.facts import NO_VALUE
from storage.database import Database

#: The dimension every money metric carries: the currency its rows are in.
CURRENCY = "currency"


@dataclass(frozen=True)
class MoneyPlan:
    """The query to answer (pinned to one currency when there are several), its currency, and the others."""

    query: MetricQuery
    currency: str
    #: Amounts in other currencies over the same period, largest first: (currency, total).
    left_out: tuple[tuple[str, float], ...] = ()


def is_money(metric: Metric) -> bool:
    return metric.unit == "currency" and CURRENCY in metric.dimensions


def pinned_currency(query: MetricQuery) -> str | None:
    """The currency a query already keeps to (a filter `currency = X`), if any."""
    for item in query.filters:
        if item.dimension == CURRENCY and item.operator == "eq" and isinstance(item.value, str):
            return item.value
    return None


async def plan_money(
    database: Database,
    metric: Metric,
    query: MetricQuery,
    *,
    now: datetime,
    business_tz: str,
    business_currency: str,
) -> MoneyPlan:
    """Find the currencies the question's rows are in (over its period and its comparison) and pick one."""
    pinned = pinned_currency(query)
    if pinned is not None:
        return MoneyPlan(query, pinned)
    if CURRENCY in query.dimensions:
        return MoneyPlan(query, business_currency)  # split by currency: each bar is its own currency
    probe = replace(query, metrics=(metric.name,), grain=None, dimensions=(CURRENCY,))
    result = await run_query(database, probe, now=now, business_tz=business_tz)
    totals: dict[str, float] = {}
    for series in result.series:
        code = series.dimension_value or NO_VALUE
        if code == NO_VALUE:
            continue  # rows with no money at all (an inbound message has no cost)
        if (series.total or 0.0) or (series.comparison_total or 0.0):
            totals[code] = series.total or 0.0
    if len(totals) <= 1:
        return MoneyPlan(query, next(iter(totals), business_currency))
    ranked = sorted(totals, key=lambda code: (code != business_currency, -abs(totals[code]), code))
    chosen = ranked[0]
    pinned_query = replace(query, filters=(*query.filters, Filter(CURRENCY, "eq", chosen)))
    return MoneyPlan(pinned_query, chosen, tuple((code, totals[code]) for code in ranked[1:]))


def left_out_sentence(plan: MoneyPlan, metric: Metric, locale: str) -> str:
    """ "Also €12.00 in EUR and CHF 3.10 in CHF, not added: amounts in different currencies are kept apart."."""
    if not plan.left_out:
        return ""
    amounts = " and ".join(f"{format_money(total, code, locale)} in {code}" for code, total in plan.left_out)
    what = "costs" if metric.direction == "down_is_good" else "amounts"
    return f"Also {amounts}, not added: {what} in different currencies are kept apart."


def format_money(value: float, currency: str, locale: str) -> str:
    try:
        return format_currency(value, currency, locale=locale)
    except (ValueError, UnknownLocaleError):
        return f"{value:,.2f} {currency}"
