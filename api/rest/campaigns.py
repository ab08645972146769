"""/api/campaigns: create, preview (count, exclusions, cost), launch, pause, resume, cancel and live progress."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody, KwargDefinition, Parameter

from api.rest.common import (
    API_SECURITY,
    Unprocessable,
    api_actor,
    container_of,
    documented_enum,
    problems,
    require_api_token,
)
from domain.campaigns.model import Campaign, CampaignDraft, CampaignError
from domain.campaigns.use_cases import (
    campaign_progress,
    cancel_campaign,
    create_campaign,
    launch_campaign,
    pause_campaign,
    preview_campaign,
    resume_campaign,
)
from domain.clock import utc_now
from domain.vocabulary import OUTBOUND_CHANNELS, Channel, MessageCategory
from storage.queries.campaigns import campaign_id_by_slug, newest_campaigns
from switchboard.wiring import Container

#: What a campaign action in the path may be; the handler refuses any other, naming these (422).
ACTIONS = ("launch", "pause", "resume", "cancel")
#: A fallback waits at most 30 days for the first channel before trying the next.
MAX_FALLBACK_MINUTES = 30 * 24 * 60

#: Channels in the order to try them: one or more outbound channels, each once (checked by the domain, 422).
ChannelOrder = Annotated[
    list[str],
    KwargDefinition(
        schema_extra={
            "items": {"type": "string", "enum": [c.value for c in OUTBOUND_CHANNELS]},
            "minItems": 1,
            "uniqueItems": True,
        }
    ),
]


class CampaignIn(msgspec.Struct):
    slug: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    template: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    channels: ChannelOrder
    audience: dict[str, Any] = {}
    variables: dict[str, Any] = {}
    category: Annotated[str, documented_enum(MessageCategory)] = "marketing"
    fallback_after_minutes: Annotated[int, msgspec.Meta(ge=1, le=MAX_FALLBACK_MINUTES)] | None = None
    respect_quiet_hours: bool = True
    scheduled_at: datetime | None = None


def campaign_json(campaign: Campaign) -> dict[str, Any]:
    return {
        "id": campaign.id,
        "slug": campaign.slug,
        "name": campaign.name,
        "status": campaign.status.value,
        "category": campaign.category.value,
        "template": campaign.template_name,
        "channels": [c.value for c in campaign.channel_order],
        "audience": campaign.audience.to_json(),
        "fallback_after_minutes": campaign.fallback_after_minutes,
        "respect_quiet_hours": campaign.respect_quiet_hours,
        "scheduled_at": campaign.scheduled_at.isoformat() if campaign.scheduled_at else None,
        "planned": campaign.planned_count,
        "excluded": campaign.excluded_count,
        "planning_done": campaign.planning_done,
    }


async def campaign_id_for(container: Container, slug: str) -> int:
    found = await campaign_id_by_slug(container.database, slug)
    if found is None:
        raise NotFoundException(f"there is no campaign with the slug '{slug}'")
    return found


class CampaignsController(Controller):
    path = "/api/campaigns"
    guards = [require_api_token]
    security = API_SECURITY
    tags = ["campaigns"]

    @get("/", responses=problems())
    async def list_campaigns(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        campaigns = await newest_campaigns(container_of(request).database)
        return {
            "campaigns": [
                {
                    "slug": c.slug,
                    "name": c.name,
                    "status": c.status,
                    "planned": c.planned,
                    "created_at": c.created_at.isoformat(),
                }
                for c in campaigns
            ]
        }

    @post("/", status_code=201, responses=problems(body=True))
    async def create(self, request: Request[Any, Any, Any], data: JSONBody[CampaignIn]) -> dict[str, Any]:
        container = container_of(request)
        try:
            draft = CampaignDraft(
                slug=data.slug,
                name=data.name,
                template_name=data.template,
                channel_order=tuple(Channel(c) for c in data.channels),
                audience=data.audience,
                variables=data.variables,
                category=MessageCategory(data.category),
                fallback_after_minutes=data.fallback_after_minutes,
                respect_quiet_hours=data.respect_quiet_hours,
                scheduled_at=data.scheduled_at,
            )
            if await campaign_id_by_slug(container.database, data.slug) is not None:
                raise CampaignError(f"a campaign with slug {data.slug!r} already exists")
            campaign = await create_campaign(
                container.campaign_uow(), draft, utc_now(), actor=api_actor(request), via="api"
            )
        except (CampaignError, ValueError) as error:
            raise Unprocessable(str(error)) from None
        return campaign_json(campaign)

    @get("/{slug:str}/preview", responses=problems(404))
    async def preview(self, request: Request[Any, Any, Any], slug: FromPath[str]) -> dict[str, Any]:
        """Recipients, exclusions by reason, per-channel counts, estimated cost and a rendered sample; writes nothing."""
        container = container_of(request)
        preview = await preview_campaign(
            container.campaign_uow(),
            await campaign_id_for(container, slug),
            now=utc_now(),
            policy=container.consent_policy(),
        )
        sample = preview.sample
        return {
            "recipients": preview.recipients,
            "planned": preview.planned,
            "deferred": preview.deferred,
            "exclusions": dict(preview.exclusions),
            "per_channel": {str(c): n for c, n in preview.per_channel.items()},
            "estimated_cost": preview.estimated_cost_micros / 1_000_000,
            "estimated_cost_micros": preview.estimated_cost_micros,
            "currency": preview.currency,
            "sample": None
            if sample is None
            else {"channel": str(sample.channel), "text": sample.body, "subject": sample.subject},
        }

    @post("/{slug:str}/{action:str}", status_code=200, responses=problems(404))
    async def change(
        self,
        request: Request[Any, Any, Any],
        slug: FromPath[str],
        action: Annotated[str, Parameter(schema_extra={"enum": list(ACTIONS)})],
    ) -> dict[str, Any]:
        """launch, pause, resume or cancel. Pausing and resuming never send anything twice."""
        container = container_of(request)
        campaign_id = await campaign_id_for(container, slug)
        uow, actor = container.campaign_uow(), api_actor(request)
        try:
            if action == "launch":
                await launch_campaign(uow, campaign_id, utc_now(), actor=actor, via="api")
            elif action == "pause":
                await pause_campaign(uow, campaign_id, actor=actor, via="api")
            elif action == "resume":
                await resume_campaign(uow, campaign_id, actor=actor, via="api")
            elif action == "cancel":
                await cancel_campaign(uow, campaign_id, actor=actor, via="api")
            else:
                raise Unprocessable(f"unknown action {action!r}; use launch, pause, resume or cancel")
        except CampaignError as error:
            raise Unprocessable(str(error)) from None
        return await self._progress(container, campaign_id)

    @get("/{slug:str}/progress", responses=problems(404))
    async def progress(self, request: Request[Any, Any, Any], slug: FromPath[str]) -> dict[str, Any]:
        container = container_of(request)
        return await self._progress(container, await campaign_id_for(container, slug))

    async def _progress(self, container: Container, campaign_id: int) -> dict[str, Any]:
        progress = await campaign_progress(container.campaign_uow(), campaign_id)
        return {
            "status": progress.status.value,
            "by_status": dict(progress.by_status),
            "suppressed_by_reason": dict(progress.suppressed_by_reason),
            "opted_out": progress.opted_out,
            # What providers charged for the messages handed to them so far, per currency, in micros.
            "cost_micros": dict(progress.cost_micros),
        }
