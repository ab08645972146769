"""Message templates as staff see them: every variant, or one by name, channel and locale."""

from __future__ import annotations

from sqlalchemy import select

from domain.templates.model import TemplateRecord
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
