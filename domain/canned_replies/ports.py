"""What the canned-reply use-cases need from storage, as Protocols that storage/ implements and tests fake."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from domain.audit import AuditTrail
from domain.canned_replies.model import CannedReply, CannedReplyDraft
from domain.transaction import Transaction


class CannedReplies(Protocol):
    async def by_id(self, reply_id: int, *, for_update: bool = False) -> CannedReply | None: ...

    async def by_shortcut(self, shortcut: str) -> CannedReply | None: ...

    async def add(self, draft: CannedReplyDraft, created_by: int | None, at: datetime) -> CannedReply | None:
        """The stored reply; None when another one already has the draft's shortcut."""

    async def save(self, reply_id: int, draft: CannedReplyDraft, at: datetime) -> None: ...

    async def delete(self, reply_id: int) -> None: ...


class CannedReplyUnitOfWork(Transaction, Protocol):
    @property
    def canned_replies(self) -> CannedReplies: ...

    @property
    def audit(self) -> AuditTrail: ...
