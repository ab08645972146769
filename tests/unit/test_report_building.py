"""The pure parts of building a report: schedules said in words, destinations, chart choices, the builder
form, and exports of the figures as shown."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from reports.answer import Answer
from reports.builder import EMPTY_FORM, build, form_from_definition, form_of
from reports.charts.spec import ChartSpec, KpiTile, Series
from reports.exports import as_csv, figures_text, sheet_rows
from reports.metrics import get_metric
from reports.periods import PeriodSpec, TimeRange
from reports.presentation import (
    Presentation,
    PresentationError,
    check_fits,
    ordered,
    present,
    presentation_of,
)
from reports.query import MetricQuery, QueryResult, SeriesResult, validate_query
from reports.saved import describe_query
from reports.schedule_words import cron_from_words, cron_in_words, destination_of
from reports.schedules import ScheduleError, next_due

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
NAMES = {"location": [("BER", "Berlin Mitte"), ("HAM", "Hamburg")]}


@pytest.mark.parametrize(
    ("said", "cron", "words"),
    [
        ("every monday 8:00", "0 8 * * 1", "every Monday at 08:00"),
        ("every Mondays at 8", "0 8 * * 1", "every Monday at 08:00"),
        ("every sunday 18:30", "30 18 * * 0", "every Sunday at 18:30"),
        ("every weekday at 7:30", "30 7 * * 1-5", "every weekday at 07:30"),
        ("every day 6pm", "0 18 * * *", "every day at 18:00"),
        ("every month on the 1st at 9:00", "0 9 1 * *", "every month on day 1 at 09:00"),
        # As a German manager says it.
        ("jeden Montag 8:00", "0 8 * * 1", "every Monday at 08:00"),
        ("montags um 8 Uhr", "0 8 * * 1", "every Monday at 08:00"),
        ("Sonntags 20.15", "15 20 * * 0", "every Sunday at 20:15"),
        ("werktags 7:30", "30 7 * * 1-5", "every weekday at 07:30"),
        ("Montag bis Freitag um 7.30 Uhr", "30 7 * * 1-5", "every weekday at 07:30"),
        ("täglich 18 Uhr", "0 18 * * *", "every day at 18:00"),
        ("jeden Tag um 6:00", "0 6 * * *", "every day at 06:00"),
        ("monatlich am 1. um 9:00", "0 9 1 * *", "every month on day 1 at 09:00"),
        ("am 15. jeden Monats um 9 Uhr", "0 9 15 * *", "every month on day 15 at 09:00"),
        ("jeden Mo 8:00", "0 8 * * 1", "every Monday at 08:00"),
        ("jeden Fr. 17 Uhr", "0 17 * * 5", "every Friday at 17:00"),
        ("Mo-Fr 7:30", "30 7 * * 1-5", "every weekday at 07:30"),
    ],
)
def test_a_schedule_said_in_words_becomes_cron_and_reads_back(said: str, cron: str, words: str) -> None:
    assert cron_from_words(said) == cron
    assert cron_in_words(cron) == words
    next_due(cron, "Europe/Berlin", NOW)  # APScheduler accepts it


@pytest.mark.parametrize(
    ("said", "why"),
    [
        ("every month on the 30th at 8:00", "day 30 is not in every month"),
        ("every monday 25:00", "not a time of day"),
        ("every blursday 8:00", "not a day I know"),
        ("sometimes", "say when"),
        ("jeden Blursday 8:00", "not a day I know"),
        ("monatlich am 30. um 8 Uhr", "day 30 is not in every month"),
    ],
)
def test_impossible_schedules_are_refused_in_words(said: str, why: str) -> None:
    with pytest.raises(ScheduleError, match=why):
        cron_from_words(said)


def test_thirtieth_of_february_never_fires_and_is_refused() -> None:
    with pytest.raises(ScheduleError, match="never fires"):
        next_due("0 8 30 2 *", "Europe/Berlin", NOW)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("#Management", ("slack", "#management")),
        ("slack:C0123ABCD", ("slack", "C0123ABCD")),
        ("telegram:-100123", ("telegram", "-100123")),
        ("Board@Clinic.example", ("email", "board@clinic.example")),
    ],
)
def test_destinations(text: str, expected: tuple[str, str]) -> None:
    assert destination_of(text) == expected


@pytest.mark.parametrize("text", ["somewhere", "#", "telegram:abc", "a@b", "#drop table;"])
def test_unknown_destinations_are_refused(text: str) -> None:
    with pytest.raises(ScheduleError, match="cannot deliver"):
        destination_of(text)


def _query(**changes: object) -> MetricQuery:
    base: dict[str, object] = {"metrics": ("revenue",), "period": PeriodSpec.last_n_days(30)}
    return MetricQuery(**{**base, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "query", "why"),
    [
        ("line", _query(), "needs the figures over time"),
        ("bar", _query(), "need a split or the figures over time"),
        ("stacked_bar", _query(grain="day"), "a split and the figures over time, or a split by two"),
        ("number", _query(dimensions=("location",)), "cannot be split"),
    ],
)
def test_a_chart_that_cannot_show_the_question_is_refused(kind: str, query: MetricQuery, why: str) -> None:
    with pytest.raises(PresentationError, match=why):
        check_fits(query, Presentation(kind), get_metric("revenue"))  # type: ignore[arg-type]


def test_rates_do_not_stack() -> None:
    query = _query(metrics=("no_show_rate",), grain="week", dimensions=("location",))
    with pytest.raises(PresentationError, match="do not stack"):
        check_fits(query, Presentation("stacked_bar"), get_metric("no_show_rate"))


def test_breakout_values_are_ordered_and_cut_to_top_n() -> None:
    series = [
        SeriesResult("revenue", value, value, (), total)
        for value, total in (("b", 5.0), ("a", None), ("c", 9.0), ("d", 1.0))
    ]
    assert [s.dimension_value for s in ordered(series, Presentation(top=2))] == ["c", "b"]
    assert [s.dimension_value for s in ordered(series, Presentation(sort="smallest"))] == ["d", "b", "c", "a"]
    assert [s.dimension_value for s in ordered(series, Presentation(sort="name"))] == ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    "chart",
    [{"kind": "pie"}, {"sort": "random"}, {"top": 0}, {"top": True}, {"top": "5"}, {"colour": "red"}, "bar"],
)
def test_a_stored_chart_choice_is_checked(chart: object) -> None:
    with pytest.raises(PresentationError):
        presentation_of({"query": {}, "chart": chart})


def test_the_builder_form_round_trips_a_definition() -> None:
    form = form_of(
        {
            **EMPTY_FORM,
            "name": "Clinics",
            "metric": "revenue",
            "period": "between",
            "start_date": "2026-11-01",
            "end_date": "2026-11-30",
            "grain": "week",
            "dimension": "location",
            "filter_0_dimension": "location",
            "filter_0_operator": "not_in",
            "filter_0_values": "hamburg",
            "kind": "stacked_bar",
            "top": "3",
        }
    )
    built = build(form, names=NAMES, now=NOW, business_tz="Europe/Berlin")
    assert built.errors == {} and built.definition is not None
    assert built.definition["query"]["filters"] == [
        {"dimension": "location", "operator": "not_in", "value": ["HAM"]}
    ]
    again = form_from_definition("Clinics", built.definition, shared=False)
    assert {k: again[k] for k in form if form[k]} == {k: form[k] for k in form if form[k]} | {
        "filter_0_values": "HAM"
    }


@pytest.mark.parametrize(
    ("dimensions", "why"),
    [
        (("location", "source_channel", "campaign"), "at most 2 dimensions"),
        (("location", "location"), "named twice"),
        (("currency", "location"), "currency on its own"),
    ],
)
def test_a_split_is_at_most_two_different_dimensions(dimensions: tuple[str, ...], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        validate_query(_query(dimensions=dimensions))


def test_two_splits_stack_without_time_and_read_in_words() -> None:
    query = _query(dimensions=("location", "source_channel"))
    check_fits(query, Presentation("stacked_bar"), get_metric("revenue"))
    assert describe_query(query) == "Revenue, last 30 days, by location and source channel"


def test_an_appointments_kind_reads_as_its_type_not_its_stored_name() -> None:
    from reports.metrics import dimension_words
    from reports.query import MetricQuery, PeriodSpec

    query = MetricQuery(("no_show_rate",), PeriodSpec("last_month"), dimensions=("location", "kind"))
    assert describe_query(query) == "No-show rate, last month, by location and appointment type"
    assert dimension_words("location_and_kind") == "location and appointment type"
    assert dimension_words("source_channel") == "source channel"


def test_the_builder_takes_a_second_split_and_names_a_wrong_one() -> None:
    form = form_of({**EMPTY_FORM, "dimension": "location", "dimension_2": "source_channel"})
    built = build(form, names=NAMES, now=NOW, business_tz="Europe/Berlin")
    assert built.errors == {} and built.definition is not None
    assert built.definition["query"]["dimensions"] == ["location", "source_channel"]
    again = form_from_definition("Two ways", built.definition, shared=False)
    assert (again["dimension"], again["dimension_2"]) == ("location", "source_channel")

    for changes, why in (
        ({"dimension_2": "location"}, "Pick the first split"),
        ({"dimension": "location", "dimension_2": "location"}, "same as the first"),
        ({"dimension": "location", "dimension_2": "channel"}, "cannot be split by channel"),
    ):
        refused = build(form_of({**EMPTY_FORM, **changes}), names=NAMES, now=NOW, business_tz="Europe/Berlin")
        assert refused.definition is None
        assert why in refused.errors["dimension_2"], refused.errors


def test_stacked_two_ways_puts_the_second_split_inside_the_first() -> None:
    pairs = [("BER", "web", 5.0), ("BER", "whatsapp", 3.0), ("HAM", "web", 4.0)]
    series = tuple(
        SeriesResult("revenue", f"{a} · {b}", f"Revenue · {a} · {b}", (), total, None, (a, b))
        for a, b, total in pairs
    )
    result = QueryResult(
        metrics=(get_metric("revenue"),),
        range=TimeRange(NOW - timedelta(days=30), NOW, "last 30 days", "Europe/Berlin"),
        comparison_range=None,
        grain=None,
        dimensions=("location", "source_channel"),
        series=series,
        data_as_of=NOW,
        source="raw",
    )
    chart = _spec(kind="bar", categories=("x",), series=(Series("Revenue", (1.0,)),))
    found = Answer(result, chart, "")
    spec = present(found, Presentation("stacked_bar"))
    assert spec.kind == "stacked_bar"
    assert spec.categories == ("BER", "HAM")
    assert {s.name: s.values for s in spec.series} == {
        "Web": (5.0, 4.0),
        "WhatsApp": (3.0, 0.0),
    }  # channels by name, each on its own as a legend names it
    assert spec.subtitle == "by location, stacked by source channel"

    # The range and top N keep whole bars: BER (8 in all) stays with both its parts, HAM (4) goes.
    ranged = present(found, Presentation("stacked_bar", at_least=5.0))
    assert ranged.categories == ("BER",)
    assert {s.name: s.values for s in ranged.series} == {"Web": (5.0,), "WhatsApp": (3.0,)}
    assert ranged.subtitle == "by location, stacked by source channel, only those of €5.00 or more (1 of 2)"
    smallest = present(found, Presentation("stacked_bar", sort="smallest", top=1))
    assert smallest.categories == ("HAM",) and smallest.subtitle.endswith(
        "stacked by source channel, bottom 1 of 2"
    )


def test_a_range_keeps_the_split_values_whose_figure_lies_in_it() -> None:
    series = [
        SeriesResult("revenue", value, value, (), total)
        for value, total in (("a", 500.0), ("b", 1000.0), ("c", 5000.0), ("d", 5000.5), ("e", None))
    ]
    kept = ordered(series, Presentation(at_least=1000.0, at_most=5000.0))
    assert [s.dimension_value for s in kept] == ["c", "b"]  # both bounds included; no figure, not kept
    assert [s.dimension_value for s in ordered(series, Presentation(at_most=999.0))] == ["a"]
    with pytest.raises(PresentationError, match="choose a split"):
        check_fits(_query(), Presentation(at_least=1.0), get_metric("revenue"))
    with pytest.raises(PresentationError, match="starts above"):
        check_fits(
            _query(dimensions=("location",)), Presentation(at_least=2.0, at_most=1.0), get_metric("revenue")
        )
    for bad in ({"at_least": "10"}, {"at_most": True}, {"at_least": float("inf")}):
        with pytest.raises(PresentationError, match="is a number"):
            presentation_of({"chart": bad})


def test_the_builder_reads_a_range_in_the_metric_unit_and_back() -> None:
    form = form_of(
        {
            **EMPTY_FORM,
            "metric": "no_show_rate",
            "dimension": "location",
            "value_from": "12.5 %",
            "value_to": "40",
        }
    )
    built = build(form, names=NAMES, now=NOW, business_tz="Europe/Berlin")
    assert built.errors == {} and built.definition is not None
    assert built.definition["chart"]["at_least"] == pytest.approx(0.125)
    assert built.definition["chart"]["at_most"] == pytest.approx(0.4)
    again = form_from_definition("Rates", built.definition, shared=False)
    assert (again["value_from"], again["value_to"]) == ("12.5", "40")
    # Edited in German, the bound reads back as typed there, and builds the same range again.
    german = form_from_definition("Rates", built.definition, shared=False, locale="de_DE")
    assert german["value_from"] == "12,5"
    rebuilt = build(form_of(german), names=NAMES, now=NOW, business_tz="Europe/Berlin", locale="de_DE")
    assert rebuilt.definition is not None and rebuilt.definition["chart"]["at_least"] == pytest.approx(0.125)

    money = build(
        form_of({**EMPTY_FORM, "dimension": "location", "value_from": "1,000"}),
        names=NAMES,
        now=NOW,
        business_tz="Europe/Berlin",
    )
    assert money.definition is not None and money.definition["chart"]["at_least"] == 1000.0
    for changes, where, why in (
        ({"dimension": "location", "value_from": "lots"}, "value_from", "Give a number"),
        ({"value_from": "10"}, "value_from", "choose a split"),
        ({"dimension": "location", "value_from": "10", "value_to": "5"}, "value_from", "starts above"),
    ):
        refused = build(form_of({**EMPTY_FORM, **changes}), names=NAMES, now=NOW, business_tz="Europe/Berlin")
        assert refused.definition is None and why in refused.errors[where], refused.errors


def _spec(**shape: object) -> ChartSpec:
    header: dict[str, object] = {
        "title": "Revenue",
        "period_label": "1–30 Nov 2026",
        "data_as_of": NOW,
        "unit": "currency",
        "currency": "EUR",
        "timezone": "Europe/Berlin",
    }
    return ChartSpec(**{**header, **shape})  # type: ignore[arg-type]


def test_exports_carry_the_figures_as_shown_in_the_business_timezone() -> None:
    days = (datetime(2026, 11, 1, 23, 0, tzinfo=UTC), datetime(2026, 11, 2, 23, 0, tzinfo=UTC))
    sheet = sheet_rows(_spec(kind="line", series=(Series("Revenue", (10.0, None)),), x_dates=days))
    assert sheet.heading == ("Date", "Revenue (EUR)")
    assert sheet.rows == (("2026-11-02", 10.0), ("2026-11-03", None))  # local midnight, Berlin

    rate = sheet_rows(
        _spec(kind="kpi_tile", unit="percent", currency=None, kpi=KpiTile.compare(0.125, 0.1, "down_is_good"))
    )
    # A rate's change is in points, as its tile says ("+2.5 pts"), not 25 % of a percentage.
    assert rate.heading == ("Revenue (%)", "Before (%)", "Change (points)") and rate.rows == (
        (12.5, 10.0, 2.5),
    )


def test_a_label_that_looks_like_a_formula_stays_text_in_csv() -> None:
    spec = _spec(
        kind="bar",
        categories=("=HYPERLINK(1)", "Hamburg"),
        series=(Series("Revenue", (1.0, 2.0)),),
        subtitle="by location",
    )
    rows = list(csv.reader(io.StringIO(as_csv(spec).decode().lstrip("\ufeff"))))
    assert (
        rows[0] == ["Location", "Revenue (EUR)"]
        and rows[1][0] == "'=HYPERLINK(1)"
        and rows[2] == ["Hamburg", "2"]
    )


def test_a_split_says_what_its_chart_draws() -> None:
    from reports.presentation import split_words

    header = _spec(kind="bar", categories=("x",), series=(Series("Revenue", (1.0,)),))
    assert split_words("by location", Presentation(top=10), header, 23, 23, 10, 8) == (
        "by location, top 10 of 23, 8 of those drawn"
    )
    # No top N asked for, but more values than the chart holds: it says which it kept, and of how many.
    assert split_words("by location and channel", Presentation(), header, 33, 33, 33, 8) == (
        "by location and channel, top 8 of 33"
    )
    assert split_words("by location", Presentation(), header, 5, 5, 5, 5) == "by location"
    assert split_words("by location", Presentation(at_most=10.0, top=2), header, 9, 4, 2, 2) == (
        "by location, only those up to €10.00 (4 of 9), top 2 of 4"
    )


def test_a_range_is_read_in_the_business_locale() -> None:
    form = form_of({**EMPTY_FORM, "metric": "no_show_rate", "dimension": "location", "value_from": "12,5 %"})
    german = build(form, names=NAMES, now=NOW, business_tz="Europe/Berlin", locale="de_DE")
    assert german.definition is not None and german.definition["chart"]["at_least"] == pytest.approx(0.125)
    english = build(form, names=NAMES, now=NOW, business_tz="Europe/Berlin", locale="en_GB")
    assert english.definition is not None and english.definition["chart"]["at_least"] == pytest.approx(1.25)


def test_a_filter_on_a_dimension_of_fixed_words_names_one_of_them() -> None:
    """Channels, categories and sources are words of the product, not rows: a filter on them is checked
    against those words (as a clinic is against the clinics), and one written in capitals is found."""
    base = {**EMPTY_FORM, "name": "Sent", "metric": "messages_sent", "period": "last_30_days"}
    refused = build(
        form_of({**base, "filter_0_dimension": "channel", "filter_0_values": "pigeon"}),
        names=NAMES,
        now=NOW,
        business_tz="Europe/Berlin",
    )
    assert "is not a channel we have" in refused.errors["filter_0_values"]
    assert "sms, email, whatsapp" in refused.errors["filter_0_values"]
    taken = build(
        form_of({**base, "filter_0_dimension": "channel", "filter_0_values": "SMS, WhatsApp"}),
        names=NAMES,
        now=NOW,
        business_tz="Europe/Berlin",
    )
    assert taken.errors == {} and taken.definition is not None
    assert taken.definition["query"]["filters"] == [
        {"dimension": "channel", "operator": "in", "value": ["sms", "whatsapp"]}
    ]


def test_a_rate_over_time_with_one_day_to_divide_by_is_its_figure_not_a_lone_dot() -> None:
    """A campaign's conversion by day: its messages went out on one day, so only that day has a rate."""
    from reports.answer import chart_for

    days = [NOW - timedelta(days=n) for n in range(5, 0, -1)]
    points = tuple((day, 0.004 if i == 0 else None) for i, day in enumerate(days))

    def drawn(values: tuple[tuple[datetime, float | None], ...]) -> str:
        result = QueryResult(
            metrics=(get_metric("campaign_conversion"),),
            range=TimeRange(days[0], NOW, "last 5 days", "Europe/Berlin"),
            comparison_range=None,
            grain="day",
            dimensions=(),
            series=(SeriesResult("campaign_conversion", None, "Campaign conversion", values, 0.041),),
            data_as_of=NOW,
            source="raw",
        )
        chart = chart_for(result, result.series, "Campaign conversion: 4.1%.", "en_GB", "EUR")
        return chart.kind if chart.kind != "kpi_tile" else f"tile {chart.kpi.value if chart.kpi else None}"

    assert drawn(points) == "tile 0.041"
    assert drawn(tuple((day, 0.004 * (i + 1)) for i, day in enumerate(days))) == "line"


def test_the_figures_sent_as_text_read_dates_as_people_do_and_say_a_partial_week() -> None:
    """A scheduled delivery's text listed "2026-11-02: …": the sheet keeps ISO dates, the text names each week
    as the chart's rows do ("w/c 2 Nov 2026"), and a week the period holds only part of is named, so its
    figure is not read as a drop."""
    mondays = tuple(datetime(2026, 10, 25, 23, 0, tzinfo=UTC) + timedelta(days=7 * i) for i in range(3))
    weekly = _spec(
        kind="line",
        unit="percent",
        currency=None,
        period_label="28 Oct – 15 Nov 2026 · partial first week",
        grain="week",
        series=(Series("Delivery rate", (0.97, 0.95, 0.96)),),
        x_dates=mondays,
    )
    assert figures_text(weekly).splitlines() == [
        "w/c 26 Oct 2026: 97.0%",
        "w/c 2 Nov 2026: 95.0%",
        "w/c 9 Nov 2026: 96.0%",
        "(Partial first week: fewer days than the others, so not a drop.)",
    ]
    assert sheet_rows(weekly).rows[0][0] == "2026-10-26"  # the attached sheet keeps the date as data
    two_days = (mondays[0], mondays[0] + timedelta(days=1))
    daily = _spec(kind="line", locale="en_GB", series=(Series("Revenue", (1.0, 2.0)),), x_dates=two_days)
    assert figures_text(daily).splitlines() == ["26 Oct 2026: €1.00", "27 Oct 2026: €2.00"]


def test_a_one_bucket_month_or_quarter_is_named_by_its_grain_not_read_as_a_day() -> None:
    """With one point there are no steps between dates to read a bucket's length from: the grain says it."""
    november = (datetime(2026, 10, 31, 23, 0, tzinfo=UTC),)  # 1 Nov in Berlin
    monthly = _spec(
        kind="line", locale="en_GB", grain="month", series=(Series("Revenue", (5.0,)),), x_dates=november
    )
    assert figures_text(monthly) == "Nov 2026: €5.00"
    quarterly = _spec(kind="line", grain="quarter", series=(Series("Revenue", (5.0,)),), x_dates=november)
    assert figures_text(quarterly) == "Q4 2026: €5.00"


def test_a_slug_spells_german_letters_out() -> None:
    """ "Winteraktion München ÄÖÜ" became winteraktion-munchen-aou, not as Germans write it without umlauts."""
    from reports.library import slug_for

    assert slug_for("Winteraktion Hautcheck – München ÄÖÜ") == "winteraktion-hautcheck-muenchen-aeoeue"
    assert slug_for("Frühjahrs-Check Wien") == "fruehjahrs-check-wien"
    assert slug_for("Straße für Zoë") == "strasse-fuer-zoe"
    assert slug_for("!!! ??? 🎉") == ""


@pytest.mark.parametrize(
    ("typed", "cron"),
    [
        ("weekly Mo bis Fr 7:30 to #ops", "30 7 * * 1-5"),
        ("weekly Mo.-Fr. 7:30 to #ops", "30 7 * * 1-5"),
        ("weekly Mo - Fr 7:30 to #ops", "30 7 * * 1-5"),
        ("weekly jeden Mo 8:00 to #ops", "0 8 * * 1"),
    ],
)
def test_the_bot_finds_a_german_weekday_range_where_the_form_does(typed: str, cron: str) -> None:
    """The web form read "Mo bis Fr 7:30"; the bot did not find where the time began."""
    from datetime import date

    from bot.commands.reports import parse_schedule

    said = parse_schedule(typed.split(), typed, date(2026, 12, 7))
    assert (said.name, said.cron) == ("weekly", cron)
    assert cron_from_words(typed.removeprefix("weekly ").removesuffix(" to #ops")) == cron


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("weekly jeden zweiten Dienstag 8 Uhr to me", "'zweiten dienstag' is not a day I know"),
        ("weekly alle zwei Wochen dienstags 8 Uhr to me", "Say when"),
    ],
)
def test_a_german_schedule_the_bot_cannot_read_is_refused_as_a_schedule(typed: str, said: str) -> None:
    """ "jeden zweiten Dienstag 8 Uhr" read "Dienstag 8 Uhr" as the schedule and said there was no report
    "weekly jeden zweiten"."""
    from datetime import date

    from bot.commands.parsing import ParseError
    from bot.commands.reports import parse_schedule

    with pytest.raises(ParseError) as refused:
        parse_schedule(typed.split(), typed, date(2026, 12, 7))
    assert str(refused.value).startswith(said)
    # A report whose name holds a day, "alle" or "täglich" still reads: the schedule starts at "jeden".
    for named, name, cron in (
        ("Wochenbericht Montag jeden Montag 8 Uhr to me", "Wochenbericht Montag", "0 8 * * 1"),
        ("Umsatz alle Kliniken jeden Montag 8 Uhr to me", "Umsatz alle Kliniken", "0 8 * * 1"),
        ("Termine alle Standorte werktags 7:30 to me", "Termine alle Standorte", "30 7 * * 1-5"),
        ("Umsatz täglich jeden Montag 8 Uhr to me", "Umsatz täglich", "0 8 * * 1"),
        ("weekly montags 8 Uhr to me", "weekly", "0 8 * * 1"),
    ):
        scheduled = parse_schedule(named.split(), named, date(2026, 12, 7))
        assert (scheduled.name, scheduled.cron) == (name, cron), named
