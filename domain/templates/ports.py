"""The storage the template use-cases need, as Protocols that storage/ implements and tests fake."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from domain.audit import AuditTrail
from domain.templates.model import MessageTemplate, TemplateRecord
from domain.transaction import Transaction


class TemplateVariants(Protocol):
    async def save(
        self, variant: MessageTemplate, at: datetime, *, by: str | None = None, over: int | None = None
    ) -> TemplateRecord:
        """Create or replace the variant for its (name, channel, locale), active, one version later; what it
        says is kept as that version (with who saved it) for comparing and restoring.

        `over` is the version the editor was opened on (0: none existed); if the variant is at another version
        by the time it is locked for writing, TemplateChanged is raised and nothing is written."""


class TemplateUnitOfWork(Transaction, Protocol):
    @property
    def templates(self) -> TemplateVariants: ...

    @property
    def audit(self) -> AuditTrail: ...
