"""Names in a KPI question are looked up, never spliced into SQL; values only travel as bound parameters."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from reports.metrics import REGISTRY, UnknownName, get_metric
from reports.periods import PeriodSpec
from reports.query import Filter, MetricQuery, run_query, validate_query
from storage.database import Database
from storage.models import Customer, Order

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
PERIOD = PeriodSpec.last_n_days(30)

HOSTILE_NAMES = [
    "revenue; DROP TABLE orders",
    "channel' OR '1'='1",
    "revenue--",
    'revenue"); DELETE FROM orders; --',
    "rev\u0435nue",  # Cyrillic e
    "revenue\u200b",  # zero-width space
    "ｒｅｖｅｎｕｅ",  # fullwidth
    "revenue\x00",
    "(SELECT 1)",
    "",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_metric_names_are_unknown_and_the_message_lists_allowed(name: str) -> None:
    with pytest.raises(UnknownName) as caught:
        validate_query(MetricQuery((name,), PERIOD))
    message = str(caught.value)
    assert "Allowed: " in message and "revenue" in message and "messages_sent" in message


@pytest.mark.parametrize("name", [*HOSTILE_NAMES[:4], "channel\u200b", "CHANNEL'--"])
def test_hostile_dimension_and_filter_names_are_unknown(name: str) -> None:
    with pytest.raises(UnknownName, match=r"Allowed: .*source_channel"):
        validate_query(MetricQuery(("revenue",), PERIOD, dimensions=(name,)))
    with pytest.raises(UnknownName, match="Allowed: "):
        validate_query(MetricQuery(("revenue",), PERIOD, filters=(Filter(name, "eq", "web"),)))


def test_operators_grains_and_comparisons_come_from_fixed_sets() -> None:
    with pytest.raises(UnknownName, match="Allowed: eq, in, ne, not_in"):
        validate_query(MetricQuery(("revenue",), PERIOD, filters=(Filter("source_channel", "like", "w%"),)))  # type: ignore[arg-type]
    with pytest.raises(UnknownName, match="grain"):
        validate_query(MetricQuery(("revenue",), PERIOD, grain="minute"))  # type: ignore[arg-type]
    with pytest.raises(UnknownName, match="grain for churn_rate"):
        validate_query(MetricQuery(("churn_rate",), PERIOD, grain="day"))
    with pytest.raises(UnknownName, match="comparison"):
        validate_query(MetricQuery(("revenue",), PERIOD, comparison="yesterday; DROP"))  # type: ignore[arg-type]


def test_a_dimension_the_metric_lacks_is_refused_with_its_own_list() -> None:
    with pytest.raises(UnknownName, match="dimension for revenue") as caught:
        validate_query(MetricQuery(("revenue",), PERIOD, dimensions=("channel",)))
    assert "source_channel" in str(caught.value) and "Did you mean 'source_channel'" in str(caught.value)


def test_close_names_get_a_suggestion_and_synonyms_resolve() -> None:
    with pytest.raises(UnknownName, match="Did you mean 'revenue'"):
        get_metric("revenu")
    assert get_metric("Sales").name == "revenue"
    assert get_metric("AOV").name == "average_order_value"
    assert validate_query(MetricQuery(("turnover", "orders"), PERIOD))[0].name == "revenue"


def test_filter_values_are_bounded() -> None:
    too_long = "x" * 129
    for bad in (
        Filter("source_channel", "eq", too_long),
        Filter("source_channel", "in", tuple(str(i) for i in range(51))),
        Filter("source_channel", "in", ()),
        Filter("source_channel", "eq", ("web", "sms")),
        Filter("source_channel", "eq", 42),  # type: ignore[arg-type]
    ):
        with pytest.raises(ValueError, match="source_channel"):
            validate_query(MetricQuery(("revenue",), PERIOD, filters=(bad,)))
    with pytest.raises(ValueError, match="at most 8 metrics"):
        validate_query(MetricQuery(tuple(REGISTRY)[:9], PERIOD))


async def _one_order(database: Database) -> None:
    async with database.sessions() as session:
        customer = Customer(name="Ada", created_at=datetime(2026, 11, 10, tzinfo=UTC))
        session.add(customer)
        await session.flush()
        session.add(
            Order(
                order_number="N-1", customer_id=customer.id, status="paid", source_channel="web",
                amount_minor=4200, currency="EUR", created_at=datetime(2026, 11, 10, 12, tzinfo=UTC),
            )
        )  # fmt: skip
        await session.commit()


@pytest.mark.parametrize(
    "value", ["web' OR '1'='1", "web; DROP TABLE orders", "web'--", "%", "w_b", "web\u200b"]
)
async def test_filter_values_with_quotes_are_bound_and_just_match_nothing(
    database: Database, value: str
) -> None:
    await _one_order(database)
    query = MetricQuery(("revenue", "orders"), PERIOD, filters=(Filter("source_channel", "eq", value),))
    result = await run_query(database, query, now=NOW, business_tz="Europe/Berlin")
    assert {s.total for s in result.series} == {0.0}
    honest = MetricQuery(("revenue",), PERIOD, filters=(Filter("source_channel", "in", ("web", value)),))
    assert (await run_query(database, honest, now=NOW, business_tz="Europe/Berlin")).series[0].total == 42.0
    async with database.read_sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == 1  # the table is still there
