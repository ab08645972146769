"""The transaction every unit-of-work port is: `async with uow: ...; await uow.commit()`.

Leaving the block without commit rolls back; only the use-case commits. Each noun's port adds its
repositories to this (e.g. `domain/templates/ports.py`).
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self


class Transaction(Protocol):
    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def commit(self) -> None: ...
