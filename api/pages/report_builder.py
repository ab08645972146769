"""The report builder: a new report, or a saved one edited, with a live preview drawn from the same chart spec
the bots send as PNG; duplicate and delete. Definitions are checked against the registry only (reports/builder)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.exceptions import PermissionDeniedException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from markupsafe import Markup

from api.auth import requires_role
from api.pages.common import Formats, StaffPages, chart_svg, container_of, page, staff_of, utc_now
from api.pages.notices import after_change
from api.pages.reports import saved_report
from api.security_headers import LIVE_PAGE_POLICY
from domain.vocabulary import Role
from reports.answer import answer
from reports.builder import (
    COMPARISON_CHOICES,
    EMPTY_FORM,
    FILTER_ROWS,
    GRAIN_CHOICES,
    OPERATOR_CHOICES,
    RELATIVE_PERIODS,
    BuiltReport,
    build,
    form_from_definition,
    form_of,
    period_label,
    unshown,
)
from reports.library import (
    ReportLibraryError,
    SavedReport,
    Saver,
    SchedulesWouldStop,
    delete_report,
    free_copy_name,
    may_change,
    save_report,
    update_report,
)
from reports.metrics import FIXED_VALUES, REGISTRY, dimension_words
from reports.presentation import KIND_WORDS, SORT_WORDS, present, presentation_of
from reports.saved import ReportDefinitionError, describe_query, query_from_definition
from storage.queries.report_schedules import schedules_of_reports
from storage.queries.reports import dimension_names
from switchboard.wiring import Container


def builder_choices(names: dict[str, list[tuple[str, str]]]) -> dict[str, Any]:
    metrics = sorted(REGISTRY.values(), key=lambda m: m.label)
    dimensions = sorted({d for m in metrics for d in m.dimensions})
    return {
        "metrics": [
            {
                "name": m.name,
                "label": m.label,
                "description": m.description,
                "dimensions": " ".join(m.dimensions),
                "grains": " ".join(m.grains),
            }
            for m in metrics
        ],
        "dimensions": [(d, dimension_words(d)) for d in dimensions],
        "periods": RELATIVE_PERIODS,
        "period_label": period_label,
        "grains": GRAIN_CHOICES,
        "comparisons": COMPARISON_CHOICES,
        "operators": OPERATOR_CHOICES,
        "kinds": tuple(KIND_WORDS.items()),
        "sorts": tuple(SORT_WORDS.items()),
        "filter_rows": range(FILTER_ROWS),
        "known_values": {
            d: [name for _, name in pairs[:30]] for d, pairs in {**FIXED_VALUES, **names}.items()
        },
    }


async def preview_of(container: Container, built: BuiltReport, formats: Formats) -> dict[str, Any]:
    """The chart and its sentence for a definition that passed every check."""
    if built.definition is None:
        return {}
    query = query_from_definition(built.definition)
    presentation = presentation_of(built.definition)
    try:
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
    except ValueError as error:  # e.g. too many buckets for data the checks could not foresee
        return {"preview_error": str(error)}
    chart = present(found, presentation)
    return {
        "chart": await chart_svg(container, chart),
        "summary": found.summary,
        "description": describe_query(query, presentation.cut_words),
    }


class ReportBuilderPages(StaffPages):
    """Building needs an agent or above; viewers read reports and never reach these forms."""

    async def _builder(
        self,
        request: Request[Any, Any, Any],
        form: dict[str, str],
        *,
        report: SavedReport | None = None,
        built: BuiltReport | None = None,
        error: str | None = None,
        status_code: int = 200,
    ) -> Template:
        container, formats = container_of(request), Formats.of(request)
        names = await dimension_names(container.database)
        if built is None:
            built = build(
                form, names=names, now=utc_now(), business_tz=formats.timezone, locale=formats.locale
            )
        preview = await preview_of(container, built, formats)
        template = page(
            request,
            "analytics/report_builder.html",
            "analytics",
            "reports",
            form=form,
            errors=built.errors,
            error=error,
            report=report,
            choices=builder_choices(names),
            action=f"/analytics/reports/{report.slug}/edit" if report else "/analytics/reports",
            **preview,
        )
        template.status_code = status_code
        template.headers["Content-Security-Policy"] = LIVE_PAGE_POLICY  # runs /static/report_builder.js
        return template

    @get("/analytics/reports/new", name="new_report", guards=[requires_role(Role.AGENT)])
    async def new_report(self, request: Request[Any, Any, Any]) -> Template:
        return await self._builder(request, dict(EMPTY_FORM))

    @post("/analytics/reports", name="save_report", guards=[requires_role(Role.AGENT)], status_code=303)
    async def save(self, request: Request[Any, Any, Any]) -> Redirect | Template:
        """Save a new report: every field checked, audited, never half-saved; "Preview" only draws it."""
        raw = await request.form()
        form = form_of(raw)
        container, formats, staff = container_of(request), Formats.of(request), staff_of(request)
        names = await dimension_names(container.database)
        built = build(form, names=names, now=utc_now(), business_tz=formats.timezone, locale=formats.locale)
        if raw.get("action") == "preview" or built.definition is None:
            return await self._builder(
                request, form, built=built, status_code=200 if built.definition else 422
            )
        try:
            saved = await save_report(
                container.database,
                Saver(staff.id, staff.email, "web"),
                form["name"],
                built.definition,
                shared=form["shared"] == "on",
            )
        except ReportLibraryError as error:
            built.errors["name"] = str(error)
            return await self._builder(request, form, built=built, error=str(error), status_code=422)
        return after_change(request, f"/analytics/reports/{saved.slug}", saved="1")

    @post(
        "/analytics/reports/preview",
        name="preview_report",
        guards=[requires_role(Role.AGENT)],
        status_code=200,
    )
    async def preview(self, request: Request[Any, Any, Any]) -> Response[str]:
        """The live preview's fragment: the chart and sentence, or what is wrong with which field."""
        container, formats = container_of(request), Formats.of(request)
        form = form_of(await request.form())
        built = build(
            form,
            names=await dimension_names(container.database),
            now=utc_now(),
            business_tz=formats.timezone,
            locale=formats.locale,
        )
        shown = await preview_of(container, built, formats)
        if built.errors:
            items = "".join(f"<li>{Markup.escape(message)}</li>" for message in built.errors.values())
            body = f'<p class="notice error" role="alert">Not yet: </p><ul class="errors">{items}</ul>'
        elif "preview_error" in shown:
            body = f'<p class="notice error" role="alert">{Markup.escape(shown["preview_error"])}</p>'
        else:
            body = (
                f'<p class="lead">{Markup.escape(shown["description"])}</p>'
                f'<p class="why">{Markup.escape(shown["summary"])}</p>'
                f'<figure class="chart-box">{shown["chart"]}</figure>'
            )
        return Response(body, media_type="text/html")

    async def _changeable(self, request: Request[Any, Any, Any], slug: str) -> SavedReport:
        staff = staff_of(request)
        report = await saved_report(container_of(request).database, staff.id, slug)
        if not may_change(report, staff.id, manages=staff.may(Role.MANAGER)):
            raise PermissionDeniedException(
                "Only the report's owner (or a manager, for shared reports) can change it; duplicate it to "
                "make your own."
            )
        return report

    @get("/analytics/reports/{slug:str}/edit", name="edit_report", guards=[requires_role(Role.AGENT)])
    async def edit(self, request: Request[Any, Any, Any], slug: FromPath[str]) -> Template:
        report = await self._changeable(request, slug)
        form = form_from_definition(
            report.name, report.definition, shared=report.shared, locale=Formats.of(request).locale
        )
        return await self._builder(request, form, report=report, error=unshown(report.definition))

    @post(
        "/analytics/reports/{slug:str}/edit",
        name="update_report",
        guards=[requires_role(Role.AGENT)],
        status_code=303,
    )
    async def update(self, request: Request[Any, Any, Any], slug: FromPath[str]) -> Redirect | Template:
        report = await self._changeable(request, slug)
        raw = await request.form()
        form = form_of(raw)
        lossy = unshown(report.definition)
        if lossy is not None:
            return await self._builder(request, form, report=report, error=lossy, status_code=422)
        container, formats, staff = container_of(request), Formats.of(request), staff_of(request)
        built = build(
            form,
            names=await dimension_names(container.database),
            now=utc_now(),
            business_tz=formats.timezone,
            locale=formats.locale,
        )
        if raw.get("action") == "preview" or built.definition is None:
            return await self._builder(
                request, form, report=report, built=built, status_code=200 if built.definition else 422
            )
        try:
            await update_report(
                container.database,
                Saver(staff.id, staff.email, "web"),
                report,
                form["name"],
                built.definition,
                shared=form["shared"] == "on",
            )
        except ReportLibraryError as error:
            if not isinstance(error, SchedulesWouldStop):  # a name taken: said beside the name too
                built.errors["name"] = str(error)
            return await self._builder(
                request, form, report=report, built=built, error=str(error), status_code=422
            )
        return after_change(request, f"/analytics/reports/{report.slug}", changed="1")

    @post(
        "/analytics/reports/{slug:str}/duplicate",
        name="duplicate_report",
        guards=[requires_role(Role.AGENT)],
        status_code=303,
    )
    async def duplicate(self, request: Request[Any, Any, Any], slug: FromPath[str]) -> Redirect | Template:
        """A private copy, owned by whoever duplicates it, opened in the builder."""
        container, staff = container_of(request), staff_of(request)
        report = await saved_report(container.database, staff.id, slug)
        name = await free_copy_name(container.database, report.name)
        try:
            copy = await save_report(
                container.database, Saver(staff.id, staff.email, "web"), name, report.definition, shared=False
            )
        except (ReportLibraryError, ReportDefinitionError) as error:
            return Template("problem.html", context={"staff": staff, "detail": str(error)}, status_code=422)
        return Redirect(f"/analytics/reports/{copy.slug}/edit", status_code=303)

    @post(
        "/analytics/reports/{slug:str}/delete",
        name="delete_report",
        guards=[requires_role(Role.AGENT)],
        status_code=303,
    )
    async def delete(self, request: Request[Any, Any, Any], slug: FromPath[str]) -> Redirect:
        report = await self._changeable(request, slug)
        staff = staff_of(request)
        database = container_of(request).database
        if not staff.may(Role.MANAGER) and await schedules_of_reports(database, [report.id]):
            raise PermissionDeniedException(
                "This report is delivered on a schedule; only a manager can delete it (and its schedules)."
            )
        await delete_report(container_of(request).database, Saver(staff.id, staff.email, "web"), report)
        return after_change(request, "/analytics/reports", deleted=report.slug)
