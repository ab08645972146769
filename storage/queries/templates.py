"""Message templates as staff see them: every variant, or one by name, channel and locale."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select

from domain.templates.model import MessageTemplate as TemplateVariant
from domain.templates.model import TemplateRecord
from domain.vocabulary import Channel, MessageCategory
from storage.campaigns import stored_template
from storage.database import Database
from storage.models import MessageTemplate, MessageTemplateVersion
from storage.templates import template_record


async def all_template_variants(database: Database, name: str | None = None) -> list[TemplateRecord]:
    """Every variant (only `name`'s when given), whatever its status, by name, channel and locale."""
    query = select(MessageTemplate).order_by(
        MessageTemplate.name, MessageTemplate.channel, MessageTemplate.locale
    )
    if name:
        query = query.where(MessageTemplate.name == name)
    async with database.read_sessions() as session:
        return [template_record(row) for row in await session.scalars(query)]


async def template_variant(database: Database, name: str, channel: str, locale: str) -> TemplateRecord | None:
    async with database.read_sessions() as session:
        row = (
            await session.scalars(
                select(MessageTemplate).where(
                    MessageTemplate.name == name,
                    MessageTemplate.channel == channel,
                    MessageTemplate.locale == locale,
                )
            )
        ).one_or_none()
        return None if row is None else template_record(row)


def _active(name: str | None) -> Select[MessageTemplate]:
    query = select(MessageTemplate).where(MessageTemplate.status == "active")
    if name is not None:
        query = query.where(MessageTemplate.name == name)
    return query.order_by(MessageTemplate.name, MessageTemplate.channel, MessageTemplate.locale)


async def active_template_variants(database: Database, name: str | None = None) -> list[TemplateRecord]:
    """The variants in use (only `name`'s when given), by name, channel and locale."""
    async with database.read_sessions() as session:
        return [template_record(row) for row in await session.scalars(_active(name))]


async def active_templates_named(database: Database, name: str) -> list[TemplateVariant]:
    """`name`'s variants in use, ready to render, by channel and locale."""
    async with database.read_sessions() as session:
        return [stored_template(row).template for row in await session.scalars(_active(name))]


@dataclass(frozen=True)
class KeptVersion:
    """One kept version of a variant: what it said, who saved it and when."""

    version: int
    template: TemplateVariant
    saved_by: str | None
    saved_at: datetime


async def template_versions(
    database: Database, name: str, channel: str, locale: str, *, limit: int = 50
) -> list[KeptVersion]:
    """A variant's kept versions, newest first."""
    async with database.read_sessions() as session:
        rows = (
            await session.execute(
                select(
                    MessageTemplateVersion,
                    MessageTemplate.name,
                    MessageTemplate.channel,
                    MessageTemplate.locale,
                )
                .join(MessageTemplate, MessageTemplate.id == MessageTemplateVersion.template_id)
                .where(
                    MessageTemplate.name == name,
                    MessageTemplate.channel == channel,
                    MessageTemplate.locale == locale,
                )
                .order_by(MessageTemplateVersion.version.desc())
                .limit(limit)
            )
        ).all()
    return [
        KeptVersion(
            v.version,
            TemplateVariant(
                name=n,
                channel=Channel(c),
                locale=loc,
                body=v.body,
                category=MessageCategory(v.category),
                variables=tuple(v.variables or ()),
                subject=v.subject,
                html_body=v.html_body,
                whatsapp_name=v.whatsapp_name,
                whatsapp_language=v.whatsapp_language,
                whatsapp_params=tuple(v.whatsapp_params or ()),
            ),
            v.saved_by,
            v.saved_at,
        )
        for v, n, c, loc in rows
    ]
