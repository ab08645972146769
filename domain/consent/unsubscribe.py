"""One-click unsubscribe links: the signed token naming a customer and channel, and the link every message carries."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass, field

from domain.vocabulary import Channel

#: The path the web app answers one-click unsubscribes on (RFC 8058), followed by the token.
UNSUBSCRIBE_PATH = "/unsubscribe/"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), f"unsubscribe:{payload}".encode(), hashlib.sha256).digest())


def unsubscribe_token(secret: str, customer_id: int, channel: Channel | str) -> str:
    """base64url("customer_id:channel") + "." + base64url(HMAC-SHA256): stable, unguessable, no expiry."""
    payload = _b64(f"{customer_id}:{Channel(channel).value}".encode())
    return f"{payload}.{_signature(secret, payload)}"


def read_unsubscribe_token(secret: str, token: str) -> tuple[int, Channel] | None:
    """The (customer id, channel) a token names, or None when it is not one we signed."""
    payload, _, signature = token.partition(".")
    if not payload or not signature or not token.isascii():
        return None
    if not hmac.compare_digest(signature, _signature(secret, payload)):
        return None
    try:
        customer, _, channel = _unb64(payload).decode().partition(":")
        return int(customer), Channel(channel)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


@dataclass(frozen=True)
class UnsubscribeLinks:
    """Makes the one-click unsubscribe link of a customer on a channel, under the app's public URL."""

    public_url: str
    secret: str = field(repr=False)

    def url(self, customer_id: int, channel: Channel | str) -> str:
        token = unsubscribe_token(self.secret, customer_id, channel)
        return f"{self.public_url.rstrip('/')}{UNSUBSCRIBE_PATH}{token}"

    def example(self) -> str:
        """A link that shows where the real one goes, for previews without a customer; it unsubscribes nobody."""
        return f"{self.public_url.rstrip('/')}{UNSUBSCRIBE_PATH}example"
