"""A KPI question answered whole: the figures, a chart spec that fits their shape, and one honest sentence."""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from domain.counting import counted
from domain.messages.words import CHAT_CHANNEL_WORDS, PROVIDER_WORDS
from domain.vocabulary import Provider
from reports.charts.formatting import format_value
from reports.charts.spec import MAX_SERIES, Annotation, ChartKind, ChartSpec, KpiTile, Series
from reports.charts.spec import Direction as TileDirection
from reports.metrics import Metric, dimension_words, get_metric
from reports.money import CURRENCY, format_money, is_money, left_out_sentence, plan_money
from reports.periods import format_day_range, partial_buckets, zone
from reports.query import SHOWN_JOINER, Filter, MetricQuery, QueryResult, SeriesResult, run_query
from reports.trends import (
    against_words,
    anomalies,
    describe_contributors,
    seasonal_residuals,
    summarise,
    top_contributors,
)
from storage.analytics.facts import NO_REMINDER, NO_VALUE, SOURCES, UNSETTLED_SOURCES
from storage.database import Database
from storage.models import AnalyticsData
from storage.queries.reports import value_names

#: Weekly seasonality for daily series; other grains have too few points for a seasonal reading.
SEASON_FOR_GRAIN = {"day": 7}
ANOMALY_LABEL = "unusual for this weekday"


@dataclass(frozen=True)
class Answer:
    result: QueryResult
    chart: ChartSpec
    summary: str
    #: The currency money figures are in (None: the metric is not money).
    currency: str | None = None


async def answer(
    database: Database,
    query: MetricQuery,
    *,
    now: datetime,
    business_tz: str,
    locale: str = "en_GB",
    currency: str = "EUR",
    top: int | None = None,
    business_name: str = "",
) -> Answer:
    """Run `query` and describe its first metric: a line per series, bars per dimension value, or a tile.

    `currency` is the business's; a money figure is in the currency its rows are in (see reports.money).
    `top`: a ranking's N ("top 3 clinics"): the sentence names that many parts, largest first, and how many
    more there are; a sum's total stays the whole. (The chart of N parts is `presentation.present`'s.)
    `business_name`: its first word is left out of clinic names that all start with it ("Berlin Mitte").
    """
    money = None
    asked = query.filters  # as asked: the currency filter planning adds is said apart
    first = get_metric(query.metrics[0]) if query.metrics else None
    if first is not None and is_money(first):
        money = await plan_money(
            database, first, query, now=now, business_tz=business_tz, business_currency=currency
        )
        query, currency = money.query, money.currency
    result = await run_query(database, query, now=now, business_tz=business_tz)
    named = await value_names(
        database, _values_named(result, asked), business_name=business_name, shown=value_label
    )
    result = dataclasses.replace(result, names=named)
    limited_to = filters_in_words(asked, result.names)
    # Filtered to some of the split's values ("for Berlin Mitte or München Schwabing"), the whole is theirs.
    narrowed = any(f.dimension in query.dimensions for f in query.filters)
    metric = result.metrics[0]
    series = result.series_for(metric.name)
    history = await history_start(database, metric)
    if history is not None and (history > now or metric.source in UNSETTLED_SOURCES):
        # Bookings are counted by when they are due, so the first may lie ahead: no "records start" then.
        history = None
    if result.comparison_range is not None and history is not None and result.comparison_range.end <= history:
        # Nothing was recorded then: "against 0" would be a figure we do not have.
        since = history.astimezone(zone(business_tz)).date()
        compared = result.comparison_range.label
        result = dataclasses.replace(
            result,
            comparison_range=None,
            comparison_basis=None,
            series=tuple(dataclasses.replace(s, comparison_points=()) for s in result.series),
        )
        said = _summary(result, series, locale, currency, limited_to, top, narrowed=narrowed)[:-1]
        started = format_day_range(since, since)
        summary = (
            f"{said}; the records start on {started}, so this counts from then, with nothing before it to "
            "compare with."
            if result.range.first_day < since
            else f"{said}; there are no figures for {compared} to compare with (the records start on {started})."
        )
    else:
        summary = _summary(result, series, locale, currency, limited_to, top, narrowed=narrowed)
        compared_range = result.comparison_range
        began = history.astimezone(zone(business_tz)).date() if history is not None else None
        if compared_range is not None and began is not None and compared_range.first_day < began:
            # Part of the compared period is before anything was recorded: its figure is of the rest.
            summary = (
                f"{summary[:-1]}; the records start on {format_day_range(began, began)}, so "
                f"{compared_range.label} counts only from then."
            )
    if (
        len(series) > 1
        and result.dimension not in (None, CURRENCY)
        and metric.aggregation not in ("sum", "count")
    ):
        # A rate's parts never add up, and the highest part alone can read as the whole business moving:
        # the whole's own figure, from one more query without the split, is said beside it.
        whole = await run_query(
            database, dataclasses.replace(query, dimensions=(), grain=None), now=now, business_tz=business_tz
        )
        summary = f"{summary[:-1]}; {_whole_words(whole, result, locale, currency, narrowed=narrowed)}."
    if history is not None and result.range.end <= history:
        # All before anything was recorded (January 2020, or a demo's first weeks): no figure, not €0.00,
        # in the sentence and the chart alike.
        began = history.astimezone(zone(business_tz)).date()
        summary = (
            f"{metric.label}{limited_to}, {result.range.label} ({result.range.timezone}): no figures, as the "
            f"records start on {format_day_range(began, began)}."
        )
        result = dataclasses.replace(
            result,
            series=tuple(
                dataclasses.replace(s, total=None, points=tuple((at, None) for at, _ in s.points))
                for s in result.series
            ),
        )
        series = result.series_for(metric.name)
    elif (
        history is not None
        and result.range.first_day < history.astimezone(zone(business_tz)).date()
        and "the records start on" not in summary  # said once, by the comparison's clause
    ):
        began = history.astimezone(zone(business_tz)).date()
        summary = f"{summary[:-1]}; the records start on {format_day_range(began, began)}, so this counts from then."
        # The days before them are gaps in the chart, not days of 0.
        result = dataclasses.replace(
            result, series=tuple(_before_records(s, history, current=True) for s in result.series)
        )
        series = result.series_for(metric.name)
    if history is not None and result.comparison_range is not None:
        # Buckets of the compared period that ended before the records begin have no figure, not 0.
        result = dataclasses.replace(result, series=tuple(_before_records(s, history) for s in result.series))
        series = result.series_for(metric.name)
    if money is not None and money.left_out:
        summary = f"{summary} {left_out_sentence(money, metric, locale)}"
    chart = chart_for(result, series, summary, locale, currency, limited_to)
    return Answer(result, chart, summary, currency if money is not None else None)


async def history_start(database: Database, metric: Metric) -> datetime | None:
    """When the records a metric is counted from begin (None: none yet, or a source without a clock)."""
    source = SOURCES.get(metric.source)
    if source is None:
        return None
    async with database.read_sessions() as session:
        first = await session.scalar(select(func.min(source.time_column)))
        # Rows a retention setting dropped are still counted in the rollups (their figures stay): the
        # records start with the earlier of the two.
        kept = await session.scalar(
            select(func.min(AnalyticsData.bucket_start)).where(
                AnalyticsData.metric == metric.name,
                AnalyticsData.grain == "day",
                AnalyticsData.dimension == "",
            )
        )
    found = [moment for moment in (first, kept) if isinstance(moment, datetime)]
    return min(found) if found else None


def _whole_words(
    whole: QueryResult, split: QueryResult, locale: str, currency: str, *, narrowed: bool
) -> str:
    """ "all locations together 6.6%, down 3.9 points from 10.5% in …": a split rate's whole."""
    metric = whole.metrics[0]
    found = whole.series_for(metric.name)
    total = found[0] if found else None
    value = total.total if total else None
    shown = format_value(
        value, metric.unit, locale=locale, currency=currency if metric.unit == "currency" else None
    )
    if any(unnamed(s) for s in split.series):
        # The whole holds the part without a value ("no campaign"), so "all campaigns together" would not be
        # what it is: the whole business's figure, or that of the parts named with it.
        words = f"{'these together' if narrowed else 'overall'} {shown}"
    else:
        every = " and ".join(plural(dimension_words(d)) for d in split.dimensions)
        words = f"{'these' if narrowed else 'all'} {every} together {shown}"
    comparison = split.comparison_range
    if comparison is not None and total is not None and total.comparison_total is not None:
        words += against_words(metric, value, total.comparison_total, comparison.label, locale, currency)
    return words


#: Dimensions whose values say what they are ("whatsapp", "ZRH"); any other is named ("for campaign …").
SELF_EXPLAINED = frozenset({"channel", "location", "provider", "kind", "country"})
#: An appointment's kind as a filter says it: "No-show rate for video consultations".
KIND_WORDS = {"video": "video consultations", "in_person": "in-person appointments"}
#: A rate's part counted from fewer than this many is said to be ("highest Telegram, from only 4"): a
#: small sample's 50% is not a finding.
FEW = 20
#: Beyond this many values a filter is counted ("for 5 locations") rather than listed.
LISTED_VALUES = 3


def _before_records(series: SeriesResult, history: datetime, *, current: bool = False) -> SeriesResult:
    """The compared buckets (or, `current`, the asked period's) wholly before `history`, the first record,
    as gaps."""
    points = series.points if current else series.comparison_points
    ends = [start for start, _ in points[1:]]
    kept = tuple(
        (start, None if i < len(ends) and ends[i] <= history else value)
        for i, (start, value) in enumerate(points)
    )
    if current:
        return dataclasses.replace(series, points=kept)
    return dataclasses.replace(series, comparison_points=kept)


def _values_named(result: QueryResult, filters: Sequence[Filter]) -> dict[str, set[str]]:
    """The stored values an answer says, per dimension: its filters' and its parts'."""
    wanted: dict[str, set[str]] = {}
    for f in filters:
        wanted.setdefault(f.dimension, set()).update(str(v) for v in f.values)
    for s in result.series:
        for dimension, value in zip(result.dimensions, s.dimension_values, strict=False):
            wanted.setdefault(dimension, set()).add(value)
    return wanted


def filters_in_words(filters: Sequence[Filter], names: Mapping[str, Mapping[str, str]]) -> str:
    """What the figure is limited to, after the metric's name: " for WhatsApp", " for Berlin Mitte or
    München Schwabing" (clinics by their names, from `names`), " for campaign Spring offer", " for all services but SKIN-VIDEO", " for 5 locations" (empty when it is not). The
    answer's sentence travels alone (a notification, a chart's alt text), so it must not read as the whole
    business's figure. A currency filter is left out: the amount says its currency."""
    words = []
    for f in filters:
        known = (
            {**KIND_WORDS, **names.get(f.dimension, {})}
            if f.dimension == "kind"
            else names.get(f.dimension, {})
        )
        values = [known.get(str(v)) or value_label(str(v)) for v in f.values if str(v).strip()]
        if f.dimension == CURRENCY or not values:
            continue
        left_out = f.operator in ("ne", "not_in")
        named = f.dimension not in SELF_EXPLAINED
        if len(values) > LISTED_VALUES:
            listed, named = (
                f"{len(values)} {plural(dimension_words(f.dimension))}",
                False,
            )  # the count names it
        elif len(values) == 1:
            listed = values[0]
        else:
            listed = f"{', '.join(values[:-1])} {'and' if left_out else 'or'} {values[-1]}"
        if left_out:
            words.append(f"all {plural(dimension_words(f.dimension)) + ' ' if named else ''}but {listed}")
        else:
            words.append(f"{dimension_words(f.dimension) + ' ' if named else ''}{listed}")
    return f" for {' and '.join(words)}" if words else ""


def _summary(
    result: QueryResult,
    series: tuple[SeriesResult, ...],
    locale: str,
    currency: str,
    limited_to: str = "",
    top: int | None = None,
    *,
    narrowed: bool = False,
) -> str:
    metric = result.metrics[0]
    comparison = result.comparison_range
    # Both ranges are named in full, so a partial month is never read as a whole one.
    period_label = f"{result.range.label} so far" if result.range.ends_mid_day else result.range.label
    previous_label = None
    if comparison is not None:
        basis = f" ({result.comparison_basis})" if result.comparison_basis else ""
        previous_label = f"{comparison.label}{basis}"

    def say(
        value: float | None, previous: float | None, note: str = "", *, compare: bool = True, counts: str = ""
    ) -> str:
        return summarise(
            metric,
            value,
            period_label=period_label,
            timezone=result.range.timezone,
            previous=previous,
            previous_label=previous_label if compare else None,
            dimension_note=note,
            limited_to=limited_to,
            locale=locale,
            currency=currency,
            value_note=counts,
        )

    if result.dimension is None:
        (only,) = series
        return say(only.total, only.comparison_total, counts=_counts(metric, only))
    if result.dimension == CURRENCY:
        # One figure per currency, never a sum of them.
        figures = [
            format_money(s.total, s.dimension_value, locale)
            for s in series
            if s.total and s.dimension_value and s.dimension_value != NO_VALUE
        ]
        return (
            f"{metric.label}{limited_to} by currency, {period_label} ({result.range.timezone}): "
            f"{' and '.join(figures) or 'none'}; amounts in different currencies are never added."
        )
    # Split answers summarise the whole: additive parts add up, ratios and distinct counts do not.
    if metric.aggregation in ("sum", "count"):
        total = sum(s.total or 0.0 for s in series)
        previous = sum(s.comparison_total or 0.0 for s in series) if comparison else None
        every = " and ".join(plural(dimension_words(d)) for d in result.dimensions)
        # The rows without a value (opt-outs after no campaign) are in the total but are no campaign.
        rest = [s for s in series if unnamed(s)]
        sentence = say(total, previous, "" if narrowed else " (overall)" if rest else f" (all {every})")
        ranked = series if top is None else tuple(s for s in series if not unnamed(s))
        if len(series) > 1 and (
            parts := _parts(result, ranked, locale, currency, top or PARTS_SAID, exactly=top is not None)
        ):
            if top is not None and rest:
                # A ranking names real values only; the part without one is said apart, not hidden in "more".
                money = currency if metric.unit == "currency" else None
                parts += "; " + ", ".join(
                    f"{series_label(result, s)} {format_value(s.total or 0.0, metric.unit, locale=locale, currency=money)}"
                    for s in rest
                )
            sentence = f"{sentence[:-1]}: {parts}."
        if comparison:
            current = {series_label(result, s): s.total or 0.0 for s in series}
            before = {series_label(result, s): s.comparison_total or 0.0 for s in series}
            movers = describe_contributors(top_contributors(current, before, limit=3))
            if movers:
                sentence = f"{sentence[:-1]}; biggest moves: {movers}."
        return sentence
    if not series:
        return say(None, None, f" by {dimension_words(result.dimension or '')}", compare=False)
    if top is not None and len(series) > 1:
        # "top 3 clinics by no-show rate": the three, not only the highest; rates of parts never add up.
        every = " and ".join(dimension_words(d) for d in result.dimensions)
        parts = _parts(result, series, locale, currency, top, exactly=True)
        return f"{metric.label}{limited_to} by {every}, {period_label} ({result.range.timezone}): {parts}."
    leader = series[0]
    if leader.total is None:  # no part has a figure: none is "highest"
        return say(None, None, f" by {dimension_words(result.dimension or '')}", compare=False)
    # A ratio's parts never add up: the highest part is compared with its own figure before.
    sentence = say(
        leader.total,
        leader.comparison_total if comparison else None,
        f" by {dimension_words(result.dimension or '')}, highest {series_label(result, leader)}"
        + (
            f" (from only {leader.total_basis:,.0f})"
            if leader.total_basis is not None and 0 < leader.total_basis < FEW
            else ""
        ),
        compare=comparison is not None,
        # Its counts, unless it was counted from few (said so above): "16.7% (4 no-shows of 24 appointments due)".
        counts=_counts(metric, leader) if (leader.total_basis or 0) >= FEW else "",
    )
    if comparison is not None and leader.comparison_total is None:
        sentence = f"{sentence[:-1]}; it had no figure in {previous_label}."
    return sentence


def _counts(metric: Metric, series: SeriesResult) -> str:
    """A rate's counts beside it: " (9 no-shows of 133 appointments due)", " (1,259 of 1,310 messages sent)"."""
    if metric.out_of is None or series.total is None or not series.total_basis:
        return ""
    part, parts, whole, wholes = metric.out_of
    basis = round(series.total_basis)
    count = round(series.total * series.total_basis)
    counted_part = counted(count, part, parts) if part else f"{count:,}"
    return f" ({counted_part} of {counted(basis, whole, wholes)})"


#: How many parts of a split the sentence names before "and N more".
PARTS_SAID = 5


def _parts(
    result: QueryResult,
    series: tuple[SeriesResult, ...],
    locale: str,
    currency: str,
    shown: int = PARTS_SAID,
    *,
    exactly: bool = False,
) -> str:
    """The split in words, largest first: "email 488, SMS 361, WhatsApp 335 and Telegram 42" (the first
    `shown`, then how many more; one more is named, unless `exactly` `shown` were asked for: "top 3")."""
    metric = result.metrics[0]
    money = currency if metric.unit == "currency" else None
    # A ranking ("top 3 campaigns") names real values first: orders no campaign brought are no campaign.
    ranked = sorted(series, key=lambda s: (exactly and unnamed(s), -(s.total or 0.0)))
    parts = [
        f"{series_label(result, s)} {format_value(s.total or 0.0, metric.unit, locale=locale, currency=money)}"
        for s in ranked
    ]
    if len(parts) > shown + (0 if exactly else 1):  # "and 1 more" would take as many words as naming it
        # A part left out with the same figure as the last one named is a tie, not a lower place: said.
        tied = [series_label(result, s) for s in ranked[shown:] if s.total == ranked[shown - 1].total]
        also = f" ({' and '.join(tied[:2])}{' and others' if len(tied) > 2 else ''} as many)" if tied else ""
        parts = [*parts[:shown], f"{len(parts) - shown} more{also}"]
    if len(parts) < 2:
        return "".join(parts)  # nothing to split (no data), or the one part the total already says
    return f"{', '.join(parts[:-1])} and {parts[-1]}"


def chart_for(
    result: QueryResult,
    series: tuple[SeriesResult, ...],
    summary: str,
    locale: str,
    currency: str,
    limited_to: str = "",
    *,
    line_asked: bool = False,
) -> ChartSpec:
    """The best-fit chart: a line per series over time, bars per breakout value, or a single-number tile.
    `limited_to`: the query's filters in words, in the title too (an image is forwarded alone); `line_asked`:
    a report saved as a line stays one, even on a day it has one point to draw."""
    metric = result.metrics[0]
    shown = series[:MAX_SERIES]
    kind: ChartKind
    partial = partial_buckets(result.range, result.grain) if result.grain is not None else ""
    header = {
        "title": f"{metric.label}{limited_to}",
        # Said where the period is, which every chart and download keeps, whatever its kind.
        "period_label": f"{result.range.label} · {partial}" if partial else result.range.label,
        "data_as_of": result.data_as_of,
        "unit": metric.unit,
        "currency": currency if metric.unit == "currency" else None,
        "locale": locale,
        "timezone": result.range.timezone,
        "summary": summary,
        "subtitle": f"by {dimension_words(result.dimension)}" if result.dimension else None,
        "grain": result.grain,
    }
    if result.dimension and len(series) > len(shown):
        # A chart holds MAX_SERIES lines or bars; say which are drawn, so none is dropped silently.
        header["subtitle"] = (
            f"by {dimension_words(result.dimension or '')}, top {len(shown)} of {len(series)}"
        )
    targets = [Annotation("target", value=metric.target)] if metric.target is not None else []
    # A line needs two points: a rate over time with one day to divide by (a campaign's conversion, its
    # messages all sent on its launch day) is its figure, not a lone dot on an axis of -100% to 150%.
    drawable = any(sum(v is not None for _, v in s.points) >= 2 for s in shown)
    if result.grain is not None and shown and shown[0].points and (drawable or line_asked):
        kind = "line"
        chart_series = tuple(
            Series(
                standing_alone(series_label(result, s)) if s.dimension_value else s.name,
                tuple(v for _, v in s.points),
            )
            for s in shown
        )
        if result.comparison_range is not None and len(shown) == 1 and shown[0].comparison_points:
            # "vs the month before" over time: the earlier period's line beside this one, bucket i by bucket
            # i (a shorter period leaves a gap at the end), each named by its dates.
            drawn = shown[0]
            width = len(drawn.points)
            earlier = tuple(v for _, v in drawn.comparison_points[:width])
            before = (*earlier, *((None,) * (width - len(earlier))))
            chart_series = (
                Series(result.range.label, chart_series[0].values),
                Series(result.comparison_range.label, before),
            )
        marks: list[Annotation] = []
        season = SEASON_FOR_GRAIN.get(result.grain)
        if season and len(shown[0].points) >= 3 * season:
            marks = _anomaly_marks([v for _, v in shown[0].points], season, chart_series[0].name)
        return ChartSpec(
            kind=kind,
            series=chart_series,
            x_dates=tuple(start for start, _ in shown[0].points),
            annotations=(*marks, *targets),
            **header,  # type: ignore[arg-type]
        )
    if result.dimension is not None and shown:
        return ChartSpec(
            kind="bar",
            categories=tuple(standing_alone(series_label(result, s)) for s in shown),
            series=split_bars(result, metric.label, shown),
            annotations=tuple(targets),
            **header,  # type: ignore[arg-type]
        )
    only = series[0] if series else None
    # No total (a ratio or average with nothing to divide by) stays None: the tile says "No data", not 0.
    direction: TileDirection = "down_is_good" if metric.direction == "down_is_good" else "up_is_good"
    tile = KpiTile.compare(only.total if only else None, only.comparison_total if only else None, direction)
    return ChartSpec(kind="kpi_tile", kpi=tile, **header)  # type: ignore[arg-type]


def split_bars(result: QueryResult, name: str, shown: Sequence[SeriesResult]) -> tuple[Series, ...]:
    """A split's bars: one per part, and beside each its figure in the compared period when the question
    asked for a comparison ("vs previous" is drawn, never only promised in the title)."""
    now = tuple(s.total for s in shown)
    if result.comparison_range is None:
        return (Series(name, now),)
    # A period still running is compared with the same stretch of the one before: both say so.
    partial = result.range.ends_mid_day
    return (
        Series(f"{result.range.label} so far" if partial else result.range.label, now),
        Series(
            f"{result.comparison_range.label} to the same time" if partial else result.comparison_range.label,
            tuple(s.comparison_total for s in shown),
        ),
    )


def _anomaly_marks(values: list[float | None], season: int, series_name: str) -> list[Annotation]:
    """A marker per unusual point, carrying how far it is from the usual one-season change."""
    residuals = seasonal_residuals(values, season)
    known = [r for r in residuals if r is not None]
    centre = statistics.median(known) if known else 0.0
    marks = []
    for index in anomalies(values, season=season):
        residual = residuals[index]
        if residual is not None:  # anomalies() only reports points it could measure
            marks.append(
                Annotation(
                    "anomaly",
                    ANOMALY_LABEL,
                    x_index=index,
                    series_name=series_name,
                    deviation=residual - centre,
                )
            )
    return marks


_PLURALS = {"country": "countries", "category": "categories", "staff": "staff", "kind": "kinds"}


def plural(noun: str) -> str:
    """ "location" → "locations", "country" → "countries", "staff" → "staff"."""
    return _PLURALS.get(noun, noun if noun.endswith("s") else f"{noun}s")


def label(name: str | None) -> str:
    """A stored name as people read it: `source_channel` → "source channel", `in_clinic` → "in clinic"."""
    return (name or "").replace("_", " ")


#: Providers as a split names them ("by provider": "Twilio", not "twilio"); "telegram" is the channel's word.
PROVIDER_NAMES = {p.value: PROVIDER_WORDS[p] for p in Provider if p.value not in CHAT_CHANNEL_WORDS} | {
    Provider.SMTP.value: "mail server (SMTP)"  # a bar's label, where "the mail server" reads oddly
}
#: Values that stand for "nothing" in one dimension, in words ("by reminder channel": "no reminder").
NOTHING_WORDS = {NO_REMINDER: "no reminder"}


def unnamed(series: SeriesResult) -> bool:
    """Whether a split's part is the rows without a value ("(none)": orders no campaign brought)."""
    values = series.dimension_values or (series.dimension_value,)
    return any(not value or value == NO_VALUE for value in values)


def named_value(result: QueryResult, dimension: str | None, value: str) -> str:
    """One dimension's value as people read it: the business's name for a code ("Berlin Mitte" for
    "BER"), else `value_label`."""
    return result.names.get(dimension or "", {}).get(value) or value_label(value)


def series_label(result: QueryResult, series: SeriesResult) -> str:
    """A split's part in words, both values of a two-way split ("Berlin Mitte · WhatsApp"); "(none)"."""
    if not series.dimension_value:
        return "(none)"
    parts = series.dimension_values or (series.dimension_value,)
    words = SHOWN_JOINER.join(
        named_value(result, dimension, value)
        for dimension, value in zip(result.dimensions, parts, strict=False)
    )
    return words or "(none)"


def standing_alone(words: str) -> str:
    """A value as a chart's bar, row or legend shows it, on its own: "Email", "Website chat", "No campaign",
    each part of a pair ("Berlin Mitte · Email"); mid-sentence they stay "for email". A name written with a
    capital inside ("iOS app") is left as it is."""

    def alone(part: str) -> str:
        return part[:1].upper() + part[1:] if part[:1].islower() and not part[1:2].isupper() else part

    return SHOWN_JOINER.join(alone(part) for part in words.split(SHOWN_JOINER))


def value_label(value: str) -> str:
    """A dimension's value as people read it: channels and providers by their names ("sms" → "SMS",
    "whatsapp_cloud" → "WhatsApp Cloud API"), else `label`."""
    return (
        CHAT_CHANNEL_WORDS.get(value) or PROVIDER_NAMES.get(value) or NOTHING_WORDS.get(value) or label(value)
    )
