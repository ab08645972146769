"""Saved report definitions: names come only from the registry, values stay values, errors say what is allowed."""

from __future__ import annotations

from typing import Any

import pytest

from reports.periods import PeriodSpec
from reports.query import Filter, MetricQuery
from reports.saved import ReportDefinitionError, definition_from_query, query_from_definition


def test_a_definition_round_trips() -> None:
    query = MetricQuery(
        metrics=("revenue", "orders"),
        period=PeriodSpec.last_n_days(90),
        grain="week",
        dimensions=("source_channel",),
        filters=(Filter("source_channel", "in", ("web", "sms")),),
        comparison="previous_period",
    )
    assert query_from_definition(definition_from_query(query)) == query


def test_a_short_period_name_is_accepted() -> None:
    query = query_from_definition({"query": {"metrics": ["orders"], "period": "this_month"}})
    assert query.period == PeriodSpec("this_month")


@pytest.mark.parametrize(
    ("definition", "fragment"),
    [
        ({}, '"query" object'),
        ({"query": {"metrics": []}}, "at least one"),
        ({"query": {"metrics": ["revenue; DROP TABLE orders"]}}, "revenue"),
        ({"query": {"metrics": ["revenue"], "dimensions": ["channel' OR '1'='1"]}}, "channel"),
        ({"query": {"metrics": ["revenue"], "grain": "fortnight"}}, "grain must be one of"),
        ({"query": {"metrics": ["revenue"], "period": {"kind": "forever"}}}, "period.kind must be one of"),
        ({"query": {"metrics": ["revenue"], "period": {"kind": "last_n_days", "n": 100000}}}, "last_n_days"),
        (
            {
                "query": {
                    "metrics": ["revenue"],
                    "filters": [{"dimension": "source_channel", "operator": "LIKE", "value": "%"}],
                }
            },
            "operator must be one of",
        ),
        (
            {
                "query": {
                    "metrics": ["revenue"],
                    "filters": [{"dimension": "source_channel", "operator": "eq", "value": {"$ne": 1}}],
                }
            },
            "string or a list",
        ),
        ({"query": {"metrics": ["revenue"], "sql": "SELECT 1"}}, "unknown query fields: sql"),
        ({"query": {"metrics": ["revenue"], "comparison": "yesterday"}}, "comparison must be one of"),
    ],
)
def test_bad_definitions_are_refused_with_a_clear_reason(definition: Any, fragment: str) -> None:
    with pytest.raises(ReportDefinitionError, match=None) as caught:
        query_from_definition(definition)
    assert fragment.lower() in str(caught.value).lower()


def test_a_quoted_filter_value_stays_a_value() -> None:
    query = query_from_definition(
        {
            "query": {
                "metrics": ["revenue"],
                "dimensions": ["source_channel"],
                "filters": [{"dimension": "source_channel", "operator": "eq", "value": "web' OR '1'='1"}],
            }
        }
    )
    assert query.filters[0].value == "web' OR '1'='1"


def test_a_ranking_is_said_with_its_split_and_named_in_the_sentence_only_as_the_chart_keeps_it() -> None:
    from datetime import date

    from bot.commands.reports import overridden
    from reports.presentation import Presentation, presentation_of
    from reports.saved import describe_query

    query = MetricQuery(
        metrics=("revenue",),
        period=PeriodSpec.last_n_days(30),
        dimensions=("location",),
        filters=(Filter("source_channel", "in", ("web",)),),
        comparison="previous_period",
    )
    said = describe_query(query, Presentation(top=3).cut_words)
    assert said.startswith("Revenue, last 30 days, by location, top 3, source channel")
    assert ", bottom 3," in describe_query(query, Presentation(top=3, sort="smallest").cut_words)
    assert "top" not in describe_query(query, Presentation().cut_words)
    # Values as people read them: "WhatsApp, SMS, email", not "whatsapp, sms, email".
    channels = MetricQuery(
        metrics=("messages_sent",),
        period=PeriodSpec.last_n_days(30),
        filters=(Filter("channel", "in", ("whatsapp", "sms", "email")),),
    )
    assert describe_query(channels).endswith("channel is one of WhatsApp, SMS, email")
    # The sentence names the parts the chart keeps: the N largest, not the smallest, a range or stacked pairs.
    two_ways = MetricQuery(
        ("revenue",), PeriodSpec.last_n_days(30), dimensions=("location", "source_channel")
    )
    over_time = MetricQuery(("revenue",), PeriodSpec.last_n_days(30), grain="week", dimensions=("location",))
    assert Presentation(top=3).ranking(query) == 3
    assert Presentation(top=3, sort="smallest").ranking(query) is None
    assert Presentation(top=3, at_least=10.0).ranking(query) is None
    assert Presentation(kind="stacked_bar", top=3).ranking(two_ways) is None
    assert Presentation(kind="stacked_bar", top=3).ranking(over_time) == 3
    # Run by its own split, a saved ranking keeps its N; by another, it draws every value as it best fits.
    definition = {**definition_from_query(query), "chart": Presentation(top=3).as_definition()}
    same, _ = overridden(definition, "for last month by clinic", date(2026, 12, 5))
    other, _ = overridden(definition, "by channel", date(2026, 12, 5))
    assert presentation_of(same).top == 3
    assert presentation_of(other).top is None
