"""The words an answer uses for what its figure is limited to: the sentence travels alone (a notification, a
chart's alt text, a forwarded image's title), so it must say which part of the business it counts."""

from __future__ import annotations

import pytest

from reports.answer import filters_in_words
from reports.metrics import get_metric
from reports.query import Filter
from reports.trends import summarise


@pytest.mark.parametrize(
    ("filters", "words"),
    [
        ([Filter("channel", "eq", "whatsapp")], " for WhatsApp"),  # channels by their names
        ([Filter("kind", "eq", "video")], " for video consultations"),
        ([Filter("location", "in", ("BER", "MUC"))], " for BER or MUC"),
        ([Filter("channel", "in", ("sms", "email", "telegram"))], " for SMS, email or Telegram"),
        ([Filter("channel", "ne", "email")], " for all but email"),
        # A value that does not say what it is comes with its dimension's name.
        ([Filter("campaign", "eq", "2026-11-black-friday")], " for campaign 2026-11-black-friday"),
        (
            [Filter("service", "not_in", ("SKIN-VIDEO", "LASER"))],
            " for all services but SKIN-VIDEO and LASER",
        ),
        (
            [Filter("location", "eq", "BER"), Filter("source_channel", "eq", "web")],
            " for BER and source channel web",
        ),
        # Many values are counted, so the figure stays in a Telegram caption.
        ([Filter("location", "in", ("BER", "MUC", "VIE", "ZRH", "LON"))], " for 5 locations"),
        # The amount says its currency; an empty value limits nothing that can be said.
        ([Filter("currency", "eq", "CHF")], ""),
        ([Filter("location", "eq", "")], ""),
        ([], ""),
    ],
)
def test_a_filter_in_words(filters: list[Filter], words: str) -> None:
    assert filters_in_words(filters, {}) == words


def test_a_filter_names_clinics_and_campaigns_by_the_names_people_know() -> None:
    names = {"location": {"BER": "Berlin Mitte"}, "campaign": {"bf-26": "Black Friday"}}
    both = [Filter("location", "in", ("BER", "MUC")), Filter("campaign", "eq", "bf-26")]
    assert filters_in_words(both, names) == " for Berlin Mitte or MUC and campaign Black Friday"


def test_the_limit_comes_right_after_the_figures_name_before_net_of_refunds() -> None:
    sentence = summarise(
        get_metric("revenue"),
        4963.6,
        period_label="1–30 Nov 2026",
        timezone="Europe/Berlin",
        limited_to=" for ZRH",
        currency="EUR",
    )
    assert sentence.startswith("Revenue for ZRH, net of refunds, 1–30 Nov 2026 (Europe/Berlin): €4,963.60")


def test_a_ranking_says_a_part_left_out_with_the_same_figure_as_the_last_one_named() -> None:
    """ "top 3 clinics": Vienna's 5, as many as New York's, is a tie, not a lower place; said, not cut silently."""
    from datetime import UTC, datetime

    from reports.answer import _parts
    from reports.periods import TimeRange
    from reports.query import QueryResult, SeriesResult

    figures = {"BER": 7.0, "LON": 6.0, "NYC": 5.0, "VIE": 5.0, "ZRH": 2.0}
    result = QueryResult(
        metrics=(get_metric("appointments"),),
        range=TimeRange(
            datetime(2026, 11, 30, tzinfo=UTC), datetime(2026, 12, 7, tzinfo=UTC), "last week", "UTC"
        ),
        comparison_range=None,
        grain=None,
        dimensions=("location",),
        series=tuple(SeriesResult("appointments", code, code, (), total) for code, total in figures.items()),
        data_as_of=datetime(2026, 12, 7, tzinfo=UTC),
        source="raw",
    )
    ranked = _parts(result, result.series, "en_GB", "EUR", 3, exactly=True)
    assert ranked == "BER 7, LON 6, NYC 5 and 2 more (VIE as many)"
    untied = _parts(result, result.series, "en_GB", "EUR", 2, exactly=True)
    assert untied == "BER 7, LON 6 and 3 more"
