"""Sign-ins as the audit trail records them, and the unit of work the sign-in use-cases commit."""

from __future__ import annotations

from datetime import datetime
from typing import Self

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditLog
from storage.unit_of_work import SqlUnitOfWork


class SqlSignIns:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def link_used_since(self, target: str, since: datetime) -> bool:
        used = await self._session.scalar(
            select(AuditLog.id).where(
                AuditLog.occurred_at >= since,
                AuditLog.action == "staff.login",
                AuditLog.target == target,
            )
        )
        return used is not None


class SqlSignInUnitOfWork(SqlUnitOfWork):
    """Satisfies domain.sign_in.ports.SignInUnitOfWork."""

    sign_ins: SqlSignIns

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.sign_ins = SqlSignIns(self.session)
        return self
