"""Chart specs, PNG/SVG rendering of every chart kind, and the rendered-chart cache."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import re
import struct
import subprocess
import sys
import threading
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import matplotlib
import matplotlib.dates as mdates
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Annotation as TextAnnotation
from PIL import Image

from reports.charts import theme
from reports.charts.anomaly_labels import MAX_LABELLED_ANOMALIES
from reports.charts.cache import ChartCache, render_cached
from reports.charts.render import _shorten_apart, _value_ticks, draw_chart, render_png, render_svg
from reports.charts.spec import Annotation, ChartSpec, KpiTile, Series

AS_OF = datetime(2026, 11, 24, 13, 5, tzinfo=UTC)
CHANNELS = ("WhatsApp", "SMS", "Email", "Telegram")
PNG_SIZE = (1200, 675)
HEADER: dict[str, Any] = {
    "title": "Revenue last 30 days by channel",
    "period_label": "25 Oct – 24 Nov 2026",
    "data_as_of": AS_OF,
    "timezone": "Europe/Berlin",
}


def days(count: int) -> tuple[date, ...]:
    return tuple(date(2026, 10, 25) + timedelta(days=i) for i in range(count))


def revenue_line(kind: str = "line", points: int = 30, series: int = 4) -> ChartSpec:
    return ChartSpec(
        kind=kind,  # type: ignore[arg-type]
        unit="currency",
        currency="USD",
        series=tuple(
            Series(name, tuple(1000.0 + 100 * j + (i % 7) * 40 for i in range(points)))
            for j, name in enumerate(CHANNELS[:series])
        ),
        x_dates=days(points),
        annotations=(
            Annotation("anomaly", "Payment outage", x_index=points // 2),
            Annotation("target", value=2000.0),
        ),
        **HEADER,
    )


def revenue_bars(kind: str = "bar") -> ChartSpec:
    return ChartSpec(
        kind=kind,  # type: ignore[arg-type]
        unit="currency",
        currency="USD",
        categories=CHANNELS,
        series=(
            Series("This month", (12500.0, 8300.5, 4100.0, 2900.0)),
            Series("Last month", (11000.0, 9000.0, None, 2500.0)),
        ),
        annotations=(Annotation("target", value=10_000.0),),
        **HEADER,
    )


def revenue_tile() -> ChartSpec:
    return ChartSpec(
        kind="kpi_tile",
        unit="currency",
        currency="USD",
        kpi=KpiTile.compare(48210.5, 42900.0, "up_is_good"),
        series=(Series("Revenue", tuple(1500.0 + 30 * i for i in range(30))),),
        x_dates=days(30),
        **HEADER,
    )


def revenue_table() -> ChartSpec:
    return ChartSpec(
        kind="table",
        unit="currency",
        currency="USD",
        categories=CHANNELS,
        series=(
            Series("Revenue", (12500.0, 8300.5, None, 2900.0)),
            Series("Orders", (125.0, 83.0, 41.0, 29.0), "count"),
        ),
        **HEADER,
    )


def campaign_funnel() -> ChartSpec:
    return ChartSpec(
        kind="funnel",
        unit="count",
        categories=("Messaged", "Replied", "Clicked link", "Ordered"),
        series=(Series("Customers", (12400.0, 5300.0, 2100.0, 510.0)),),
        **HEADER,
    )


def retention_heatmap() -> ChartSpec:
    return ChartSpec(
        kind="cohort_heatmap",
        unit="percent",
        categories=("Aug 2026", "Sep 2026", "Oct 2026"),
        heatmap_columns=("M0", "M1", "M2"),
        heatmap=((1.0, 0.42, 0.31), (1.0, 0.40, None), (1.0, None, None)),
        **HEADER,
    )


# Each kind with the unit-formatted text its SVG must contain.
EVERY_KIND: dict[str, tuple[Callable[[], ChartSpec], str]] = {
    "line": (revenue_line, "$2K"),
    "area": (lambda: revenue_line("area"), "$"),
    "bar": (revenue_bars, "$10K"),
    "stacked_bar": (lambda: revenue_bars("stacked_bar"), "$"),
    "kpi_tile": (revenue_tile, "$48,210.50"),
    "table": (revenue_table, "$12,500.00"),
    "funnel": (campaign_funnel, "12,400"),
    "cohort_heatmap": (retention_heatmap, "42%"),
}


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    length, chunk = struct.unpack(">I4s", png[8:16])
    assert chunk == b"IHDR" and length == 13
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def svg_text(svg: str) -> str:
    return " ".join(ElementTree.fromstring(svg).itertext())  # noqa: S314 - our own renderer's output


# --- rendering ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(EVERY_KIND))
def test_every_kind_renders_a_slack_sized_png(kind: str) -> None:
    build, _ = EVERY_KIND[kind]
    png = render_png(build())
    assert png_size(png) == PNG_SIZE
    decoded = Image.open(io.BytesIO(png))
    decoded.load()  # decompresses every row, so a broken IDAT would fail here
    assert decoded.size == PNG_SIZE
    assert decoded.getextrema() != ((255, 255),) * 3, "image is blank"


@pytest.mark.parametrize("kind", sorted(EVERY_KIND))
def test_every_kind_renders_svg_with_searchable_text(kind: str) -> None:
    build, unit_text = EVERY_KIND[kind]
    spec = build()
    text = svg_text(render_svg(spec))
    assert spec.title in text
    assert unit_text in text
    assert "Data as of Nov 24, 2026" in text and "Europe/Berlin" in text
    assert "Switchboard" in text


def test_png_and_svg_are_byte_stable_for_the_same_spec() -> None:
    spec = revenue_line()
    assert render_png(spec) == render_png(spec)
    assert render_svg(spec) == render_svg(spec)


def test_png_carries_the_title_as_metadata_for_alt_text() -> None:
    spec = dataclasses.replace(revenue_line(), summary="WhatsApp leads; SMS fell 8%.")
    decoded = Image.open(io.BytesIO(render_png(spec)))
    assert decoded.info["Title"] == spec.title
    assert decoded.info["Description"] == "WhatsApp leads; SMS fell 8%."


def test_svg_render_leaves_global_matplotlib_settings_alone() -> None:
    before = matplotlib.rcParams["svg.fonttype"]
    render_svg(revenue_bars())
    assert matplotlib.rcParams["svg.fonttype"] == before


def test_locale_reaches_the_ticks_and_the_stamp() -> None:
    spec = dataclasses.replace(revenue_bars(), locale="de_DE", currency="EUR")
    text = svg_text(render_svg(spec))
    assert "10.000\xa0€" in text
    assert "Data as of 24. Nov. 2026, 14:05 Europe/Berlin" in text


def test_duration_and_hourly_charts_render() -> None:
    hours = tuple(datetime(2026, 11, 24, h, tzinfo=UTC) for h in range(24))
    spec = ChartSpec(
        kind="line",
        unit="duration",
        series=(Series("First response", tuple(60.0 + 15 * h for h in range(24))),),
        x_dates=hours,
        **HEADER,
    )
    text = svg_text(render_svg(spec))
    assert re.search(r"\b\d+m( 30s)?\b", text) and "m 00s" not in text  # "2m", "2m 30s": no zero part


def test_concurrent_renders_all_succeed() -> None:
    results: list[bytes] = []
    errors: list[BaseException] = []

    def draw(build: Callable[[], ChartSpec]) -> None:
        try:
            results.append(render_png(build()))
            render_svg(build())
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=draw, args=(build,)) for build, _ in EVERY_KIND.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert all(png_size(png) == PNG_SIZE for png in results)


def test_rendering_never_imports_pyplot() -> None:
    # pyplot keeps global figure state; the renderer must work without it, so check in a clean process.
    program = (
        "import sys, tests.unit.test_charts as t\n"
        "from reports.charts.render import render_png, render_svg\n"
        "render_png(t.revenue_line()); render_svg(t.revenue_line())\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", program], check=True, timeout=120)


# --- no data is never drawn as zero ----------------------------------------------------------


def svg_texts(svg: str) -> list[str]:
    """Every <text> element's words; with real SVG text each matplotlib Text is one element."""
    root = ElementTree.fromstring(svg)  # noqa: S314 - our own renderer's output
    return ["".join(element.itertext()).strip() for element in root.iter("{http://www.w3.org/2000/svg}text")]


def chart_words(spec: ChartSpec) -> list[str]:
    """The SVG's texts without the frame (title, period, stamp, brand), which hold dates and digits."""
    frame = {spec.title, spec.period_label, "Switchboard"}
    return [t for t in svg_texts(render_svg(spec)) if t not in frame and not t.startswith("Data as of")]


def satisfaction_tile(value: float | None, previous: float | None, *, unit: str = "number") -> ChartSpec:
    return ChartSpec(
        kind="kpi_tile",
        unit=unit,  # type: ignore[arg-type]
        kpi=KpiTile.compare(value, previous, "up_is_good"),
        **HEADER,
    )


def test_a_tile_without_a_value_says_no_data_and_draws_no_zero_or_change() -> None:
    words = chart_words(satisfaction_tile(None, 4.5))
    assert "No data" in words
    assert not any(w in {"0", "0.0", "–"} for w in words), words
    assert not any("%" in w or "▲" in w or "▼" in w for w in words), words
    assert "Previous period: 4.5" in words  # the earlier figure alone, with no arrow or percentage


def test_a_tile_without_a_value_has_no_change_and_refuses_one() -> None:
    assert KpiTile.compare(None, 4.5, "up_is_good").change_pct is None
    with pytest.raises(ValueError, match="no change"):
        KpiTile(value=None, previous_value=4.5, change_pct=-1.0)
    spec = satisfaction_tile(None, None)
    assert ChartSpec.from_json(spec.to_json()) == spec


def test_a_tile_without_a_previous_value_compares_with_nothing() -> None:
    words = chart_words(satisfaction_tile(4.2, None))
    assert words == ["4.2"], words  # no "+100%", no "from 0", no sentence about a missing period


def test_a_tile_rising_from_a_real_zero_has_a_direction_but_no_percentage() -> None:
    words = chart_words(satisfaction_tile(5.0, 0.0, unit="count"))
    assert "▲ up from 0 in previous period · better" in words, words
    assert not any("%" in w for w in words), words


def test_a_tile_whose_sparkline_has_no_values_draws_no_sparkline() -> None:
    spec = dataclasses.replace(
        satisfaction_tile(None, None), series=(Series("CSAT", (None,) * 5),), x_dates=days(5)
    )
    assert not draw_chart(spec).axes
    assert chart_words(spec) == ["No data"]


def line_with_gaps(values: tuple[float | None, ...], *others: Series) -> ChartSpec:
    return ChartSpec(
        kind="line",
        unit="number",
        series=(Series("CSAT", values), *others),
        x_dates=days(len(values)),
        **HEADER,
    )


def test_a_line_leaves_a_gap_where_there_is_no_value_and_dots_a_lone_point() -> None:
    values: list[float | None] = [4.0 + (i % 3) / 10 for i in range(60)]
    values[20:25] = [None] * 5
    values[40:43] = [None, 3.0, None]  # a lone value between two gaps
    figure = draw_chart(line_with_gaps(tuple(values), Series("NPS", (4.0,) * 60)))
    (ax,) = figure.axes
    drawn = ax.lines[0].get_ydata()
    assert all(math.isnan(drawn[i]) for i in range(20, 25))  # a gap, not a dip to zero
    assert min(v for v in drawn if not math.isnan(v)) == 3.0
    lone_x = mdates.date2num(days(60)[41])  # type: ignore[no-untyped-call]
    dotted = [
        line
        for line in ax.lines
        if line.get_marker() == "o" and lone_x in list(line.get_xdata()) and 3.0 in list(line.get_ydata())
    ]
    assert dotted, "a value with gaps on both sides must still be visible"


def test_a_line_with_no_values_says_so_instead_of_drawing_an_empty_axis() -> None:
    spec = line_with_gaps((None,) * 30)
    words = chart_words(spec)
    assert "No data for this period" in words
    # No value ticks: a bare 0 at the bottom of an empty axis reads as the value. Dates ("Nov 1") stay.
    assert not any(w.replace(".", "").isdigit() for w in words), words
    assert any(w.startswith("Nov") for w in words), words


def test_a_series_with_no_values_is_named_so_in_the_legend() -> None:
    spec = line_with_gaps(tuple(4.0 for _ in range(30)), Series("NPS", (None,) * 30))
    assert "NPS (no data)" in chart_words(spec)


def bars_with_a_gap(*series: Series, kind: str = "bar") -> ChartSpec:
    return ChartSpec(
        kind=kind,  # type: ignore[arg-type]
        unit="currency",
        currency="USD",
        categories=CHANNELS,
        series=series,
        **HEADER,
    )


def test_a_missing_bar_is_absent_and_labelled_no_data() -> None:
    spec = bars_with_a_gap(Series("Revenue", (12500.0, None, 4100.0, 2900.0)))
    (ax,) = draw_chart(spec).axes
    heights = [patch.get_height() for patch in ax.patches]
    assert len(heights) == 3 and all(math.isfinite(h) and h > 0 for h in heights)
    assert [t.get_text() for t in ax.texts] == ["$12.5K", "$4.1K", "$2.9K", "no data"]
    assert chart_words(spec).count("no data") == 1


def test_missing_bars_in_a_group_are_labelled_upright() -> None:
    spec = bars_with_a_gap(
        Series("This month", (12500.0, 8300.5, None, 2900.0)), Series("Last month", (None,) * 4)
    )
    (ax,) = draw_chart(spec).axes
    marks = [t for t in ax.texts if t.get_text() == "no data"]
    assert len(marks) == 5 and {t.get_rotation() for t in marks} == {90.0}
    assert len(ax.patches) == 3
    assert "Last month (no data)" in chart_words(spec)


def test_a_stack_with_nothing_says_no_data_and_a_partial_stack_says_at_least() -> None:
    spec = bars_with_a_gap(
        Series("Paid", (1000.0, None, None, 200.0)),
        Series("Refunded", (100.0, 50.0, None, 20.0)),
        kind="stacked_bar",
    )
    (ax,) = draw_chart(spec).axes
    # Email: neither part known; SMS: only the refunds are known, so the stack is at least that.
    assert [t.get_text() for t in ax.texts] == ["$1.1K", "≥ $50", "no data", "$220"]


def test_a_stacked_area_breaks_where_a_part_is_missing() -> None:
    known = tuple(100.0 for _ in range(30))
    gap = tuple(None if i == 15 else 50.0 for i in range(30))
    spec = ChartSpec(
        kind="area",
        unit="count",
        series=(Series("SMS", known), Series("Email", gap)),
        x_dates=days(30),
        **HEADER,
    )
    (ax,) = draw_chart(spec).axes
    gap_x = mdates.date2num(days(30)[15])  # type: ignore[no-untyped-call]
    outlines = [vertex for area in ax.collections for path in area.get_paths() for vertex in path.vertices]
    assert outlines and not any(math.isclose(x, gap_x) for x, _ in outlines)


def test_a_funnel_step_without_data_is_no_data_not_zero() -> None:
    spec = ChartSpec(
        kind="funnel",
        unit="count",
        categories=("Messaged", "Replied", "Clicked link", "Ordered"),
        series=(Series("Customers", (12400.0, None, 2100.0, 510.0)),),
        **HEADER,
    )
    words = chart_words(spec)
    assert "no data" in words and "0" not in words
    assert not any("–" in w for w in words), words  # no conversion to or from the unknown step
    assert "(24.3% of previous)" in words  # 510 / 2100
    assert "Overall conversion 4.1%" in words  # 510 / 12400


# --- anomaly labels ------------------------------------------------------------------------------


def anomalous_line(deviations: dict[int, float], points: int = 60) -> ChartSpec:
    values = tuple(100.0 + (i % 7) * 3 + (deviations.get(i, 0.0)) for i in range(points))
    return ChartSpec(
        kind="line",
        unit="count",
        series=(Series("Appointments", values),),
        x_dates=days(points),
        annotations=(
            *(
                Annotation("anomaly", "unusual for this weekday", x_index=i, deviation=d)
                for i, d in deviations.items()
            ),
            Annotation("target", value=120.0),
        ),
        **HEADER,
    )


def drawn_labels(figure: Figure) -> list[TextAnnotation]:
    (ax,) = figure.axes
    return [
        t for t in ax.texts if isinstance(t, TextAnnotation) and t.get_text() == "unusual for this weekday"
    ]


def test_many_anomalies_get_a_few_labels_that_never_overlap() -> None:
    # Twenty odd days in a row, alternating up and down: every label wants the same place.
    deviations = {i: (25.0 if i % 2 else -20.0) + i / 10 for i in range(20, 40)}
    figure = draw_chart(anomalous_line(deviations))
    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)  # positions as drawn
    (ax,) = figure.axes
    labels = drawn_labels(figure)
    assert 1 <= len(labels) <= MAX_LABELLED_ANOMALIES
    plot = ax.get_window_extent(renderer)
    boxes = [label.get_bbox_patch().get_window_extent(renderer) for label in labels]
    leaders = [label.arrow_patch.get_window_extent(renderer) for label in labels if label.arrow_patch]
    for i, box in enumerate(boxes):
        assert plot.x0 <= box.x0 and box.x1 <= plot.x1 and plot.y0 <= box.y0 and box.y1 <= plot.y1
        for j, other in enumerate(boxes):
            if i != j:
                assert not box.overlaps(other), f"labels {i} and {j} overlap"
                assert not box.overlaps(leaders[j]), f"label {i} covers the leader line of {j}"
    rings = [line for line in ax.lines if line.get_marker() == "o" and line.get_markerfacecolor() == "none"]
    assert sum(len(line.get_xdata()) for line in rings) == 20  # every anomaly keeps its marker
    words = chart_words(anomalous_line(deviations))
    assert words.count("unusual for this weekday") == len(labels) + 1  # the labels and the key


def test_the_labels_go_to_the_largest_deviations() -> None:
    deviations = {5: 8.0, 14: -30.0, 23: 9.0, 32: 40.0, 41: -35.0, 50: 7.0}
    figure = draw_chart(anomalous_line(deviations))
    labelled = sorted(
        round(float(label.xy[0]) - mdates.date2num(days(60)[0]))  # type: ignore[no-untyped-call]
        for label in drawn_labels(figure)
    )
    assert labelled == [14, 32, 41]


def test_a_few_anomalies_are_all_labelled_with_no_key() -> None:
    words = chart_words(anomalous_line({10: 30.0, 45: -25.0}))
    assert words.count("unusual for this weekday") == 2


# --- specification -----------------------------------------------------------------------------


def test_spec_round_trips_through_json() -> None:
    for build, _ in EVERY_KIND.values():
        spec = build()
        assert ChartSpec.from_json(spec.to_json()) == spec
        assert ChartSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_hourly_datetimes_round_trip_as_datetimes() -> None:
    hours = tuple(datetime(2026, 11, 24, h, tzinfo=UTC) for h in range(3))
    spec = ChartSpec(
        kind="line", unit="count", series=(Series("Messages", (1.0, 2.0, 3.0)),), x_dates=hours, **HEADER
    )
    assert ChartSpec.from_json(spec.to_json()).x_dates == hours


def test_fingerprint_is_stable_and_ignores_how_values_were_written() -> None:
    spec = revenue_bars()
    rebuilt = ChartSpec.from_dict(spec.to_dict())
    assert spec.fingerprint() == rebuilt.fingerprint()
    assert len(spec.fingerprint()) == 64
    as_ints = dataclasses.replace(
        spec, series=(Series("This month", (12500, 8300.5, 4100, 2900)), spec.series[1])
    )
    assert as_ints.fingerprint() == spec.fingerprint()


def test_fingerprint_changes_when_data_changes() -> None:
    spec = revenue_bars()
    changed = dataclasses.replace(
        spec, series=(Series("This month", (12500.0, 8300.5, 4100.0, 2901.0)), spec.series[1])
    )
    assert changed.fingerprint() != spec.fingerprint()
    assert dataclasses.replace(spec, locale="de_DE").fingerprint() != spec.fingerprint()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"series": tuple(Series(f"S{i}", (1.0,) * 4) for i in range(9))}, "at most 8 series"),
        ({"series": (Series("This month", (1.0, 2.0)),)}, "has 2 values but there are 4 categories"),
        ({"data_as_of": datetime(2026, 11, 24, 13, 5)}, "timezone-aware"),
        ({"currency": None}, "3-letter ISO currency code"),
        ({"currency": "usd"}, "3-letter ISO currency code"),
        ({"unit": "count"}, "currency 'USD' given"),
        ({"locale": "xx_NOPE"}, "unknown locale"),
        ({"timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"title": "  "}, "title must not be empty"),
        ({"kind": "pie"}, "chart kind must be one of"),
        ({"categories": ()}, "needs categories"),
        ({"series": (Series("A", (1.0,) * 4), Series("A", (2.0,) * 4))}, "unique"),
    ],
)
def test_invalid_specs_are_refused_with_a_clear_message(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(revenue_bars(), **change)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: dataclasses.replace(revenue_line(), x_dates=days(29)), "30 values but there are 29 x_dates"),
        (
            lambda: dataclasses.replace(revenue_line(), x_dates=tuple(reversed(days(30)))),
            "strictly increasing",
        ),
        (
            lambda: dataclasses.replace(
                revenue_line(), annotations=(Annotation("anomaly", "odd", x_index=30),)
            ),
            "outside 0..29",
        ),
        (
            lambda: dataclasses.replace(
                revenue_bars(), annotations=(Annotation("anomaly", "odd", x_index=1),)
            ),
            "line or area",
        ),
        (lambda: Annotation("target"), "needs a value"),
        (lambda: Annotation("anomaly", "", x_index=1), "needs a label"),
        (lambda: Series("Revenue", (1.0, float("nan"))), "finite numbers"),
        (
            lambda: dataclasses.replace(campaign_funnel(), series=(Series("A", (3.0, 2.0, 1.0, 0.0)),) * 2),
            "unique|exactly one",
        ),
        (
            lambda: dataclasses.replace(
                revenue_bars("stacked_bar"), series=(Series("A", (1.0, -1.0, 1.0, 1.0)),)
            ),
            "negative",
        ),
        (lambda: dataclasses.replace(revenue_tile(), kpi=None), "needs kpi"),
        (lambda: dataclasses.replace(retention_heatmap(), heatmap=((1.0, 0.5),) * 3), "row 0 has 2 cells"),
        (
            lambda: dataclasses.replace(retention_heatmap(), categories=("Aug 2026",)),
            "3 rows but there are 1",
        ),
        (
            lambda: dataclasses.replace(revenue_bars(), series=(Series("A", (1.0,) * 4, "count"),)),
            "only makes sense",
        ),
    ],
)
def test_shape_errors_are_refused(build: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_kpi_compare_derives_the_change_as_a_ratio() -> None:
    assert KpiTile.compare(110.0, 100.0, "up_is_good").change_pct == pytest.approx(0.1)
    assert KpiTile.compare(5.0, 0.0, "up_is_good").change_pct is None


# --- cache -------------------------------------------------------------------------------------


def test_cache_hit_returns_identical_bytes_without_rendering_again() -> None:
    cache = ChartCache()
    spec = revenue_line()
    first = render_cached(spec, "png", "rollup-41", cache)
    again = render_cached(ChartSpec.from_json(spec.to_json()), "png", "rollup-41", cache)
    assert again == first
    assert cache.renders == 1
    assert cache.hits == 1


def test_cache_keys_on_data_version_and_format() -> None:
    cache = ChartCache()
    spec = revenue_bars()
    png = render_cached(spec, "png", 1, cache)
    svg = render_cached(spec, "svg", 1, cache)
    render_cached(spec, "png", 2, cache)
    assert isinstance(png, bytes) and isinstance(svg, str)
    assert cache.renders == 3
    render_cached(spec, "svg", 1, cache)
    assert cache.renders == 3


def test_cache_evicts_least_recently_used_to_stay_under_its_byte_bound() -> None:
    one_chart = len(render_png(revenue_bars()))
    cache = ChartCache(max_bytes=int(one_chart * 2.5))
    specs = [dataclasses.replace(revenue_bars(), title=f"Revenue {i}") for i in range(3)]
    render_cached(specs[0], "png", 1, cache)
    render_cached(specs[1], "png", 1, cache)
    render_cached(specs[0], "png", 1, cache)  # touch: now specs[1] is the oldest
    render_cached(specs[2], "png", 1, cache)
    assert cache.size_bytes <= cache.max_bytes
    assert len(cache) == 2
    render_cached(specs[0], "png", 1, cache)
    assert cache.renders == 3
    render_cached(specs[1], "png", 1, cache)
    assert cache.renders == 4


def test_concurrent_misses_for_one_chart_render_it_once() -> None:
    cache = ChartCache()
    spec = revenue_line()
    barrier = threading.Barrier(6)
    results: list[bytes] = []

    def request() -> None:
        barrier.wait()
        results.append(render_cached(spec, "png", "v1", cache))

    threads = [threading.Thread(target=request) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.renders == 1
    assert len(set(results)) == 1


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="png' or 'svg"):
        render_cached(revenue_bars(), "pdf", 1, ChartCache())  # type: ignore[call-overload]


@pytest.mark.parametrize(("weeks", "every"), [(5, 1), (13, 2), (52, 8)])
def test_weekly_points_are_labelled_on_their_own_mondays(weeks: int, every: int) -> None:
    mondays = tuple(date(2026, 1, 5) + timedelta(weeks=i) for i in range(weeks))
    spec = ChartSpec(
        kind="line", unit="count", series=(Series("Orders", (10.0,) * weeks),), x_dates=mondays, **HEADER
    )
    (ax,) = draw_chart(spec).axes
    ticks = [mdates.num2date(t).date() for t in ax.get_xticks()]  # type: ignore[no-untyped-call]
    assert ticks == list(mondays[::every])
    assert len(ticks) <= 7 and all(t.weekday() == 0 for t in ticks)
    # Each label names its Monday, also when the ticks are four or more weeks apart.
    labels = ax.xaxis.get_major_formatter().format_ticks(list(ax.get_xticks()))
    assert labels == [f"{t:%b} {t.day}" for t in ticks], labels  # en_US


def test_daily_points_keep_the_calendar_ticks() -> None:
    (ax,) = draw_chart(revenue_line()).axes
    assert isinstance(ax.xaxis.get_major_locator(), mdates.AutoDateLocator)


def test_a_bars_own_value_reads_as_the_table_beside_it_writes_it() -> None:
    """0.175 (a sum of message costs) is "US$0.18" in the table; the bar said "0.17" (binary .2g)."""
    from reports.charts.render import _bar_text

    costs = dataclasses.replace(revenue_bars(), unit="currency", currency="USD", locale="en_US")
    assert [_bar_text(costs, v) for v in (0.175, 754.45, 12_345.0)] == ["$0.18", "$754.45", "$12.3K"]
    plain = dataclasses.replace(costs, unit="number", currency=None)
    assert _bar_text(plain, 0.175) == "0.18"


def test_labels_the_cut_would_make_alike_keep_where_they_differ() -> None:
    """Three campaigns of one name, told apart by their codes, read "Open clinic evenin…" three times when
    cut: each keeps its start and the part where they differ."""
    named = [
        "Open clinic evening (2026-08-open-clinic-evening)",
        "Open clinic evening (2026-09-open-clinic-evening)",
        "Open clinic evening (2026-07-open-clinic-evening)",
        "Berlin Mitte",
        "A very long name without a twin",
    ]
    shown = _shorten_apart(named, 18)
    assert shown[:3] == ["Open c…2026-08-op…", "Open c…2026-09-op…", "Open c…2026-07-op…"]
    assert shown[3:] == ["Berlin Mitte", "A very long name…"]
    assert all(len(label) <= 18 for label in shown) and len(set(shown)) == len(shown)


def test_a_rate_s_axis_ends_at_100_percent_though_its_bars_carry_labels() -> None:
    """Room for the labels above a 99% bar once stretched the axis to 125%, a rate no channel can reach."""
    rates = ChartSpec(
        kind="bar",
        unit="percent",
        categories=("Telegram", "SMS"),
        series=(Series("Delivery rate", (0.991, 0.933)),),
        **HEADER,
    )
    assert _value_ticks(rates, [0.991, 0.933], include_zero=True, headroom=0.09)[-1] == 1.0
    counts = ChartSpec(kind="bar", unit="count", categories=("a",), series=(Series("n", (99.0,)),), **HEADER)
    assert _value_ticks(counts, [99.0], include_zero=True, headroom=0.09)[-1] > 99.0  # counts keep their room


@pytest.mark.parametrize("kind", ["bar", "stacked_bar"])
def test_a_target_line_never_strikes_a_bars_value_and_its_words_cover_none(kind: str) -> None:
    """93.3% sat on the 95% line, and "Target 95%" on the last bar's 94.8%."""
    rates = ChartSpec(
        kind=kind,  # type: ignore[arg-type]
        unit="percent",
        categories=("SMS", "Email", "WhatsApp", "Telegram"),
        series=(Series("Delivery rate", (0.933, 0.951, 0.97, 0.948)),),
        annotations=(Annotation("target", value=0.95),),
        **HEADER,
    )
    figure = draw_chart(rates)
    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)
    (ax,) = figure.axes
    line_y = float(ax.transData.transform((0.0, 0.95))[1])
    values = [t for t in ax.texts if t.get_text().endswith("%") and not t.get_text().startswith("Target")]
    (target,) = [t for t in ax.texts if t.get_text() == "Target 95%"]
    assert sorted(t.get_text() for t in values) == ["93.3%", "94.8%", "95.1%", "97%"]
    for value in values:
        box = value.get_window_extent(renderer)
        assert not (box.y0 - 1 <= line_y <= box.y1 + 1), f"the line strikes {value.get_text()}"
        assert not box.overlaps(target.get_window_extent(renderer)), f"the target covers {value.get_text()}"
    (inside,) = [t for t in values if t.get_text() == "93.3%"]
    assert inside.get_color() == "#FFFFFF"  # moved into its bar, white on the bar's blue
    assert inside.get_window_extent(renderer).y1 < line_y


def test_a_bar_too_short_to_hold_its_value_has_it_lifted_above_the_line() -> None:
    counts = ChartSpec(
        kind="bar",
        unit="count",
        categories=("Berlin", "Hamburg"),
        series=(Series("Bookings", (3.0, 400.0)),),
        annotations=(Annotation("target", value=12.0),),
        **HEADER,
    )
    figure = draw_chart(counts)
    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)
    (ax,) = figure.axes
    line_y = float(ax.transData.transform((0.0, 12.0))[1])
    (short,) = [t for t in ax.texts if t.get_text() == "3"]
    assert short.get_window_extent(renderer).y0 > line_y


def test_a_duration_tick_on_the_hour_or_minute_says_no_zero_part() -> None:
    from reports.charts.formatting import format_axis_value

    ticks = [format_axis_value(v, "duration", locale="en_GB") for v in (0, 45, 150, 1800, 3600, 5400, 86400)]
    assert ticks == ["0s", "45s", "2m 30s", "30m", "1h", "1h 30m", "1d"]


def test_a_stack_s_total_moved_inside_takes_the_colour_of_the_part_it_sits_in() -> None:
    """A part of zero height (a cell filled with 0) was taken for the top one: white on orange."""
    stacked = ChartSpec(
        kind="stacked_bar",
        unit="count",
        categories=("Berlin",),
        series=(Series("Email", (50.0,)), Series("SMS", (43.0,)), Series("WhatsApp", (0.0,))),
        annotations=(Annotation("target", value=95.0),),
        **HEADER,
    )
    figure = draw_chart(stacked)
    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)
    (ax,) = figure.axes
    (total,) = [t for t in ax.texts if t.get_text() == "93"]
    from reports.charts.target_clearance import _readable_on

    assert total.get_color() == _readable_on(theme.series_colour(1))  # on SMS's part, where it is drawn
    line_y = float(ax.transData.transform((0.0, 95.0))[1])
    box = total.get_window_extent(renderer)
    assert not (box.y0 - 1 <= line_y <= box.y1 + 1)


def test_a_value_standing_alone_reads_with_a_capital_each_part_and_names_keep_theirs() -> None:
    from reports.answer import standing_alone

    assert standing_alone("email") == "Email"
    assert standing_alone("Berlin Mitte · email") == "Berlin Mitte · Email"
    assert standing_alone("iOS app") == "iOS app"
    assert standing_alone("(none)") == "(none)"


def test_a_score_tile_moves_in_its_own_units_not_in_percent() -> None:
    """The satisfaction tile said "+5.0% vs previous period" where the sentence said "up 0.2 from 3.9"."""
    from reports.charts.formatting import format_score_change
    from reports.charts.render import _kpi_change_line

    score = ChartSpec(kind="kpi_tile", unit="number", kpi=KpiTile.compare(4.1, 3.9, "up_is_good"), **HEADER)
    assert score.kpi is not None
    line, _ = _kpi_change_line(score, score.kpi)
    assert line.startswith("▲ +0.20 vs previous period (3.9") and "%" not in line
    assert format_score_change(3.87, 4.39, locale="en_GB") == "−0.52"
    same = ChartSpec(kind="kpi_tile", unit="number", kpi=KpiTile.compare(4.2, 4.2, "up_is_good"), **HEADER)
    assert same.kpi is not None and _kpi_change_line(same, same.kpi)[0].startswith("■ no change")
