"""The demo business as the question reader sees it: the day questions are asked and the names its
database gives each dimension (read the way `bot.commands.kpi.known_values` reads them)."""

from __future__ import annotations

import random
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.commands.questions import KNOWN_VALUES, KpiQuestion
from reports.everyday_names import everyday_names
from reports.periods import resolve_period
from storage.seeding.campaigns import plan_campaigns
from storage.seeding.catalogue import CLINICS, SERVICES, staff_rows
from storage.seeding.plan import Calendar, SeedPlan

TZ = "Europe/Berlin"
NOW = datetime(2026, 11, 18, 10, 30, tzinfo=ZoneInfo(TZ))
TODAY = NOW.date()


def demo_values() -> dict[str, dict[str, str]]:
    """The names the demo database gives each dimension, as `kpi.known_values` reads them."""
    staff, _ = staff_rows(NOW)
    # Two years of the seeded campaign calendar, up to this year's Black Friday (being prepared on NOW).
    calendar = Calendar(SeedPlan(customers=10, days=730, seed=1, end_date=date(2026, 11, 30)))
    campaigns = [(c.slug, c.name) for c in plan_campaigns(calendar, random.Random(1))]
    rows = {
        "location": [(c.code, c.name) for c in CLINICS],
        "service": [(s.code, s.name) for s in SERVICES],
        "staff": [(p["name"], p["name"]) for p in staff],
        "country": [(c, c) for c in ("DE", "AT", "CH", "GB", "US")],
        "segment": [(s, s) for s in ("vip", "regular", "new", "lapsed")],
        "campaign": campaigns,
    }
    return {**KNOWN_VALUES, **{d: everyday_names(d, r) for d, r in rows.items()}}


VALUES = demo_values()


VALUES = demo_values()


def reading_of(question: KpiQuestion) -> dict[str, Any]:
    time_range = resolve_period(question.period, NOW, TZ)
    return {
        "metric": question.metric,
        "period": "default" if question.period_assumed else [time_range.first_day, time_range.last_day],
        # One split reads as its name, two as a list: `by: [location, source_channel]`.
        "by": list(question.dimensions) if question.then_by else question.dimension,
        # One value reads as itself, several as a list: `filters: {category: [marketing, transactional]}`.
        "filters": {f.dimension: ", ".join(f.values) for f in question.filters},
        "compare": question.comparison,
        "grain": question.grain,
    }
