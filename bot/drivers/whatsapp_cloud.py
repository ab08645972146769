"""WhatsApp Cloud API: sending through the Graph API and reading Meta's signed webhooks."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp

from bot.drivers.provider_http import PooledSession, retry_after_seconds, transport_failure
from bot.drivers.webhook_errors import MalformedWebhook
from domain.delivery.ports import (
    DeliveryReceipt,
    InboundMessage,
    OutboundMessage,
    ProviderAcceptance,
    ProviderError,
)
from domain.vocabulary import Channel, MessageStatus, Provider

__all__ = [
    "MalformedWebhook",
    "WhatsAppCloudDriver",
    "parse_whatsapp_webhook",
    "verify_whatsapp_handshake",
    "verify_whatsapp_signature",
]

#: Error codes that no retry can fix.
PERMANENT_WHATSAPP_CODES: frozenset[int] = frozenset(
    {
        100,  # invalid parameter
        131008,  # required parameter missing
        131009,  # parameter value not valid
        131021,  # sender and recipient are the same number
        131026,  # undeliverable: not on WhatsApp, old app, or blocked us
        131047,  # re-engagement: more than 24 h since the customer last wrote; send a template
        131051,  # unsupported message type
        132000,  # template parameter count mismatch
        132001,  # template does not exist in that language
    }
)

#: Rate limits and transient faults, with how long Meta's guidance says to wait.
RETRYABLE_WHATSAPP_CODES: dict[int, float] = {
    1: 5.0,  # API unknown
    2: 5.0,  # API service temporarily down
    4: 60.0,  # application request limit
    80007: 60.0,  # WhatsApp Business Account rate limit
    130429: 1.0,  # throughput per phone number exceeded
    131000: 5.0,  # something went wrong
    131016: 10.0,  # service unavailable
    131056: 6.0,  # pair rate: about one message every 6 s to the same customer
    133016: 60.0,  # registration rate limit
}

#: Limits on the whole number or account, so every send waits; the rest concern one message or customer.
CHANNEL_WIDE_WHATSAPP_CODES = frozenset({4, 80007, 130429, 133016})
_CREDENTIAL_CODES = frozenset({190, 200, 10})
_CREDENTIALS_BACKOFF_SECONDS = 300.0

_STATUS_MAP: dict[str, MessageStatus] = {
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.READ,
    "played": MessageStatus.READ,
    "failed": MessageStatus.FAILED,
}


class WhatsAppCloudDriver:
    """Sends WhatsApp text or template messages through `POST /{version}/{phone_number_id}/messages`."""

    channel: Channel = Channel.WHATSAPP
    provider: str = Provider.WHATSAPP_CLOUD
    receipts_name_our_id: bool = True

    def __init__(
        self,
        token: str,
        phone_number_id: str,
        base_url: str = "https://graph.facebook.com",
        api_version: str = "v21.0",
        *,
        timeout_seconds: float = 15.0,
    ) -> None:
        self.phone_number_id = phone_number_id
        self._messages_url = f"{base_url.rstrip('/')}/{api_version}/{phone_number_id}/messages"
        self.timeout_seconds = timeout_seconds
        self._http = PooledSession(
            total_timeout=timeout_seconds, headers={"Authorization": f"Bearer {token}"}
        )

    @staticmethod
    def request_body(message: OutboundMessage) -> dict[str, Any]:
        """The Graph API JSON for one message; our id rides along as `biz_opaque_callback_data`."""
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            # Meta wants the number without the leading '+'.
            "to": message.to.lstrip("+"),
            # Meta echoes this string in every status webhook, so a receipt finds our row even if
            # we crashed between Meta accepting the message and us recording the wamid.
            "biz_opaque_callback_data": str(message.message_id),
        }
        template = message.whatsapp_template
        if template is not None:
            body["type"] = "template"
            body["template"] = {
                "name": template.name,
                "language": {"code": template.language},
                "components": [dict(component) for component in template.components],
            }
        else:
            body["type"] = "text"
            body["text"] = {"body": message.body, "preview_url": False}
        return body

    async def send(self, message: OutboundMessage) -> ProviderAcceptance:
        # The Cloud API documents no idempotency header for /messages; a request Meta received
        # twice is sent twice. X-Idempotency-Key is honoured by our sandbox only, and costs
        # nothing to send; the real guard is ProviderError.maybe_accepted.
        headers = {"X-Idempotency-Key": message.idempotency_key}
        try:
            async with self._http.get().post(
                self._messages_url, json=self.request_body(message), headers=headers
            ) as response:
                try:
                    payload = await response.json(content_type=None)
                except ValueError:
                    payload = {}
                if not isinstance(payload, dict):
                    payload = {}
                if response.status == 200:
                    return _acceptance_from(payload)
                raise _error_from(response.status, payload, response.headers.get("Retry-After"))
        except ProviderError:
            raise
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise transport_failure("whatsapp", exc) from exc

    async def close(self) -> None:
        await self._http.close()


def _acceptance_from(payload: Mapping[str, Any]) -> ProviderAcceptance:
    messages = payload.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[0], dict):
        wamid = messages[0].get("id")
        if isinstance(wamid, str) and wamid:
            return ProviderAcceptance(provider_message_id=wamid, status=MessageStatus.QUEUED)
    raise ProviderError("whatsapp: accepted without a message id", code="no_id", maybe_accepted=True)


def _error_from(status: int, payload: Mapping[str, Any], retry_after: str | None) -> ProviderError:
    error = _object(payload.get("error"))
    raw_code = error.get("code")
    code = int(raw_code) if isinstance(raw_code, int | str) and str(raw_code).isdigit() else None
    details = _object(error.get("error_data")).get("details")
    text = f"whatsapp {status}: {error.get('message') or 'no error message'}"
    if details:
        text += f" ({details})"
    code_text = str(code) if code is not None else f"http_{status}"
    if code in RETRYABLE_WHATSAPP_CODES:
        return ProviderError(
            text,
            code=code_text,
            retry_after=retry_after_seconds(retry_after, RETRYABLE_WHATSAPP_CODES[code]),
            channel_wide=code in CHANNEL_WIDE_WHATSAPP_CODES,
        )
    if status == 429:
        return ProviderError(
            text, code=code_text, retry_after=retry_after_seconds(retry_after, 1.0), channel_wide=True
        )
    if status >= 500:
        return ProviderError(text, code=code_text, retry_after=retry_after_seconds(retry_after))
    if status in (401, 403) or code in _CREDENTIAL_CODES:
        return ProviderError(
            text, code=code_text, retry_after=_CREDENTIALS_BACKOFF_SECONDS, channel_wide=True
        )
    # PERMANENT_WHATSAPP_CODES and any other 4xx: the same request will be refused the same way.
    return ProviderError(text, code=code_text, permanent=True)


def verify_whatsapp_signature(app_secret: str, raw_body: bytes, header_value: str | None) -> bool:
    """Check `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app_secret, raw body)>` in constant time."""
    if not header_value or not app_secret:
        return False
    prefix, _, received = header_value.strip().partition("=")
    if prefix != "sha256" or not received:
        return False
    expected = hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, received.lower())


def verify_whatsapp_handshake(params: Mapping[str, str], verify_token: str) -> str | None:
    """Answer Meta's subscription GET: the challenge when mode and token match, otherwise None."""
    if params.get("hub.mode") != "subscribe" or not verify_token:
        return None
    received = params.get("hub.verify_token", "")
    if not hmac.compare_digest(received.encode(), verify_token.encode()):
        return None
    return params.get("hub.challenge")


def parse_whatsapp_webhook(
    payload: Mapping[str, Any],
) -> tuple[list[InboundMessage], list[DeliveryReceipt]]:
    """Read every inbound message and status receipt from one webhook envelope (all entries/changes)."""
    if not isinstance(payload, Mapping):
        raise MalformedWebhook("whatsapp webhook body is not a JSON object")
    if payload.get("object") != "whatsapp_business_account":
        raise MalformedWebhook(
            f"whatsapp webhook object is {payload.get('object')!r}, not whatsapp_business_account"
        )
    inbound: list[InboundMessage] = []
    receipts: list[DeliveryReceipt] = []
    for entry in _list_of_objects(payload, "entry", "webhook"):
        for change in _list_of_objects(entry, "changes", "entry"):
            if change.get("field", "messages") != "messages":
                continue  # account, template and quality updates are not about messages
            value = change.get("value")
            if not isinstance(value, Mapping):
                raise MalformedWebhook("whatsapp change has no 'value' object")
            inbound.extend(_inbound_messages(value))
            receipts.extend(_receipts(value))
    return inbound, receipts


def _list_of_objects(container: Mapping[str, Any], key: str, where: str) -> list[Mapping[str, Any]]:
    items = container.get(key)
    if not isinstance(items, list) or not all(isinstance(item, Mapping) for item in items):
        raise MalformedWebhook(f"whatsapp {where} needs '{key}' to be a list of objects")
    return items


def _optional_list(value: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    if key not in value:
        return []
    return _list_of_objects(value, key, "change value")


def _object(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _timestamp(raw: object) -> datetime:
    try:
        return datetime.fromtimestamp(int(str(raw)), tz=UTC)
    except (TypeError, ValueError) as exc:
        raise MalformedWebhook(f"whatsapp timestamp {raw!r} is not unix seconds") from exc


def _field(item: Mapping[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedWebhook(f"whatsapp {where} is missing '{key}'")
    return value


def _inbound_messages(value: Mapping[str, Any]) -> list[InboundMessage]:
    names = {
        str(contact.get("wa_id")): str(_object(contact.get("profile")).get("name") or "") or None
        for contact in _optional_list(value, "contacts")
    }
    metadata = _object(value.get("metadata"))
    business_number = str(metadata.get("display_phone_number") or metadata.get("phone_number_id") or "")
    found = []
    for item in _optional_list(value, "messages"):
        sender = _field(item, "from", "message")
        found.append(
            InboundMessage(
                provider=Provider.WHATSAPP_CLOUD,
                channel=Channel.WHATSAPP,
                provider_message_id=_field(item, "id", "message"),
                from_address=sender,
                to_address=business_number,
                body=_message_text(item),
                received_at=_timestamp(item.get("timestamp")),
                sender_name=names.get(sender),
            )
        )
    return found


def _message_text(item: Mapping[str, Any]) -> str:
    """The words a customer sent, whatever kind of message carried them."""
    kind = str(item.get("type", "text"))
    content = _object(item.get(kind))
    if kind == "text":
        return str(content.get("body", ""))
    if kind == "button":
        return str(content.get("text") or content.get("payload") or "")
    if kind == "interactive":
        reply = _object(content.get("button_reply") or content.get("list_reply"))
        return str(reply.get("title") or reply.get("id") or "")
    if kind == "reaction":
        return str(content.get("emoji", ""))
    return str(content.get("caption") or f"[{kind}]")


def _receipts(value: Mapping[str, Any]) -> list[DeliveryReceipt]:
    found = []
    for item in _optional_list(value, "statuses"):
        raw_status = _field(item, "status", "status")
        status = _STATUS_MAP.get(raw_status)
        if status is None:
            continue  # Meta adds new statuses now and then; one we do not know moves nothing
        errors = item.get("errors") if isinstance(item.get("errors"), list) else []
        first_error = _object(errors[0]) if errors else {}
        error_data = _object(first_error.get("error_data"))
        opaque = str(item.get("biz_opaque_callback_data") or "")
        found.append(
            DeliveryReceipt(
                provider=Provider.WHATSAPP_CLOUD,
                provider_message_id=_field(item, "id", "status"),
                status=status,
                occurred_at=_timestamp(item.get("timestamp")),
                error_code=str(first_error["code"]) if "code" in first_error else None,
                error_detail=(
                    error_data.get("details") or first_error.get("message") or first_error.get("title")
                )
                or None,
                our_message_id=int(opaque) if opaque.isdigit() else None,
            )
        )
    return found
