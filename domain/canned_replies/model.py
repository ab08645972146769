"""A canned reply, the draft staff write, and a reply filled for one conversation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


class CannedReplyError(ValueError):
    """A canned reply that cannot be saved or sent as it is; the message says why, for the staff member."""


class CannedReplyNotFound(CannedReplyError):
    """There is no such canned reply."""


@dataclass(frozen=True)
class CannedReply:
    id: int
    shortcut: str
    title: str
    body: str
    #: The team it belongs to; None: everyone's.
    team: str | None
    created_by: int | None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class CannedReplyDraft:
    """What staff type when they create or change a canned reply."""

    shortcut: str
    title: str
    body: str
    team: str | None = None


@dataclass(frozen=True)
class CannedActor:
    """Who changed the canned replies, and where (web, slack, telegram, cli)."""

    staff_id: int
    email: str
    via: str


@dataclass(frozen=True)
class FilledReply:
    """A canned reply with what is known filled in; `missing` are the variables the agent still fills."""

    shortcut: str
    text: str
    filled: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def ready(self) -> bool:
        return not self.missing


@dataclass(frozen=True)
class CustomerFacts:
    """What a conversation knows about its customer, for filling variables."""

    name: str
    email: str | None = None
    phone: str | None = None
    clinic: str | None = None
