"""Twilio webhooks: check that a callback is genuine and read it into port values."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Mapping
from datetime import datetime
from urllib.parse import parse_qs, urlencode, urlsplit
from xml.sax.saxutils import escape

from twilio.request_validator import RequestValidator

from domain.clock import utc_now
from domain.consent.keywords import interpret_keyword, keyword_language, keyword_reply
from domain.conversations.attachments import MediaReference
from domain.conversations.model import CustomerMessage, WebhookContents, WebhookDelivery, body_digest
from domain.conversations.newcomers import sender_language
from domain.delivery.ports import (
    DeliveryReceipt,
    InboundMessage,
)
from domain.vocabulary import Channel, Provider
from providers.http import money_to_micros
from providers.twilio.driver import MESSAGE_ID_PARAM, STATUS_CALLBACK_PATH, TWILIO_STATUSES
from providers.webhook_bodies import (
    FORBIDDEN,
    Accepted,
    IncomingWebhook,
    MalformedWebhook,
    ReadingContext,
    WebhookAnswer,
    WebhookEndpoint,
    form_params,
)
from switchboard.settings import Settings

#: Status-callback error codes and what they mean, for receipts (Twilio sends only the code).
TWILIO_ERROR_TEXT: dict[str, str] = {
    "30003": "Unreachable destination handset",
    "30004": "Message blocked",
    "30005": "Unknown destination handset",
    "30006": "Landline or unreachable carrier",
    "30007": "Message filtered by the carrier",
    "30008": "Unknown error",
    "21610": "Recipient has opted out",
}

log = logging.getLogger(__name__)


def verify_twilio_signature(
    auth_token: str, url: str, params: Mapping[str, str], signature: str | None
) -> bool:
    """Check X-Twilio-Signature against the full public URL Twilio called and its POST parameters."""
    if not signature or not auth_token:
        return False
    # Twilio's algorithm for the exact URL first (the common case, and cheap); the reference validator
    # then also tries the URL with and without its default port, as Twilio's own libraries do.
    signed = url + "".join(name + params[name] for name in sorted(params))
    digest = base64.b64encode(hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest())
    if hmac.compare_digest(digest, signature.encode()):
        return True
    return bool(RequestValidator(auth_token).validate(url, dict(params), signature))


def _required(params: Mapping[str, str], *names: str) -> str:
    for name in names:
        value = params.get(name)
        if value:
            return value
    raise MalformedWebhook(f"twilio webhook is missing {' / '.join(names)}")


def parse_twilio_inbound(params: Mapping[str, str], *, received_at: datetime | None = None) -> InboundMessage:
    """Read Twilio's incoming-message webhook (form fields MessageSid, From, To, Body)."""
    return InboundMessage(
        provider=Provider.TWILIO,
        channel=Channel.SMS,
        provider_message_id=_required(params, "MessageSid", "SmsMessageSid", "SmsSid"),
        from_address=_required(params, "From"),
        to_address=_required(params, "To"),
        body=params.get("Body", "") or ("[attachment]" if _media_count(params) else ""),
        received_at=received_at or utc_now(),
    )


#: Twilio sends at most ten media per MMS.
MAX_MEDIA = 10


def _media_count(params: Mapping[str, str]) -> int:
    count = params.get("NumMedia", "0")
    return min(int(count), MAX_MEDIA) if count.isdigit() else 0


def message_media(params: Mapping[str, str]) -> tuple[MediaReference, ...]:
    """The files an MMS carries: MediaUrl0..N with MediaContentType0..N, fetched with the account's key."""
    found = []
    for index in range(_media_count(params)):
        url = params.get(f"MediaUrl{index}", "")
        if url:
            declared = params.get(f"MediaContentType{index}") or None
            found.append(MediaReference(Provider.TWILIO.value, url, "file", declared_type=declared))
    return tuple(found)


def parse_twilio_status(
    params: Mapping[str, str], callback_url: str | None = None, *, occurred_at: datetime | None = None
) -> DeliveryReceipt:
    """Read a status callback; our message id comes from `mid` in the form or in the callback URL."""
    sid = _required(params, "MessageSid", "SmsSid")
    raw_status = _required(params, "MessageStatus", "SmsStatus").lower()
    status = TWILIO_STATUSES.get(raw_status)
    if status is None:
        raise MalformedWebhook(f"twilio status callback has unknown MessageStatus {raw_status!r}")
    error_code = params.get("ErrorCode") or None
    return DeliveryReceipt(
        provider=Provider.TWILIO,
        provider_message_id=sid,
        status=status,
        occurred_at=occurred_at or utc_now(),
        error_code=error_code,
        error_detail=(params.get("ErrorMessage") or TWILIO_ERROR_TEXT.get(error_code or "")) or None,
        our_message_id=_message_id_from(params, callback_url),
        cost_micros=money_to_micros(params.get("Price")),
    )


def _message_id_from(params: Mapping[str, str], callback_url: str | None) -> int | None:
    candidate = params.get(MESSAGE_ID_PARAM)
    if candidate is None and callback_url:
        values = parse_qs(urlsplit(callback_url).query).get(MESSAGE_ID_PARAM)
        candidate = values[0] if values else None
    return int(candidate) if candidate and candidate.isdigit() else None


#: Inbox `kind` values of Twilio's two webhooks.
STATUS_KIND = "status"
INBOUND_KIND = "inbound"


def twilio_delivery(kind: str, params: Mapping[str, str], key_fields: tuple[str, ...]) -> WebhookDelivery:
    """Keeps a verified callback for the inbox, deduped by the named fields (or the body without them)."""
    body = urlencode(params)
    values = [params.get(name, "") for name in key_fields]
    key = ":".join(values) if all(values) else body_digest(body.encode())
    return WebhookDelivery(Provider.TWILIO.value, kind, key, body, "application/x-www-form-urlencoded")


def read_status(delivery: WebhookDelivery, context: ReadingContext) -> WebhookContents:
    return WebhookContents(receipts=(parse_twilio_status(form_params(delivery.body)),))


def read_inbound(delivery: WebhookDelivery, context: ReadingContext) -> WebhookContents:
    params = form_params(delivery.body)
    return WebhookContents(
        messages=(CustomerMessage(parse_twilio_inbound(params), media=message_media(params)),)
    )


# --- the two webhook URLs --------------------------------------------------------------------------------

TWIML = "text/xml"


def twiml(reply: str | None = None) -> WebhookAnswer:
    """Twilio's answer: empty TwiML, or a <Message> that Twilio sends back to the customer."""
    inner = f"<Message>{escape(reply)}</Message>" if reply else ""
    xml = f'<?xml version="1.0" encoding="UTF-8"?><Response>{inner}</Response>' if inner else "<Response/>"
    return WebhookAnswer(xml, media_type=TWIML)


async def _verified_form(incoming: IncomingWebhook, settings: Settings) -> dict[str, str] | None:
    """The form parameters when X-Twilio-Signature matches our public URL + path + query, else None."""
    body = (await incoming.read_body()).decode("utf-8", "replace")
    query = incoming.query
    url = settings.public_url.rstrip("/") + incoming.path + (f"?{query}" if query else "")
    params = form_params(body)
    signature = incoming.header("x-twilio-signature")
    if not verify_twilio_signature(settings.twilio_auth_token.get_secret_value(), url, params, signature):
        log.warning("twilio webhook %s refused: bad or missing signature", incoming.path)
        return None
    our_id = form_params(query).get(MESSAGE_ID_PARAM)
    if our_id:
        params.setdefault(MESSAGE_ID_PARAM, our_id)  # keep our message id from the callback URL
    return params


async def accept_status(incoming: IncomingWebhook, settings: Settings) -> Accepted | WebhookAnswer:
    params = await _verified_form(incoming, settings)
    if params is None:
        return WebhookAnswer("forbidden", 403)
    delivery = twilio_delivery(STATUS_KIND, params, ("MessageSid", "MessageStatus"))
    return Accepted(delivery, twiml(), receipts_only=True)


async def accept_inbound(incoming: IncomingWebhook, settings: Settings) -> Accepted | WebhookAnswer:
    params = await _verified_form(incoming, settings)
    if params is None:
        return WebhookAnswer("forbidden", 403)
    delivery = twilio_delivery(INBOUND_KIND, params, ("MessageSid",))
    # The carrier-style confirmation travels in the TwiML answer, also for a retried duplicate.
    action = interpret_keyword(params.get("Body", ""))
    body = params.get("Body", "")
    answer = (
        twiml()
        if action is None
        else twiml(
            keyword_reply(
                action,
                settings.business_name,
                Channel.SMS,
                language=keyword_language(
                    body,
                    sender_language(Channel.SMS, params.get("From", ""), None, settings.customer_language),
                ),
            )
        )
    )
    return Accepted(delivery, answer)


#: What the API document says the routes answer (the answers themselves are text/xml, as Twilio expects).
DECLARED_MEDIA_TYPE = "application/xml"

ENDPOINTS = (
    WebhookEndpoint(
        "twilio_status", "POST", STATUS_CALLBACK_PATH, DECLARED_MEDIA_TYPE, {403: FORBIDDEN}, accept_status
    ),
    WebhookEndpoint(
        "twilio_inbound",
        "POST",
        "/webhooks/twilio/inbound",
        DECLARED_MEDIA_TYPE,
        {403: FORBIDDEN},
        accept_inbound,
    ),
)
