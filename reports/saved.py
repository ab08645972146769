"""Saved reports: their stored definition (a query object plus chart options), and running one to PNG, CSV and summary.

A definition is plain JSON, e.g.
    {"query": {"metrics": ["revenue"], "period": {"kind": "last_n_days", "n": 30}, "grain": "day",
               "dimensions": ["source_channel"], "filters": [{"dimension": "location", "operator": "eq",
               "value": "BER"}], "comparison": "previous_period"}}
Every name in it is checked against the metric registry before anything runs; values stay values.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast, get_args

from domain.dates_said import day_month_year
from reports.answer import Answer, answer, value_label
from reports.charts.cache import ChartCache, draw
from reports.charts.spec import ChartSpec
from reports.exports import as_csv, figures_text
from reports.metrics import REGISTRY, UnknownName, dimension_words, get_metric
from reports.periods import PERIOD_KINDS, Grain, PeriodSpec
from reports.presentation import Presentation, PresentationError, check_fits, present, presentation_of
from reports.query import Comparison, Filter, MetricQuery, Operator, validate_query
from storage.database import Database

log = logging.getLogger(__name__)

GRAINS = get_args(Grain)
COMPARISONS = get_args(Comparison)
OPERATORS = get_args(Operator)
MAX_LIST = 20


class ReportDefinitionError(ValueError):
    """A saved report definition that cannot run; the message names the field and what is allowed."""


@dataclass(frozen=True)
class SavedReportOutput:
    title: str
    answer: Answer
    #: The chart as its builder chose it (the same spec the web page draws as SVG).
    chart: ChartSpec
    #: None when the chart could not be drawn: the figures then go as text (never a silent failure).
    png: bytes | None
    csv: bytes

    @property
    def figures(self) -> str:
        return figures_text(self.chart)

    @property
    def summary(self) -> str:
        return self.answer.summary


def narrowed(definition: dict[str, Any], filters: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The definition with more filters ("only location BER"), as one recipient's schedule or run has it."""
    query = dict(definition.get("query", {}))
    query["filters"] = [*query.get("filters", []), *filters]
    return {**definition, "query": query}


def query_from_definition(definition: Any) -> MetricQuery:
    """The query object a definition describes; raises ReportDefinitionError naming what is wrong."""
    if not isinstance(definition, dict) or not isinstance(definition.get("query"), dict):
        raise ReportDefinitionError('a report definition is an object with a "query" object')
    raw: dict[str, Any] = definition["query"]
    unknown = set(raw) - {"metrics", "period", "grain", "dimensions", "filters", "comparison"}
    if unknown:
        raise ReportDefinitionError(f"unknown query fields: {', '.join(sorted(unknown))}")
    metrics = _names(raw.get("metrics"), "metrics", required=True)
    dimensions = _names(raw.get("dimensions", []), "dimensions")
    grain = raw.get("grain")
    if grain is not None and grain not in GRAINS:
        raise ReportDefinitionError(f"grain must be one of {', '.join(GRAINS)}, got {grain!r}")
    comparison = raw.get("comparison")
    if comparison is not None and comparison not in COMPARISONS:
        raise ReportDefinitionError(f"comparison must be one of {', '.join(COMPARISONS)}, got {comparison!r}")
    query = MetricQuery(
        metrics=metrics,
        period=_period(raw.get("period", {"kind": "last_n_days", "n": 30})),
        grain=cast(Grain | None, grain),
        dimensions=dimensions,
        filters=_filters(raw.get("filters", [])),
        comparison=cast(Comparison | None, comparison),
    )
    try:
        validate_query(query)
    except UnknownName as error:
        raise ReportDefinitionError(in_words(error)) from None
    except ValueError as error:
        raise ReportDefinitionError(str(error).rstrip(".")) from None
    return query


def presentation_from_definition(definition: Any, query: MetricQuery) -> Presentation:
    """The report's chart choice, checked against the question it draws; ReportDefinitionError if it cannot."""
    try:
        presentation = presentation_of(definition)
        check_fits(query, presentation, get_metric(query.metrics[0]))
    except PresentationError as error:
        raise ReportDefinitionError(str(error)) from None
    return presentation


def in_words(error: UnknownName) -> str:
    """A registry refusal as a person reads it: "Revenue cannot be split by staff; it can be split by …"."""
    what, _, metric_name = error.what.partition(" for ")
    metric = REGISTRY.get(metric_name)
    if metric is not None and what == "dimension":
        allowed = _listed([dimension_words(d) for d in error.allowed])
        return (
            f"{metric.label} cannot be split by {dimension_words(error.name)}; it can be split by {allowed}"
        )
    if metric is not None and what == "grain":
        return f"{metric.label} is kept by {_listed(list(error.allowed))}, not by {error.name}"
    return str(error).rstrip(".")


def _listed(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def definition_from_query(query: MetricQuery) -> dict[str, Any]:
    if not isinstance(query.period, PeriodSpec):
        raise ReportDefinitionError("saved reports use named periods (e.g. last 30 days), not fixed ranges")
    period = period_definition(query.period)
    return {
        "query": {
            "metrics": list(query.metrics),
            "period": period,
            "grain": query.grain,
            "dimensions": list(query.dimensions),
            "filters": [
                {
                    "dimension": f.dimension,
                    "operator": f.operator,
                    "value": f.value if isinstance(f.value, str) else list(f.value),
                }
                for f in query.filters
            ],
            "comparison": query.comparison,
        }
    }


def period_definition(spec: PeriodSpec) -> dict[str, Any]:
    """A named period as a definition stores it: {"kind": "last_n_days", "n": 30}, {"kind": "last_month"}, …"""
    period: dict[str, Any] = {"kind": spec.kind}
    if spec.n is not None:
        period["n"] = spec.n
    if spec.start_date and spec.end_date:
        period.update(start_date=spec.start_date.isoformat(), end_date=spec.end_date.isoformat())
    return period


def describe_query(query: MetricQuery, cut: str | None = None) -> str:
    """The question in words: "Revenue, last 30 days, by source channel, daily, vs the previous period";
    `cut`: how its split is cut, said beside it ("…, by location, top 3"; Presentation.cut_words)."""
    parts = [" and ".join(REGISTRY[m].label if m in REGISTRY else m for m in query.metrics)]
    parts.append(
        describe_period(query.period) if isinstance(query.period, PeriodSpec) else query.period.label
    )
    if query.dimensions:
        parts.append("by " + " and ".join(dimension_words(d) for d in query.dimensions))
        if cut:
            parts.append(cut)
    parts += [
        f"{dimension_words(f.dimension)} {_OPERATOR_WORDS[f.operator]} {', '.join(map(value_label, f.values))}"
        for f in query.filters
    ]
    if query.grain:
        parts.append(_GRAIN_WORDS[query.grain])
    if query.comparison == "previous_period":
        parts.append("vs the previous period")
    elif query.comparison == "same_period_last_year":
        parts.append("vs the same dates last year")
    return ", ".join(parts)


def describe_period(spec: PeriodSpec) -> str:
    if spec.kind == "last_n_days":
        return f"last {spec.n} days"
    if spec.kind == "between" and spec.start_date and spec.end_date:
        return f"{day_month_year(spec.start_date)} to {day_month_year(spec.end_date)}"
    return spec.kind.replace("_", " ")


_GRAIN_WORDS = {
    "hour": "hourly",
    "day": "daily",
    "week": "weekly",
    "month": "monthly",
    "quarter": "quarterly",
}
_OPERATOR_WORDS = {"eq": "is", "ne": "is not", "in": "is one of", "not_in": "is none of"}


def _names(value: Any, field: str, *, required: bool = False) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or len(value) > MAX_LIST:
        raise ReportDefinitionError(f"{field} must be a list of at most {MAX_LIST} names")
    if required and not value:
        raise ReportDefinitionError(f"{field} must name at least one")
    return tuple(value)


def _period(value: Any) -> PeriodSpec:
    if isinstance(value, str):
        value = {"kind": value}
    if not isinstance(value, dict) or value.get("kind") not in PERIOD_KINDS:
        raise ReportDefinitionError(f"period.kind must be one of {', '.join(PERIOD_KINDS)}")
    try:
        return PeriodSpec(
            kind=value["kind"],
            n=value.get("n"),
            start_date=date.fromisoformat(value["start_date"]) if value.get("start_date") else None,
            end_date=date.fromisoformat(value["end_date"]) if value.get("end_date") else None,
        )
    except (ValueError, TypeError) as error:
        raise ReportDefinitionError(f"period: {error}") from None


def _filters(value: Any) -> tuple[Filter, ...]:
    if not isinstance(value, list) or len(value) > MAX_LIST:
        raise ReportDefinitionError(f"filters must be a list of at most {MAX_LIST} filters")
    filters = []
    for item in value:
        if not isinstance(item, dict) or set(item) != {"dimension", "operator", "value"}:
            raise ReportDefinitionError('each filter is {"dimension": ..., "operator": ..., "value": ...}')
        if item["operator"] not in OPERATORS:
            raise ReportDefinitionError(f"filter operator must be one of {', '.join(OPERATORS)}")
        raw = item["value"]
        if isinstance(raw, list) and all(isinstance(v, str) for v in raw):
            raw = tuple(raw)
        elif not isinstance(raw, str):
            raise ReportDefinitionError("a filter value is a string or a list of strings")
        filters.append(Filter(str(item["dimension"]), item["operator"], raw))
    return tuple(filters)


def result_csv(output: Answer) -> bytes:
    """The answer's figures as CSV: one row per metric, dimension value and bucket, plus totals."""
    result = output.result
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    # One column per dimension of the split (a column named "dimension" when the figures are not split).
    writer.writerow(["metric", *(result.dimensions or ("dimension",)), "bucket_start_utc", "value"])
    for series in result.series:
        values = list(series.dimension_values) or [""]
        for bucket, value in series.points:
            writer.writerow(
                [series.metric, *values, bucket.isoformat(), "" if value is None else repr(round(value, 6))]
            )
        writer.writerow(
            [series.metric, *values, "total", "" if series.total is None else repr(round(series.total, 6))]
        )
    return buffer.getvalue().encode()


async def run_saved_report(
    database: Database,
    name: str,
    definition: Any,
    *,
    now: datetime,
    business_tz: str,
    locale: str,
    currency: str,
    cache: ChartCache | None = None,
    business_name: str = "",
) -> SavedReportOutput:
    query = query_from_definition(definition)
    presentation = presentation_from_definition(definition, query)
    result = await answer(
        database,
        query,
        now=now,
        business_tz=business_tz,
        locale=locale,
        currency=currency,
        top=presentation.ranking(query),
        business_name=business_name,
    )
    chart = present(result, presentation)
    try:
        png: bytes | None = await draw(
            chart, "png", result.result.data_as_of.isoformat(), cache or ChartCache()
        )
    except Exception:  # matplotlib can fail on a shape nobody foresaw; the figures still go, as text
        log.exception("report %r: the chart could not be drawn; sending the figures as text", name)
        png = None
    return SavedReportOutput(title=name, answer=result, chart=chart, png=png, csv=as_csv(chart))
