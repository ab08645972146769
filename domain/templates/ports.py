"""The storage the template use-cases need, as Protocols that storage/ implements and tests fake."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from domain.audit import AuditTrail
from domain.templates.model import MessageTemplate, TemplateRecord
from domain.transaction import Transaction


class TemplateVariants(Protocol):
    async def save(self, variant: MessageTemplate, at: datetime, *, by: str | None = None) -> TemplateRecord:
        """Create or replace the variant for its (name, channel, locale), active, one version later; what it
        says is kept as that version (with who saved it) for comparing and restoring."""


class TemplateUnitOfWork(Transaction, Protocol):
    @property
    def templates(self) -> TemplateVariants: ...

    @property
    def audit(self) -> AuditTrail: ...
