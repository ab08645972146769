"""The unit of work: one transaction that use-cases open, fill through repositories and commit themselves."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Self

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.audit import AuditEntry
from storage.database import Database
from storage.models import AuditLog, BulkMessaging, CustomerCommunication
from storage.outbox import SqlOutbox


class SqlAuditTrail:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def record(self, entry: AuditEntry) -> None:
        self._session.add(
            AuditLog(
                actor=entry.actor,
                via=entry.via,
                action=entry.action,
                target=entry.target,
                detail=dict(entry.detail),
            )
        )


class SqlUnitOfWork:
    """`async with uow: ...; await uow.commit()` — leaving the block without commit rolls back.

    Repositories hang off the unit of work and share its session; none of them commits.
    """

    outbox: SqlOutbox
    audit: SqlAuditTrail

    def __init__(self, database: Database, *, read_only: bool = False, business_tz: str = "UTC") -> None:
        self.database = database
        self.business_tz = business_tz
        self._factory = database.read_sessions if read_only else database.sessions
        self._read_only = read_only
        self._turn: AbstractAsyncContextManager[None] | None = None
        self._session: AsyncSession | None = None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("the unit of work is used outside `async with`")
        return self._session

    async def __aenter__(self) -> Self:
        self._turn = None if self._read_only else self.database.write_turn()
        if self._turn is not None:
            await self._turn.__aenter__()
        self._session = self._factory()
        self.audit = SqlAuditTrail(self._session)
        self.outbox = SqlOutbox(self._session, business_tz=self.business_tz, claim_filter=claimable_messages)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self.session.rollback()
        finally:
            await self.session.close()
            self._session = None
            if self._turn is not None:
                turn, self._turn = self._turn, None
                await turn.__aexit__(None, None, None)

    async def commit(self) -> None:
        await self.session.commit()

    async def rollback(self) -> None:
        await self.session.rollback()


def claimable_messages() -> ColumnElement[bool]:
    """Messages of a paused, scheduled or cancelled campaign stay in the outbox but are not sent."""
    running = select(BulkMessaging.id).where(BulkMessaging.status == "running")
    return or_(CustomerCommunication.campaign_id.is_(None), CustomerCommunication.campaign_id.in_(running))
