"""Per-channel pages (SMS, email, WhatsApp) and communication analytics, read from communication_analytics."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Request, get
from litestar.response import Template
from sqlalchemy import func, select

from api.pages.common import Formats, StaffPages, chart_svg, container_of, page, utc_now
from reports.charts.spec import ChartSpec, Series
from storage.database import Database
from storage.models import CommunicationAnalytics, CommunicationChannel, Customer, CustomerCommunication

DAYS = 30
FIGURES = ("sent", "delivered", "read", "failed", "replied", "opted_out")
FAILED_STATUSES = ("failed", "undelivered", "dead")
CHANNEL_PAGES = {"sms": "SMS", "email": "Email", "whatsapp": "WhatsApp"}
CA = CommunicationAnalytics


@dataclass
class DayFigures:
    day: date
    channel: str
    figures: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIGURES, 0))
    cost_micros: int = 0

    @property
    def delivery_rate(self) -> float | None:
        sent = self.figures["sent"]
        return self.figures["delivered"] / sent if sent else None


def last_days(now: datetime, tz: str, days: int = DAYS) -> list[date]:
    today = now.astimezone(ZoneInfo(tz)).date()
    return [today - timedelta(days=back) for back in range(days - 1, -1, -1)]


async def daily_figures(database: Database, first_day: date, channel: str | None = None) -> list[DayFigures]:
    """Sums per day and channel (over providers, campaigns and templates) since `first_day`."""
    query = (
        select(
            CA.day,
            CA.channel,
            *(func.sum(getattr(CA, name)).label(name) for name in FIGURES),
            func.sum(CA.cost_micros).label("cost_micros"),
        )
        .where(CA.day >= first_day)
        .group_by(CA.day, CA.channel)
        .order_by(CA.day.desc(), CA.channel)
    )
    if channel is not None:
        query = query.where(CA.channel == channel)
    async with database.read_sessions() as session:
        rows = (await session.execute(query)).all()
    return [
        DayFigures(
            r.day, r.channel, {name: int(getattr(r, name) or 0) for name in FIGURES}, int(r.cost_micros or 0)
        )
        for r in rows
    ]


def _line_chart(
    title: str, days: list[date], series: dict[str, list[float | None]], unit: Any, formats: Formats
) -> ChartSpec:
    return ChartSpec(
        kind="line",
        title=title,
        period_label=f"Last {len(days)} days",
        data_as_of=utc_now(),
        unit=unit,
        locale=formats.locale,
        timezone=formats.timezone,
        series=tuple(Series(name, tuple(values)) for name, values in series.items()),
        x_dates=tuple(days),
    )


async def latest_failures(database: Database, channel: str, formats: Formats) -> list[dict[str, Any]]:
    cc = CustomerCommunication
    async with database.read_sessions() as session:
        rows = (
            await session.execute(
                select(cc, Customer.name)
                .outerjoin(Customer, Customer.id == cc.customer_id)
                .where(cc.channel == channel, cc.status.in_(FAILED_STATUSES))
                .order_by(cc.id.desc())
                .limit(20)
            )
        ).all()
    return [
        {
            "id": m.id,
            "when": formats.moment(m.failed_at or m.created_at),
            "customer": name or "—",
            "status": m.status,
            "error_code": m.error_code or "—",
            "reason": (m.status_reason or "").replace("_", " "),
        }
        for m, name in rows
    ]


async def channel_page_data(request: Request[Any, Any, Any], channel: str) -> dict[str, Any]:
    container, formats = container_of(request), Formats.of(request)
    days = last_days(utc_now(), formats.timezone)
    rows = {r.day: r for r in await daily_figures(container.database, days[0], channel)}
    async with container.database.read_sessions() as session:
        currency = await session.scalar(
            select(CommunicationChannel.currency).where(CommunicationChannel.channel == channel)
        )
    totals = {name: sum(r.figures[name] for r in rows.values()) for name in FIGURES}
    cost = sum(r.cost_micros for r in rows.values())
    tiles = [(name.replace("_", " ").capitalize(), formats.count(totals[name])) for name in FIGURES]
    tiles.append(("Cost", formats.money_micros(cost, currency or "USD")))
    series: dict[str, list[float | None]] = {
        name.capitalize(): [float(rows[d].figures[name]) if d in rows else 0.0 for d in days]
        for name in ("sent", "delivered", "failed")
    }
    chart = _line_chart(f"{CHANNEL_PAGES[channel]} messages per day", days, series, "count", formats)
    return {
        "tiles": tiles,
        "chart": await chart_svg(container, chart),
        "failures": await latest_failures(container.database, channel, formats),
        "channel": channel,
    }


async def communication_analytics_data(request: Request[Any, Any, Any]) -> dict[str, Any]:
    container, formats = container_of(request), Formats.of(request)
    days = last_days(utc_now(), formats.timezone)
    rows = await daily_figures(container.database, days[0])
    rates: dict[str, dict[date, float | None]] = defaultdict(dict)
    for row in rows:
        rates[row.channel][row.day] = row.delivery_rate
    series = {channel: [by_day.get(d) for d in days] for channel, by_day in sorted(rates.items())}
    table = [
        {
            "day": formats.day(r.day),
            "channel": r.channel,
            **{name: formats.count(value) for name, value in r.figures.items()},
            "rate": formats.percent(r.delivery_rate),
            "cost": formats.money_micros(r.cost_micros, "USD"),
        }
        for r in rows
    ]
    chart = None
    if series:
        spec = _line_chart("Delivery rate by channel", days, series, "percent", formats)
        chart = await chart_svg(container, spec)
    return {"table": table, "chart": chart}


class ChannelPages(StaffPages):
    @get("/communication/sms", name="sms")
    async def sms(self, request: Request[Any, Any, Any]) -> Template:
        return page(
            request,
            "communication/channel.html",
            "communication",
            "sms",
            **await channel_page_data(request, "sms"),
        )

    @get("/communication/email", name="email")
    async def email(self, request: Request[Any, Any, Any]) -> Template:
        data = await channel_page_data(request, "email")
        return page(request, "communication/channel.html", "communication", "email", **data)

    @get("/communication/whatsapp", name="whatsapp")
    async def whatsapp(self, request: Request[Any, Any, Any]) -> Template:
        data = await channel_page_data(request, "whatsapp")
        return page(request, "communication/channel.html", "communication", "whatsapp", **data)

    @get("/communication/analytics", name="communication_analytics")
    async def analytics(self, request: Request[Any, Any, Any]) -> Template:
        data = await communication_analytics_data(request)
        return page(request, "communication/analytics.html", "communication", "analytics", **data)
