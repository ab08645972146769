"""The daily analytics pass: trend readings of the headline KPIs and the cross-system analyses, kept.

Any process may run it; one that finds readings from the last 20 hours leaves it alone.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from reports.business_format import BusinessFormat
from reports.insight import (
    DEFAULT_COHORT_MONTHS,
    Insight,
    campaign_attribution,
    cohort_retention,
    cost_vs_revenue,
    store_insight,
)
from reports.periods import PeriodSpec, add_months, month_start
from reports.readings import HEADLINE_TRENDS, read_trend
from reports.trends import store_trend
from storage.database import Database
from storage.models import TrendAnalysis
from storage.unit_of_work import SqlUnitOfWork

#: Readings younger than this mean today's pass already ran (in this or another process).
FRESH_FOR = timedelta(hours=20)


def cohort_months(now: datetime, business_tz: str) -> PeriodSpec:
    """The customer page's cohorts: the last DEFAULT_COHORT_MONTHS whole months, each followed in the
    months after it up to last month (the newest, last month's, in none yet)."""
    this_month = month_start(now.astimezone(ZoneInfo(business_tz)).date())
    return PeriodSpec.between(add_months(this_month, -DEFAULT_COHORT_MONTHS), this_month - timedelta(days=1))


async def record_daily_insights(
    database: Database, open_uow: Callable[[], SqlUnitOfWork], now: datetime, business: BusinessFormat
) -> int:
    """Computes and keeps today's readings and analyses; returns how many were kept (0 when fresh)."""
    async with database.read_sessions() as session:
        latest = await session.scalar(select(func.max(TrendAnalysis.computed_at)))
    if latest is not None and now - latest < FRESH_FOR:
        return 0
    tz, currency = business.timezone, business.currency
    readings = [
        await read_trend(
            database, metric, dimension, now=now, business_tz=tz, locale=business.locale, currency=currency
        )
        for metric, dimension in HEADLINE_TRENDS
    ]
    month = PeriodSpec.last_n_days(30)
    insights: list[Insight[Any]] = [
        await campaign_attribution(
            database, month, now=now, business_tz=tz, currency=currency, locale=business.locale
        ),
        await cost_vs_revenue(
            database, month, now=now, business_tz=tz, currency=currency, locale=business.locale
        ),
        await cohort_retention(database, cohort_months(now, tz), now=now, business_tz=tz),
    ]
    async with open_uow() as uow:
        for reading in readings:
            await store_trend(uow.session, reading)
        for insight in insights:
            await store_insight(uow.session, insight)
        await uow.commit()
    return len(readings) + len(insights)
