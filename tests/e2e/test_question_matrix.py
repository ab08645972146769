"""Every question the registry allows, asked through the bot's own entry point, gets an answer, never a crash.

Generated from the registry: every metric × every dimension it allows (and none) × every grain it keeps
(and none), each with a comparison, on both engines, on a seeded database. Plus word salad: whatever
a person types, the bot answers, declines or suggests; it never fails with an internal error.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from datetime import UTC, date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.exc import SAWarning

from bot.commands.context import CommandContext
from bot.commands.dispatch import handle, parse
from bot.commands.parsing import ParseError
from bot.commands.questions import KNOWN_VALUES
from bot.console import console_identity
from domain.staff import StaffIdentity
from reports.metrics import REGISTRY, Metric
from storage.database import Database
from storage.models import BulkMessaging, Customer, Location, MessageTemplate, Service, StaffUser
from storage.seeding import SeedPlan, seed_database
from switchboard.settings import Settings
from tests.conftest import FreshDatabases, engine_params

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
PLAN = SeedPlan(customers=40, days=60, seed=9, end_date=date(2026, 11, 23))
GRAIN_WORD = {"hour": "hourly", "day": "daily", "week": "weekly", "month": "monthly", "quarter": "quarterly"}
COMPARISONS = ("vs previous", "vs last year")
INTERNAL_ERROR = "something went wrong"


@pytest.fixture(scope="module", params=engine_params())
def seeded_url(request: pytest.FixtureRequest, fresh_databases: FreshDatabases) -> str:
    url = fresh_databases.url(request.param)

    async def seed() -> None:
        database = Database.connect(url)
        try:
            await seed_database(database, PLAN)
        finally:
            await database.dispose()

    asyncio.run(seed())
    return url


async def value_names(database: Database) -> dict[str, str]:
    """One value per dimension, named the way a person would (a clinic's name, a staff member's name)."""
    names = {dimension: next(iter(values)) for dimension, values in KNOWN_VALUES.items()}
    names["currency"] = "dollars"
    columns = {
        "location": Location.name,
        "service": Service.name,
        "campaign": BulkMessaging.name,
        "template": MessageTemplate.name,
        "staff": StaffUser.name,
        "segment": Customer.segment,
        "country": Customer.country,
    }
    async with database.read_sessions() as session:
        for dimension, column in columns.items():
            value = await session.scalar(select(column).where(column.is_not(None)).order_by(column).limit(1))
            assert value, f"the seed has no {dimension}"
            names[dimension] = str(value)
    return names


def questions_for(metric: Metric, value_names: dict[str, str]) -> list[str]:
    """Every dimension (and none) × every grain (and none) of `metric`, each with a comparison; and a
    filter on a named value of every dimension (read through the database's own names)."""
    asked = [f"kpi {metric.name} last 60 days for {value_names[d]} vs previous" for d in metric.dimensions]
    # Hourly buckets over a long period are refused by design; a week of hours is a fair question.
    for d_index, dimension in enumerate((None, *metric.dimensions)):
        for g_index, grain in enumerate((None, *metric.grains)):
            period = "last 7 days" if grain == "hour" else "last 60 days"
            parts = ["kpi", metric.name, period]
            if dimension:
                parts.append(f"by {dimension}")
            if grain:
                parts.append(GRAIN_WORD[grain])
            parts.append(COMPARISONS[(d_index + g_index) % len(COMPARISONS)])
            asked.append(" ".join(parts))
    return asked


async def _staff(ctx: CommandContext) -> StaffIdentity:
    return await console_identity(ctx, "markus.brandt@northwind.example")


@pytest.mark.parametrize("metric_name", sorted(REGISTRY))
async def test_every_dimension_grain_and_comparison_is_answered(
    metric_name: str, seeded_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    database = Database.connect(seeded_url)
    ctx = CommandContext(Settings(database_url=seeded_url), database, clock=lambda: NOW)
    try:
        who = await _staff(ctx)
        for text in questions_for(REGISTRY[metric_name], await value_names(database)):
            caplog.clear()
            with caplog.at_level(logging.WARNING), warnings.catch_warnings(record=True) as warned:
                warnings.simplefilter("always")
                reply = await handle(text, who, ctx)
            sql_warnings = [w for w in warned if issubclass(w.category, SAWarning)]
            assert not sql_warnings, f"{text!r} warned {sql_warnings[0].message}"
            assert reply.kind == "answer", f"{text!r} answered {reply.kind}: {reply.text}"
            assert reply.images, f"{text!r} has no chart"
            assert reply.images[0].content.startswith(b"\x89PNG"), text
            read_as = " ".join(f.value for f in reply.fields if f.label == "Read as")
            assert REGISTRY[metric_name].label in read_as, (text, read_as)
            problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
            assert not problems, f"{text!r} logged {problems[0].getMessage()}"
    finally:
        await database.dispose()


#: Words a manager might type, mixed with noise, in any order.
VOCABULARY = sorted(
    {
        *(m.name for m in REGISTRY.values()),
        *(w for m in REGISTRY.values() for w in m.label.lower().split()),
        *(d for m in REGISTRY.values() for d in m.dimensions),
        *GRAIN_WORD.values(),
        "by", "per", "for", "vs", "last", "this", "next", "month", "week", "quarter", "year", "days",
        "yesterday", "today", "between", "and", "to", "-", "30", "0", "99999", "2026", "nov", "feb 30",
        "berlin", "BER", "kind=video", "channel=sms", "location=", "=", "top", "5", "customers", "how",
        "many", "did", "what", "is", "our", "?", "'", '"', ";", "drop table", "%", "_", "\\", "🙂", "ß",
        "ümsatz", "campaign", "customer", "report", "send", "help", "status", "template", "rule",
    }
)  # fmt: skip
salad = st.lists(
    st.one_of(st.sampled_from(VOCABULARY), st.text(min_size=1, max_size=12)), min_size=1, max_size=12
).map(" ".join)


@given(text=salad)
@settings(max_examples=400, deadline=None)
def test_word_salad_never_raises_while_reading(text: str) -> None:
    ctx = CommandContext(Settings(database_url="sqlite+aiosqlite:///unused.db"), None, clock=lambda: NOW)  # type: ignore[arg-type]
    try:
        parse(text, ctx)
    except ParseError as error:
        assert error.args and str(error.args[0]).strip()


@given(text=salad)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_word_salad_is_answered_without_an_internal_error(text: str, seeded_url: str) -> None:
    async def run() -> None:
        database = Database.connect(seeded_url)
        ctx = CommandContext(Settings(database_url=seeded_url), database, clock=lambda: NOW)
        try:
            reply = await handle(text, await _staff(ctx), ctx)
        finally:
            await database.dispose()
        assert INTERNAL_ERROR not in reply.text.lower(), f"{text!r}: {reply.text}"
        assert "Traceback" not in reply.text

    asyncio.run(run())
