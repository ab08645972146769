"""Chart specs, PNG/SVG rendering of every chart kind, and the rendered-chart cache."""

from __future__ import annotations

import dataclasses
import io
import json
import struct
import subprocess
import sys
import threading
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import matplotlib
import pytest
from PIL import Image

from reports.charts.cache import ChartCache, render_cached
from reports.charts.render import render_png, render_svg
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
    assert "m 00s" in text or "m 30s" in text


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
