"""What a message template is, and the one error every template problem is reported as."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.vocabulary import Channel, MessageCategory

#: The locale every template family is expected to have; selection falls back to it.
DEFAULT_LOCALE = "en"
#: Variables Switchboard fills in for each recipient when a message is planned; a caller never sets them.
#: ``unsubscribe_url``: the recipient's one-click unsubscribe link for the message's channel.
SYSTEM_VARIABLES = frozenset({"unsubscribe_url"})


class TemplateError(ValueError):
    """A template cannot be saved or rendered; the message is meant for the staff member who wrote it."""


class TemplateChanged(TemplateError):
    """The variant was saved by someone else after the editor opened it; nothing was saved."""

    def __init__(self, current: int | None) -> None:
        super().__init__(
            f"version {current} was saved in the meantime" if current else "it was created meanwhile"
        )
        self.current = current


@dataclass(frozen=True)
class MessageTemplate:
    """One variant of a named message, for one channel and one locale."""

    name: str
    channel: Channel
    locale: str
    body: str
    category: MessageCategory
    variables: tuple[str, ...] = ()
    subject: str | None = None
    html_body: str | None = None
    whatsapp_name: str | None = None
    whatsapp_language: str | None = None
    # Declared variables in the order they fill the approved template's {{1}}, {{2}}, ... parameters.
    whatsapp_params: tuple[str, ...] = ()


@dataclass(frozen=True)
class RenderedMessage:
    """A template filled in for one recipient."""

    body: str
    subject: str | None = None
    html_body: str | None = None


@dataclass(frozen=True)
class TemplateRecord:
    """A stored variant as staff see it: its text, whether it is in use, and which version it is."""

    id: int
    name: str
    channel: str
    locale: str
    category: str
    status: str  # draft, active or archived
    subject: str | None
    body: str
    html_body: str | None
    variables: tuple[str, ...]
    whatsapp_name: str | None
    whatsapp_language: str | None
    whatsapp_params: tuple[str, ...]
    version: int
    updated_at: datetime
