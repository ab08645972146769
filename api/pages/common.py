"""What every dashboard page shares: the section map, the signed-in guard, formatting and inline SVG charts."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_skeleton, format_time
from litestar import Controller, Request, Response
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.response import Template
from markupsafe import Markup

from api.auth import NotSignedIn, SignedInStaff, redirect_to_login, require_staff
from api.pages.notices import spent
from domain.clock import utc_now as utc_now  # the pages' one clock
from reports.charts.cache import draw
from reports.charts.formatting import MISSING_VALUE, format_duration, format_value
from reports.charts.spec import ChartSpec, Unit
from reports.exports import SheetRows, as_csv, as_xlsx, sheet_csv, sheet_xlsx
from reports.periods import PeriodSpec
from storage.database import Database
from storage.queries.channels import provider_currencies as stored_provider_currencies
from switchboard.settings import Settings
from switchboard.wiring import Container


def whole_number(text: str | None, largest: int = 2**63 - 1) -> int | None:
    """`text` as a whole number written in 0-9, or None. Not `str.isdigit`: Python calls "²" and "٣" digits
    too, and int() refuses the first, so a page that trusted it answered 500."""
    text = (text or "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    return int(text) if int(text) <= largest else None


@dataclass(frozen=True)
class SubPage:
    slug: str
    title: str
    description: str


COMMUNICATION_PAGES = (
    SubPage(
        "messages", "Messages", "Every message in and out, with its delivery status and the reason behind it."
    ),
    SubPage(
        "templates",
        "Templates",
        "Message templates per channel and locale, with live preview, and the automated notifications.",
    ),
    SubPage("campaigns", "Campaigns", "Bulk campaigns: audience, preview, launch, pause and live progress."),
    SubPage(
        "customers",
        "Customers",
        "Find a customer: their consent and preferences, messages, conversations, appointments and orders.",
    ),
    SubPage("sms", "SMS", "Twilio SMS traffic, segments, cost and carrier errors."),
    SubPage("email", "Email", "Email sends, bounces and one-click unsubscribes."),
    SubPage("whatsapp", "WhatsApp", "WhatsApp Cloud API messages, templates and the 24-hour window."),
    SubPage("telegram", "Telegram", "Telegram Bot API messages: delivery, failures and cost."),
    SubPage("chat", "Live chat", "Open conversations and response times."),
    SubPage(
        "video",
        "Video consultations",
        "Each day's and week's video consultations per clinician: status, reminders, joins and no-shows.",
    ),
    SubPage(
        "analytics",
        "Communication analytics",
        "Sent, delivered, read, failed, replied and opted out per day.",
    ),
)

ANALYTICS_PAGES = (
    SubPage("executive", "Executive", "Revenue, orders, customers and the headline KPIs against target."),
    SubPage("financial", "Financial", "Revenue net of refunds, average order value, cost of communication."),
    SubPage("operational", "Operational", "Appointments, no-shows, video consultations and chat handling."),
    SubPage("customer", "Customer", "New, active and returning customers, retention by cohort, churn."),
    SubPage("reports", "Reports", "Saved custom reports, CSV export and scheduled deliveries."),
    SubPage(
        "performance",
        "Performance",
        "Background jobs' heartbeats, queue depth, send rate, provider errors and latency, webhook lag.",
    ),
)

SECTIONS = {
    "communication": ("Communication", COMMUNICATION_PAGES),
    "analytics": ("Analytics", ANALYTICS_PAGES),
}

#: The periods the analytics pages offer, in the order the selector shows them.
PERIODS: dict[str, tuple[str, PeriodSpec]] = {
    "last_7_days": ("Last 7 days", PeriodSpec.last_n_days(7)),
    "last_30_days": ("Last 30 days", PeriodSpec.last_n_days(30)),
    "last_90_days": ("Last 90 days", PeriodSpec.last_n_days(90)),
    "this_month": ("This month", PeriodSpec("this_month")),
    "last_month": ("Last month", PeriodSpec("last_month")),
}
DEFAULT_PERIOD = "last_30_days"


def period_key(requested: str | None, fallback: str = DEFAULT_PERIOD) -> str:
    return requested if requested in PERIODS else fallback


def forbidden_page(request: Request[Any, Any, Any], error: PermissionDeniedException) -> Template:
    staff = getattr(request.state, "staff", None)
    return Template("problem.html", context={"staff": staff, "detail": error.detail}, status_code=403)


def not_found_page(request: Request[Any, Any, Any], error: NotFoundException) -> Template:
    staff = getattr(request.state, "staff", None)
    return Template("problem.html", context={"staff": staff, "detail": error.detail}, status_code=404)


class StaffPages(Controller):
    """Base of every dashboard controller: signed-in staff only; others go to the sign-in page."""

    guards = [require_staff]
    exception_handlers = {
        NotSignedIn: redirect_to_login,
        PermissionDeniedException: forbidden_page,
        NotFoundException: not_found_page,
    }


def container_of(request: Request[Any, Any, Any]) -> Container:
    container: Container = request.app.state.container
    return container


def now_of(request: Request[Any, Any, Any]) -> datetime:
    """The page's "now": the container's clock (the real one, unless a test fixed it)."""
    return container_of(request).clock()


def staff_of(request: Request[Any, Any, Any]) -> SignedInStaff:
    staff: SignedInStaff = request.state.staff
    return staff


def page(
    request: Request[Any, Any, Any],
    template: str,
    section: str | None,
    slug: str | None = None,
    **context: Any,
) -> Template:
    """A dashboard page with the header's staff, the section navigation and the page's own context."""
    settings: Settings = request.app.state.settings
    title, pages = SECTIONS[section] if section else ("", ())
    found = next((p for p in pages if p.slug == slug), None)
    return Template(
        template,
        cookies=spent(request),  # what a change said here is said once
        context={
            "staff": staff_of(request),
            "business_name": settings.business_name,
            "section": section,
            "section_title": title,
            "pages": pages,
            "page": found,
            **context,
        },
    )


@dataclass(frozen=True)
class Formats:
    """Figures and moments as the business reads them: its timezone, locale and currency."""

    timezone: str
    locale: str
    currency: str
    #: The business's name; answers leave its first word out of its clinics' names.
    business_name: str = ""

    @classmethod
    def of(cls, request: Request[Any, Any, Any]) -> Formats:
        settings: Settings = request.app.state.settings
        return cls(
            settings.business_timezone,
            settings.business_locale,
            settings.business_currency,
            settings.business_name,
        )

    def moment(self, value: datetime | None) -> str:
        if value is None:
            return MISSING_VALUE
        local = value.astimezone(ZoneInfo(self.timezone))
        day = format_skeleton("yMMMd", local, locale=self.locale)
        clock = format_time(local, "short", locale=self.locale)
        return str(Locale.parse(self.locale).datetime_formats["medium"]).format(clock, day)

    def as_of(self) -> str:
        """The footnote's freshness for a download: "as of 2026-12-03 10:15 (Europe/Berlin)"."""
        return f"as of {utc_now().astimezone(ZoneInfo(self.timezone)):%Y-%m-%d %H:%M} ({self.timezone})"

    def day(self, value: date) -> str:
        return str(format_skeleton("yMMMd", value, locale=self.locale))

    def value(self, value: float | None, unit: Unit, currency: str | None = None) -> str:
        return format_value(value, unit, locale=self.locale, currency=currency or self.currency)

    def count(self, value: float | None) -> str:
        return self.value(value, "count")

    def money_micros(self, micros: int | None, currency: str | None = None) -> str:
        return self.value(None if micros is None else micros / 1_000_000, "currency", currency)

    def percent(self, ratio: float | None) -> str:
        return self.value(ratio, "percent")

    def duration(self, seconds: float | None) -> str:
        return MISSING_VALUE if seconds is None else format_duration(seconds)


#: What providers charge in when a channel names no currency (Twilio and Meta quote US dollars).
DEFAULT_PROVIDER_CURRENCY = "USD"


def cost_label(currency: str, what: str = "Cost") -> str:
    """Message costs are what providers charge, in their own currency, never converted: the label says so."""
    return f"{what} (provider, {currency})"


async def provider_currencies(database: Database) -> dict[str, str]:
    """Each channel's provider currency, from communication_channels."""
    stored = await stored_provider_currencies(database)
    return {channel: currency or DEFAULT_PROVIDER_CURRENCY for channel, currency in stored.items()}


def own_ids(svg: str) -> str:
    """The SVG with its ids (matplotlib's `figure_1`, `axes_1`, clip paths) and the references to them
    prefixed by a digest of the chart, so several charts inline on one page never share an id."""
    prefix = f"c{hashlib.blake2s(svg.encode(), digest_size=4).hexdigest()}-"

    def in_tag(tag: re.Match[str]) -> str:  # only markup: a label's text that reads `id="x"` stays as typed
        named = _SVG_ID.sub(lambda m: f'{m.group(1)}="{prefix}{m.group(2)}"', tag.group(0))
        return _SVG_REFERENCE.sub(lambda m: f"{m.group(1)}{prefix}{m.group(2)}", named)

    return _SVG_TAG.sub(in_tag, svg)


_SVG_TAG = re.compile(r"<[^>]+>")
_SVG_ID = re.compile(r'(?<=\s)(id)="([^"]+)"')
_SVG_REFERENCE = re.compile(r'(url\(#|href="#)([^)"]+)')


async def chart_svg(container: Container, spec: ChartSpec) -> Markup:
    """The chart as inline SVG (drawn off the event loop, cached per spec and data time).

    It is the same spec the bots render to PNG, so a dashboard chart and a bot image always agree.
    """
    svg = await draw(spec, "svg", spec.data_as_of.isoformat(), container.chart_cache)
    body = own_ids(svg[svg.index("<svg") :])
    label = (spec.summary or spec.title).replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    kind = f"chart chart-{spec.kind}"  # "chart-line", "chart-bar": for styles that differ by kind
    return Markup(body.replace("<svg ", f'<svg role="img" aria-label="{label}" class="{kind}" ', 1))  # noqa: S704


async def chart_download(container: Container, spec: ChartSpec, ext: str, stem: str) -> Response[bytes]:
    """A chart's figures as shown (CSV, XLSX) or the chart itself (PNG, SVG), as a download."""
    if ext == "csv":
        body, media = as_csv(spec), "text/csv"  # Litestar adds "; charset=utf-8"
    elif ext == "xlsx":
        body, media = as_xlsx(spec), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    elif ext == "png":
        body, media = await draw(spec, "png", spec.data_as_of.isoformat(), container.chart_cache), "image/png"
    else:
        svg = await draw(spec, "svg", spec.data_as_of.isoformat(), container.chart_cache)
        body, media = svg.encode(), "image/svg+xml"
    return Response(
        body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{stem}.{ext}"'}
    )


#: What a chart downloads as: its figures as shown, or the picture.
EXPORT_KINDS = ("csv", "xlsx", "png", "svg")


#: Table downloads: file extension, and the media type it is sent as.
TABLE_FILES = {
    "csv": "text/csv",  # Litestar adds "; charset=utf-8" to a text type
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def table_download(sheet: SheetRows, ext: str, stem: str) -> Response[bytes]:
    """A page's table as a CSV or XLSX download (reports.exports writes both from the same rows)."""
    body = sheet_csv(sheet) if ext == "csv" else sheet_xlsx(sheet)
    return Response(
        body,
        media_type=TABLE_FILES[ext],
        headers={"Content-Disposition": f'attachment; filename="{stem}.{ext}"'},
    )
