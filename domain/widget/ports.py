"""What the widget's use-cases need from storage: visitors, and the inbound unit of work around them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from domain.conversations.ports import InboundUnitOfWork
from domain.widget.model import Visitor


class VisitorStore(Protocol):
    async def visitor(self, token_hash: str) -> Visitor | None: ...

    async def add_customer(
        self,
        name: str,
        email: str | None,
        home_location_id: int | None,
        at: datetime,
        *,
        timezone: str = "UTC",
        locale: str = "en",
        tag: str | None = None,
    ) -> int:
        """A customer row for a visitor who writes, in their zone and language, with `tag` (their first
        contact's); only the name is required."""

    async def add_visitor(self, key_id: int, token_hash: str, at: datetime) -> Visitor:
        """A visitor who has opened the chat: no customer yet."""

    async def customer_of(self, visitor_id: int) -> int | None:
        """The visitor's customer as stored now (call after `seen`, which holds the visitor's row)."""

    async def link_customer(self, visitor_id: int, customer_id: int) -> None: ...

    async def set_contact(self, customer_id: int, name: str | None, email: str | None) -> None:
        """Fill what the visitor told us (a None leaves the value as it is)."""

    async def seen(self, visitor_id: int, at: datetime) -> None: ...

    async def own_replies(self, customer_id: int, message_ids: Sequence[int]) -> list[int]:
        """Those of `message_ids` that are replies to this customer on the website chat."""


class WidgetKeyStore(Protocol):
    async def add(
        self, key: str, name: str, origins: Sequence[str], location_id: int | None, at: datetime
    ) -> int | None:
        """A new key (its visitors' home clinic is `location_id`); None when the key text is taken."""

    async def location_id(self, code: str) -> int | None:
        """The clinic with this code, if there is one."""

    async def set_enabled(self, key_id: int, enabled: bool) -> bool | None:
        """Turn the key on or off; whether that changed it, None when there is no such key."""


class WidgetUnitOfWork(InboundUnitOfWork, Protocol):
    @property
    def visitors(self) -> VisitorStore: ...

    @property
    def keys(self) -> WidgetKeyStore: ...
