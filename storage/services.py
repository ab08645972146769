"""Services in SQL: the book the naming use-case writes through, and its unit of work."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self

from sqlalchemy import null, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.services import NamedService
from domain.templates.selection import language_of
from storage.models import AutomatedNotification, MessageTemplate, Service
from storage.sql import dialect_of
from storage.unit_of_work import SqlUnitOfWork

MAX_ID = 2**63 - 1


def named_service(row: Service) -> NamedService:
    names = {str(k): v for k, v in (row.names or {}).items() if isinstance(v, str)}
    return NamedService(row.id, row.code, row.name, row.kind, row.duration_minutes, names)


class SqlServiceBook:
    """domain.services.ServiceBook; nothing here commits."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def services(self) -> list[NamedService]:
        rows = await self._session.scalars(select(Service).order_by(Service.kind.desc(), Service.name))
        return [named_service(row) for row in rows]

    async def service(self, service_id: int, *, for_update: bool = False) -> NamedService | None:
        if not 0 < service_id <= MAX_ID:
            return None
        query = select(Service).where(Service.id == service_id)
        if for_update and dialect_of(self._session) == "postgresql":
            query = query.with_for_update()
        row = await self._session.scalar(query.execution_options(populate_existing=True))
        return None if row is None else named_service(row)

    async def rename(self, service_id: int, name: str, names: Mapping[str, str]) -> None:
        await self._session.execute(
            update(Service)
            .where(Service.id == service_id)
            .values(name=name, names=dict(names) if names else null())  # SQL NULL, not JSON null
        )

    async def video_message_languages(self) -> list[str]:
        """The languages the business writes its video consultations' messages in ('de', 'en'): those of the
        templates the notification rules for video events send. A service's name is worth giving only in
        them; another language's name would sit in a message of the template's fallback language."""
        used = select(AutomatedNotification.template_name).where(
            AutomatedNotification.event_type.like("video.%")
        )
        locales = await self._session.scalars(
            select(MessageTemplate.locale).where(MessageTemplate.name.in_(used.scalar_subquery())).distinct()
        )
        return sorted({language_of(locale) for locale in locales if locale})


class SqlServiceNamingUnitOfWork(SqlUnitOfWork):
    services: SqlServiceBook

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.services = SqlServiceBook(self.session)
        return self
