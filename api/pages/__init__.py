"""The dashboard's pages: signing in, the home and section index pages, and every communication and analytics page."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.response import Template

from api.pages.analytics import AnalyticsPages
from api.pages.campaign_wizard import CampaignWizardPages
from api.pages.campaigns import CampaignPages
from api.pages.canned_replies import CannedReplyPages
from api.pages.channels import ChannelPages
from api.pages.chat import ChatPages
from api.pages.common import SECTIONS, StaffPages, page
from api.pages.customer_import import CustomerImportPages
from api.pages.customers import CustomerPages
from api.pages.login import LoginPages
from api.pages.messages import MessagePages
from api.pages.notification_rules import NotificationRulePages
from api.pages.report_builder import ReportBuilderPages
from api.pages.reports import ReportPages
from api.pages.services import ServicePages
from api.pages.sla_policies import SlaPolicyPages
from api.pages.template_editor import TemplateEditorPages
from api.pages.video import VideoPages
from api.pages.video_booking import VideoBookingPages
from api.pages.widget_keys import WidgetKeyPages


class SectionPages(StaffPages):
    @get("/", name="home")
    async def home(self, request: Request[Any, Any, Any]) -> Template:
        return page(request, "home.html", None, sections=SECTIONS)

    @get("/communication/", name="communication")
    async def communication(self, request: Request[Any, Any, Any]) -> Template:
        return page(request, "section.html", "communication")

    @get("/analytics/", name="analytics")
    async def analytics(self, request: Request[Any, Any, Any]) -> Template:
        return page(request, "section.html", "analytics")


PAGE_CONTROLLERS = [
    LoginPages,
    SectionPages,
    TemplateEditorPages,
    MessagePages,
    NotificationRulePages,
    CampaignWizardPages,
    CampaignPages,
    CustomerImportPages,
    CustomerPages,
    ChannelPages,
    ChatPages,
    CannedReplyPages,
    WidgetKeyPages,
    SlaPolicyPages,
    AnalyticsPages,
    ReportBuilderPages,
    ReportPages,
    VideoPages,
    VideoBookingPages,
    ServicePages,
]

__all__ = ["PAGE_CONTROLLERS", "SECTIONS"]
