"""Analytics dashboards (executive, financial, operational, customer): KPI tiles and charts via reports.answer.

The executive page follows the signed-in person's saved layout (dashboard_configs) when they have one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request, get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Template
from markupsafe import Markup
from sqlalchemy import select

from api.pages.common import (
    DEFAULT_PERIOD,
    PERIODS,
    Formats,
    StaffPages,
    chart_svg,
    container_of,
    page,
    period_key,
    staff_of,
    utc_now,
)
from reports.answer import Answer, answer
from reports.charts.formatting import format_change
from reports.metrics import REGISTRY
from reports.periods import Grain, PeriodSpec
from reports.query import MetricQuery
from storage.models import DashboardConfig
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
        ("revenue", "communication_cost", "cost_per_message"),
        (ChartQuery("revenue", None, "source_channel"), ChartQuery("communication_cost")),
    ),
    "operational": Dashboard(
        ("appointments", "no_show_rate", "video_consultations", "first_response_time"),
        (ChartQuery("appointments"), ChartQuery("first_response_time")),
    ),
    "customer": Dashboard(
        ("new_customers", "returning_customers", "churn_rate"), (ChartQuery("new_customers"),)
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
    "delivery_rate",
    "first_response_time",
    "csat",
)
LAYOUT_NAME = "default"


@dataclass(frozen=True)
class Tile:
    label: str
    value: str
    change: str
    tone: str  # good, bad or neutral
    summary: str


async def _answer(container: Container, query: MetricQuery, formats: Formats) -> Answer:
    return await answer(
        container.database,
        query,
        now=utc_now(),
        business_tz=formats.timezone,
        locale=formats.locale,
        currency=formats.currency,
    )


async def kpi_tile(container: Container, metric: str, period: PeriodSpec, formats: Formats) -> Tile:
    label = REGISTRY[metric].label
    try:
        found = await _answer(
            container, MetricQuery((metric,), period, comparison="previous_period"), formats
        )
    except ValueError as error:
        return Tile(label, "—", "", "neutral", f"Could not be worked out: {error}")
    definition = found.result.metrics[0]
    series = found.result.series_for(definition.name)
    total = series[0].total if series else None
    change_ratio = found.chart.kpi.change_pct if found.chart.kpi else None
    change, tone = "", "neutral"
    if change_ratio is not None and total is not None:
        change = format_change(change_ratio, locale=formats.locale)
        rising_is_good = definition.direction != "down_is_good"
        tone = "good" if (change_ratio >= 0) == rising_is_good else "bad"
    return Tile(label, formats.value(total, definition.unit), change, tone, found.summary)


async def kpi_chart(
    container: Container, chart: ChartQuery, period: PeriodSpec, formats: Formats
) -> tuple[Markup, str] | None:
    query = MetricQuery(
        (chart.metric,), period, grain=chart.grain, dimensions=(chart.dimension,) if chart.dimension else ()
    )
    try:
        found = await _answer(container, query, formats)
    except ValueError:
        return None  # e.g. a grain the metric does not have; the tile still shows the figure
    return await chart_svg(container, found.chart), found.summary


async def dashboard_data(
    request: Request[Any, Any, Any], dashboard: Dashboard, period: str
) -> dict[str, Any]:
    container, formats = container_of(request), Formats.of(request)
    spec = PERIODS[period][1]
    tiles = [await kpi_tile(container, metric, spec, formats) for metric in dashboard.tiles]
    charts = [c for c in [await kpi_chart(container, q, spec, formats) for q in dashboard.charts] if c]
    return {
        "tiles": tiles,
        "charts": charts,
        "period": period,
        "periods": [(key, label) for key, (label, _) in PERIODS.items()],
    }


async def saved_layout(container: Container, staff_id: int) -> DashboardConfig | None:
    async with container.database.read_sessions() as session:
        found: DashboardConfig | None = await session.scalar(
            select(DashboardConfig).where(
                DashboardConfig.owner_id == staff_id, DashboardConfig.name == LAYOUT_NAME
            )
        )
    return found


def layout_metrics(config: DashboardConfig | None) -> tuple[str, ...]:
    if config is None:
        return DASHBOARDS["executive"].tiles
    chosen = [w.get("metric") for w in config.layout if isinstance(w, dict)]
    return tuple(m for m in chosen if m in EXECUTIVE_CHOICES) or DASHBOARDS["executive"].tiles


async def save_layout(container: Container, staff_id: int, metrics: list[str], period: str) -> None:
    layout = [{"kind": "kpi", "metric": m} for m in EXECUTIVE_CHOICES if m in metrics]
    async with container.unit_of_work() as uow:
        config = await uow.session.scalar(
            select(DashboardConfig).where(
                DashboardConfig.owner_id == staff_id, DashboardConfig.name == LAYOUT_NAME
            )
        )
        if config is None:
            config = DashboardConfig(owner_id=staff_id, name=LAYOUT_NAME, page="executive")
            uow.session.add(config)
        config.layout = layout
        config.period = period
        await uow.commit()


class AnalyticsPages(StaffPages):
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
        return page(
            request,
            "analytics/dashboard.html",
            "analytics",
            "executive",
            customised=config is not None,
            choices=[(m, REGISTRY[m].label, m in metrics) for m in EXECUTIVE_CHOICES],
            saved_period=config.period if config else DEFAULT_PERIOD,
            **data,
        )

    @post("/analytics/executive/layout", name="executive_layout", status_code=303)
    async def executive_layout(self, request: Request[Any, Any, Any]) -> Redirect:
        form = await request.form()
        metrics = [str(m) for m in form.getall("metric", [])]
        await save_layout(
            container_of(request), staff_of(request).id, metrics, period_key(str(form.get("period", "")))
        )
        return Redirect("/analytics/executive", status_code=303)

    @get("/analytics/financial", name="financial")
    async def financial(
        self, request: Request[Any, Any, Any], period: FromQuery[str | None] = None
    ) -> Template:
        data = await dashboard_data(request, DASHBOARDS["financial"], period_key(period))
        return page(request, "analytics/dashboard.html", "analytics", "financial", **data)

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
        return page(request, "analytics/dashboard.html", "analytics", "customer", **data)
