"""The sandbox's stand-in for Twilio's 2010-04-01 Messages API and the webhooks Twilio sends."""

from __future__ import annotations

import base64
import logging
import re
import secrets
import uuid
from dataclasses import replace
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

from aiohttp import web
from twilio.request_validator import RequestValidator

from api.sandbox import media
from api.sandbox.keys import STATE, WEBHOOKS
from api.sandbox.state import SandboxMessage, SandboxState, address_key, now_utc
from api.sandbox.webhooks import WebhookDelivery, WebhookDispatcher
from domain.messages.pricing import DEFAULT_PRICE_BOOK

log = logging.getLogger(__name__)
PROVIDER = "twilio"
API = "/2010-04-01/Accounts/{account_sid}"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€"
)
#: Twilio's documented magic test numbers and the errors they produce.
MAGIC_TO_NUMBERS: dict[str, tuple[int, str]] = {
    "+15005550001": (21211, "The 'To' number +15005550001 is not a valid phone number."),
    "+15005550002": (21612, "The 'To' phone number is not currently reachable via SMS."),
    "+15005550003": (21408, "Permission to send an SMS has not been enabled for the region."),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (21614, "'To' number is not a valid mobile number"),
}
#: Delivery failures the sandbox picks from: (final status, ErrorCode).
FAILURES = (("undelivered", "30003"), ("undelivered", "30005"), ("failed", "30006"))
OPT_OUT_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}
OPT_IN_WORDS = {"START", "YES", "UNSTOP"}


def twilio_error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return web.json_response(body, status=status, headers=headers)


def new_sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def segments(body: str) -> int:
    if all(char in GSM7 for char in body):
        single, part = 160, 153
        length = len(body) + sum(1 for char in body if char in "^{}\\[~]|€")
    else:
        single, part = 70, 67
        length = len(body.encode("utf-16-le")) // 2
    return 1 if length <= single else -(-length // part)


def resource(state: SandboxState, message: SandboxMessage) -> dict[str, Any]:
    """The Message resource JSON, as Twilio answers create and fetch."""
    account = state.config.twilio_account_sid
    uri = f"/2010-04-01/Accounts/{account}/Messages/{message.provider_message_id}"
    stamp = format_datetime(message.created_at, usegmt=True)
    return {
        "account_sid": account,
        "api_version": "2010-04-01",
        "body": message.body,
        "date_created": stamp,
        "date_sent": stamp if message.status not in ("queued", "accepted") else None,
        "date_updated": format_datetime(now_utc(), usegmt=True),
        "direction": "outbound-api" if message.direction == "outbound" else "inbound",
        "error_code": int(message.error_code) if message.error_code else None,
        "error_message": None,
        "from": message.sender,
        "messaging_service_sid": None,
        "num_media": "0",
        "num_segments": str(segments(message.body)),
        "price": message.details.get("price"),
        "price_unit": "USD",
        "sid": message.provider_message_id,
        "status": message.status,
        "subresource_uris": {"media": f"{uri}/Media.json", "feedback": f"{uri}/Feedback.json"},
        "to": message.to,
        "uri": f"{uri}.json",
    }


def _authorized(request: web.Request, state: SandboxState) -> bool:
    config = state.config
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return False
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    return (
        secrets.compare_digest(user, config.twilio_account_sid)
        and secrets.compare_digest(password, config.twilio_auth_token)
        and request.match_info["account_sid"] == config.twilio_account_sid
    )


def _unauthorized() -> web.Response:
    return twilio_error(401, 20003, "Authenticate", {"WWW-Authenticate": 'Basic realm="Twilio API"'})


def _injected(state: SandboxState, fault: str) -> web.Response:
    state.count("injected_errors", PROVIDER)
    if fault == "429":
        state.count("injected_429s", PROVIDER)
        retry = str(state.config.chaos.retry_after_seconds)
        return twilio_error(429, 20429, "Too Many Requests", {"Retry-After": retry})
    if fault == "503":
        return twilio_error(503, 20503, "Service Unavailable")
    return twilio_error(500, 20500, "Internal Server Error")


def _refusal(state: SandboxState, to: str, sender: str, body: str | None) -> web.Response | None:
    if not to:
        return twilio_error(400, 21604, "A 'To' phone number is required.")
    if not sender:
        return twilio_error(400, 21603, "A 'From' phone number is required.")
    if not body:
        return twilio_error(400, 21602, "Message body is required.")
    if len(body) > 1600:
        return twilio_error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
    if to in MAGIC_TO_NUMBERS:
        code, text = MAGIC_TO_NUMBERS[to]
        return twilio_error(400, code, text)
    if not E164.match(to):
        return twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
    if state.is_opted_out(to):
        return twilio_error(400, 21610, "Attempt to send to unsubscribed recipient")
    return None


async def create_message(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if not _authorized(request, state):
        return _unauthorized()
    form = await request.post()
    key = request.headers.get("I-Twilio-Idempotency-Token")
    earlier = state.previous_send(PROVIDER, key)
    if earlier is not None:
        return web.json_response(resource(state, earlier), status=201)
    fault = state.draw_fault(PROVIDER)
    if fault is not None and fault != "timeout":
        return _injected(state, fault)
    if not state.take_rate_token(PROVIDER):
        state.count("rate_limited_429s", PROVIDER)
        return twilio_error(429, 20429, "Too Many Requests", {"Retry-After": "1"})
    to, sender = str(form.get("To", "")), str(form.get("From", ""))
    body = str(form.get("Body", "")) or None
    refusal = _refusal(state, to, sender, body)
    if refusal is not None:
        return refusal
    callback = str(form.get("StatusCallback", "")) or None
    message = state.accept(
        SandboxMessage(
            provider=PROVIDER,
            provider_message_id=new_sid("SM"),
            to=to,
            sender=sender,
            body=body or "",
            status="queued",
            idempotency_key=key,
            our_message_id=_mid(callback),
            callback_url=callback,
        )
    )
    if callback and state.config.send_status_webhooks:
        request.app[WEBHOOKS].spawn(_progress(state, request.app[WEBHOOKS], message))
    answer = resource(state, message)
    if fault == "timeout":
        state.count("injected_errors", PROVIDER)
        await state.hang(state.config.chaos.hang_seconds)
    return web.json_response(answer, status=201)


def _mid(callback: str | None) -> int | None:
    if not callback:
        return None
    found = re.search(r"[?&]mid=(\d+)", callback)
    return int(found.group(1)) if found else None


def signed_delivery(
    state: SandboxState, url: str, params: dict[str, str], description: str
) -> WebhookDelivery:
    """A form POST signed the way Twilio signs: over the exact URL plus the sorted parameters."""
    signature = RequestValidator(state.config.twilio_auth_token).compute_signature(url, params)
    return WebhookDelivery(
        provider=PROVIDER,
        url=url,
        body=urlencode(params).encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
            # Twilio's own per-event token, so receivers can drop its webhook retries.
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            "User-Agent": "TwilioProxy/1.1",
        },
        description=description,
    )


async def _progress(state: SandboxState, webhooks: WebhookDispatcher, message: SandboxMessage) -> None:
    """queued -> sent -> delivered (or undelivered/failed with a carrier error), one callback each."""
    steps: list[tuple[str, str | None]] = [("queued", None), ("sent", None)]
    steps.append(state.random.choice(FAILURES) if state.should_fail() else ("delivered", None))
    for status, error_code in steps:
        await _sleep(state)
        if message.deleted:
            return  # its record was deleted (only once finished, so this is a test moving it by hand)
        if status != "queued":
            message.move_to(status, error_code)
        if status in ("sent", "delivered"):
            # Twilio's list price for the destination's country, as Switchboard's estimates use it.
            price = DEFAULT_PRICE_BOOK.sms_segment_price(message.to) / 1_000_000
            message.details["price"] = f"-{price * segments(message.body):.5f}"
        params = {
            "AccountSid": state.config.twilio_account_sid,
            "ApiVersion": "2010-04-01",
            "From": message.sender,
            "MessageSid": message.provider_message_id,
            "MessageStatus": status,
            "SmsSid": message.provider_message_id,
            "SmsStatus": status,
            "To": message.to,
        }
        if error_code:
            params["ErrorCode"] = error_code
        assert message.callback_url is not None
        webhooks.submit(signed_delivery(state, message.callback_url, params, f"status {status}"))


async def _sleep(state: SandboxState) -> None:
    await state.hang(state.latency())


def _the_message(request: web.Request) -> SandboxMessage | web.Response:
    """The message a `.../Messages/{sid}.json` request names, or Twilio's answer when there is none to give."""
    state = request.app[STATE]
    if not _authorized(request, state):
        return _unauthorized()
    message = state.find(PROVIDER, request.match_info["sid"])
    if message is None:
        return twilio_error(404, 20404, f"The requested resource {request.path} was not found")
    return message


async def fetch_message(request: web.Request) -> web.Response:
    message = _the_message(request)
    if isinstance(message, web.Response):
        return message
    return web.json_response(resource(request.app[STATE], message))


#: Statuses after which Twilio lets a message's record be deleted; before them (and at "sent", while a
#: delivery receipt may still come) it answers 20009.
DELETABLE = frozenset({"delivered", "read", "undelivered", "failed", "received", "canceled"})


async def delete_message(request: web.Request) -> web.Response:
    """DELETE .../Messages/{sid}.json: the record (body, numbers) leaves the account's logs; 204. Twilio
    refuses a message still on its way with 20009, and a record it no longer has with 20404."""
    message = _the_message(request)
    if isinstance(message, web.Response):
        return message
    if message.status not in DELETABLE:
        return twilio_error(409, 20009, "Cannot delete this resource before it is complete")
    request.app[STATE].forget(message)
    return web.Response(status=204)


async def fetch_account(request: web.Request) -> web.Response:
    """GET /2010-04-01/Accounts/{AccountSid}.json: the account behind the credentials (what `doctor` asks)."""
    state = request.app[STATE]
    if not _authorized(request, state):
        return _unauthorized()
    sid = state.config.twilio_account_sid
    return web.json_response(
        {
            "sid": sid,
            "owner_account_sid": sid,
            "friendly_name": "Switchboard sandbox",
            "status": "active",
            "type": "Full",
            "date_created": "Mon, 01 Jun 2026 00:00:00 +0000",
            "uri": f"/2010-04-01/Accounts/{sid}.json",
        }
    )


async def list_incoming_numbers(request: web.Request) -> web.Response:
    """GET .../IncomingPhoneNumbers.json[?PhoneNumber=]: the account's one number and where its SMS go."""
    state = request.app[STATE]
    if not _authorized(request, state):
        return _unauthorized()
    config = state.config
    wanted = request.query.get("PhoneNumber")
    numbers = [
        {
            "sid": "PN" + "0" * 32,
            "account_sid": config.twilio_account_sid,
            "phone_number": config.twilio_phone_number,
            "friendly_name": config.twilio_phone_number,
            "sms_url": config.webhook_url(config.twilio_inbound_path),
            "sms_method": "POST",
            "status_callback": "",
            "capabilities": {"sms": True, "mms": True, "voice": False, "fax": False},
            "status": "in-use",
        }
    ]
    chosen = [n for n in numbers if wanted is None or n["phone_number"] == wanted]
    uri = f"/2010-04-01/Accounts/{config.twilio_account_sid}/IncomingPhoneNumbers.json"
    return web.json_response(
        {
            "incoming_phone_numbers": chosen,
            "end": max(0, len(chosen) - 1),
            "first_page_uri": uri + "?PageSize=50&Page=0",
            "next_page_uri": None,
            "page": 0,
            "page_size": 50,
            "previous_page_uri": None,
            "start": 0,
            "uri": uri,
        }
    )


async def list_messages(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if not _authorized(request, state):
        return _unauthorized()
    to, sender = request.query.get("To"), request.query.get("From")
    page_size = min(1000, int(request.query.get("PageSize", "50") or 50))
    chosen = [
        m
        for m in reversed(state.messages)
        if m.provider == PROVIDER and (to is None or m.to == to) and (sender is None or m.sender == sender)
    ][:page_size]
    uri = f"/2010-04-01/Accounts/{state.config.twilio_account_sid}/Messages.json?PageSize={page_size}&Page=0"
    return web.json_response(
        {
            "messages": [resource(state, m) for m in chosen],
            "end": max(0, len(chosen) - 1),
            "first_page_uri": uri,
            "next_page_uri": None,
            "page": 0,
            "page_size": page_size,
            "previous_page_uri": None,
            "start": 0,
            "uri": uri,
        }
    )


def customer_texts(
    state: SandboxState,
    webhooks: WebhookDispatcher,
    sender: str,
    body: str,
    to: str | None,
    upload: media.Upload | None = None,
    media_base: str = "",
) -> str:
    """A pretend customer sends an SMS: Twilio's opt-out handling, then a signed inbound webhook. With an
    `upload` it is an MMS: MediaUrl0 (at `media_base`, the sandbox's address) and MediaContentType0."""
    to = to or state.config.twilio_phone_number
    word = body.strip().upper()
    if word in OPT_OUT_WORDS:
        state.opt_out(sender)
    elif word in OPT_IN_WORDS:
        state.opt_in(sender)
    sid = new_sid("SM")
    state.accept(
        SandboxMessage(
            PROVIDER,
            sid,
            to=to,
            sender=sender,
            body=media.shown(body, upload),
            status="received",
            direction="inbound",
        )
    )
    params = {
        "AccountSid": state.config.twilio_account_sid,
        "ApiVersion": "2010-04-01",
        "Body": body,
        "From": sender,
        "MessageSid": sid,
        "NumMedia": "0",
        "NumSegments": str(segments(body)),
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "SmsStatus": "received",
        "To": to,
        "ToCountry": "US",
        "FromCountry": "US" if address_key(sender).startswith("1") else "",
    }
    if upload is not None:
        media_sid = new_sid("ME")
        media.keep(state, media_sid, upload)
        params["NumMedia"] = "1"
        params["MediaUrl0"] = media.twilio_media_url(state, media_base, sid, media_sid)
        params["MediaContentType0"] = upload.content_type
    url = state.config.webhook_url(state.config.twilio_inbound_path)
    delivery = signed_delivery(state, url, params, "inbound sms")
    webhooks.submit(
        replace(delivery, on_answer=lambda kind, answer: _twiml_replies(state, sender, to, answer))
    )
    return sid


def _twiml_replies(state: SandboxState, customer: str, our_number: str, answer: bytes) -> None:
    """Twilio sends each <Message> of a TwiML answer to the customer as an SMS from our number."""
    if not answer.strip():
        return
    try:
        # Our own app's answer; expat (Python 3.11) refuses entity expansion attacks.
        root = ElementTree.fromstring(answer)  # noqa: S314
    except ElementTree.ParseError:
        log.warning("sandbox: the answer to an inbound SMS is not TwiML: %r", answer[:200])
        return
    for element in root.iter("Message"):
        body = "".join(element.itertext()).strip()
        if body:
            message = SandboxMessage(
                PROVIDER, new_sid("SM"), to=customer, sender=our_number, body=body, status="delivered"
            )
            message.details["via"] = "TwiML answer to the customer's message"
            state.accept(message)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/2010-04-01/Accounts/{account_sid}.json", fetch_account),
        web.get(f"{API}/IncomingPhoneNumbers.json", list_incoming_numbers),
        web.post(f"{API}/Messages.json", create_message),
        web.get(f"{API}/Messages.json", list_messages),
        web.get(API + "/Messages/{sid}.json", fetch_message),
        web.delete(API + "/Messages/{sid}.json", delete_message),
    ]
