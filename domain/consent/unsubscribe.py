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


@dataclass(frozen=True)
class UnsubscribePageWords:
    """The one-click unsubscribe page (api/unsubscribe.py) in one language: the customer's, as the survey's
    page is. `{business}` and `{channel}` ("by email", "per E-Mail") are filled in."""

    language: str
    #: How the page says "on this channel", per channel; `elsewhere` for a channel it does not name.
    channels: dict[Channel, str]
    elsewhere: str
    title: str
    question: str
    button: str
    done_title: str
    done: str
    already: str
    not_valid_title: str
    not_valid: str
    gone_title: str
    gone: str
    bad_request_title: str
    bad_request: str

    def on(self, channel: Channel) -> str:
        return self.channels.get(channel, self.elsewhere)


UNSUBSCRIBE_PAGE_WORDS = {
    "en": UnsubscribePageWords(
        language="en",
        channels={
            Channel.EMAIL: "by email",
            Channel.SMS: "by SMS",
            Channel.WHATSAPP: "on WhatsApp",
            Channel.TELEGRAM: "on Telegram",
            Channel.CHAT: "in the website chat",
        },
        elsewhere="on this channel",
        title="Unsubscribe",
        question="Stop receiving messages from {business} {channel}?",
        button="Unsubscribe",
        done_title="You are unsubscribed",
        done="You will not hear from {business} {channel} again.",
        already="You are already unsubscribed: you will not hear from {business} {channel}.",
        not_valid_title="Link not valid",
        not_valid="This unsubscribe link is not valid.",
        gone_title="Link no longer in use",
        gone=(
            "This unsubscribe link is no longer in use: we hold no details for it any more, "
            "so nothing will be sent to you from us."
        ),
        bad_request_title="Bad request",
        bad_request="Expected List-Unsubscribe=One-Click.",
    ),
    "de": UnsubscribePageWords(
        language="de",
        channels={
            Channel.EMAIL: "per E-Mail",
            Channel.SMS: "per SMS",
            Channel.WHATSAPP: "über WhatsApp",
            Channel.TELEGRAM: "über Telegram",
            Channel.CHAT: "im Chat auf der Website",
        },
        elsewhere="auf diesem Weg",
        title="Abmelden",
        question="Keine Nachrichten mehr von {business} {channel} erhalten?",
        button="Abmelden",
        done_title="Sie sind abgemeldet",
        done="Sie erhalten von {business} {channel} keine Nachrichten mehr.",
        already="Sie sind bereits abgemeldet: Sie erhalten von {business} {channel} keine Nachrichten.",
        not_valid_title="Link nicht gültig",
        not_valid="Dieser Link zum Abmelden ist nicht gültig.",
        gone_title="Link nicht mehr in Gebrauch",
        gone=(
            "Dieser Link zum Abmelden ist nicht mehr in Gebrauch: Wir haben dazu keine Daten mehr "
            "und senden Ihnen nichts mehr."
        ),
        bad_request_title="Ungültige Anfrage",
        bad_request="Erwartet wurde List-Unsubscribe=One-Click.",
    ),
}


def unsubscribe_page_words(language: str | None) -> UnsubscribePageWords:
    """The page in the customer's language (`de`, `de_AT`), else in English."""
    key = (language or "en").replace("-", "_").split("_")[0].lower()
    return UNSUBSCRIBE_PAGE_WORDS.get(key, UNSUBSCRIBE_PAGE_WORDS["en"])
