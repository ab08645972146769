"""The audit trail: who changed what, from where."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class AuditEntry:
    actor: str
    via: str  # slack, telegram, web, api, cli, system
    action: str
    target: str | None = None
    detail: dict[str, object] = field(default_factory=dict)


class AuditTrail(Protocol):
    def record(self, entry: AuditEntry) -> None: ...
