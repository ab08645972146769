"""Staff: who is asking, whichever door they came in by (Slack, Telegram, the console or the web)."""

from __future__ import annotations

from dataclasses import dataclass

from domain.vocabulary import Role


@dataclass(frozen=True)
class StaffIdentity:
    """The staff member behind a command or a page; `via` is where they acted (slack, telegram, cli, web)."""

    staff_id: int
    name: str
    email: str
    role: Role
    via: str
