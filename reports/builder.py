"""The report builder's form: what a manager picked, as a report definition, with each mistake named next to
the field it belongs to. Every name is checked against the metric registry; nothing typed becomes SQL.

The definition is checked one part at a time (metric, period, grain, split, filters, comparison, chart),
so the message lands beside the field that caused it rather than at the top of the form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from babel.numbers import NumberFormatError, format_decimal, parse_decimal

from reports.everyday_names import known_value
from reports.metrics import FIXED_VALUES, REGISTRY, Metric, dimension_words
from reports.periods import MAX_PERIOD_DAYS, PERIOD_KINDS, PeriodSpec, resolve_period
from reports.presentation import MAX_TOP, PRESENTATION_KINDS, SORT_ORDERS
from reports.query import MAX_BUCKETS, MAX_FILTER_VALUES, bucket_axis
from reports.saved import ReportDefinitionError, presentation_from_definition, query_from_definition

#: The relative periods the builder offers (saved relative, so a report always shows its latest period).
RELATIVE_PERIODS: tuple[tuple[str, str], ...] = (
    ("last_7_days", "Last 7 days"),
    ("last_30_days", "Last 30 days"),
    ("last_90_days", "Last 90 days"),
    ("last_365_days", "Last 365 days"),
    ("yesterday", "Yesterday"),
    ("this_week", "This week so far"),
    ("last_week", "Last week"),
    ("this_month", "This month so far"),
    ("last_month", "Last month"),
    ("this_quarter", "This quarter so far"),
    ("last_quarter", "Last quarter"),
    ("year_to_date", "This year so far"),
    ("between", "Fixed dates…"),
)
GRAIN_CHOICES = (
    ("", "One figure"),
    ("hour", "Hourly"),
    ("day", "Daily"),
    ("week", "Weekly"),
    ("month", "Monthly"),
    ("quarter", "Quarterly"),
)
COMPARISON_CHOICES = (
    ("", "No comparison"),
    ("previous_period", "Against the period before"),
    ("same_period_last_year", "Against the same period last year"),
)
OPERATOR_CHOICES = (("in", "is one of"), ("not_in", "is none of"))
#: How many filter rows the form shows.
FILTER_ROWS = 3
FIELDS = (
    "name",
    "metric",
    "period",
    "start_date",
    "end_date",
    "grain",
    "dimension",
    "dimension_2",
    "comparison",
    "kind",
    "sort",
    "top",
    "value_from",
    "value_to",
    "shared",
    *(f"filter_{i}_{part}" for i in range(FILTER_ROWS) for part in ("dimension", "operator", "values")),
)
EMPTY_FORM: dict[str, str] = {
    **dict.fromkeys(FIELDS, ""),
    "metric": "revenue",
    "period": "last_30_days",
    "kind": "auto",
    "sort": "largest",
}


@dataclass
class BuiltReport:
    """A form read: the definition when every part passed, else the message per field."""

    definition: dict[str, Any] | None
    errors: dict[str, str] = field(default_factory=dict)


def form_of(raw: Mapping[str, Any]) -> dict[str, str]:
    """The builder's fields from a posted form, trimmed and bounded; unknown fields are ignored, and a form
    without the chart fields (an older page, a script) gets the best-fit chart."""
    form = {key: str(raw.get(key, "") or "").strip()[:400] for key in FIELDS}
    form["kind"] = form["kind"] or "auto"
    form["sort"] = form["sort"] or "largest"
    return form


def form_from_definition(
    name: str, definition: Mapping[str, Any], *, shared: bool, locale: str = "en_GB"
) -> dict[str, str]:
    """The form that edits a saved report (the inverse of `build`)."""
    form = dict(EMPTY_FORM, name=name, shared="on" if shared else "")
    query = definition.get("query", {})
    form["metric"] = (query.get("metrics") or ["revenue"])[0]
    period = query.get("period") or {}
    if isinstance(period, str):
        period = {"kind": period}
    kind = period.get("kind", "last_n_days")
    if kind == "last_n_days":
        form["period"] = f"last_{period.get('n', 30)}_days"
    else:
        form["period"] = kind
    form["start_date"] = period.get("start_date", "") or ""
    form["end_date"] = period.get("end_date", "") or ""
    form["grain"] = query.get("grain") or ""
    split = [*(query.get("dimensions") or []), "", ""]
    form["dimension"], form["dimension_2"] = split[0], split[1]
    form["comparison"] = query.get("comparison") or ""
    for index, item in enumerate((query.get("filters") or [])[:FILTER_ROWS]):
        value = item.get("value")
        values = [value] if isinstance(value, str) else list(value or [])
        operator = {"eq": "in", "ne": "not_in"}.get(item.get("operator"), item.get("operator", "in"))
        form[f"filter_{index}_dimension"] = item.get("dimension", "")
        form[f"filter_{index}_operator"] = operator
        form[f"filter_{index}_values"] = ", ".join(values)
    chart = definition.get("chart") or {}
    form["kind"] = chart.get("kind", "auto")
    form["sort"] = chart.get("sort", "largest")
    form["top"] = "" if chart.get("top") is None else str(chart["top"])
    metric = REGISTRY.get(form["metric"])
    for key, bound in (("value_from", chart.get("at_least")), ("value_to", chart.get("at_most"))):
        form[key] = "" if bound is None or metric is None else _typed_bound(bound, metric, locale)
    return form


#: How a range bound is typed, per unit: rates in percent, times in minutes, the rest as shown.
TYPED_SCALE = {"percent": 100.0, "duration": 1 / 60}
RANGE_UNIT_WORDS = {
    "percent": "in %",
    "duration": "in minutes",
    "currency": "amount",
    "count": "",
    "number": "",
}


def _typed_bound(bound: float, metric: Metric, locale: str) -> str:
    """A kept bound as a person types it back in the business's locale ("12,5" in de_DE), unscaled from the
    stored unit, without grouping so that it reads back the same."""
    typed = round(bound * TYPED_SCALE.get(metric.unit, 1.0), 6)
    return str(format_decimal(typed, format="0.######", locale=locale))


def _bound(text: str, metric: Metric, where: str, errors: dict[str, str], locale: str) -> float | None:
    """A range bound as typed in the business's locale ("1,000" or "12.5" in en_GB, "12,5" in de_DE; a "%"
    is allowed) in the metric's stored unit, or None when empty."""
    cleaned = text.replace("%", "").strip()
    if not cleaned:
        return None
    try:
        typed = float(parse_decimal(cleaned, locale=locale))
    except (NumberFormatError, ValueError):
        typed = float("nan")
    if typed != typed or abs(typed) > 1e15:  # NaN (not a number) or absurd
        errors[where] = "Give a number, such as 1000 or 12.5, or leave it empty."
        return None
    return typed / TYPED_SCALE.get(metric.unit, 1.0)


def unshown(definition: Mapping[str, Any]) -> str | None:
    """Why the form cannot edit a definition without losing part of it (one saved from chat or the API with
    more than the form holds), or None."""
    query = definition.get("query", {})
    if len(query.get("metrics") or []) > 1:
        return "This report shows several metrics, which the form cannot edit; duplicate it, or change it from chat."
    if len(query.get("filters") or []) > FILTER_ROWS:
        return (
            f"This report has more than {FILTER_ROWS} filters, which the form cannot show; duplicate it, or "
            "change it from chat."
        )
    return None


def period_label(key: str) -> str:
    """A period kind as the form names it, for one saved outside the form's list (e.g. last 14 days)."""
    if key.startswith("last_") and key.endswith("_days"):
        return f"Last {key.removeprefix('last_').removesuffix('_days')} days"
    return dict(RELATIVE_PERIODS).get(key, key.replace("_", " ").capitalize())


def _period(form: Mapping[str, str], errors: dict[str, str]) -> dict[str, Any] | None:
    key = form["period"]
    if key == "between":
        try:
            start, end = date.fromisoformat(form["start_date"]), date.fromisoformat(form["end_date"])
        except ValueError:
            errors["start_date"] = "Give both dates of the fixed period (from and to)."
            return None
        if end < start:
            errors["end_date"] = "The period ends before it starts."
            return None
        if (end - start).days >= MAX_PERIOD_DAYS:
            errors["end_date"] = f"A period is at most {MAX_PERIOD_DAYS:,} days (about ten years)."
            return None
        return {"kind": "between", "start_date": start.isoformat(), "end_date": end.isoformat()}
    if key.startswith("last_") and key.endswith("_days"):
        days = key.removeprefix("last_").removesuffix("_days")
        if not days.isdigit() or not 1 <= int(days) <= MAX_PERIOD_DAYS:
            errors["period"] = "Pick a period from the list."
            return None
        return {"kind": "last_n_days", "n": int(days)}
    if key not in PERIOD_KINDS or key in ("between", "last_n_days"):
        errors["period"] = "Pick a period from the list."
        return None
    return {"kind": key}


def _filters(
    form: Mapping[str, str], names: Mapping[str, list[tuple[str, str]]], errors: dict[str, str]
) -> list[dict[str, Any]]:
    filters = []
    for index in range(FILTER_ROWS):
        dimension = form[f"filter_{index}_dimension"]
        typed = [v.strip() for v in form[f"filter_{index}_values"].split(",") if v.strip()]
        if not dimension and not typed:
            continue
        where = f"filter_{index}_values"
        if not dimension:
            errors[f"filter_{index}_dimension"] = "Pick what to filter on, or clear the values."
            continue
        if not typed:
            errors[where] = "Give at least one value, separated by commas."
            continue
        if len(typed) > MAX_FILTER_VALUES:
            errors[where] = f"At most {MAX_FILTER_VALUES} values per filter."
            continue
        operator = form[f"filter_{index}_operator"] or "in"
        if operator not in ("in", "not_in"):
            errors[f"filter_{index}_operator"] = "Pick “is one of” or “is none of”."
            continue
        known = names.get(dimension) or FIXED_VALUES.get(dimension)
        values = []
        for text in typed:
            value = known_value(dimension, text, known) if known else text
            if value is None:
                listed = ", ".join(name for _, name in (known or [])[:8])
                errors[where] = f"“{text}” is not a {dimension_words(dimension)} we have; known: {listed}."
                break
            values.append(value)
        else:
            filters.append({"dimension": dimension, "operator": operator, "value": values})
    return filters


def build(
    form: Mapping[str, str],
    *,
    names: Mapping[str, list[tuple[str, str]]],
    now: datetime,
    business_tz: str,
    locale: str = "en_GB",
) -> BuiltReport:
    """The definition the form describes, or every field's mistake (numbers read in `locale`)."""
    errors: dict[str, str] = {}
    metric: Metric | None = REGISTRY.get(form["metric"])
    if metric is None:
        errors["metric"] = "Pick a metric from the list."
        return BuiltReport(None, errors)
    period = _period(form, errors)
    filters = _filters(form, names, errors)
    top_text = form["top"]
    top: int | None = None
    if top_text:
        if not top_text.isdigit() or not 1 <= int(top_text) <= MAX_TOP:
            errors["top"] = f"Top is a whole number from 1 to {MAX_TOP}, or empty for every value."
        else:
            top = int(top_text)
    at_least = _bound(form["value_from"], metric, "value_from", errors, locale)
    at_most = _bound(form["value_to"], metric, "value_to", errors, locale)
    if form["kind"] not in PRESENTATION_KINDS:
        errors["kind"] = "Pick a chart from the list."
    if form["sort"] not in SORT_ORDERS:
        errors["sort"] = "Pick an order from the list."
    if form["dimension_2"] and not form["dimension"]:
        errors["dimension_2"] = "Pick the first split (“Split by”) before a second one."
    elif form["dimension_2"] and form["dimension_2"] == form["dimension"]:
        errors["dimension_2"] = "The second split is the same as the first; pick another or “Nothing”."
    if errors or period is None:
        return BuiltReport(None, errors)
    query: dict[str, Any] = {
        "metrics": [metric.name],
        "period": period,
        "grain": None,
        "dimensions": [],
        "filters": [],
        "comparison": None,
    }
    # One part at a time, so each refusal is shown beside its own field.
    steps: tuple[tuple[str, str, Any], ...] = (
        ("grain", "grain", form["grain"] or None),
        ("dimension", "dimensions", [form["dimension"]] if form["dimension"] else []),
        ("dimension_2", "dimensions", [d for d in (form["dimension"], form["dimension_2"]) if d]),
        ("filter_0_dimension", "filters", filters),
        ("comparison", "comparison", form["comparison"] or None),
    )
    for where, key, value in steps:
        query[key] = value
        try:
            checked = query_from_definition({"query": query})
        except ReportDefinitionError as error:
            errors[where] = f"{_sentence(str(error))}"
            return BuiltReport(None, errors)
    chart: dict[str, Any] = {"kind": form["kind"], "sort": form["sort"], "top": top}
    if at_least is not None or at_most is not None:
        chart.update(at_least=at_least, at_most=at_most)
    definition = {"query": query, "chart": chart}
    try:
        presentation_from_definition(definition, checked)
    except ReportDefinitionError as error:
        ranged = "range" in str(error)
        errors["value_from" if ranged else "kind"] = _sentence(str(error))
        return BuiltReport(None, errors)
    if checked.grain is not None and isinstance(checked.period, PeriodSpec):
        buckets = len(
            bucket_axis(resolve_period(checked.period, now, business_tz), checked.grain, business_tz).starts
        )
        if buckets > MAX_BUCKETS:
            errors["grain"] = (
                f"That is {buckets:,} {checked.grain}s; a report shows at most {MAX_BUCKETS:,} points. "
                "Pick a coarser grain or a shorter period."
            )
            return BuiltReport(None, errors)
    return BuiltReport(definition, errors)


def _sentence(text: str) -> str:
    text = text.strip().rstrip(".")
    return f"{text[:1].upper()}{text[1:]}."
