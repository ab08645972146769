"""Saved reports (with their schedules and deliveries, run on demand as chart, summary and CSV) and performance."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from markupsafe import Markup, escape

from api.auth import requires_role
from api.pages.common import Formats, StaffPages, chart_svg, container_of, page, staff_of, utc_now
from domain.vocabulary import Role
from reports.answer import answer
from reports.heartbeats import ago, in_words, read_background_health
from reports.library import ReportLibraryError, SavedReport, Saver, find_report, save_report, visible_reports
from reports.metrics import REGISTRY
from reports.performance import OperationsView, read_operations
from reports.saved import ReportDefinitionError, describe_query, query_from_definition, result_csv
from storage.database import Database
from storage.queries.report_schedules import latest_deliveries, schedules_of_reports
from switchboard.wiring import Container


async def reports_overview(database: Database, staff_id: int, formats: Formats) -> dict[str, Any]:
    reports = await visible_reports(database, staff_id)
    by_id = {r.id: r for r in reports}
    schedules = await schedules_of_reports(database, list(by_id))
    deliveries = await latest_deliveries(database, list(by_id))
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
                "report": by_id[d.report_id].name,
                "due": formats.moment(d.due_at),
                "destination": d.destination,
                "status": d.status,
                "late": d.late,
                "delivered": formats.moment(d.delivered_at),
                "error": d.error or "",
            }
            for d in deliveries
        ],
    }


async def saved_report(database: Database, staff_id: int, slug: str) -> SavedReport:
    found = await find_report(database, staff_id, slug)
    if found is None:
        raise NotFoundException(f"There is no saved report {slug!r}.")
    return found


async def run_report(container: Container, report: SavedReport, formats: Formats) -> Any:
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


#: The periods the form offers, as saved (relative, so a report always shows its latest period).
FORM_PERIODS: tuple[tuple[str, str], ...] = (
    ("last_7_days", "Last 7 days"),
    ("last_30_days", "Last 30 days"),
    ("last_90_days", "Last 90 days"),
    ("this_week", "This week so far"),
    ("last_week", "Last week"),
    ("this_month", "This month so far"),
    ("last_month", "Last month"),
    ("this_quarter", "This quarter so far"),
    ("last_quarter", "Last quarter"),
    ("year_to_date", "This year so far"),
)
FORM_GRAINS = (("", "One figure"), ("day", "Daily"), ("week", "Weekly"), ("month", "Monthly"))
FORM_COMPARISONS = (
    ("", "No comparison"),
    ("previous_period", "Against the period before"),
    ("same_period_last_year", "Against the same period last year"),
)
EMPTY_FORM = {
    "name": "",
    "metric": "revenue",
    "period": "last_30_days",
    "dimension": "",
    "grain": "",
    "comparison": "",
}


def form_choices() -> dict[str, Any]:
    metrics = sorted(REGISTRY.values(), key=lambda m: m.label)
    dimensions = sorted({d for m in metrics for d in m.dimensions})
    return {
        "metrics": [(m.name, m.label, m.description) for m in metrics],
        "dimensions": [(d, d.replace("_", " ")) for d in dimensions],
        "periods": FORM_PERIODS,
        "grains": FORM_GRAINS,
        "comparisons": FORM_COMPARISONS,
    }


def definition_from_form(form: dict[str, str]) -> dict[str, Any]:
    """The saved-report definition a form describes; names are checked against the registry on save."""
    period_key = form.get("period", "")
    if period_key.startswith("last_") and period_key.endswith("_days"):
        days = period_key.removeprefix("last_").removesuffix("_days")
        period: dict[str, Any] = {"kind": "last_n_days", "n": int(days) if days.isdigit() else 0}
    else:
        period = {"kind": period_key}
    return {
        "query": {
            "metrics": [form.get("metric", "")],
            "period": period,
            "grain": form.get("grain") or None,
            "dimensions": [form["dimension"]] if form.get("dimension") else [],
            "filters": [],
            "comparison": form.get("comparison") or None,
        }
    }


class ReportPages(StaffPages):
    @get("/analytics/reports", name="reports")
    async def reports(self, request: Request[Any, Any, Any]) -> Template:
        return await self._reports_page(request, EMPTY_FORM)

    async def _reports_page(
        self, request: Request[Any, Any, Any], form: dict[str, str], **extra: Any
    ) -> Template:
        data = await reports_overview(
            container_of(request).database, staff_of(request).id, Formats.of(request)
        )
        return page(
            request,
            "analytics/reports.html",
            "analytics",
            "reports",
            may_save=staff_of(request).may(Role.AGENT),
            form=form,
            choices=form_choices(),
            **data,
            **extra,
        )

    @post("/analytics/reports", name="save_report", guards=[requires_role(Role.AGENT)], status_code=303)
    async def save(self, request: Request[Any, Any, Any]) -> Redirect | Template:
        """Save a report from the form: checked against the registry, audited, never half-saved."""
        raw = await request.form()
        form = {key: str(raw.get(key, "")).strip()[:200] for key in (*EMPTY_FORM, "shared")}
        staff = staff_of(request)
        try:
            saved = await save_report(
                container_of(request).database,
                Saver(staff.id, staff.email, "web"),
                form["name"],
                definition_from_form(form),
                shared=form["shared"] == "on",
            )
        except ReportLibraryError as error:
            template = await self._reports_page(request, form, error=str(error))
            template.status_code = 422
            return template
        return Redirect(f"/analytics/reports/{saved.slug}?saved=1", status_code=303)

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
            description=describe_query(query_from_definition(report.definition)),
            just_saved=request.query_params.get("saved") == "1",
        )

    @get("/analytics/performance", name="performance")
    async def performance(self, request: Request[Any, Any, Any]) -> Template:
        data = await performance_data(container_of(request), Formats.of(request))
        return page(request, "analytics/performance.html", "analytics", "performance", **data)
