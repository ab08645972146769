"""Saved reports (with their schedules and deliveries, run on demand as chart, summary and CSV) and performance."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Template
from markupsafe import Markup, escape
from sqlalchemy import or_, select

from api.pages.common import Formats, StaffPages, chart_svg, container_of, page, staff_of, utc_now
from reports.answer import answer
from reports.heartbeats import ago, in_words, read_background_health
from reports.performance import OperationsView, read_operations
from reports.saved import ReportDefinitionError, query_from_definition, result_csv
from storage.database import Database
from storage.models import CustomReport, ReportDelivery, ReportSchedule
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


#: How each job state reads as a status pill (the stylesheet's existing colours).
JOB_STATE_PILL = {
    "ok": "on",
    "failing": "failed",
    "late": "pending",
    "starting": "planned",
    "not running": "off",
}


def with_code(text: str) -> Markup:
    """Text whose `backticked` parts (commands) show as code; everything else stays escaped."""
    parts = str(escape(text)).split("`")
    return Markup("".join(f"<code>{part}</code>" if index % 2 else part for index, part in enumerate(parts)))  # noqa: S704


def _latency(seconds: float | None) -> str:
    if seconds is None:
        return "over 10 s"
    return f"{seconds * 1000:,.0f} ms" if seconds < 1 else f"{seconds:,.1f} s"


def _plural(count: int, one: str, many: str, formats: Formats) -> str:
    return f"{formats.count(count)} {one if count == 1 else many}"


def _report_runs(view: OperationsView, formats: Formats) -> str:
    text = (
        f"Last 24 hours: {_plural(view.reports_delivered, 'scheduled report', 'scheduled reports', formats)} "
        f"delivered, {formats.count(view.reports_failed)} failed"
    )
    if view.report_median_seconds is not None:
        text += f"; from claim to delivery took {in_words(view.report_median_seconds)} (median)"
    return text + "."


async def performance_data(container: Container, formats: Formats) -> dict[str, Any]:
    """Every figure in words and units: job heartbeats, outbox, send rate, provider errors, webhooks."""
    now = utc_now()
    health = await read_background_health(container.database, now)
    view = await read_operations(container.database, container.metrics, now)
    oldest = view.oldest_due_seconds
    sent_5 = sum(c.sent_last_5_minutes for c in view.channels)
    return {
        "as_of": formats.moment(now),
        "background": {
            "all_ok": health.all_ok,
            "headline": with_code(health.headline()),
            "jobs": [
                {"job": j.job.capitalize(), "state": j.state, "pill": JOB_STATE_PILL[j.state], "text": j.text}
                for j in health.jobs
            ],
            "processes": [
                {"name": p.worker_id, "role": p.role, "state": p.describe(now)}
                for p in health.recent_processes
            ],
        },
        "tiles": [
            ("Waiting to be sent", f"{formats.count(view.waiting)} messages"),
            (
                "Oldest due message has waited",
                in_words(oldest) if oldest is not None else "nothing is due",
            ),
            ("Send rate, last 5 minutes", f"{formats.value(sent_5 / 5, 'number')} per minute"),
            (
                "Handed to providers, last hour",
                f"{formats.count(sum(c.sent_last_hour for c in view.channels))} messages",
            ),
        ],
        "channels": [
            {
                "channel": c.channel,
                "due_now": formats.count(c.due_now),
                "later": formats.count(c.scheduled_later),
                "sending": formats.count(c.sending),
                "per_minute": f"{formats.value(c.per_minute, 'number')} per minute",
                "last_hour": formats.count(c.sent_last_hour),
            }
            for c in view.channels
        ],
        "providers": [
            {
                "provider": p.provider,
                "outcomes": formats.count(p.outcomes),
                "failed": formats.count(p.failed),
                "rate": formats.percent(p.error_rate),
                "top_error": f"{p.top_error_code} ({_plural(p.top_error_count, 'time', 'times', formats)})"
                if p.top_error_code
                else "—",
            }
            for p in view.providers
        ],
        "latency": [
            {
                "provider": p.provider,
                "calls": formats.count(p.calls),
                "mean": _latency(p.mean_seconds),
                "p95": _latency(p.p95_under_seconds),
            }
            for p in view.latency
        ],
        "webhooks": [
            {
                "provider": w.provider,
                "last": ago(w.last_received_at, now),
                "when": formats.moment(w.last_received_at),
            }
            for w in view.webhooks
        ],
        "failed_webhooks": view.failed_webhooks,
        "reports": _report_runs(view, formats),
        "rollups": (
            {"as_of": formats.moment(view.rollups_as_of), "ago": ago(view.rollups_as_of, now)}
            if view.rollups_as_of
            else None
        ),
        "snapshots": [
            {
                "when": formats.moment(s.recorded_at),
                "waiting": formats.count(s.waiting),
                "oldest": in_words(s.oldest_due_seconds) if s.oldest_due_seconds is not None else "—",
                "failed_webhooks": formats.count(s.failed_webhooks) if s.failed_webhooks is not None else "—",
            }
            for s in view.snapshots
        ],
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
