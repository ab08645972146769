"""Campaign pages: the list with progress, one campaign's preview and live progress, and its action buttons."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template

from api.auth import requires_role
from api.pages import notices
from api.pages.common import Formats, StaffPages, container_of, page, staff_of, table_download, utc_now
from api.pages.notices import after_change
from domain.campaigns import use_cases
from domain.campaigns.languages import not_in_their_language, values_words
from domain.campaigns.model import EXCLUSION_WORDS, CampaignError, CampaignPreview, fallbacks_waiting_words
from domain.campaigns.rules import allowed_actions
from domain.messages.words import CHAT_CHANNEL_WORDS
from domain.vocabulary import CampaignStatus, Role
from reports.exports import SheetRows
from storage.database import Database
from storage.queries.campaigns import CampaignOverview, campaign_overview, campaigns_with_progress
from switchboard.wiring import Container

#: Which buttons a campaign in each status offers.
DONE = {
    "created": "Saved as a draft. Check the preview below, then launch it (managers) when it is right.",
    "launch": "Launched: its messages are planned in batches by the worker.",
    "pause": "Paused: nothing more goes out until it is resumed.",
    "resume": "Resumed.",
    "cancel": "Cancelled: every message still planned was dropped; sent ones stay sent.",
}


@dataclass(frozen=True)
class CampaignRow:
    slug: str
    name: str
    status: str
    template: str
    channels: str
    planned: int
    excluded: int
    handed_over: int
    created: str
    #: The moment itself, for downloads (written as a sortable date and time in the business's timezone).
    created_at: datetime


async def campaign_rows(database: Database, formats: Formats) -> list[CampaignRow]:
    campaigns = await campaigns_with_progress(database)
    return [
        CampaignRow(
            c.slug,
            c.name,
            c.status,
            c.template_name,
            ", ".join(CHAT_CHANNEL_WORDS.get(channel, channel) for channel in c.channel_order),
            c.planned_count,
            c.excluded_count,
            handed,
            formats.moment(c.created_at),
            c.created_at,
        )
        for c, handed in campaigns
    ]


async def campaign_by_slug(database: Database, slug: str) -> CampaignOverview:
    found = await campaign_overview(database, slug)
    if found is None:
        raise NotFoundException(f"There is no campaign {slug!r}.")
    return found


async def campaign_detail(container: Container, slug: str, formats: Formats) -> dict[str, Any]:
    campaign = await campaign_by_slug(container.database, slug)
    preview: CampaignPreview | None = None
    # What launching would do, for a campaign not yet launched; a paused one has its plan already (the
    # progress below), and "launching now would send" beside its Resume button promised another run.
    if campaign.status in (CampaignStatus.DRAFT.value, CampaignStatus.SCHEDULED.value):
        preview = await use_cases.preview_campaign(
            container.campaign_uow(read_only=True),
            campaign.id,
            now=utc_now(),
            policy=container.consent_policy(),
        )
    progress = await use_cases.campaign_progress(container.campaign_uow(read_only=True), campaign.id)
    channel_list = ", ".join(CHAT_CHANNEL_WORDS.get(c, c) for c in campaign.channel_order)
    return {
        "campaign": campaign,
        "channels": channel_list,
        "facts": [
            ("Status", campaign.status),
            ("Template", campaign.template_name),
            ("Values", values_words(campaign.variables) or "none"),
            ("Channels", channel_list),
            ("Fallback", fallback_words(campaign)),
            ("Category", campaign.category),
            ("Created", formats.moment(campaign.created_at)),
            ("Scheduled", formats.moment(campaign.scheduled_at)),
            ("Launched", formats.moment(campaign.launched_at)),
            ("Planned / excluded", f"{campaign.planned_count:,} / {campaign.excluded_count:,}"),
        ],
        "preview": preview,
        # A draft with a send time goes out then, launched or not now: the preview says when.
        "sends_at": formats.moment(campaign.scheduled_at) if campaign.scheduled_at else None,
        "preview_cost": formats.money_micros(preview.estimated_cost_micros, preview.currency)
        if preview
        else None,
        "not_in_their_language": not_in_their_language(campaign.template_name, preview.in_another_language)
        if preview
        else [],
        "exclusions": sorted((preview.exclusions if preview else {}).items()),
        "per_channel": [
            (CHAT_CHANNEL_WORDS.get(c.value, c.value), n)
            for c, n in (preview.per_channel if preview else {}).items()
        ],
        "sample_channel": CHAT_CHANNEL_WORDS.get(preview.sample.channel.value, preview.sample.channel.value)
        if preview and preview.sample
        else None,
        "progress": progress.sent_by_stage(),
        "replies": progress.replies,
        "failed": progress.failure_reasons(FAILURE_REASONS_SHOWN),
        # What the list leaves out: reasons past the commonest, with their messages.
        "failed_more": (
            len(progress.failed_by_reason) - FAILURE_REASONS_SHOWN,
            sum(progress.failed_by_reason.values())
            - sum(n for _, n in progress.failure_reasons(FAILURE_REASONS_SHOWN)),
        ),
        "suppressed": sorted(progress.suppressed_by_reason.items()),
        "opted_out": progress.opted_out,
        # Due already (a backlog, a paused campaign): it goes as soon as it can, not "at" a time gone by.
        "next_send": (
            "as soon as the worker gets to it (it is due already)"
            if progress.next_send_at <= utc_now()
            else f"at {formats.moment(progress.next_send_at)}"
        )
        if progress.next_send_at is not None and progress.count("planned")
        else None,
        "fallbacks": fallbacks_waiting_words(progress, utc_now(), formats.moment),
        "cost": " and ".join(
            formats.money_micros(micros, currency)
            for currency, micros in sorted(progress.cost_micros.items())
        ),
        "actions": allowed_actions(campaign.status),
        # Why recipients are left out or held back, as the wizard says it ("opted out of these messages").
        "reason_words": EXCLUSION_WORDS,
    }


#: The commonest reasons messages were not delivered that a campaign's page lists.
FAILURE_REASONS_SHOWN = 8


def fallback_words(campaign: CampaignOverview) -> str:
    """When a message goes on to the next channel, as the wizard put it."""
    if campaign.fallback_after_minutes is None or len(campaign.channel_order) < 2:
        return "none: each customer gets the first channel that reaches them"
    minutes = campaign.fallback_after_minutes
    hours, rest = divmod(minutes, 60)
    within = (
        f"{minutes} minute{'s' if minutes != 1 else ''}"
        if not hours
        else f"{hours} h" + (f" {rest} min" if rest else "")
    )
    words = f"the next channel when a message is not delivered within {within}"
    if "email" in campaign.channel_order[:-1]:
        words += " (an email only when it bounced: a sent email may have arrived)"
    return words


async def act_on_campaign(container: Container, campaign: CampaignOverview, action: str, actor: str) -> None:
    uow = container.campaign_uow()
    if action == "launch":
        await use_cases.launch_campaign(uow, campaign.id, utc_now(), actor=actor, via="web")
    elif action == "pause":
        await use_cases.pause_campaign(uow, campaign.id, actor=actor, via="web")
    elif action == "resume":
        await use_cases.resume_campaign(uow, campaign.id, actor=actor, via="web")
    elif action == "cancel":
        await use_cases.cancel_campaign(uow, campaign.id, actor=actor, via="web")
    else:
        raise NotFoundException(f"Campaigns cannot {action!r}; use launch, pause, resume or cancel.")


async def campaigns_sheet(request: Request[Any, Any, Any]) -> SheetRows:
    """Every campaign as the list shows it, with its counts as numbers."""
    formats = Formats.of(request)
    zone = ZoneInfo(formats.timezone)
    rows = await campaign_rows(container_of(request).database, formats)
    return SheetRows(
        "Campaigns",
        (
            "Campaign",
            "Address",
            "Status",
            "Template",
            "Channels",
            "Planned",
            "Excluded",
            "Handed to providers",
            f"Created ({formats.timezone})",
        ),
        tuple(
            (
                r.name,
                r.slug,
                r.status,
                r.template,
                r.channels,
                r.planned,
                r.excluded,
                r.handed_over,
                f"{r.created_at.astimezone(zone):%Y-%m-%d %H:%M}",
            )
            for r in rows
        ),
        f"Every campaign; {formats.as_of()}.",
    )


class CampaignPages(StaffPages):
    @get(["/communication/campaigns.csv", "/communication/campaigns.xlsx"], name="campaigns_export")
    async def campaigns_export(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        sheet = await campaigns_sheet(request)
        return table_download(sheet, request.url.path.rpartition(".")[2], "campaigns")

    @get("/communication/campaigns", name="campaigns")
    async def campaigns(self, request: Request[Any, Any, Any]) -> Template:
        rows = await campaign_rows(container_of(request).database, Formats.of(request))
        return page(
            request,
            "communication/campaigns.html",
            "communication",
            "campaigns",
            rows=rows,
            may_create=staff_of(request).may(Role.MANAGER),
        )

    @get("/communication/campaigns/{slug:str}", name="campaign")
    async def campaign(self, request: Request[Any, Any, Any], slug: FromPath[str]) -> Template:
        detail = await campaign_detail(container_of(request), slug, Formats.of(request))
        done = DONE.get(notices.said(request).get("done") or "")
        return page(
            request,
            "communication/campaign.html",
            "communication",
            "campaigns",
            done=done,
            may_act=staff_of(request).may(Role.MANAGER),
            **detail,
        )

    @post(
        "/communication/campaigns/{slug:str}/{action:str}",
        name="campaign_action",
        guards=[requires_role(Role.MANAGER)],
        status_code=303,
    )
    async def campaign_action(
        self, request: Request[Any, Any, Any], slug: FromPath[str], action: FromPath[str]
    ) -> Redirect | Template:
        container = container_of(request)
        campaign = await campaign_by_slug(container.database, slug)
        try:
            await act_on_campaign(container, campaign, action, staff_of(request).email)
        except CampaignError as error:
            detail = await campaign_detail(container, slug, Formats.of(request))
            template = page(
                request,
                "communication/campaign.html",
                "communication",
                "campaigns",
                error=str(error),
                may_act=True,
                **detail,
            )
            template.status_code = 409
            return template
        return after_change(request, f"/communication/campaigns/{slug}", done=action)
