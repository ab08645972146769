"""answer() on seeded data: a chart of the right kind, an honest summary, and a PNG that renders."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from reports.answer import answer
from reports.charts.render import render_png
from reports.metrics import UnknownName
from reports.periods import PeriodSpec
from reports.query import MetricQuery
from storage.database import Database
from storage.seeding import SeedPlan, seed_database

TZ = "Europe/Berlin"
NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
PLAN = SeedPlan(customers=80, days=60, seed=3, end_date=date(2026, 11, 30))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
async def seeded(database: Database) -> Database:
    await seed_database(database, PLAN)
    return database


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        (MetricQuery(("revenue",), PeriodSpec.last_n_days(28), grain="day"), "line"),
        (MetricQuery(("messages_sent",), PeriodSpec("last_month"), dimensions=("channel",)), "bar"),
        (MetricQuery(("orders",), PeriodSpec("last_month"), comparison="previous_period"), "kpi_tile"),
    ],
    ids=["grained-series", "split", "total"],
)
async def test_answer_picks_the_chart_for_the_shape_and_renders(
    seeded: Database, query: MetricQuery, kind: str
) -> None:
    reply = await answer(seeded, query, now=NOW, business_tz=TZ, locale="en_GB", currency="EUR")
    metric = reply.result.metrics[0]
    assert reply.chart.kind == kind
    assert metric.label in reply.summary
    assert reply.result.range.label in reply.summary and TZ in reply.summary
    assert reply.chart.summary == reply.summary and reply.chart.timezone == TZ
    if kind == "line":
        assert len(reply.chart.x_dates) == 28
    if kind == "bar":
        assert set(reply.chart.categories) <= {"sms", "email", "whatsapp", "telegram"}
    png = render_png(reply.chart)
    assert png.startswith(PNG_MAGIC) and len(png) > 1000


async def test_unknown_metric_lists_the_allowed_names(seeded: Database) -> None:
    with pytest.raises(UnknownName) as raised:
        await answer(seeded, MetricQuery(("revenu",), PeriodSpec("last_month")), now=NOW, business_tz=TZ)
    message = str(raised.value)
    assert "revenu" in message and "Allowed:" in message
    assert "revenue" in raised.value.allowed and "messages_sent" in raised.value.allowed
