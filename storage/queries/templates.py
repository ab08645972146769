"""Message templates as staff see them: every variant, or one by name, channel and locale."""

from __future__ import annotations

from sqlalchemy import Select, select

from domain.templates.model import MessageTemplate as TemplateVariant
from domain.templates.model import TemplateRecord
from storage.campaigns import stored_template
from storage.database import Database
from storage.models import MessageTemplate
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
