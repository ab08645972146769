"""Saved reports (with their schedules and deliveries, run on demand as chart, summary and CSV) and performance."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Template
from sqlalchemy import or_, select

from api.pages.common import Formats, StaffPages, chart_svg, container_of, page, staff_of, utc_now
from reports.answer import answer
from reports.saved import ReportDefinitionError, query_from_definition, result_csv
from storage.database import Database
from storage.models import CustomReport, PerformanceMetric, ReportDelivery, ReportSchedule
from switchboard.wiring import Container


async def visible_reports(database: Database, staff_id: int) -> list[CustomReport]:
    """Shared reports and the person's own."""
    async with database.read_sessions() as session:
        return list(
            await session.scalars(
                select(CustomReport)
                .where(or_(CustomReport.shared.is_(True), CustomReport.owner_id == staff_id))
                .order_by(CustomReport.name)
                .limit(200)
            )
        )


async def reports_overview(database: Database, staff_id: int, formats: Formats) -> dict[str, Any]:
    reports = await visible_reports(database, staff_id)
    by_id = {r.id: r for r in reports}
    async with database.read_sessions() as session:
        schedules = list(
            await session.scalars(
                select(ReportSchedule)
                .where(ReportSchedule.report_id.in_(list(by_id)))
                .order_by(ReportSchedule.id)
            )
        )
        deliveries = (
            await session.execute(
                select(ReportDelivery, ReportSchedule.report_id)
                .join(ReportSchedule, ReportSchedule.id == ReportDelivery.schedule_id)
                .where(ReportSchedule.report_id.in_(list(by_id)))
                .order_by(ReportDelivery.due_at.desc())
                .limit(30)
            )
        ).all()
    schedules_of: dict[int, list[str]] = defaultdict(list)
    for s in schedules:
        state = "" if s.enabled else " (off)"
        schedules_of[s.report_id].append(
            f"{s.cron} {s.timezone} → {s.destination_kind} {s.destination}{state}"
        )
    return {
        "reports": [
            {"slug": r.slug, "name": r.name, "shared": r.shared, "schedules": schedules_of[r.id]}
            for r in reports
        ],
        "deliveries": [
            {
                "report": by_id[report_id].name,
                "due": formats.moment(d.due_at),
                "destination": d.destination,
                "status": d.status,
                "late": d.late,
                "delivered": formats.moment(d.delivered_at),
                "error": d.error or "",
            }
            for d, report_id in deliveries
        ],
    }


async def saved_report(database: Database, staff_id: int, slug: str) -> CustomReport:
    async with database.read_sessions() as session:
        found = await session.scalar(
            select(CustomReport).where(
                CustomReport.slug == slug,
                or_(CustomReport.shared.is_(True), CustomReport.owner_id == staff_id),
            )
        )
    if found is None:
        raise NotFoundException(f"There is no saved report {slug!r}.")
    return found


async def run_report(container: Container, report: CustomReport, formats: Formats) -> Any:
    query = query_from_definition(report.definition)
    return await answer(
        container.database,
        query,
        now=utc_now(),
        business_tz=formats.timezone,
        locale=formats.locale,
        currency=formats.currency,
    )


async def performance_data(container: Container, formats: Formats) -> dict[str, Any]:
    now = utc_now()
    figures = await container.metrics.refresh(container.database, now)
    async with container.database.read_sessions() as session:
        history = list(
            await session.scalars(
                select(PerformanceMetric).order_by(PerformanceMetric.recorded_at.desc()).limit(100)
            )
        )

    def labels(values: dict[str, Any]) -> str:
        return ", ".join(f"{k}={v}" for k, v in sorted(values.items())) or "—"

    def shown(name: str, value: float) -> str:
        return formats.duration(value) if name.endswith("seconds") or "_seconds" in name else f"{value:,.0f}"

    return {
        "figures": [
            {"name": f.name, "labels": labels(f.labels), "value": shown(f.name, f.value)} for f in figures
        ],
        "history": [
            {
                "when": formats.moment(h.recorded_at),
                "name": h.name,
                "labels": labels(h.labels),
                "value": shown(h.name, h.value),
            }
            for h in history
        ],
        "as_of": formats.moment(now),
    }


class ReportPages(StaffPages):
    @get("/analytics/reports", name="reports")
    async def reports(self, request: Request[Any, Any, Any]) -> Template:
        data = await reports_overview(
            container_of(request).database, staff_of(request).id, Formats.of(request)
        )
        return page(request, "analytics/reports.html", "analytics", "reports", **data)

    @get("/analytics/reports/{slug:str}", name="report")
    async def report(
        self, request: Request[Any, Any, Any], slug: FromPath[str]
    ) -> Template | Response[bytes]:
        container, formats = container_of(request), Formats.of(request)
        as_csv = slug.endswith(".csv")
        report = await saved_report(container.database, staff_of(request).id, slug.removesuffix(".csv"))
        try:
            found = await run_report(container, report, formats)
        except ReportDefinitionError as error:
            if as_csv:
                raise NotFoundException(f"Report {report.slug!r} cannot run: {error}") from None
            return page(
                request, "analytics/report.html", "analytics", "reports", report=report, error=str(error)
            )
        if as_csv:
            return Response(
                result_csv(found),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{report.slug}.csv"'},
            )
        return page(
            request,
            "analytics/report.html",
            "analytics",
            "reports",
            report=report,
            chart=await chart_svg(container, found.chart),
            summary=found.summary,
        )

    @get("/analytics/performance", name="performance")
    async def performance(self, request: Request[Any, Any, Any]) -> Template:
        data = await performance_data(container_of(request), Formats.of(request))
        return page(request, "analytics/performance.html", "analytics", "performance", **data)
