"""Trend readings on synthetic series whose answers are known by construction."""

from __future__ import annotations

import random

import pytest

from reports.charts.formatting import format_points
from reports.metrics import get_metric
from reports.trends import (
    anomalies,
    change_pct,
    describe_contributors,
    moving_average,
    seasonal_naive_forecast,
    summarise,
    top_contributors,
)

WEEK = [100.0, 110.0, 120.0, 130.0, 140.0, 90.0, 60.0]


def weekly(weeks: int, noise: list[float] | None = None) -> list[float | None]:
    values: list[float | None] = [v for _ in range(weeks) for v in WEEK]
    for i, n in enumerate(noise or []):
        values[i] = (values[i] or 0) + n
    return values


def test_change_and_moving_average() -> None:
    assert change_pct(88.0, 100.0) == pytest.approx(-0.12)
    assert change_pct(5.0, 0.0) is None and change_pct(None, 3.0) is None
    assert moving_average([1, 2, 3, None, 5, 6, 7], 3) == [None, None, 2.0, None, None, None, 6.0]


def test_seasonal_naive_forecast_repeats_the_week_with_a_band_from_residuals() -> None:
    jitter = [(-1) ** i * (i % 3) for i in range(28)]
    series = weekly(4, jitter)
    forecast = seasonal_naive_forecast(series, season=7, horizon=14)
    assert [p.value for p in forecast[:7]] == series[-7:]
    assert [p.value for p in forecast[7:]] == series[-7:]
    for point in forecast:
        assert point.low <= point.value <= point.high
    assert forecast[8].high - forecast[8].low > forecast[1].high - forecast[1].low  # wider a week further out
    exact = seasonal_naive_forecast(weekly(3), horizon=7)
    assert all(p.low == p.value == p.high for p in exact)  # a perfectly seasonal past has no error


def test_forecast_needs_a_full_last_season() -> None:
    with pytest.raises(ValueError, match="last 7 points"):
        seasonal_naive_forecast([1.0, 2.0, None, 4.0, 5.0, 6.0, 7.0])


def test_anomaly_flags_a_spike_but_not_the_weekly_pattern() -> None:
    rng = random.Random(3)
    series = weekly(6, [rng.gauss(0, 3) for _ in range(42)])
    assert anomalies(series) == []
    spiked = list(series)
    spiked[30] = (spiked[30] or 0) + 400
    flagged = anomalies(spiked)
    # The spike shows as a positive residual at 30 and a negative one a week later (against it).
    assert 30 in flagged and set(flagged) <= {30, 37}


def test_top_contributors_explain_a_drop() -> None:
    previous = {"whatsapp": 1000.0, "email": 500.0, "web": 2000.0, "sms": 300.0}
    current = {"whatsapp": 700.0, "email": 520.0, "web": 1840.0, "sms": 300.0}
    top = top_contributors(current, previous, limit=2)
    assert [c.value for c in top] == ["whatsapp", "web"]
    assert top[0].change == -300.0 and top[0].change_pct == pytest.approx(-0.3)
    assert sum(c.share_of_change or 0 for c in top_contributors(current, previous, limit=4)) == pytest.approx(
        1.0
    )
    assert describe_contributors(top) == "whatsapp -30.0%, web -8.0%"


def test_the_biggest_moves_are_the_largest_either_way() -> None:
    """Revenue up overall, yet Berlin fell by the most: it is named first, before the smaller rises, and
    never after a smaller fall."""
    previous = {"BER": 1841.0, "MUC": 300.0, "VIE": 100.0, "NYC": 1000.0, "LON": 900.0}
    current = {"BER": 1113.0, "MUC": 853.2, "VIE": 556.4, "NYC": 953.3, "LON": 739.0}
    assert [c.value for c in top_contributors(current, previous, limit=3)] == ["BER", "MUC", "VIE"]


def test_summary_states_what_was_measured() -> None:
    sentence = summarise(
        get_metric("revenue"), 48210.0, period_label="1–30 Nov 2026", timezone="Europe/Berlin",
        previous=54784.09, previous_label="1–31 Oct 2026", currency="EUR",
    )  # fmt: skip
    assert (
        sentence
        == "Revenue, net of refunds, 1–30 Nov 2026 (Europe/Berlin): €48,210.00, down 12.0% from 1–31 Oct 2026."
    )
    rate = summarise(get_metric("delivery_rate"), 0.953, period_label="5 Mar 2026", timezone="UTC")
    assert rate == "Delivery rate, 5 Mar 2026 (UTC): 95.3%."


def test_a_score_reads_two_decimals_and_moves_by_its_own_units() -> None:
    """CSAT 4.388 after 3.864 reads "4.39, up 0.53 from 3.86": the move is what the two figures say."""
    said = summarise(
        get_metric("csat"), 4.388, period_label="1–30 Nov 2026", timezone="UTC",
        previous=3.864, previous_label="1–31 Oct 2026",
    )  # fmt: skip
    assert (
        said == "Customer satisfaction (1–5), 1–30 Nov 2026 (UTC): 4.39, up 0.53 from 3.86 in 1–31 Oct 2026."
    )
    same = summarise(
        get_metric("csat"), 4.401, period_label="Nov", timezone="UTC", previous=4.399, previous_label="Oct"
    )
    assert same.endswith(": 4.4, unchanged from 4.4 in Oct.")


@pytest.mark.parametrize(
    ("value", "previous", "tail"),
    [
        (0.208, 0.048, ", up 16.0 points from 4.8% in Oct."),
        (0.125, 0.0, ", up 12.5 points from 0.0% in Oct."),  # from none: still a move in points
        (0.5003, 0.5, ", unchanged from 50.0% in Oct."),  # a move too small to show is no move
        (0.096, 0.134, ", down 3.8 points from 13.4% in Oct."),
        (None, 0.9, " (it was 90.0% in Oct)."),  # no figure now: the earlier one, not "against 0"
    ],
)
def test_a_rate_moves_in_points_from_its_earlier_figure(
    value: float | None, previous: float, tail: str
) -> None:
    sentence = summarise(
        get_metric("no_show_rate"),
        value,
        period_label="Nov",
        timezone="UTC",
        previous=previous,
        previous_label="Oct",
    )
    assert sentence.endswith(tail), sentence


def test_a_rates_change_on_a_tile_is_in_points() -> None:
    assert format_points(0.038, locale="en_GB") == "+3.8 pts"
    assert format_points(-0.0051, locale="en_GB") == "−0.5 pts"
    assert format_points(0.0004, locale="en_GB") == "0.0 pts"
    assert format_points(0.1234, locale="de_DE") == "+12,3 pts"


def test_a_sparse_series_marks_only_its_outliers_not_every_day_something_happened() -> None:
    """Most days nothing happens (the MAD is 0); a day with one event is not unusual, a day with nine is."""
    from reports.trends import anomalies

    values: list[float | None] = [0.0] * 84
    for day in (3, 10, 17, 30, 44, 51, 65, 72):
        values[day] = 1.0
    values[60] = 9.0
    assert anomalies(values, season=7) == [60]
    assert anomalies([2.0] * 42, season=7) == []


def test_one_unusual_day_does_not_make_the_same_weekday_after_it_unusual() -> None:
    from reports.trends import anomalies

    week = [10.0, 12.0, 11.0, 13.0, 12.0, 4.0, 3.0]
    values: list[float | None] = week * 8
    values[29] = 40.0  # one busy Tuesday
    assert anomalies(values, season=7) == [29]


def test_a_day_compared_with_is_on_it_and_a_span_in_it() -> None:
    """ "down 0.9 points from 93.3% in 5 Dec 2026" read oddly: a day is "on"."""
    from reports.metrics import REGISTRY
    from reports.trends import against_words

    rate = REGISTRY["delivery_rate"]
    assert against_words(rate, 0.925, 0.933, "5 Dec 2026 (the day before)", "en_GB", None).endswith(
        "from 93.3% on 5 Dec 2026 (the day before)"
    )
    assert against_words(rate, 0.95, 0.945, "1–31 Oct 2026 (the month before)", "en_GB", None).endswith(
        "from 94.5% in 1–31 Oct 2026 (the month before)"
    )
    assert against_words(rate, 0.95, 0.945, "30 Nov – 6 Dec 2026", "en_GB", None).endswith(
        "in 30 Nov – 6 Dec 2026"
    )


def test_a_rate_or_average_of_nothing_says_so_in_words() -> None:
    """ "First response time, 8 Dec 2026 so far (Europe/Berlin): –." left the reader a dash."""
    from reports.trends import summarise

    said = summarise(
        get_metric("first_response_time"), None, period_label="8 Dec 2026 so far", timezone="Europe/Berlin"
    )
    assert said == (
        "First response time, 8 Dec 2026 so far (Europe/Berlin): no figure: nothing in this period to measure it on."
    )
    rate = summarise(
        get_metric("no_show_rate"),
        None,
        period_label="8 Dec 2026 so far",
        timezone="Europe/Berlin",
        value_note=" (0 no-shows of 0 appointments due)",
    )
    assert rate.endswith(": no figure: no appointments due to count.") and "–" not in rate
