"""Template storage: saving a variant (one version later each time) and the unit of work it is saved in."""

from __future__ import annotations

from datetime import datetime
from typing import Self

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from domain.templates.model import MessageTemplate as TemplateVariant
from domain.templates.model import TemplateChanged, TemplateRecord
from storage.models import MessageTemplate, MessageTemplateVersion
from storage.unit_of_work import SqlUnitOfWork


def template_record(row: MessageTemplate) -> TemplateRecord:
    return TemplateRecord(
        id=row.id,
        name=row.name,
        channel=row.channel,
        locale=row.locale,
        category=row.category,
        status=row.status,
        subject=row.subject,
        body=row.body,
        html_body=row.html_body,
        variables=tuple(row.variables),
        whatsapp_name=row.whatsapp_name,
        whatsapp_language=row.whatsapp_language,
        whatsapp_params=tuple(row.whatsapp_params),
        version=row.version,
        updated_at=row.updated_at,
    )


class SqlTemplateVariants:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def save(
        self, variant: TemplateVariant, at: datetime, *, by: str | None = None, over: int | None = None
    ) -> TemplateRecord:
        name, channel, locale = variant.name, variant.channel.value, variant.locale
        row = (
            await self._session.scalars(
                select(MessageTemplate)
                .where(
                    MessageTemplate.name == name,
                    MessageTemplate.channel == channel,
                    MessageTemplate.locale == locale,
                )
                # Two saves at once take turns, so each gets its own version number (PostgreSQL; SQLite
                # serialises writers anyway).
                .with_for_update()
            )
        ).one_or_none()
        if over is not None and ((row.version or 0) if row is not None else 0) != over:
            # Checked under the lock: a save that read an older version cannot write over a newer one.
            raise TemplateChanged(row.version if row is not None else None)
        if row is None:
            row = MessageTemplate(name=name, channel=channel, locale=locale, version=0)
            self._session.add(row)
        elif not await self._session.scalar(
            select(MessageTemplateVersion.id).where(
                MessageTemplateVersion.template_id == row.id, MessageTemplateVersion.version == row.version
            )
        ):
            # Written before versions were kept (or seeded): keep what it says now, so it can be restored.
            self._session.add(_kept(row, row.updated_at, by=None))
        row.category, row.status = variant.category.value, "active"
        row.body, row.subject, row.html_body = variant.body, variant.subject, variant.html_body
        row.variables, row.whatsapp_params = list(variant.variables), list(variant.whatsapp_params)
        row.whatsapp_name, row.whatsapp_language = variant.whatsapp_name, variant.whatsapp_language
        row.version = (row.version or 0) + 1
        row.updated_at = at
        try:
            await self._session.flush()
        except IntegrityError:
            # A new variant, created by someone else in the same moment (there was no row to lock).
            raise TemplateChanged(None) from None
        # What it says now is kept as this version, so it can be compared with and restored later.
        self._session.add(_kept(row, at, by=by))
        await self._session.flush()
        return template_record(row)


def _kept(row: MessageTemplate, at: datetime, *, by: str | None) -> MessageTemplateVersion:
    return MessageTemplateVersion(
        template_id=row.id,
        version=row.version,
        category=row.category,
        subject=row.subject,
        body=row.body,
        html_body=row.html_body,
        variables=list(row.variables),
        whatsapp_name=row.whatsapp_name,
        whatsapp_language=row.whatsapp_language,
        whatsapp_params=list(row.whatsapp_params),
        saved_by=by,
        saved_at=at,
    )


class SqlTemplateUnitOfWork(SqlUnitOfWork):
    """The unit of work template use-cases take: the variants and the audit trail."""

    templates: SqlTemplateVariants

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.templates = SqlTemplateVariants(self.session)
        return self
