"""The widget's values and rules: a key and the web pages it may be used on, a visitor, their turns."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from domain.said_place import known_zone, spoken_language

#: The longest message a visitor may send in one go.
MAX_MESSAGE_CHARS = 4000
#: A visitor's own name for a message (retries carry the same one, so it is stored once).
CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
#: Where widget messages come from, as the inbound path names providers.
WIDGET_PROVIDER = "internal"
#: The name a visitor (and their customer row) has until they tell us theirs.
UNNAMED_VISITOR = "Website visitor"


class WidgetRefused(Exception):
    """A widget request that cannot be served; `status` is the HTTP answer, the message says why in words."""

    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


@dataclass(frozen=True)
class WidgetKey:
    id: int
    key: str
    name: str
    allowed_origins: tuple[str, ...]
    location_id: int | None
    enabled: bool


@dataclass(frozen=True)
class Visitor:
    """A browser that has opened the chat through a key: the customer it is once it has written to us (None
    until then), and what it told us."""

    id: int
    key_id: int
    customer_id: int | None
    name: str
    email: str | None


@dataclass(frozen=True)
class WidgetTurn:
    """One message as the widget shows it: the visitor's own, or an answer from the clinic."""

    id: int
    mine: bool
    body: str
    at: datetime
    status: str
    client_id: str | None = None


@dataclass(frozen=True)
class VisitorSession:
    """What the widget keeps (the token, in the browser) and shows when it opens."""

    token: str
    visitor: Visitor
    created: bool


def new_key() -> str:
    """A widget key: public (it is in the page), so it only names the site; the origins protect it."""
    return "wk_" + secrets.token_urlsafe(18)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """Only the hash is stored: a copy of the database does not let anyone speak as a visitor."""
    return hashlib.sha256(token.encode()).hexdigest()


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, lower-cased, as browsers send it in the Origin header."""
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        return ""
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def check_key(key: WidgetKey | None) -> WidgetKey:
    if key is None:
        raise WidgetRefused("This chat widget key is not known; check data-key on the page.", 404)
    if not key.enabled:
        raise WidgetRefused("This chat widget key is switched off.", 403)
    return key


def check_origin(key: WidgetKey, origin: str | None, own_origins: Sequence[str] = ()) -> None:
    """A page may use the key only from an origin the key lists (or Switchboard's own pages).

    Browsers always name the Origin on cross-site requests; a request without one comes from our own
    pages or from outside a browser, where an origin check protects nothing.
    """
    if origin is None or origin == "":
        return
    allowed = {origin_of(o) for o in key.allowed_origins} | {origin_of(o) for o in own_origins}
    if origin_of(origin) not in allowed or origin == "null":
        raise WidgetRefused(
            f"The chat widget key '{key.name}' may not be used on {origin}; "
            "add this origin to the key's allowed origins.",
            403,
        )


def check_message(text: str) -> str:
    body = text.strip()
    if not body:
        raise WidgetRefused("The message is empty.", 422)
    if len(body) > MAX_MESSAGE_CHARS:
        raise WidgetRefused(
            f"The message is {len(body):,} characters long; at most {MAX_MESSAGE_CHARS:,} fit in one.", 413
        )
    return body


def check_client_id(client_id: str) -> str:
    if not CLIENT_ID.fullmatch(client_id):
        raise WidgetRefused("Each message needs an id of 8 to 64 letters, digits, - or _.", 422)
    return client_id


@dataclass(frozen=True)
class VisitorPlace:
    """Where a visitor who writes is taken to be, and what they read: their browser's time zone and
    language, else the business's; their quiet hours and the survey's language follow from it."""

    timezone: str = "UTC"
    language: str = "en"


def visitor_place(
    said_timezone: str | None, said_language: str | None, business_timezone: str, business_language: str
) -> VisitorPlace:
    return VisitorPlace(
        known_zone(said_timezone) or business_timezone, spoken_language(said_language) or business_language
    )


def check_contact(name: str | None, email: str | None) -> tuple[str | None, str | None]:
    """A name and email as a visitor typed them, or a refusal that says what is wrong."""
    clean_name = " ".join((name or "").split())[:200] or None
    clean_email = (email or "").strip().lower() or None
    if clean_email is not None and (
        len(clean_email) > 254 or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", clean_email)
    ):
        raise WidgetRefused("That email address does not look right.", 422)
    return clean_name, clean_email


def widget_message_ref(visitor_id: int, client_id: str) -> str:
    """The provider message id of a visitor's message: the same retried POST is the same message."""
    return f"widget:{visitor_id}:{client_id}"


def client_id_of(provider_message_id: str | None, visitor_prefix: str = "widget:") -> str | None:
    if not provider_message_id or not provider_message_id.startswith(visitor_prefix):
        return None
    parts = provider_message_id.split(":", 2)
    return parts[2] if len(parts) == 3 else None


def reply_ref(message_id: int) -> str:
    """The provider message id of a reply handed to the widget."""
    return f"widget-reply:{message_id}"
