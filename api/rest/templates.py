"""/api/templates: list, read and save message templates; variables are validated when saved."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, put
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, JSONBody, Parameter
from sqlalchemy import select

from api.rest.common import (
    API_SECURITY,
    Unprocessable,
    api_actor,
    container_of,
    documented_enum,
    problems,
    require_api_token,
)
from domain.audit import AuditEntry
from domain.templates.model import MessageTemplate as TemplateVariant
from domain.templates.model import TemplateError
from domain.templates.trial import run_trial
from domain.templates.validation import check_template
from domain.vocabulary import OUTBOUND_CHANNELS, Channel, MessageCategory
from storage.models import MessageTemplate

NAME_PATTERN = "^[a-z0-9][a-z0-9_-]{0,63}$"

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


def template_json(row: MessageTemplate) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "channel": row.channel,
        "locale": row.locale,
        "category": row.category,
        "status": row.status,
        "subject": row.subject,
        "body": row.body,
        "html_body": row.html_body,
        "variables": row.variables,
        "whatsapp_name": row.whatsapp_name,
        "whatsapp_language": row.whatsapp_language,
        "whatsapp_params": row.whatsapp_params,
        "version": row.version,
        "updated_at": row.updated_at.isoformat(),
    }


def checked_variant(
    name: FromPath[str], channel: FromPath[str], locale: FromPath[str], data: JSONBody[TemplateIn]
) -> TemplateVariant:
    import re

    if not re.match(NAME_PATTERN, name):
        raise Unprocessable("template names are lower-case letters, digits, '_' and '-' (at most 64)")
    try:
        channel_value = Channel(channel)
        category = MessageCategory(data.category)
    except ValueError as error:
        raise Unprocessable(str(error)) from None
    if channel_value not in OUTBOUND_CHANNELS:
        raise Unprocessable(f"templates are for sms, email, whatsapp or telegram, not {channel}")
    variant = TemplateVariant(
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
    return variant


class TemplatesController(Controller):
    path = "/api/templates"
    guards = [require_api_token]
    security = API_SECURITY
    tags = ["templates"]

    @get("/", responses=problems())
    async def list_templates(
        self, request: Request[Any, Any, Any], name: FromQuery[str | None] = None
    ) -> dict[str, Any]:
        query = select(MessageTemplate).order_by(
            MessageTemplate.name, MessageTemplate.channel, MessageTemplate.locale
        )
        if name:
            query = query.where(MessageTemplate.name == name)
        async with container_of(request).database.read_sessions() as session:
            rows = (await session.scalars(query)).all()
        return {"templates": [template_json(r) for r in rows]}

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
        try:
            # Validation and a trial render with sample values, off the event loop and within a time limit.
            await run_trial(lambda: check_template(variant))
        except TemplateError as error:
            raise Unprocessable(str(error)) from None
        container = container_of(request)
        async with container.unit_of_work() as uow:
            row = (
                await uow.session.scalars(
                    select(MessageTemplate).where(
                        MessageTemplate.name == name,
                        MessageTemplate.channel == channel,
                        MessageTemplate.locale == locale,
                    )
                )
            ).one_or_none()
            if row is None:
                row = MessageTemplate(name=name, channel=channel, locale=locale, version=0)
                uow.session.add(row)
            row.category, row.status = variant.category.value, "active"
            row.body, row.subject, row.html_body = variant.body, variant.subject, variant.html_body
            row.variables, row.whatsapp_params = list(variant.variables), list(variant.whatsapp_params)
            row.whatsapp_name, row.whatsapp_language = variant.whatsapp_name, variant.whatsapp_language
            row.version = (row.version or 0) + 1
            row.updated_at = datetime.now(UTC)
            await uow.session.flush()
            uow.audit.record(
                AuditEntry(
                    actor=api_actor(request),
                    via="api",
                    action="template.save",
                    target=f"template:{name}/{channel}/{locale}",
                    detail={"version": row.version},
                )
            )
            await uow.commit()
            return template_json(row)

    @get("/{name:str}/{channel:str}/{locale:str}", responses=problems(404))
    async def get_template(
        self,
        request: Request[Any, Any, Any],
        name: FromPath[str],
        channel: FromPath[str],
        locale: FromPath[str],
    ) -> dict[str, Any]:
        async with container_of(request).database.read_sessions() as session:
            row = (
                await session.scalars(
                    select(MessageTemplate).where(
                        MessageTemplate.name == name,
                        MessageTemplate.channel == channel,
                        MessageTemplate.locale == locale,
                    )
                )
            ).one_or_none()
        if row is None:
            raise NotFoundException(f"no template {name} for {channel} in {locale}")
        return template_json(row)
