"""/api/templates: list, read and save message templates; variables are validated when saved."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, put
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, JSONBody, Parameter

from api.rest.common import (
    API_SECURITY,
    Unprocessable,
    api_actor,
    container_of,
    documented_enum,
    problems,
    require_api_token,
)
from domain.clock import utc_now
from domain.templates.model import MessageTemplate as TemplateVariant
from domain.templates.model import TemplateError, TemplateRecord
from domain.templates.use_cases import NAME_PATTERN, check_template_name, save_template_variant
from domain.vocabulary import OUTBOUND_CHANNELS, Channel, MessageCategory
from storage.queries.templates import all_template_variants, template_variant

#: How the path names a variant; the handler refuses other names and channels itself, in words (422).
TemplateName = Annotated[str, Parameter(schema_extra={"pattern": NAME_PATTERN})]
TemplateChannel = Annotated[str, Parameter(schema_extra={"enum": [c.value for c in OUTBOUND_CHANNELS]})]


class TemplateIn(msgspec.Struct):
    body: str
    variables: list[str] = []
    category: Annotated[str, documented_enum(MessageCategory)] = "transactional"
    # The widths of their columns in message_templates.
    subject: Annotated[str, msgspec.Meta(max_length=255)] | None = None
    html_body: str | None = None
    whatsapp_name: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    whatsapp_language: Annotated[str, msgspec.Meta(max_length=16)] | None = None
    whatsapp_params: list[str] = []


def template_json(record: TemplateRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "channel": record.channel,
        "locale": record.locale,
        "category": record.category,
        "status": record.status,
        "subject": record.subject,
        "body": record.body,
        "html_body": record.html_body,
        "variables": list(record.variables),
        "whatsapp_name": record.whatsapp_name,
        "whatsapp_language": record.whatsapp_language,
        "whatsapp_params": list(record.whatsapp_params),
        "version": record.version,
        "updated_at": record.updated_at.isoformat(),
    }


def checked_variant(
    name: FromPath[str], channel: FromPath[str], locale: FromPath[str], data: JSONBody[TemplateIn]
) -> TemplateVariant:
    try:
        check_template_name(name)
        channel_value = Channel(channel)
        category = MessageCategory(data.category)
    except ValueError as error:  # a TemplateError too
        raise Unprocessable(str(error)) from None
    return TemplateVariant(
        name=name,
        channel=channel_value,
        locale=locale,
        body=data.body,
        category=category,
        variables=tuple(data.variables),
        subject=data.subject,
        html_body=data.html_body,
        whatsapp_name=data.whatsapp_name,
        whatsapp_language=data.whatsapp_language,
        whatsapp_params=tuple(data.whatsapp_params),
    )


class TemplatesController(Controller):
    path = "/api/templates"
    guards = [require_api_token]
    security = API_SECURITY
    tags = ["templates"]

    @get("/", responses=problems())
    async def list_templates(
        self, request: Request[Any, Any, Any], name: FromQuery[str | None] = None
    ) -> dict[str, Any]:
        variants = await all_template_variants(container_of(request).database, name)
        return {"templates": [template_json(v) for v in variants]}

    @put("/{name:str}/{channel:str}/{locale:str}", responses=problems(body=True))
    async def save(
        self,
        request: Request[Any, Any, Any],
        name: FromPath[TemplateName],
        channel: FromPath[TemplateChannel],
        locale: FromPath[str],
        data: JSONBody[TemplateIn],
    ) -> dict[str, Any]:
        """Creates or replaces one variant; it is validated first (declared vs used variables, sizes, WhatsApp)."""
        variant = checked_variant(name, channel, locale, data)
        container = container_of(request)
        try:
            saved = await save_template_variant(
                container.units.templates(),
                variant,
                actor=api_actor(request),
                via="api",
                now=utc_now(),
            )
        except TemplateError as error:
            raise Unprocessable(str(error)) from None
        return template_json(saved)

    @get("/{name:str}/{channel:str}/{locale:str}", responses=problems(404))
    async def get_template(
        self,
        request: Request[Any, Any, Any],
        name: FromPath[str],
        channel: FromPath[str],
        locale: FromPath[str],
    ) -> dict[str, Any]:
        found = await template_variant(container_of(request).database, name, channel, locale)
        if found is None:
            raise NotFoundException(f"no template {name} for {channel} in {locale}")
        return template_json(found)
