"""Saved reports (with their schedules and deliveries, run on demand as chart, summary and CSV) and performance."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from markupsafe import Markup, escape

from api.auth import requires_role
from api.pages import notices
from api.pages.common import Formats, StaffPages, chart_svg, container_of, page, staff_of, utc_now
from api.pages.notices import after_change
from domain.messages.words import channel_words, provider_words
from domain.report_schedule import ScheduleRequest
from domain.vocabulary import Role
from reports.answer import Answer, answer
from reports.charts.cache import draw
from reports.charts.spec import ChartSpec
from reports.deliveries import Actor, DeliveryActionError, remove_schedule, retry_delivery
from reports.destinations import ChannelCheck
from reports.exports import as_csv, as_xlsx
from reports.heartbeats import ago, in_words, read_background_health
from reports.library import SavedReport, may_change, visible_report_by_slug, visible_reports
from reports.metrics import REGISTRY, dimension_words
from reports.performance import OperationsView, read_operations
from reports.presentation import present, presentation_of
from reports.saved import (
    describe_query,
    presentation_from_definition,
    query_from_definition,
)
from reports.schedule_check import schedule_and_announce
from reports.schedule_words import (
    DAYS,
    already_scheduled_words,
    cron_from_words,
    cron_in_words,
    destination_of,
    recipient_filters,
)
from reports.schedules import (
    AlreadyScheduled,
    ScheduleError,
)
from storage.database import Database
from storage.queries.report_schedules import latest_deliveries, schedules_of_reports
from storage.queries.reports import dimension_names
from switchboard.wiring import Container


def next_delivery(enabled: bool, due_at: datetime | None, timezone: str, formats: Formats) -> str:
    """When a schedule next delivers, in its own timezone as its cron is said; one overdue says it waits."""
    if not enabled or due_at is None:
        return ""
    at = replace(formats, timezone=timezone).moment(due_at)
    return at if due_at > utc_now() else f"{at} (overdue: the worker has not run it yet)"


async def reports_overview(database: Database, staff_id: int, formats: Formats) -> dict[str, Any]:
    reports = await visible_reports(database, staff_id)
    by_id = {r.id: r for r in reports}
    schedules = await schedules_of_reports(database, list(by_id))
    deliveries = await latest_deliveries(database, list(by_id))
    schedules_of: dict[int, list[str]] = defaultdict(list)
    for s in schedules:
        upcoming = next_delivery(s.enabled, s.next_due_at, s.timezone, formats)
        state = (f", next {upcoming}" if upcoming else "") if s.enabled else " (off)"
        schedules_of[s.report_id].append(
            f"{cron_in_words(s.cron)} ({s.timezone}) → {s.destination_kind} {s.destination}"
            + (f", only {s.only_for}" if s.only_for else "")  # as the report's own page says it
            + state
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
    found = await visible_report_by_slug(database, staff_id, slug)
    if found is None:
        raise NotFoundException(f"There is no saved report {slug!r}.")
    return found


async def report_chart(
    container: Container, report: SavedReport, formats: Formats
) -> tuple[ChartSpec, Answer]:
    """The report answered now and drawn as its builder chose (the spec chat and deliveries send as PNG)."""
    query = query_from_definition(report.definition)
    presentation = presentation_from_definition(report.definition, query)
    found = await answer(
        container.database,
        query,
        now=utc_now(),
        business_tz=formats.timezone,
        locale=formats.locale,
        currency=formats.currency,
        top=presentation.ranking(query),
        business_name=formats.business_name,
    )
    return present(found, presentation), found


async def _png(container: Container, chart: ChartSpec) -> bytes:
    return await draw(chart, "png", chart.data_as_of.isoformat(), container.chart_cache)


async def _svg(container: Container, chart: ChartSpec) -> bytes:
    return (await draw(chart, "svg", chart.data_as_of.isoformat(), container.chart_cache)).encode()


async def _csv(container: Container, chart: ChartSpec) -> bytes:
    return as_csv(chart)


async def _xlsx(container: Container, chart: ChartSpec) -> bytes:
    return as_xlsx(chart)


#: Every way a report downloads: the figures as shown (CSV, XLSX) and the chart itself (PNG, SVG).
EXPORTS: dict[str, tuple[str, Callable[[Container, ChartSpec], Awaitable[bytes]]]] = {
    "csv": ("text/csv", _csv),  # Litestar adds "; charset=utf-8" to a text type
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", _xlsx),
    "png": ("image/png", _png),
    "svg": ("image/svg+xml", _svg),
}
FLASHES = {
    "changed": "Saved your changes.",
    "scheduled": "Scheduled. Each delivery and its outcome shows below.",
    "announced": "Scheduled, and said so in the Slack channel. Each delivery and its outcome shows below.",
    "unchecked": "Scheduled, but Slack did not answer when asked to say so in the channel, so the channel is "
    "not checked yet; the first delivery's outcome shows below.",
    "unscheduled": "The schedule is gone; nothing more will be delivered by it.",
    "retrying": "It will be sent again within a minute; its outcome shows below.",
}
EMPTY_SCHEDULE = {
    "frequency": "weekly",
    "weekday": "monday",
    "day": "1",
    "time": "08:00",
    "timezone": "",
    "to": "",
    "only_dimension": "",
    "only_values": "",
}
FREQUENCIES = (
    ("daily", "Every day"),
    ("weekdays", "Every weekday"),
    ("weekly", "Every week on"),
    ("monthly", "Every month on day"),
)
WEEKDAYS = tuple((day, day.capitalize()) for day in DAYS)


def split_dimensions(definition: dict[str, Any]) -> tuple[str, ...]:
    """What a report's metric can be filtered by, for "only for" on a schedule."""
    metrics = definition.get("query", {}).get("metrics") or []
    metric = REGISTRY.get(metrics[0]) if metrics else None
    return metric.dimensions if metric else ()


def schedule_words(form: dict[str, str]) -> str:
    """The schedule form said as words, so the browser and chat go through one parser (cron_from_words)."""
    frequency, time = form["frequency"], form["time"]
    if frequency == "daily":
        return f"every day {time}"
    if frequency == "weekdays":
        return f"every weekday {time}"
    if frequency == "monthly":
        return f"every month on {form['day']} {time}"
    if frequency == "weekly":
        return f"every {form['weekday']} {time}"
    raise ScheduleError("pick how often from the list")


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
                {
                    "job": j.job[:1].upper() + j.job[1:],
                    "state": j.state,
                    "pill": JOB_STATE_PILL[j.state],
                    "text": j.text,
                }
                for j in health.jobs
            ],
            "processes": [
                {"name": p.worker_id, "role": p.role, "state": p.describe(now)}
                for p in health.recent_processes
            ],
        },
        "tiles": [
            ("Waiting to be sent", _plural(view.waiting, "message", "messages", formats)),
            (
                "Oldest due message has waited",
                in_words(oldest) if oldest is not None else "nothing is due",
            ),
            ("Send rate, last 5 minutes", f"{formats.value(sent_5 / 5, 'number')} per minute"),
            (
                "Handed to providers, last hour",
                _plural(sum(c.sent_last_hour for c in view.channels), "message", "messages", formats),
            ),
        ],
        "channels": [
            {
                "channel": channel_words(c.channel),
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
                "provider": provider_words(p.provider),
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
                "provider": provider_words(p.provider),
                "calls": formats.count(p.calls),
                "mean": _latency(p.mean_seconds),
                "p95": _latency(p.p95_under_seconds),
            }
            for p in view.latency
        ],
        "webhooks": [
            {
                "provider": provider_words(w.provider),
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
        return await self._reports_page(request)

    async def _reports_page(self, request: Request[Any, Any, Any], **extra: Any) -> Template:
        data = await reports_overview(
            container_of(request).database, staff_of(request).id, Formats.of(request)
        )
        return page(
            request,
            "analytics/reports.html",
            "analytics",
            "reports",
            may_save=staff_of(request).may(Role.AGENT),
            deleted=deleted
            if re.fullmatch(r"[a-z0-9-]{1,64}", deleted := notices.said(request).get("deleted", ""))
            else "",
            **data,
            **extra,
        )

    @get("/analytics/reports/{slug:str}", name="report")
    async def report(
        self, request: Request[Any, Any, Any], slug: FromPath[str]
    ) -> Template | Response[bytes]:
        """The report drawn as its builder chose, or (slug.csv, .xlsx, .png, .svg) downloaded as shown."""
        return await self._report_page(request, slug)

    async def _report_page(
        self, request: Request[Any, Any, Any], slug: str, **extra: Any
    ) -> Template | Response[bytes]:
        container, formats, staff = container_of(request), Formats.of(request), staff_of(request)
        stem, dot, extension = slug.rpartition(".")
        if not dot or extension not in EXPORTS:
            stem, extension = slug, ""
        report = await saved_report(container.database, staff.id, stem)
        try:
            chart, found = await report_chart(container, report, formats)
        except ValueError as error:  # ReportDefinitionError, or a relative period grown past 5,000 points
            if extension:
                raise NotFoundException(f"Report {report.slug!r} cannot run: {error}") from None
            return page(
                request, "analytics/report.html", "analytics", "reports", report=report, error=str(error)
            )
        if extension:
            media_type, content = EXPORTS[extension]
            return Response(
                await content(container, chart),
                media_type=media_type,
                headers={"Content-Disposition": f'attachment; filename="{report.slug}.{extension}"'},
            )
        schedules = await schedules_of_reports(container.database, [report.id])
        deliveries = await latest_deliveries(container.database, [report.id], limit=20)
        said = notices.said(request)
        flash = next((FLASHES[key] for key in FLASHES if said.get(key) == "1"), None)
        return page(
            request,
            "analytics/report.html",
            "analytics",
            "reports",
            report=report,
            chart=await chart_svg(container, chart),
            summary=found.summary,
            description=describe_query(
                query_from_definition(report.definition), presentation_of(report.definition).cut_words
            ),
            just_saved=said.get("saved") == "1",
            flash=flash,
            exports=tuple(EXPORTS),
            may_change=may_change(report, staff.id, manages=staff.may(Role.MANAGER)),
            may_build=staff.may(Role.AGENT),
            may_schedule=staff.may(Role.MANAGER),
            schedule_form=extra.pop("schedule_form", None)
            or dict(EMPTY_SCHEDULE, timezone=formats.timezone, to=staff.email),
            frequencies=FREQUENCIES,
            split_choices=[(d, dimension_words(d)) for d in split_dimensions(report.definition)],
            weekdays=WEEKDAYS,
            schedules=[
                {
                    "id": s.id,
                    "when": f"{cron_in_words(s.cron)} ({s.timezone})",
                    "to": f"{s.destination_kind} {s.destination}"
                    + (f", only {s.only_for}" if s.only_for else ""),
                    "enabled": s.enabled,
                    "next": next_delivery(s.enabled, s.next_due_at, s.timezone, formats),
                }
                for s in schedules
            ],
            deliveries=[
                {
                    "id": d.id,
                    "due": formats.moment(d.due_at),
                    "late": d.late,
                    "destination": d.destination,
                    "status": d.status,
                    "delivered": formats.moment(d.delivered_at),
                    "error": d.error or "",
                    "attempts": d.attempts,
                    "removed_schedule": d.removed_schedule or "",
                }
                for d in deliveries
            ],
            **extra,
        )

    @post(
        "/analytics/reports/{slug:str}/schedules",
        name="schedule_report",
        guards=[requires_role(Role.MANAGER)],
        status_code=303,
    )
    async def schedule(self, request: Request[Any, Any, Any], slug: FromPath[str]) -> Redirect | Template:
        """Deliver the report on a schedule said in words, in a timezone, to Slack, Telegram or email."""
        container, staff = container_of(request), staff_of(request)
        report = await saved_report(container.database, staff.id, slug)
        raw = await request.form()
        form = {key: str(raw.get(key, "") or "").strip()[:254] for key in EMPTY_SCHEDULE}
        errors: dict[str, str] = {}
        try:
            cron = cron_from_words(schedule_words(form))
        except ScheduleError as error:
            errors["time"] = f"{str(error)[:1].upper()}{str(error)[1:]}."
        try:
            kind, destination = destination_of(form["to"] or staff.email)
        except ScheduleError as error:
            errors["to"] = f"{str(error)[:1].upper()}{str(error)[1:]}."
        try:
            only = recipient_filters(
                report.definition,
                form["only_dimension"],
                form["only_values"],
                await dimension_names(container.database),
            )
        except ScheduleError as error:
            errors["only"] = f"{str(error)[:1].upper()}{str(error)[1:]}."
        check = ChannelCheck()
        if not errors:
            asked = ScheduleRequest(cron, form["timezone"], kind, destination, only)
            settings, now = container.settings, utc_now()
            try:
                saved = await schedule_and_announce(
                    container.units.report_schedules,
                    report,
                    asked,
                    owner_id=staff.id,
                    owner_name=staff.name,
                    actor=staff.email,
                    via="web",
                    now=now,
                    slack_token=settings.slack_bot_token.get_secret_value(),
                    slack_base_url=settings.slack_base_url,
                )
                check = saved.check
                if check.refused is not None:
                    errors["to"] = f"{check.refused[:1].upper()}{check.refused[1:]}. Nothing was scheduled."
            except AlreadyScheduled as error:
                errors["time"] = already_scheduled_words(error)
            except ScheduleError as error:
                field = "timezone" if "timezone" in str(error) else "time"
                errors[field] = f"{str(error)[:1].upper()}{str(error)[1:]}."
        if errors:
            shown = await self._report_page(request, report.slug, schedule_form=form, schedule_errors=errors)
            if isinstance(shown, Template):
                shown.status_code = 422
                return shown
            raise NotFoundException("The report cannot be shown.")
        said = "scheduled" if kind != "slack" else "unchecked" if check.unchecked else "announced"
        return after_change(request, f"/analytics/reports/{report.slug}", **{said: "1"})

    @post(
        "/analytics/reports/{slug:str}/schedules/{schedule_id:int}/delete",
        name="unschedule_report",
        guards=[requires_role(Role.MANAGER)],
        status_code=303,
    )
    async def unschedule(
        self, request: Request[Any, Any, Any], slug: FromPath[str], schedule_id: FromPath[int]
    ) -> Redirect:
        container, staff = container_of(request), staff_of(request)
        report = await saved_report(container.database, staff.id, slug)
        try:
            await remove_schedule(container.database, Actor(staff.email, "web"), report.id, schedule_id)
        except DeliveryActionError as error:
            raise NotFoundException(str(error)) from None
        return after_change(request, f"/analytics/reports/{report.slug}", unscheduled="1")

    @post(
        "/analytics/reports/{slug:str}/deliveries/{delivery_id:int}/retry",
        name="retry_report_delivery",
        guards=[requires_role(Role.MANAGER)],
        status_code=303,
    )
    async def retry(
        self, request: Request[Any, Any, Any], slug: FromPath[str], delivery_id: FromPath[int]
    ) -> Redirect:
        container, staff = container_of(request), staff_of(request)
        report = await saved_report(container.database, staff.id, slug)
        try:
            await retry_delivery(
                container.database, Actor(staff.email, "web"), report.id, delivery_id, utc_now()
            )
        except DeliveryActionError as error:
            raise NotFoundException(str(error)) from None
        return after_change(request, f"/analytics/reports/{report.slug}", retrying="1")

    @get("/analytics/performance", name="performance")
    async def performance(self, request: Request[Any, Any, Any]) -> Template:
        data = await performance_data(container_of(request), Formats.of(request))
        return page(request, "analytics/performance.html", "analytics", "performance", **data)
