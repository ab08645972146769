"""WhatsApp webhooks: check that a callback is genuine and read it into port values."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from domain.conversations.attachments import MediaReference
from domain.conversations.model import CustomerMessage, WebhookContents, WebhookDelivery, body_digest
from domain.delivery.ports import (
    DeliveryReceipt,
    InboundMessage,
)
from domain.vocabulary import Channel, MessageStatus, Provider
from providers.webhook_bodies import (
    FORBIDDEN,
    UNAUTHORIZED,
    Accepted,
    IncomingWebhook,
    MalformedWebhook,
    ReadingContext,
    WebhookAnswer,
    WebhookEndpoint,
    json_object,
)
from switchboard.settings import Settings

_STATUS_MAP: dict[str, MessageStatus] = {
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.READ,
    "played": MessageStatus.READ,
    "failed": MessageStatus.FAILED,
}

log = logging.getLogger(__name__)


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


#: Message types that carry a file, fetched by its media id (GET /{media-id}, then its URL).
MEDIA_TYPES = ("image", "document", "sticker", "video", "audio")


def message_media(item: Mapping[str, Any]) -> tuple[MediaReference, ...]:
    """The file a WhatsApp message carries (a photo, a PDF, a voice note), by its media id."""
    kind = str(item.get("type", "text"))
    content = _object(item.get(kind))
    media_id = content.get("id")
    if kind not in MEDIA_TYPES or not isinstance(media_id, str) or not media_id:
        return ()
    kind = "voice" if kind == "audio" and content.get("voice") else kind
    return (
        MediaReference(
            provider=Provider.WHATSAPP_CLOUD.value,
            locator=media_id,
            kind=kind,
            declared_type=str(content.get("mime_type") or "") or None,
            filename=str(content.get("filename") or "") or None,
        ),
    )


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


#: Inbox `kind` of Meta's one webhook (statuses and customer messages alike).
WEBHOOK_KIND = "webhook"


def read_webhook(delivery: WebhookDelivery, context: ReadingContext) -> WebhookContents:
    payload = json_object(delivery.body, "whatsapp webhook")
    inbound, receipts = parse_whatsapp_webhook(payload)
    media = _media_by_message(payload)
    return WebhookContents(
        tuple(receipts),
        tuple(CustomerMessage(m, media=media.get(m.provider_message_id, ())) for m in inbound),
    )


def _media_by_message(payload: Mapping[str, Any]) -> dict[str, tuple[MediaReference, ...]]:
    found: dict[str, tuple[MediaReference, ...]] = {}
    for entry in _list_of_objects(payload, "entry", "webhook"):
        for change in _list_of_objects(entry, "changes", "entry"):
            for item in _optional_list(_object(change.get("value")), "messages"):
                media = message_media(item)
                if media:
                    found[str(item.get("id"))] = media
    return found


# --- the webhook URL: Meta's subscription handshake (GET) and its signed notifications (POST) ------------

#: A "messages" key (not the "field": "messages" value every envelope carries) means customers wrote.
INBOUND_MESSAGES_KEY = re.compile(rb'"messages"\s*:')
PATH = "/webhooks/whatsapp"


async def accept_handshake(incoming: IncomingWebhook, settings: Settings) -> Accepted | WebhookAnswer:
    challenge = verify_whatsapp_handshake(
        incoming.query_params(), settings.whatsapp_verify_token.get_secret_value()
    )
    return WebhookAnswer("forbidden", 403) if challenge is None else WebhookAnswer(challenge)


async def accept_notification(incoming: IncomingWebhook, settings: Settings) -> Accepted | WebhookAnswer:
    raw = await incoming.read_body()  # the signature covers these exact bytes: read them before any parsing
    signature = incoming.header("x-hub-signature-256")
    if not signature:
        return WebhookAnswer("missing signature", 401)
    secret = settings.whatsapp_app_secret.get_secret_value()
    # A signature is hex; one that is not even ASCII cannot match (and hmac refuses to compare it).
    if not signature.isascii() or not verify_whatsapp_signature(secret, raw, signature):
        log.warning("whatsapp webhook refused: bad signature")
        return WebhookAnswer("forbidden", 403)
    # Meta retries the identical body, so the body itself is the dedupe key.
    delivery = WebhookDelivery(
        Provider.WHATSAPP_CLOUD.value, WEBHOOK_KIND, body_digest(raw), raw.decode("utf-8", "replace")
    )
    # Status-only notifications (the bulk of Meta's traffic) share transactions; anything else goes alone.
    only_statuses = b'"statuses"' in raw and not INBOUND_MESSAGES_KEY.search(raw)
    return Accepted(delivery, WebhookAnswer("ok"), receipts_only=only_statuses)


ENDPOINTS = (
    WebhookEndpoint(
        "whatsapp_handshake",
        "GET",
        PATH,
        "text/plain",
        {403: "The verify token does not match."},
        accept_handshake,
    ),
    WebhookEndpoint(
        "whatsapp_webhook",
        "POST",
        PATH,
        "text/plain",
        {401: UNAUTHORIZED, 403: FORBIDDEN},
        accept_notification,
    ),
)
