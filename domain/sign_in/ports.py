"""What signing in needs from storage: the record of past sign-ins, the audit trail and one transaction."""

from __future__ import annotations

from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from domain.audit import AuditTrail


class SignInRecords(Protocol):
    async def link_used_since(self, target: str, since: datetime) -> bool:
        """Whether a sign-in with this link (its audit target) was recorded at or after `since`."""


class SignInUnitOfWork(Protocol):
    @property
    def sign_ins(self) -> SignInRecords: ...

    @property
    def audit(self) -> AuditTrail: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def commit(self) -> None: ...
