"""What signing in needs from storage: the record of past sign-ins, the audit trail and one transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from domain.audit import AuditTrail
from domain.transaction import Transaction


class SignInRecords(Protocol):
    async def link_used_since(self, target: str, since: datetime) -> bool:
        """Whether a sign-in with this link (its audit target) was recorded at or after `since`."""


class SignInUnitOfWork(Transaction, Protocol):
    @property
    def sign_ins(self) -> SignInRecords: ...

    @property
    def audit(self) -> AuditTrail: ...
