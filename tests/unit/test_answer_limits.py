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
