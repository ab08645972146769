"""Trend readings of a KPI series: change, moving average, seasonal-naive forecast, anomalies, contributors.

The readings are pure functions over plain numbers; `store_trend` is the one step that writes a
reading to trend_analysis (the caller commits). Summaries say exactly what was measured.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from reports.charts.formatting import format_value, points_moved, score_moved
from reports.metrics import Metric
from storage.models import TrendAnalysis

#: Scales the MAD to a standard deviation for normally distributed residuals.
MAD_TO_SIGMA = 1.4826

ANOMALY_THRESHOLD = 3.5


def change_pct(current: float | None, previous: float | None) -> float | None:
    """Relative change as a ratio (0.12 is +12%); None when there is nothing to compare with."""
    if current is None or previous is None or previous == 0:
        return None
    return (current - previous) / abs(previous)


def moving_average(values: Sequence[float | None], window: int) -> list[float | None]:
    """Trailing mean over `window` points; None until the window is full or while it holds a gap."""
    if window < 1:
        raise ValueError("window must be at least 1")
    averages: list[float | None] = []
    for index in range(len(values)):
        chunk = values[max(0, index - window + 1) : index + 1]
        if len(chunk) < window or any(v is None for v in chunk):
            averages.append(None)
        else:
            averages.append(sum(v for v in chunk if v is not None) / window)
    return averages


def seasonal_residuals(
    values: Sequence[float | None], season: int, *, seasons_back: int = 3
) -> list[float | None]:
    """Each point minus the usual value at its place in the season: the median of the same place in up to
    `seasons_back` earlier seasons (None where the point or all of those are missing).

    A median over several seasons keeps one unusual day from making the same weekday after it look unusual
    too, as a plain "minus last week" would.
    """
    residuals: list[float | None] = []
    for index, value in enumerate(values):
        earlier = [
            v
            for back in range(1, seasons_back + 1)
            if index - back * season >= 0 and (v := values[index - back * season]) is not None
        ]
        residuals.append(None if value is None or not earlier else value - statistics.median(earlier))
    return residuals


@dataclass(frozen=True)
class ForecastPoint:
    value: float
    low: float
    high: float


def seasonal_naive_forecast(
    values: Sequence[float | None], *, season: int = 7, horizon: int = 7, coverage: float = 0.8
) -> list[ForecastPoint]:
    """Repeat the last season; the interval comes from the quantiles of past seasonal residuals.

    With weekly seasonality on daily data, next Monday is forecast as last Monday.
    """
    if len(values) < season or any(v is None for v in values[-season:]):
        raise ValueError(f"a seasonal-naive forecast needs the last {season} points without gaps")
    residuals = sorted(r for r in seasonal_residuals(values, season) if r is not None)
    tail = (1 - coverage) / 2
    low_offset = _quantile(residuals, tail) if residuals else 0.0
    high_offset = _quantile(residuals, 1 - tail) if residuals else 0.0
    last_season = [v for v in values[-season:] if v is not None]
    points = []
    for step in range(horizon):
        base = last_season[step % season]
        # Errors of an h-season-ahead naive forecast add up, so the band widens with sqrt(seasons ahead).
        widen = (step // season + 1) ** 0.5
        points.append(ForecastPoint(base, base + low_offset * widen, base + high_offset * widen))
    return points


def _quantile(ordered: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile of an already sorted sequence."""
    position = q * (len(ordered) - 1)
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def anomalies(
    values: Sequence[float | None], *, season: int = 7, threshold: float = ANOMALY_THRESHOLD
) -> list[int]:
    """Indexes whose seasonal residual has a robust z-score (median/MAD) beyond `threshold`."""
    residuals = seasonal_residuals(values, season)
    known = [r for r in residuals if r is not None]
    if len(known) < 3:
        return []
    centre = statistics.median(known)
    spread = statistics.median(abs(r - centre) for r in known) * MAD_TO_SIGMA
    if spread == 0:
        return _sparse_anomalies(residuals, centre, threshold)
    return [i for i, r in enumerate(residuals) if r is not None and abs(r - centre) / spread > threshold]


#: Fewer changes than this cannot say what a usual change is: each of them stands out.
MIN_CHANGES_FOR_A_NORM = 3


def _sparse_anomalies(residuals: Sequence[float | None], centre: float, threshold: float) -> list[int]:
    """Most points do not change at all (the MAD is 0: a flat series, or a sparse count where nothing
    happens on most days). A change is then judged against the other changes: a day with one no-show
    among days with one or two is not unusual, a day with nine is, and a lone change in a flat line is."""
    changes = {i: abs(r - centre) for i, r in enumerate(residuals) if r is not None and r != centre}
    if len(changes) < MIN_CHANGES_FOR_A_NORM:
        return sorted(changes)
    flagged = []
    for index, size in changes.items():
        others = [other for i, other in changes.items() if i != index]
        typical = statistics.median(others) * MAD_TO_SIGMA
        if size / typical > threshold:
            flagged.append(index)
    return flagged


@dataclass(frozen=True)
class Contribution:
    """How much one dimension value moved, and its share of the total's change."""

    value: str
    current: float
    previous: float
    change: float
    change_pct: float | None
    share_of_change: float | None


def top_contributors(
    current: Mapping[str, float], previous: Mapping[str, float], *, limit: int = 3
) -> list[Contribution]:
    """The dimension values that moved most, by how much each moved (either way), largest first: a drop
    of €728 is named before a rise of €200, whichever way the total went."""
    total_change = sum(current.values()) - sum(previous.values())
    contributions = []
    for value in current.keys() | previous.keys():
        now, before = current.get(value, 0.0), previous.get(value, 0.0)
        change = now - before
        share = change / total_change if total_change else None
        contributions.append(Contribution(value, now, before, change, change_pct(now, before), share))
    contributions.sort(key=lambda c: (-abs(c.change), c.value))
    return contributions[:limit]


def describe_contributors(contributions: Sequence[Contribution], *, locale: str = "en_GB") -> str:
    """'whatsapp -30.0%, berlin -8.0%' (the change of each value against its own previous figure)."""
    parts = []
    for c in contributions:
        if c.change_pct is None:
            parts.append(f"{c.value} new" if c.previous == 0 and c.current else f"{c.value} gone")
        else:
            parts.append(f"{c.value} {c.change_pct * 100:+.1f}%")
    return ", ".join(parts)


def summarise(
    metric: Metric,
    value: float | None,
    *,
    period_label: str,
    timezone: str,
    previous: float | None = None,
    previous_label: str | None = None,
    dimension_note: str = "",
    locale: str = "en_GB",
    currency: str | None = None,
    limited_to: str = "",
    value_note: str = "",
) -> str:
    """One sentence stating what was measured, for when, where, and how it moved. `limited_to`: what the
    figure is limited to, right after its name (" for whatsapp"); `value_note`: what follows the figure
    (" (9 no-shows of 133 appointments due)").

    e.g. "Revenue, net of refunds, 1–30 Nov 2026 (Europe/Berlin): €48,210.00, down 12.0% from 2–31 Oct 2026."
    """
    qualifier = {"revenue": ", net of refunds", "campaign_revenue": ", net of refunds"}.get(metric.name, "")
    shown = format_value(
        value, metric.unit, locale=locale, currency=currency if metric.unit == "currency" else None
    )
    if value is None:  # a rate or an average of nothing: no "–" left for the reader to make sense of
        value_note = ""
        shown = (
            f"no figure: no {metric.out_of[3]} to count"
            if metric.out_of
            else "no figure: nothing in this period to measure it on"
        )
    sentence = f"{metric.label}{limited_to}{qualifier}{dimension_note}, {period_label} ({timezone}): {shown}{value_note}"
    if previous_label is not None and previous is not None:
        sentence += against_words(metric, value, previous, previous_label, locale, currency)
    return sentence + "."


_ONE_DAY = re.compile(r"\d{1,2} \w+ \d{4}(?: \(|$)")


def _in(label: str) -> str:
    """ "on 5 Dec 2026 (the day before)", "in Oct 2026", "in 1–7 Nov 2026": a day is on, a span in."""
    return f"on {label}" if _ONE_DAY.match(label) else f"in {label}"


def against_words(
    metric: Metric,
    value: float | None,
    previous: float,
    previous_label: str,
    locale: str,
    currency: str | None,
) -> str:
    """The tail saying how a figure moved from the compared period's: ", up 3.8 points from 4.8% in Oct"."""
    money = currency if metric.unit == "currency" else None
    if value is None:
        return f" (it was {format_value(previous, metric.unit, locale=locale, currency=money)} {_in(previous_label)})"
    if metric.unit == "percent":
        # A rate moves by points: "20.8%, up 16.0 points from 4.8% in …", never "up 337.5%".
        before = format_value(previous, metric.unit, locale=locale)
        points = points_moved(value, previous)
        if points == 0:
            return f", unchanged from {before} {_in(previous_label)}"
        return (
            f", {'up' if points > 0 else 'down'} {abs(points):.1f} points from {before} {_in(previous_label)}"
        )
    if metric.unit == "number":
        # A score moves by its own units: "4.39, up 0.52 from 3.87 in …", not "up 13.5%".
        before = format_value(previous, metric.unit, locale=locale)
        moved = score_moved(value, previous)  # as the two figures read
        if moved == 0:
            return f", unchanged from {before} {_in(previous_label)}"
        by = format_value(abs(moved), metric.unit, locale=locale)
        return f", {'up' if moved > 0 else 'down'} {by} from {before} {_in(previous_label)}"
    change = change_pct(value, previous)
    if change is None:
        return f", against 0 {_in(previous_label)}"
    if abs(change) < 0.0005:
        return f", unchanged from {previous_label}"
    return f", {'up' if change > 0 else 'down'} {abs(change) * 100:.1f}% from {previous_label}"


@dataclass(frozen=True)
class TrendReading:
    """Everything one trend analysis found for a daily (or other) series."""

    metric: str
    grain: str
    dimension: str
    period_start: datetime
    period_end: datetime
    change_pct: float | None
    moving_average: list[float | None]
    forecast: list[ForecastPoint]
    anomalies: list[int]
    contributors: list[Contribution]
    summary: str

    def details(self) -> dict[str, Any]:
        return {
            "moving_average": self.moving_average,
            "forecast": [{"value": p.value, "low": p.low, "high": p.high} for p in self.forecast],
            "anomalies": self.anomalies,
            "contributors": [
                {"value": c.value, "change": c.change, "change_pct": c.change_pct, "share": c.share_of_change}
                for c in self.contributors
            ],
        }


async def store_trend(session: AsyncSession, reading: TrendReading) -> TrendAnalysis:
    """Add the reading to trend_analysis; the calling use-case commits."""
    row = TrendAnalysis(
        metric=reading.metric,
        grain=reading.grain,
        dimension=reading.dimension,
        period_start=reading.period_start,
        period_end=reading.period_end,
        change_pct=reading.change_pct,
        details=reading.details(),
        summary=reading.summary,
    )
    session.add(row)
    await session.flush()
    return row
