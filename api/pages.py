"""The dashboard's page routes: the section index pages and their sub-pages."""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Controller, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Template


@dataclass(frozen=True)
class SubPage:
    slug: str
    title: str
    description: str


COMMUNICATION_PAGES = (
    SubPage(
        "messages", "Messages", "Every message in and out, with its delivery status and the reason behind it."
    ),
    SubPage("templates", "Templates", "Message templates per channel and locale, with live preview."),
    SubPage("campaigns", "Campaigns", "Bulk campaigns: audience, preview, launch, pause and live progress."),
    SubPage("sms", "SMS", "Twilio SMS traffic, segments, cost and carrier errors."),
    SubPage("email", "Email", "Email sends, bounces and one-click unsubscribes."),
    SubPage("whatsapp", "WhatsApp", "WhatsApp Cloud API messages, templates and the 24-hour window."),
    SubPage("chat", "Live chat", "Open conversations, response times and satisfaction."),
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
        "performance", "Performance", "Queue depth, send rate, provider latency and errors, webhook lag."
    ),
)

SECTIONS = {
    "communication": ("Communication", COMMUNICATION_PAGES),
    "analytics": ("Analytics", ANALYTICS_PAGES),
}


def _section_context(section: str) -> dict[str, object]:
    title, pages = SECTIONS[section]
    return {"section": section, "section_title": title, "pages": pages}


class DashboardPages(Controller):
    @get("/", name="home")
    async def home(self) -> Template:
        return Template("home.html", context={"sections": SECTIONS})

    @get("/communication/", name="communication")
    async def communication(self) -> Template:
        return Template("section.html", context=_section_context("communication"))

    @get("/analytics/", name="analytics")
    async def analytics(self) -> Template:
        return Template("section.html", context=_section_context("analytics"))

    @get("/{section:str}/{page:str}/", name="subpage")
    async def subpage(self, section: FromPath[str], page: FromPath[str]) -> Template:
        if section not in SECTIONS:
            raise NotFoundException(f"no dashboard section {section!r}")
        found = next((p for p in SECTIONS[section][1] if p.slug == page), None)
        if found is None:
            raise NotFoundException(f"no page {page!r} in {section}")
        return Template("subpage.html", context={**_section_context(section), "page": found})
