"""Chart rendering benchmark: our PNG path against the obvious pyplot way; prints one JSON line.

Run: .venv/bin/python bench/chart.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import io
import json
import math
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reports.charts.cache import ChartCache, render_cached
from reports.charts.render import render_png
from reports.charts.spec import ChartSpec, Series

CHANNELS = ("WhatsApp", "SMS", "Email", "Telegram")
DAYS = 365
AS_OF = datetime(2026, 11, 24, 13, 5, tzinfo=UTC)
FIRST_DAY = date(2025, 11, 25)

OrderRow = tuple[datetime, str, float]


def daily_revenue() -> tuple[tuple[date, ...], dict[str, list[float]]]:
    rng = random.Random(20261124)
    days = tuple(FIRST_DAY + timedelta(days=i) for i in range(DAYS))
    revenue = {
        channel: [2000 + 800 * j + 400 * math.sin(i / 20 + j) + rng.uniform(-150, 150) for i in range(DAYS)]
        for j, channel in enumerate(CHANNELS)
    }
    return days, revenue


def revenue_spec() -> ChartSpec:
    """The benchmark chart: revenue by channel, 4 series x 365 days, as the bot sends it."""
    days, revenue = daily_revenue()
    return revenue_by_channel_chart(
        days,
        tuple(Series(channel, tuple(round(v, 2) for v in values)) for channel, values in revenue.items()),
    )


def revenue_by_channel_chart(days: tuple[date, ...], series: tuple[Series, ...]) -> ChartSpec:
    return ChartSpec(
        kind="line",
        title="Revenue by channel",
        period_label="Last 365 days · daily",
        data_as_of=AS_OF,
        unit="currency",
        currency="USD",
        timezone="Europe/Berlin",
        series=series,
        x_dates=days,
    )


def render_the_obvious_way(days: Sequence[date], revenue: dict[str, list[float]]) -> bytes:
    """What most projects write first: pyplot global state, default layout and legend placement."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(8, 4.5), dpi=150)
    ax = figure.add_subplot()
    x_values: Any = list(days)  # matplotlib's stubs do not admit dates, though plot() takes them
    for channel, values in revenue.items():
        ax.plot(x_values, values, label=channel)
    plt.title("Revenue by channel")
    ax.legend()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def raw_order_rows() -> list[OrderRow]:
    """Stand-in for the query layer's raw rows: individual orders with a UTC timestamp."""
    rng = random.Random(7)
    start = datetime(2025, 11, 25, tzinfo=ZoneInfo("Europe/Berlin")).astimezone(UTC)
    rows: list[OrderRow] = []
    for day in range(DAYS):
        for channel in CHANNELS:
            for _ in range(12):
                moment = start + timedelta(days=day, seconds=rng.randrange(86_400))
                rows.append((moment, channel, round(rng.uniform(50, 400), 2)))
    return rows


def build_spec_for_e2e(rows: Sequence[OrderRow]) -> ChartSpec:
    """Rows -> daily revenue per channel -> spec. The lead swaps this for the real query layer."""
    zone = ZoneInfo("Europe/Berlin")
    totals: dict[str, dict[date, float]] = defaultdict(lambda: defaultdict(float))
    for moment, channel, amount in rows:
        totals[channel][moment.astimezone(zone).date()] += amount
    days = tuple(sorted({day for per_day in totals.values() for day in per_day}))
    series = tuple(
        Series(channel, tuple(round(totals[channel].get(day, 0.0), 2) for day in days))
        for channel in sorted(totals)
    )
    return revenue_by_channel_chart(days, series)


async def query_to_png_timings(runs: int, customers: int) -> tuple[list[float], dict[str, int]]:
    """Milliseconds from a MetricQuery to PNG bytes: revenue, 365 days, daily, split by sales channel."""
    from sqlalchemy import func, select

    from bench.bot import demo_database
    from reports.answer import answer
    from reports.periods import PeriodSpec
    from reports.query import MetricQuery
    from storage.database import Database
    from storage.models import CustomerCommunication, Order

    database = Database.connect(await demo_database(customers, 365))
    timings: list[float] = []
    try:
        async with database.read_sessions() as session:
            facts = {
                "orders": int(await session.scalar(select(func.count()).select_from(Order)) or 0),
                "messages": int(
                    await session.scalar(select(func.count()).select_from(CustomerCommunication)) or 0
                ),
            }
        for n in range(runs + 2):
            query = MetricQuery(
                ("revenue",), PeriodSpec.last_n_days(365 - n % 3), grain="day", dimensions=("source_channel",)
            )
            started = time.perf_counter()
            result = await answer(database, query, now=datetime.now(UTC), business_tz="Europe/Berlin")
            render_png(result.chart)
            if n >= 2:  # the first two warm up connections and code paths
                timings.append((time.perf_counter() - started) * 1000)
    finally:
        await database.dispose()
    return timings, facts


def elapsed_ms(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (under a minute)")
    args = parser.parse_args(argv)
    runs = 15 if args.quick else 60
    warmup = 3 if args.quick else 8

    spec = revenue_spec()
    days, revenue = daily_revenue()
    rows = raw_order_rows()
    cache = ChartCache()
    for _ in range(warmup):  # font cache, babel locale data, numpy and matplotlib code paths
        render_png(spec)
        render_the_obvious_way(days, revenue)
        render_png(build_spec_for_e2e(rows))
    render_cached(spec, "png", "v1", cache)

    # Interleaved so both paths see the same machine load.
    ours: list[float] = []
    baseline: list[float] = []
    for _ in range(runs):
        ours.append(elapsed_ms(lambda: render_png(spec)))
        baseline.append(elapsed_ms(lambda: render_the_obvious_way(days, revenue)))
    png_p50 = statistics.median(ours)
    baseline_p50 = statistics.median(baseline)

    # A fresh, equal spec per lookup: a real request builds a new spec, so the fingerprint is included.
    copies = [ChartSpec.from_dict(spec.to_dict()) for _ in range(runs * 10)]
    cached = [elapsed_ms(functools.partial(render_cached, copy, "png", "v1", cache)) for copy in copies]

    # End to end through the product: a query object answered from the seeded demo database's rollups,
    # its chart spec built by reports.answer, and the PNG drawn; nothing cached.
    e2e_runs, e2e_rows = asyncio.run(query_to_png_timings(runs, customers=300 if args.quick else 800))
    e2e_p50 = statistics.median(e2e_runs)
    print(
        json.dumps(
            {
                "png_p50_ms": round(png_p50, 2),
                "cached_p50_ms": round(statistics.median(cached), 4),
                "baseline_p50_ms": round(baseline_p50, 2),
                "ratio": round(png_p50 / baseline_p50, 3),
                "e2e_p50_ms": round(e2e_p50, 2),
                "e2e_facts": e2e_rows,
                "e2e_in_memory_p50_ms": round(
                    statistics.median(
                        elapsed_ms(lambda: render_png(build_spec_for_e2e(rows))) for _ in range(5)
                    ),
                    2,
                ),
                "runs": runs,
            }
        )
    )


if __name__ == "__main__":
    main()
