"""The platform-neutral reply every command returns; each front end (Slack, Telegram, console) renders it natively."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Button:
    """An action the person can take next; `command` is the command text the button runs when pressed."""

    label: str
    command: str
    style: Literal["default", "primary", "danger"] = "default"


@dataclass(frozen=True)
class Field:
    label: str
    value: str


@dataclass(frozen=True)
class Image:
    filename: str
    content: bytes
    alt_text: str
    mime_type: str = "image/png"


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mime_type: str = "text/csv"


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Reply:
    """What a command answers. `text` is always present so every front end has something to show.

    `private` replies (customer contact details, previews) go only to the person who asked — an
    ephemeral message in Slack, the private chat in Telegram — never into a shared channel.
    `confirm` marks a reply that asks for confirmation before something irreversible happens.
    """

    text: str
    title: str | None = None
    fields: tuple[Field, ...] = ()
    table: Table | None = None
    buttons: tuple[Button, ...] = ()
    images: tuple[Image, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    private: bool = False
    confirm: bool = False
    kind: Literal["answer", "error", "denied", "help", "suggestion", "progress"] = "answer"
    progress_key: str | None = field(default=None)
