"""Signed Telegram deep-link payloads (`t.me/<bot>?start=<payload>`) that tie a chat to a customer."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from pydantic import SecretStr

#: Telegram allows 1-64 characters of A-Z, a-z, 0-9, _ and - in a start payload.
_PAYLOAD = re.compile(r"c(\d{1,19})_([A-Za-z0-9_-]{22})")


def _signature(secret: SecretStr | str, customer_id: int) -> str:
    key = (secret.get_secret_value() if isinstance(secret, SecretStr) else secret).encode()
    digest = hmac.new(key, f"telegram-link:{customer_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:22]


def telegram_start_payload(secret: SecretStr | str, customer_id: int) -> str:
    """The payload for a customer's "chat with us on Telegram" link.

    Signed because whoever sends `/start <payload>` gets that customer's Telegram messages: a bare
    customer id or external reference would let anyone claim anyone's chat.
    """
    return f"c{customer_id}_{_signature(secret, customer_id)}"


def read_telegram_start_payload(secret: SecretStr | str, payload: str) -> int | None:
    found = _PAYLOAD.fullmatch(payload.strip())
    if found is None:
        return None
    customer_id = int(found.group(1))
    return customer_id if hmac.compare_digest(found.group(2), _signature(secret, customer_id)) else None
