"""The storage the template use-cases need, as Protocols that storage/ implements and tests fake."""

from __future__ import annotations

from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from domain.audit import AuditTrail
from domain.templates.model import MessageTemplate, TemplateRecord


class TemplateVariants(Protocol):
    async def save(self, variant: MessageTemplate, at: datetime) -> TemplateRecord:
        """Create or replace the variant for its (name, channel, locale), active, one version later."""


class TemplateUnitOfWork(Protocol):
    @property
    def templates(self) -> TemplateVariants: ...

    @property
    def audit(self) -> AuditTrail: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def commit(self) -> None: ...
