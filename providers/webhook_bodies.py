"""What every webhook reader shares: the error for a body not shaped as documented, and body decoding."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl

from pydantic import SecretStr

from domain.conversations.model import WebhookContents, WebhookDelivery
from switchboard.settings import Settings


class MalformedWebhook(ValueError):
    """A webhook body that does not match the provider's documented structure.

    Webhook routes answer 400 on this error instead of 500, so a provider does not keep retrying
    a payload that will never parse.
    """


def bearer_matches(authorization: str | None, expected: str) -> bool:
    """`Authorization: Bearer <expected>`, compared in constant time; an empty ``expected`` matches nothing.
    Stray whitespace around either side (a token pasted with its newline) does not count."""
    scheme, _, given = (authorization or "").strip().partition(" ")
    expected = expected.strip()
    return (
        scheme.lower() == "bearer"
        and bool(expected)
        and hmac.compare_digest(given.strip().encode(), expected.encode())
    )


def form_params(body: str) -> dict[str, str]:
    return dict(parse_qsl(body, keep_blank_values=True))


def json_object(body: str | bytes, what: str) -> Mapping[str, Any]:
    """The body as a JSON object, or MalformedWebhook saying why not (never another exception)."""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise MalformedWebhook(f"{what} body is not JSON: {error}") from error
    except RecursionError:
        # JSON nested thousands deep exhausts the parser; the body is kept, just not readable.
        raise MalformedWebhook(f"{what} body is JSON nested too deep to read") from None
    if not isinstance(value, Mapping):
        raise MalformedWebhook(f"{what} body is not a JSON object")
    return value


@dataclass(frozen=True)
class ReadingContext:
    """What a reader may need besides the body: the secret that signs chat links, the bot's @address."""

    link_secret: SecretStr | str
    telegram_bot_address: str = "bot"


#: Reads one stored webhook body into domain values; raises MalformedWebhook when it cannot.
WebhookRead = Callable[[WebhookDelivery, ReadingContext], WebhookContents]


# --- the HTTP side of a webhook, without a web framework ------------------------------------------------


@dataclass(frozen=True)
class IncomingWebhook:
    """A webhook request as a provider's check sees it: the path and raw query, one header at a time, and
    the body read only when the check needs it (a token checked first spares reading a forged body)."""

    path: str
    query: str
    header: Callable[[str], str | None]  # by lower-case name
    read_body: Callable[[], Awaitable[bytes]]
    #: The query parameters, parsed when asked (GET handshakes): the hot POSTs never need them.
    query_params: Callable[[], Mapping[str, str]]


@dataclass(frozen=True)
class WebhookAnswer:
    """What the route answers the provider (the same for a first delivery and a retried one)."""

    body: str
    status_code: int = 200
    media_type: str = "text/plain"


@dataclass(frozen=True)
class Accepted:
    """A genuine webhook to keep in the inbox, and what to answer once it is kept."""

    delivery: WebhookDelivery
    answer: WebhookAnswer
    #: Receipt-only webhooks may share a transaction with others arriving at the same moment.
    receipts_only: bool = False
    #: A Telegram update, handed to the staff bot when the inbox says it came from staff.
    staff_update: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class WebhookEndpoint:
    """One webhook URL of a provider: how the route is declared, and the check that accepts or refuses.

    `accept` returns Accepted, or the WebhookAnswer that refuses (401/403/400) or answers at once (a
    subscription handshake). `refusals` are the status codes it may answer with, described for the API
    document; every POST may also answer 413 for a body over the limit.
    """

    name: str
    method: Literal["GET", "POST"]
    path: str
    media_type: str
    refusals: Mapping[int, str]
    accept: Callable[[IncomingWebhook, Settings], Awaitable[Accepted | WebhookAnswer]]


#: The descriptions the API document gives the usual refusals.
FORBIDDEN = "The signature does not match: the webhook is not from the provider."
UNAUTHORIZED = "The request carries no signature or token, or a wrong one."
