"""Per-channel pages (SMS, email, WhatsApp, Telegram) and communication analytics, read from communication_analytics.

The SMS page adds segments and encodings, the WhatsApp page its approved templates and whose 24-hour
window is open. Costs are what the providers charge, in their currency, and labelled so.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.response import Template

from api.pages.common import (
    DEFAULT_PROVIDER_CURRENCY,
    EXPORT_KINDS,
    Formats,
    StaffPages,
    chart_download,
    chart_svg,
    container_of,
    cost_label,
    page,
    provider_currencies,
    table_download,
    utc_now,
)
from domain.messages.words import channel_words, failure_words, status_words
from domain.vocabulary import READ_REPORTED
from reports.answer import standing_alone
from reports.charts.spec import ChartSpec, Series
from reports.exports import SheetRows
from reports.heartbeats import in_words
from storage.database import Database
from storage.queries.channels import (
    FIGURES,
    EncodingFigures,
    daily_figures,
    open_whatsapp_windows,
    sms_segments,
    whatsapp_templates,
)
from storage.queries.channels import channel_currency as stored_channel_currency
from storage.queries.channels import latest_failures as stored_failures

DAYS = 30
#: What a page shows for "read" on a channel whose provider never says (domain.vocabulary.READ_REPORTED), and why.
NOT_REPORTED = "—"
READ_NOT_REPORTED = {
    "sms": "Read: —, since phone networks do not tell the sender when a text is read.",
    "email": "Read: —, since email opens are not tracked (no tracking pixel in the emails).",
    "telegram": "Read: —, since Telegram does not tell a bot when its message is read.",
}
#: How many open WhatsApp windows the page lists (the soonest to close).
WINDOWS_SHOWN = 20
ENCODING_NAMES = {
    "GSM-7": "GSM-7 (up to 160 characters in one segment)",
    "UCS-2": "UCS-2, for characters GSM-7 lacks (up to 70 in one segment)",
}
CHANNEL_PAGES = {"sms": "SMS", "email": "Email", "whatsapp": "WhatsApp", "telegram": "Telegram"}


def last_days(now: datetime, tz: str, days: int = DAYS) -> list[date]:
    today = now.astimezone(ZoneInfo(tz)).date()
    return [today - timedelta(days=back) for back in range(days - 1, -1, -1)]


def _line_chart(
    title: str, days: list[date], series: dict[str, list[float | None]], unit: Any, formats: Formats
) -> ChartSpec:
    return ChartSpec(
        kind="line",
        title=title,
        period_label=f"Last {len(days)} days, today so far included",
        data_as_of=utc_now(),
        unit=unit,
        locale=formats.locale,
        timezone=formats.timezone,
        series=tuple(Series(name, tuple(values)) for name, values in series.items()),
        x_dates=tuple(days),
    )


async def latest_failures(database: Database, channel: str, formats: Formats) -> list[dict[str, Any]]:
    return [
        {
            "id": m.id,
            "when": formats.moment(m.at),
            "customer": m.customer or "—",
            "status": m.status,
            "status_label": status_words(m.status),
            "error_code": m.error_code or "—",
            "reason": failure_words(m.status_reason or ""),
        }
        for m in await stored_failures(database, channel)
    ]


async def channel_currency(database: Database, channel: str) -> str:
    """The currency the channel's provider charges in (communication_channels.currency)."""
    return await stored_channel_currency(database, channel) or DEFAULT_PROVIDER_CURRENCY


def channel_chart(channel: str, days: list[date], rows: dict[date, Any], formats: Formats) -> ChartSpec:
    """Sent, delivered and failed per day: the channel page's chart (and its download)."""
    # Counts: the daily figures are written with every send, so a day without a row sent nothing (a real 0).
    series: dict[str, list[float | None]] = {
        name.capitalize(): [float(rows[d].figures[name]) if d in rows else 0.0 for d in days]
        for name in ("sent", "delivered", "failed")
    }
    return _line_chart(f"{CHANNEL_PAGES[channel]} messages per day", days, series, "count", formats)


async def channel_page_data(request: Request[Any, Any, Any], channel: str) -> dict[str, Any]:
    container, formats = container_of(request), Formats.of(request)
    days = last_days(utc_now(), formats.timezone)
    rows = {r.day: r for r in await daily_figures(container.database, days[0], channel)}
    currency = await channel_currency(container.database, channel)
    totals = {name: sum(r.figures[name] for r in rows.values()) for name in FIGURES}
    cost = sum(r.cost_micros for r in rows.values())
    tiles = [
        (
            name.replace("_", " ").capitalize(),
            NOT_REPORTED if name == "read" and channel not in READ_REPORTED else formats.count(totals[name]),
        )
        for name in FIGURES
    ]
    tiles.append((cost_label(currency), formats.money_micros(cost, currency)))
    chart = channel_chart(channel, days, rows, formats)
    return {
        "tiles": tiles,
        "read_note": READ_NOT_REPORTED.get(channel, ""),
        "chart": await chart_svg(container, chart),
        "failures": await latest_failures(container.database, channel, formats),
        "channel": channel,
        "days": len(days),
        # Today so far is in: this page follows the day's sending (as Communication analytics does; the
        # analytics dashboards' "last 30 days" are whole days, ending yesterday).
        "days_window": f"{formats.day(days[0])} – {formats.day(days[-1])}, today so far included",
    }


def segment_data(figures: list[EncodingFigures], formats: Formats) -> dict[str, Any]:
    messages = sum(f.messages for f in figures)
    segments = sum(f.segments for f in figures)
    longer = sum(f.longer_than_one for f in figures)
    return {
        "tiles": [
            ("Segments billed", formats.count(segments)),
            (
                "Segments per message",
                formats.value(round(segments / messages, 2), "number") if messages else "—",
            ),
            ("Longer than one segment", formats.percent(longer / messages if messages else None)),
        ],
        "encodings": [
            {
                "encoding": ENCODING_NAMES.get(f.encoding, f.encoding),
                "messages": formats.count(f.messages),
                "segments": formats.count(f.segments),
                "per_message": formats.value(round(f.segments / f.messages, 2), "number")
                if f.messages
                else "—",
                "longer": formats.count(f.longer_than_one),
            }
            for f in figures
        ],
    }


async def whatsapp_window_data(request: Request[Any, Any, Any], now: datetime) -> dict[str, Any]:
    container, formats = container_of(request), Formats.of(request)
    window = container.consent_policy().whatsapp_window
    windows = await open_whatsapp_windows(container.database, now, window)
    return {
        "window_hours": round(window.total_seconds() / 3600),
        "open_count": formats.count(len(windows)),
        "open": [
            {
                "customer_id": customer_id,
                "customer": name,
                "closes": formats.moment(closes),
                "left": in_words((closes - now).total_seconds()),
            }
            for customer_id, name, closes in windows[:WINDOWS_SHOWN]
        ],
        "more": max(0, len(windows) - WINDOWS_SHOWN),
    }


def delivery_rate_chart(days: list[date], rows: list[Any], formats: Formats) -> ChartSpec | None:
    """Each channel's delivery rate per day (None: nothing was sent in these days)."""
    rates: dict[str, dict[date, float | None]] = defaultdict(dict)
    for row in rows:
        rates[row.channel][row.day] = row.delivery_rate
    series = {
        standing_alone(channel_words(channel)): [by_day.get(d) for d in days]
        for channel, by_day in sorted(rates.items())
    }
    return _line_chart("Delivery rate by channel", days, series, "percent", formats) if series else None


async def communication_analytics_data(request: Request[Any, Any, Any]) -> dict[str, Any]:
    container, formats = container_of(request), Formats.of(request)
    days = last_days(utc_now(), formats.timezone)
    rows = await daily_figures(container.database, days[0])
    currencies = await provider_currencies(container.database)
    today = days[-1]
    table = [
        {
            "day": formats.day(r.day) + (" (so far)" if r.day == today else ""),
            "channel": channel_words(r.channel),
            **{name: formats.count(value) for name, value in r.figures.items()},
            **({} if r.channel in READ_REPORTED else {"read": NOT_REPORTED}),
            "rate": formats.percent(r.delivery_rate),
            "cost": formats.money_micros(r.cost_micros, currencies.get(r.channel, DEFAULT_PROVIDER_CURRENCY)),
        }
        for r in rows
    ]
    spec = delivery_rate_chart(days, rows, formats)
    chart = await chart_svg(container, spec) if spec is not None else None
    shown = sorted({currencies.get(r.channel, DEFAULT_PROVIDER_CURRENCY) for r in rows})
    return {
        "table": table,
        "chart": chart,
        "days_window": f"{formats.day(days[0])} – {formats.day(days[-1])}, today so far included",
        "cost_label": cost_label(", ".join(shown) or DEFAULT_PROVIDER_CURRENCY),
    }


async def communication_analytics_sheet(request: Request[Any, Any, Any]) -> SheetRows:
    """The daily figures per channel as the page's table shows them, as numbers, cost in each provider's
    currency (named on every row, since providers may charge in different ones)."""
    container, formats = container_of(request), Formats.of(request)
    days = last_days(utc_now(), formats.timezone)
    currencies = await provider_currencies(container.database)
    rows = tuple(
        (
            r.day.isoformat(),
            r.channel,
            *(
                None if name == "read" and r.channel not in READ_REPORTED else r.figures[name]
                for name in FIGURES
            ),
            round(r.delivery_rate * 100, 2) if r.delivery_rate is not None else None,
            r.cost_micros / 1_000_000,
            currencies.get(r.channel) or DEFAULT_PROVIDER_CURRENCY,
        )
        for r in await daily_figures(container.database, days[0])
    )
    return SheetRows(
        "Communication analytics",
        (
            f"Day ({formats.timezone})",
            "Channel",
            *(name.replace("_", " ").capitalize() for name in FIGURES),
            "Delivery rate (%)",
            "Cost",
            "Currency",
        ),
        rows,
        f"Last {len(days)} days by the day each message was sent; {formats.as_of()}.",
    )


#: The most failures one download holds (the latest); the message log narrows further.
FAILURES_EXPORTED = 10_000


async def failures_sheet(request: Request[Any, Any, Any], channel: str) -> SheetRows:
    """The channel's failed, undelivered and given-up messages, latest first, as the page's table lists them."""
    container, formats = container_of(request), Formats.of(request)
    zone = ZoneInfo(formats.timezone)
    failed = await stored_failures(container.database, channel, FAILURES_EXPORTED)
    return SheetRows(
        f"{CHANNEL_PAGES[channel]} failures",
        (f"When ({formats.timezone})", "Message", "Customer", "Status", "Error code", "Reason"),
        tuple(
            (
                f"{m.at.astimezone(zone):%Y-%m-%d %H:%M:%S}",
                m.id,
                m.customer or "",
                m.status,
                m.error_code or "",
                failure_words(m.status_reason or ""),
            )
            for m in failed
        ),
        f"The latest {len(failed):,} {CHANNEL_PAGES[channel]} messages that failed, went undelivered or were "
        f"given up (at most {FAILURES_EXPORTED:,}); times in {formats.timezone}; {formats.as_of()}.",
    )


class ChannelPages(StaffPages):
    @get("/communication/sms", name="sms")
    async def sms(self, request: Request[Any, Any, Any]) -> Template:
        formats = Formats.of(request)
        data = await channel_page_data(request, "sms")
        first_day = last_days(utc_now(), formats.timezone)[0]
        data["segments"] = segment_data(
            await sms_segments(container_of(request).database, first_day), formats
        )
        return page(request, "communication/channel.html", "communication", "sms", **data)

    @get("/communication/email", name="email")
    async def email(self, request: Request[Any, Any, Any]) -> Template:
        data = await channel_page_data(request, "email")
        return page(request, "communication/channel.html", "communication", "email", **data)

    @get("/communication/whatsapp", name="whatsapp")
    async def whatsapp(self, request: Request[Any, Any, Any]) -> Template:
        formats, now = Formats.of(request), utc_now()
        data = await channel_page_data(request, "whatsapp")
        first_day = last_days(now, formats.timezone)[0]
        data["templates"] = [
            asdict(t) for t in await whatsapp_templates(container_of(request).database, first_day)
        ]
        data["window"] = await whatsapp_window_data(request, now)
        return page(request, "communication/channel.html", "communication", "whatsapp", **data)

    @get("/communication/telegram", name="telegram")
    async def telegram(self, request: Request[Any, Any, Any]) -> Template:
        data = await channel_page_data(request, "telegram")
        return page(request, "communication/channel.html", "communication", "telegram", **data)

    @get(
        [f"/communication/{channel}/failures.{ext}" for channel in CHANNEL_PAGES for ext in ("csv", "xlsx")],
        name="channel_failures_export",
    )
    async def failures_export(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        _, channel, file = request.url.path.rsplit("/", 2)
        sheet = await failures_sheet(request, channel)
        return table_download(sheet, file.rpartition(".")[2], f"{channel}-failures")

    @get(
        [f"/communication/{channel}/chart.{ext}" for channel in CHANNEL_PAGES for ext in EXPORT_KINDS],
        name="channel_chart_export",
    )
    async def chart_export(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        """A channel page's chart: its figures as shown (CSV, XLSX) or the picture (PNG, SVG)."""
        _, channel, file = request.url.path.rsplit("/", 2)
        container, formats = container_of(request), Formats.of(request)
        days = last_days(utc_now(), formats.timezone)
        rows = {r.day: r for r in await daily_figures(container.database, days[0], channel)}
        spec = channel_chart(channel, days, rows, formats)
        return await chart_download(container, spec, file.rpartition(".")[2], f"{channel}-messages-per-day")

    @get(
        [f"/communication/analytics/chart.{ext}" for ext in EXPORT_KINDS],
        name="delivery_rate_chart_export",
    )
    async def delivery_rate_export(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        container, formats = container_of(request), Formats.of(request)
        days = last_days(utc_now(), formats.timezone)
        spec = delivery_rate_chart(days, await daily_figures(container.database, days[0]), formats)
        if spec is None:
            raise NotFoundException("Nothing was sent in these days, so there is no chart to download.")
        return await chart_download(container, spec, request.url.path.rpartition(".")[2], "delivery-rate")

    @get(
        ["/communication/analytics.csv", "/communication/analytics.xlsx"],
        name="communication_analytics_export",
    )
    async def analytics_export(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        sheet = await communication_analytics_sheet(request)
        return table_download(sheet, request.url.path.rpartition(".")[2], "communication-analytics")

    @get("/communication/analytics", name="communication_analytics")
    async def analytics(self, request: Request[Any, Any, Any]) -> Template:
        data = await communication_analytics_data(request)
        return page(request, "communication/analytics.html", "communication", "analytics", **data)
