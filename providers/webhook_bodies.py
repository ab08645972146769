"""What every webhook reader shares: the error for a body not shaped as documented, and body decoding."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from pydantic import SecretStr

from domain.conversations.model import WebhookContents, WebhookDelivery


class MalformedWebhook(ValueError):
    """A webhook body that does not match the provider's documented structure.

    Webhook routes answer 400 on this error instead of 500, so a provider does not keep retrying
    a payload that will never parse.
    """


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
