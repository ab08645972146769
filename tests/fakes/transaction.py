"""A unit of work's common half for domain tests: enter, exit, count commits, and keep the audit entries."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from domain.audit import AuditEntry


class FakeAudit:
    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    def record(self, entry: AuditEntry) -> None:
        self.entries.append(entry)


class FakeTransaction:
    """Subclass it and add the repositories a use-case needs; `commits` counts what the use-case committed."""

    def __init__(self) -> None:
        self.audit = FakeAudit()
        self.commits = 0

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    async def commit(self) -> None:
        self.commits += 1
