"""Analytics dashboards (executive, financial, operational, customer): KPI tiles and charts via reports.answer.

The executive page follows the signed-in person's saved layout (dashboard_configs) when they have one,
and sets every KPI that has a target against it. The customer page shows the cohort retention the
daily insight stores in business_intelligence. Message costs are shown in the providers' currency,
labelled so, next to business figures in the business currency; the two are never converted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import date
from typing import Any
from urllib.parse import urlencode

from babel.dates import format_skeleton
from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from markupsafe import Markup

from api.pages import notices
from api.pages.common import (
    DEFAULT_PERIOD,
    EXPORT_KINDS,
    PERIODS,
    Formats,
    StaffPages,
    chart_download,
    chart_svg,
    container_of,
    cost_label,
    page,
    period_key,
    provider_currencies,
    staff_of,
    utc_now,
)
from api.pages.notices import after_change
from domain.dashboards.use_cases import LAYOUT_NAME, save_dashboard_layout
from domain.messages.words import channel_words
from reports.answer import Answer, answer
from reports.charts.formatting import (
    format_change,
    format_points,
    format_score_change,
    points_moved,
    score_moved,
)
from reports.charts.spec import ChartSpec
from reports.insight import (
    attribution_result,
    cohort_heatmap,
    cohort_result,
    cost_revenue_bars,
    cost_revenue_result,
)
from reports.metrics import REGISTRY
from reports.periods import Grain, PeriodSpec
from reports.query import MetricQuery
from storage.queries.dashboards import SavedLayout, latest_insight
from storage.queries.dashboards import saved_layout as stored_layout
from storage.queries.reports import campaign_names
from switchboard.wiring import Container


@dataclass(frozen=True)
class ChartQuery:
    metric: str
    grain: Grain | None = "day"
    dimension: str | None = None


@dataclass(frozen=True)
class Dashboard:
    tiles: tuple[str, ...]
    charts: tuple[ChartQuery, ...]


DASHBOARDS = {
    "executive": Dashboard(
        ("revenue", "orders", "average_order_value", "active_customers"), (ChartQuery("revenue"),)
    ),
    "financial": Dashboard(
        ("revenue", "average_order_value", "communication_cost", "cost_per_message"),
        (ChartQuery("revenue", None, "source_channel"), ChartQuery("communication_cost")),
    ),
    "operational": Dashboard(
        ("appointments", "no_show_rate", "video_consultations", "first_response_time"),
        (ChartQuery("appointments"), ChartQuery("first_response_time")),
    ),
    "customer": Dashboard(
        ("new_customers", "active_customers", "returning_customers", "churn_rate"),
        (ChartQuery("new_customers"),),
    ),
}
#: KPIs a person may put on their executive page.
EXECUTIVE_CHOICES = (
    "revenue",
    "orders",
    "average_order_value",
    "active_customers",
    "new_customers",
    "returning_customers",
    "appointments",
    "no_show_rate",
    "communication_cost",
    "messages_sent",
    "messages_received",
    "delivery_rate",
    "reply_rate",
    "opt_outs",
    "opt_out_rate",
    "conversations",
    "first_response_time",
    "sla_met_rate",
    "csat",
    "video_consultations",
    "campaign_revenue",
)


@dataclass(frozen=True)
class Tile:
    label: str
    value: str
    change: str
    tone: str  # good, bad or neutral
    summary: str
    target: str = ""
    target_tone: str = "neutral"


@dataclass(frozen=True)
class TargetRow:
    label: str
    value: str
    target: str
    verdict: str
    tone: str


def is_message_cost(metric: str) -> bool:
    """Money that providers charge for messages (in their currency), not the business's own money."""
    definition = REGISTRY[metric]
    return definition.unit == "currency" and definition.source == "messages"


def against_target(value: float | None, metric: str, formats: Formats) -> tuple[str, str]:
    """("on target" or "off target by …", tone) for a KPI with a target; ("", "neutral") without one."""
    definition = REGISTRY[metric]
    if definition.target is None:
        return "", "neutral"
    if value is None:
        return "no data to compare", "neutral"
    met = value <= definition.target if definition.direction == "down_is_good" else value >= definition.target
    if met:
        return "on target", "good"
    gap = abs(value - definition.target)
    # Never "off by 0": a gap too small for one decimal is shown with as many as it needs (up to 3).
    points = gap * 100 if definition.unit == "percent" else gap
    places = next((p for p in (1, 2, 3) if round(points, p) != 0), 3)
    shown = round(points, places)
    distance = (
        f"{formats.value(shown, 'number')} percentage point{'' if shown == 1 else 's'}"
        if definition.unit == "percent"
        else formats.value(round(points, max(places, 2)), definition.unit)
    )
    return f"off target by {distance}", "bad"


async def _answer(container: Container, query: MetricQuery, formats: Formats) -> Answer:
    return await answer(
        container.database,
        query,
        now=utc_now(),
        business_tz=formats.timezone,
        locale=formats.locale,
        currency=formats.currency,
        business_name=formats.business_name,
    )


async def cost_currency(container: Container) -> str | None:
    """The one currency every provider charges in, or None when they differ."""
    currencies = set((await provider_currencies(container.database)).values())
    return currencies.pop() if len(currencies) == 1 else None


def metric_formats(metric: str, formats: Formats, provider_currency: str | None) -> Formats:
    return (
        replace(formats, currency=provider_currency)
        if is_message_cost(metric) and provider_currency
        else formats
    )


def metric_label(metric: str, provider_currency: str | None) -> str:
    label = REGISTRY[metric].label
    if not is_message_cost(metric):
        return label
    return (
        cost_label(provider_currency, label) if provider_currency else f"{label} (provider currencies differ)"
    )


async def kpi_tile(
    container: Container, metric: str, period: PeriodSpec, formats: Formats, provider_currency: str | None
) -> tuple[Tile, float | None]:
    label = metric_label(metric, provider_currency)
    if is_message_cost(metric) and provider_currency is None:
        note = "Providers charge in different currencies, so their costs are not added up here."
        return Tile(label, "—", "", "neutral", note), None
    formats = metric_formats(metric, formats, provider_currency)
    try:
        found = await _answer(
            container, MetricQuery((metric,), period, comparison="previous_period"), formats
        )
    except ValueError as error:
        return Tile(label, "—", "", "neutral", f"Could not be worked out: {error}"), None
    definition = found.result.metrics[0]
    series = found.result.series_for(definition.name)
    total = series[0].total if series else None
    change_ratio = found.chart.kpi.change_pct if found.chart.kpi else None
    previous = found.chart.kpi.previous_value if found.chart.kpi else None
    change, tone, moved = "", "neutral", change_ratio
    if definition.unit == "percent" and total is not None and previous is not None:
        # A rate moves by points: "+3.8 pts", not "+40.0%" of a percentage; under a tenth of one, not at all.
        moved = points_moved(total, previous) or None
        change = format_points(total - previous, locale=formats.locale) if moved else "no change"
    elif definition.unit == "number" and total is not None and previous is not None:
        # A score moves in its own units: "+0.20", not "+5.0%" of a score.
        moved = score_moved(total, previous) or None
        change = format_score_change(total, previous, locale=formats.locale) if moved else "no change"
    elif change_ratio is not None and total is not None:
        change = format_change(change_ratio, locale=formats.locale)
    if moved is not None and total is not None and definition.direction != "neutral":
        # Messages sent or received are neither good nor bad as they rise: their tile stays neutral.
        rising_is_good = definition.direction != "down_is_good"
        tone = "good" if (moved >= 0) == rising_is_good else "bad"
    target, target_tone = against_target(total, metric, formats)
    if target:
        target = f"target {formats.value(definition.target, definition.unit)}: {target}"
    value = formats.value(total, definition.unit)
    return Tile(label, value, change, tone, found.summary, target, target_tone), total


async def kpi_chart_spec(
    container: Container,
    chart: ChartQuery,
    period: PeriodSpec,
    formats: Formats,
    provider_currency: str | None,
) -> Answer | None:
    if is_message_cost(chart.metric) and provider_currency is None:
        return None  # no sum across currencies; the tile says why
    query = MetricQuery(
        (chart.metric,), period, grain=chart.grain, dimensions=(chart.dimension,) if chart.dimension else ()
    )
    try:
        return await _answer(container, query, metric_formats(chart.metric, formats, provider_currency))
    except ValueError:
        return None  # e.g. a grain the metric does not have; the tile still shows the figure


async def kpi_chart(
    container: Container,
    chart: ChartQuery,
    period: PeriodSpec,
    formats: Formats,
    provider_currency: str | None,
    period_key: str = DEFAULT_PERIOD,
) -> tuple[Markup, str, str] | None:
    """The chart as SVG, its sentence, and where its exports are (CSV, XLSX, PNG, SVG of the same spec)."""
    found = await kpi_chart_spec(container, chart, period, formats, provider_currency)
    if found is None:
        return None
    query = {"period": period_key, "grain": chart.grain or "", "dimension": chart.dimension or ""}
    exports = f"/analytics/charts/{chart.metric}.{{ext}}?{urlencode(query)}"
    return await chart_svg(container, found.chart), found.summary, exports


def currency_note(metrics: tuple[str, ...], formats: Formats, provider_currency: str | None) -> str:
    """Said wherever business money and message costs share a page, so nobody reads one as the other."""
    if not any(is_message_cost(m) for m in metrics):
        return ""
    business = list(
        dict.fromkeys(
            REGISTRY[m].label for m in metrics if REGISTRY[m].unit == "currency" and not is_message_cost(m)
        )
    )
    named = " and ".join([", ".join(business[:-1]), business[-1]] if len(business) > 1 else business)
    lead = (
        f"{named[:1].upper()}{named[1:].lower()}: in {formats.currency}, the business currency. "
        if business
        else ""
    )
    charged = provider_currency or "each provider's own currency"
    return (
        f"{lead}Message costs: what the providers charge, in {charged}. "
        "The two are never converted or added together."
    )


async def dashboard_data(
    request: Request[Any, Any, Any], dashboard: Dashboard, period: str
) -> dict[str, Any]:
    container, formats = container_of(request), Formats.of(request)
    spec = PERIODS[period][1]
    provider_currency = await cost_currency(container)
    # The tiles and charts read separately (each its own read session), so they are asked at once: on
    # PostgreSQL and on SQLite (which reads outside the GIL) the page takes as long as its slowest part.
    tiles_found, charts_found = await asyncio.gather(
        asyncio.gather(*(kpi_tile(container, m, spec, formats, provider_currency) for m in dashboard.tiles)),
        asyncio.gather(
            *(kpi_chart(container, q, spec, formats, provider_currency, period) for q in dashboard.charts)
        ),
    )
    tiles = [tile for tile, _ in tiles_found]
    charts = [c for c in charts_found if c]
    return {
        "tiles": tiles,
        # What each tile counts, in the registry's words (a churn rate of 51.8% means little unexplained).
        "definitions": [
            (metric_label(m, provider_currency), REGISTRY[m].description)
            for m in dashboard.tiles
            if m in REGISTRY
        ],
        "charts": charts,
        "period": period,
        "periods": [(key, label) for key, (label, _) in PERIODS.items()],
        "currency_note": currency_note(
            (*dashboard.tiles, *(c.metric for c in dashboard.charts)), formats, provider_currency
        ),
    }


async def targets_data(container: Container, period: PeriodSpec, formats: Formats) -> list[TargetRow]:
    """Every KPI that has a target in the registry, this period, against it."""
    rows = []
    provider_currency = await cost_currency(container)
    for name, definition in REGISTRY.items():
        if definition.target is None:
            continue
        tile, total = await kpi_tile(container, name, period, formats, provider_currency)
        verdict, tone = against_target(total, name, formats)
        rows.append(
            TargetRow(
                tile.label, tile.value, formats.value(definition.target, definition.unit), verdict, tone
            )
        )
    return rows


@dataclass(frozen=True)
class CohortView:
    period: str
    computed: str
    summary: str
    months: list[str]
    rows: list[tuple[str, str, list[str]]]


async def latest_cohorts(container: Container, formats: Formats) -> CohortView | None:
    """The cohort retention the daily insight stored last (business_intelligence), ready to show."""
    found = await latest_insight(container.database, "cohort_retention")
    if found is None:
        return None
    months = int(found.result.get("months", 0))
    rows = []
    for row in found.result.get("rows", []):
        cohort = date.fromisoformat(str(row["cohort"]))
        cells = [formats.percent(share) if share is not None else "—" for share in row.get("retention", [])]
        rows.append(
            (
                str(format_skeleton("yMMM", cohort, locale=formats.locale)),
                formats.count(row["customers"]),
                cells,
            )
        )
    return CohortView(
        period=str(found.parameters.get("period_label", "")),
        computed=formats.moment(found.computed_at),
        summary=found.summary,
        months=[f"{k} month{'s' if k > 1 else ''} later" for k in range(1, months + 1)],
        rows=rows,
    )


async def cohort_chart(container: Container, formats: Formats) -> Markup | None:
    """The kept cohort retention as a heatmap (the same spec `retention by cohort` sends in chat)."""
    found = await latest_insight(container.database, "cohort_retention")
    if found is None or not cohort_result(found.result).rows:
        return None  # the table says that no customer placed a first order in the period
    spec = cohort_heatmap(
        cohort_result(found.result),
        period_label=str(found.parameters.get("period_label", "")),
        timezone=str(found.parameters.get("timezone", formats.timezone)),
        computed_at=found.computed_at,
        summary=found.summary,
        locale=formats.locale,
        empty_cohort=found.computed_at.date(),
    )
    return await chart_svg(container, spec)


async def attribution_view(container: Container, formats: Formats) -> dict[str, Any] | None:
    """Message cost against the revenue attributed to each channel, and each campaign's attributed orders,
    as the daily insight kept them last (the same analyses `attribution` answers in chat)."""
    attribution = await latest_insight(container.database, "attribution")
    costs = await latest_insight(container.database, "cost_vs_revenue")
    if attribution is None or costs is None:
        return None
    cost = cost_revenue_result(costs.result)
    attributed = attribution_result(attribution.result)
    names = await campaign_names(container.database, (r.key for r in attributed.by_campaign))
    chart = cost_revenue_bars(
        cost,
        period_label=str(costs.parameters.get("period_label", "")),
        timezone=str(costs.parameters.get("timezone", formats.timezone)),
        computed_at=costs.computed_at,
        summary=costs.summary,
        locale=formats.locale,
    )
    return {
        "chart": await chart_svg(container, chart),
        "summary": costs.summary,
        "attribution_summary": attribution.summary,
        "period": str(costs.parameters.get("period_label", "")),
        "computed": formats.moment(costs.computed_at),
        "cost_heading": cost_label(cost.cost_currency),
        "revenue_heading": f"Attributed revenue ({cost.revenue_currency})",
        "channels": [
            (
                channel_words(r.channel),
                formats.value(r.cost, "currency", cost.cost_currency),
                formats.value(r.attributed_revenue, "currency", cost.revenue_currency),
            )
            for r in cost.by_channel
        ],
        "campaigns": [
            (
                names.get(r.key, r.key),
                formats.count(r.attributed_orders),
                formats.value(r.attributed_revenue, "currency", attributed.currency),
                formats.count(r.customers_messaged),
                formats.percent(r.conversion_rate),
            )
            for r in attributed.by_campaign
        ],
    }


#: What the page says after its layout form was sent.
LAYOUT_SAID = {
    "saved": "Your layout is saved; this page shows it from now on.",
    "empty": "No KPI was ticked, so nothing was saved: tick the figures this page should show.",
}


async def saved_layout(container: Container, staff_id: int) -> SavedLayout | None:
    return await stored_layout(container.database, staff_id, LAYOUT_NAME)


def layout_metrics(config: SavedLayout | None) -> tuple[str, ...]:
    if config is None:
        return DASHBOARDS["executive"].tiles
    chosen = [w.get("metric") for w in config.layout if isinstance(w, dict)]
    return tuple(m for m in chosen if m in EXECUTIVE_CHOICES) or DASHBOARDS["executive"].tiles


async def save_layout(container: Container, staff_id: int, metrics: list[str], period: str) -> None:
    uow = container.units.dashboards()
    await save_dashboard_layout(uow, staff_id, metrics, period, EXECUTIVE_CHOICES)


async def insight_chart(container: Container, kind: str, formats: Formats) -> ChartSpec | None:
    """The kept cohort heatmap or cost-against-revenue chart, as the customer and financial pages draw it."""
    found = await latest_insight(container.database, kind)
    if found is None:
        return None
    header: dict[str, Any] = {
        "period_label": str(found.parameters.get("period_label", "")),
        "timezone": str(found.parameters.get("timezone", formats.timezone)),
        "computed_at": found.computed_at,
        "summary": found.summary,
        "locale": formats.locale,
    }
    if kind == "cohort_retention":
        return cohort_heatmap(cohort_result(found.result), empty_cohort=found.computed_at.date(), **header)
    return cost_revenue_bars(cost_revenue_result(found.result), **header)


class AnalyticsPages(StaffPages):
    @get("/analytics/charts/{file:str}", name="chart_export")
    async def chart_export(
        self,
        request: Request[Any, Any, Any],
        file: FromPath[str],
        period: FromQuery[str | None] = None,
        grain: FromQuery[str | None] = None,
        dimension: FromQuery[str | None] = None,
    ) -> Response[bytes]:
        """Any dashboard chart downloaded: /analytics/charts/METRIC.EXT?period=…&grain=…&dimension=…;
        every name is checked against the registry and the page periods."""
        metric, _, ext = file.rpartition(".")
        definition = REGISTRY.get(metric)
        if definition is None or ext not in EXPORT_KINDS:
            raise NotFoundException(f"There is no chart {file!r} to download.")
        if grain and grain not in definition.grains:
            raise NotFoundException(f"{definition.label} is not kept by {grain}.")
        if dimension and dimension not in definition.dimensions:
            raise NotFoundException(f"{definition.label} cannot be split by {dimension}.")
        container, formats = container_of(request), Formats.of(request)
        key = period_key(period)
        found = await kpi_chart_spec(
            container,
            ChartQuery(metric, grain or None, dimension or None),
            PERIODS[key][1],
            formats,
            await cost_currency(container),
        )
        if found is None:
            raise NotFoundException(f"{definition.label} has no chart for {PERIODS[key][0].lower()}.")
        return await chart_download(container, found.chart, ext, f"{metric}-{key}")

    @get("/analytics/insights/{file:str}", name="insight_export")
    async def insight_export(self, request: Request[Any, Any, Any], file: FromPath[str]) -> Response[bytes]:
        """The cohort heatmap (cohort_retention.EXT) or cost against revenue (cost_vs_revenue.EXT)."""
        kind, _, ext = file.rpartition(".")
        if kind not in ("cohort_retention", "cost_vs_revenue") or ext not in EXPORT_KINDS:
            raise NotFoundException(f"There is no analysis {file!r} to download.")
        container = container_of(request)
        spec = await insight_chart(container, kind, Formats.of(request))
        if spec is None:
            raise NotFoundException("The daily insight has not run yet.")
        return await chart_download(container, spec, ext, kind.replace("_", "-"))

    @get("/analytics/executive", name="executive")
    async def executive(
        self, request: Request[Any, Any, Any], period: FromQuery[str | None] = None
    ) -> Template:
        container, staff = container_of(request), staff_of(request)
        config = await saved_layout(container, staff.id)
        metrics = layout_metrics(config)
        chosen_period = period_key(period, period_key(config.period if config else None))
        dashboard = Dashboard(metrics, (ChartQuery(metrics[0]),))
        data = await dashboard_data(request, dashboard, chosen_period)
        targets = await targets_data(container, PERIODS[chosen_period][1], Formats.of(request))
        return page(
            request,
            "analytics/dashboard.html",
            "analytics",
            "executive",
            customised=config is not None,
            layout_said=LAYOUT_SAID.get(notices.said(request).get("layout", ""), ""),
            choices=[(m, REGISTRY[m].label, m in metrics) for m in EXECUTIVE_CHOICES],
            saved_period=config.period if config else DEFAULT_PERIOD,
            targets=targets,
            **data,
        )

    @post("/analytics/executive/layout", name="executive_layout", status_code=303)
    async def executive_layout(self, request: Request[Any, Any, Any]) -> Redirect:
        form = await request.form()
        metrics = [str(m) for m in form.getall("metric", [])]
        if not any(m in EXECUTIVE_CHOICES for m in metrics):
            # Nothing ticked: saved, it would show the standard KPIs as "your saved layout". Nothing is saved.
            return after_change(request, "/analytics/executive#layout-said", layout="empty")
        await save_layout(
            container_of(request), staff_of(request).id, metrics, period_key(str(form.get("period", "")))
        )
        return after_change(request, "/analytics/executive#layout-said", layout="saved")

    @get("/analytics/financial", name="financial")
    async def financial(
        self, request: Request[Any, Any, Any], period: FromQuery[str | None] = None
    ) -> Template:
        data = await dashboard_data(request, DASHBOARDS["financial"], period_key(period))
        attribution = await attribution_view(container_of(request), Formats.of(request))
        return page(
            request,
            "analytics/dashboard.html",
            "analytics",
            "financial",
            attribution=attribution,
            show_attribution=True,
            **data,
        )

    @get("/analytics/operational", name="operational")
    async def operational(
        self, request: Request[Any, Any, Any], period: FromQuery[str | None] = None
    ) -> Template:
        data = await dashboard_data(request, DASHBOARDS["operational"], period_key(period))
        return page(request, "analytics/dashboard.html", "analytics", "operational", **data)

    @get("/analytics/customer", name="customer")
    async def customer(
        self, request: Request[Any, Any, Any], period: FromQuery[str | None] = None
    ) -> Template:
        data = await dashboard_data(request, DASHBOARDS["customer"], period_key(period))
        cohorts = await latest_cohorts(container_of(request), Formats.of(request))
        return page(
            request,
            "analytics/dashboard.html",
            "analytics",
            "customer",
            cohorts=cohorts,
            cohort_chart=await cohort_chart(container_of(request), Formats.of(request)),
            show_cohorts=True,
            **data,
        )
