"""Provider webhook routes, thin: verify the signature, keep the webhook in the inbox, hand over, answer."""

from __future__ import annotations

import logging
import re
from typing import Any
from xml.sax.saxutils import escape

from litestar import MediaType, Request, Response, get, post
from litestar.exceptions import ClientException
from litestar.openapi import ResponseSpec
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_400_BAD_REQUEST,
    HTTP_401_UNAUTHORIZED,
    HTTP_403_FORBIDDEN,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
)

from api.problems import Problem
from api.rest.common import bearer_matches
from domain.consent.keywords import interpret_keyword, keyword_reply
from domain.conversations.model import WebhookDelivery, WebhookOutcome, body_digest
from domain.conversations.use_cases import receive_webhook, replay_failed_webhooks
from domain.vocabulary import Channel, Provider
from providers.smtp.webhooks import email_delivery
from providers.telegram.webhooks import UPDATE_KIND as TELEGRAM_UPDATE
from providers.telegram.webhooks import verify_telegram_secret
from providers.twilio.driver import MESSAGE_ID_PARAM
from providers.twilio.webhooks import INBOUND_KIND as TWILIO_INBOUND
from providers.twilio.webhooks import STATUS_KIND as TWILIO_STATUS
from providers.twilio.webhooks import twilio_delivery, verify_twilio_signature
from providers.webhook_bodies import MalformedWebhook, form_params, json_object
from providers.whatsapp.webhooks import WEBHOOK_KIND as WHATSAPP_WEBHOOK
from providers.whatsapp.webhooks import verify_whatsapp_handshake, verify_whatsapp_signature
from switchboard.wiring import Container

log = logging.getLogger(__name__)

AnyRequest = Request[Any, Any, Any]

#: Provider webhooks are small (a status callback is under 1 kB; an email with attachments is the largest).
MAX_WEBHOOK_BYTES = 10 * 1024 * 1024
#: A "messages" key (not the "field": "messages" value every envelope carries) means customers wrote.
INBOUND_MESSAGES_KEY = re.compile(rb'"messages"\s*:')


def _container(request: AnyRequest) -> Container:
    container: Container = request.app.state.container
    return container


def _header(request: AnyRequest, name: bytes) -> str | None:
    """One request header straight from the ASGI scope (``name`` in lower case): provider webhooks are
    the hot path, and building Litestar's full header mapping for one value costs more than the lookup."""
    for key, value in request.scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def _body(request: AnyRequest) -> bytes:
    """The raw body, read from the ASGI channel; over MAX_WEBHOOK_BYTES is refused with 413."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientException("the client went away before sending the whole body")
        chunk = bytes(message.get("body", b""))  # type: ignore[call-overload]
        size += len(chunk)
        if size > MAX_WEBHOOK_BYTES:
            raise ClientException("webhook body too large", status_code=HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _receive(container: Container, delivery: WebhookDelivery) -> WebhookOutcome:
    return await receive_webhook(
        container.conversation_uow, delivery, container.webhook_reader(), container.inbound_policy()
    )


async def _receive_receipts(container: Container, delivery: WebhookDelivery) -> WebhookOutcome:
    """Receipt-only webhooks share transactions with the others arriving at the same moment (group commit)."""
    return await container.receipt_batcher.submit(delivery)


async def replay_webhooks(container: Container, limit: int = 100) -> tuple[int, int]:
    """`switchboard webhooks replay`: applies failed inbox rows again; (replayed, still failing)."""
    return await replay_failed_webhooks(
        container.conversation_uow, container.webhook_reader(), container.inbound_policy(), limit
    )


def _said(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=str, media_type=MediaType.TEXT, description=description)


#: A body over MAX_WEBHOOK_BYTES, answered with a Problem.
TOO_LARGE = ResponseSpec(data_container=Problem, description="The body is larger than 10 MB.")
FORBIDDEN = _said("The signature does not match: the webhook is not from the provider.")
UNAUTHORIZED = _said("The request carries no signature or token, or a wrong one.")


def _plain(text: str, status_code: int = HTTP_200_OK) -> Response[str]:
    return Response(text, status_code=status_code, media_type="text/plain")


def _twiml(reply: str | None = None) -> Response[str]:
    inner = f"<Message>{escape(reply)}</Message>" if reply else ""
    xml = f'<?xml version="1.0" encoding="UTF-8"?><Response>{inner}</Response>' if inner else "<Response/>"
    return Response(xml, status_code=HTTP_200_OK, media_type="text/xml")


# --- Twilio -------------------------------------------------------------------------------------------


async def _verified_twilio_form(request: AnyRequest) -> dict[str, str] | None:
    """The form parameters when X-Twilio-Signature matches our public URL + path + query, else None."""
    settings = _container(request).settings
    body = (await _body(request)).decode("utf-8", "replace")
    query = request.scope.get("query_string", b"").decode("latin-1")
    url = settings.public_url.rstrip("/") + request.url.path + (f"?{query}" if query else "")
    params = form_params(body)
    signature = _header(request, b"x-twilio-signature")
    if not verify_twilio_signature(settings.twilio_auth_token.get_secret_value(), url, params, signature):
        log.warning("twilio webhook %s refused: bad or missing signature", request.url.path)
        return None
    our_id = form_params(query).get(MESSAGE_ID_PARAM)
    if our_id:
        params.setdefault(MESSAGE_ID_PARAM, our_id)  # keep our message id from the callback URL
    return params


TWILIO_ANSWERS = {HTTP_403_FORBIDDEN: FORBIDDEN, HTTP_413_REQUEST_ENTITY_TOO_LARGE: TOO_LARGE}


@post(
    "/webhooks/twilio/status",
    exclude_from_auth=True,
    status_code=HTTP_200_OK,
    name="twilio_status",
    media_type=MediaType.XML,
    responses=TWILIO_ANSWERS,
)
async def twilio_status(request: AnyRequest) -> Response[str]:
    params = await _verified_twilio_form(request)
    if params is None:
        return _plain("forbidden", HTTP_403_FORBIDDEN)
    delivery = twilio_delivery(TWILIO_STATUS, params, ("MessageSid", "MessageStatus"))
    await _receive_receipts(_container(request), delivery)
    return _twiml()


@post(
    "/webhooks/twilio/inbound",
    exclude_from_auth=True,
    status_code=HTTP_200_OK,
    name="twilio_inbound",
    media_type=MediaType.XML,
    responses=TWILIO_ANSWERS,
)
async def twilio_inbound(request: AnyRequest) -> Response[str]:
    params = await _verified_twilio_form(request)
    if params is None:
        return _plain("forbidden", HTTP_403_FORBIDDEN)
    delivery = twilio_delivery(TWILIO_INBOUND, params, ("MessageSid",))
    container = _container(request)
    await _receive(container, delivery)
    # The carrier-style confirmation travels in the TwiML answer, also for a retried duplicate.
    action = interpret_keyword(params.get("Body", ""))
    if action is None:
        return _twiml()
    return _twiml(keyword_reply(action, container.settings.business_name, Channel.SMS))


# --- WhatsApp Cloud -----------------------------------------------------------------------------------


@get(
    "/webhooks/whatsapp",
    exclude_from_auth=True,
    name="whatsapp_handshake",
    media_type=MediaType.TEXT,
    responses={HTTP_403_FORBIDDEN: _said("The verify token does not match.")},
)
async def whatsapp_handshake(request: AnyRequest) -> Response[str]:
    settings = _container(request).settings
    params = {name: str(value) for name, value in request.query_params.items()}
    challenge = verify_whatsapp_handshake(params, settings.whatsapp_verify_token.get_secret_value())
    if challenge is None:
        return _plain("forbidden", HTTP_403_FORBIDDEN)
    return _plain(challenge)


@post(
    "/webhooks/whatsapp",
    exclude_from_auth=True,
    status_code=HTTP_200_OK,
    name="whatsapp_webhook",
    media_type=MediaType.TEXT,
    responses={
        HTTP_401_UNAUTHORIZED: UNAUTHORIZED,
        HTTP_403_FORBIDDEN: FORBIDDEN,
        HTTP_413_REQUEST_ENTITY_TOO_LARGE: TOO_LARGE,
    },
)
async def whatsapp_webhook(request: AnyRequest) -> Response[str]:
    raw = await _body(request)  # the signature covers these exact bytes: read them before any parsing
    container = _container(request)
    signature = _header(request, b"x-hub-signature-256")
    if not signature:
        return _plain("missing signature", HTTP_401_UNAUTHORIZED)
    secret = container.settings.whatsapp_app_secret.get_secret_value()
    # A signature is hex; one that is not even ASCII cannot match (and hmac refuses to compare it).
    if not signature.isascii() or not verify_whatsapp_signature(secret, raw, signature):
        log.warning("whatsapp webhook refused: bad signature")
        return _plain("forbidden", HTTP_403_FORBIDDEN)
    # Meta retries the identical body, so the body itself is the dedupe key.
    delivery = WebhookDelivery(
        Provider.WHATSAPP_CLOUD.value, WHATSAPP_WEBHOOK, body_digest(raw), raw.decode("utf-8", "replace")
    )
    # Status-only notifications (the bulk of Meta's traffic) share transactions; anything else goes alone.
    only_statuses = b'"statuses"' in raw and not INBOUND_MESSAGES_KEY.search(raw)
    await (_receive_receipts if only_statuses else _receive)(container, delivery)
    return _plain("ok")


# --- Telegram -----------------------------------------------------------------------------------------


@post(
    "/webhooks/telegram",
    exclude_from_auth=True,
    status_code=HTTP_200_OK,
    name="telegram_webhook",
    media_type=MediaType.TEXT,
    responses={HTTP_401_UNAUTHORIZED: UNAUTHORIZED, HTTP_413_REQUEST_ENTITY_TOO_LARGE: TOO_LARGE},
)
async def telegram_webhook(request: AnyRequest) -> Response[str]:
    container = _container(request)
    expected = container.settings.telegram_webhook_secret.get_secret_value()
    if not verify_telegram_secret(expected, request.headers.get("x-telegram-bot-api-secret-token")):
        return _plain("unauthorized", HTTP_401_UNAUTHORIZED)
    raw = await request.body()
    update: dict[str, Any] | None = None
    try:
        update = dict(json_object(raw, "telegram update"))
    except MalformedWebhook:
        update = None
    update_id = update.get("update_id") if update else None
    key = f"update:{update_id}" if isinstance(update_id, int) else body_digest(raw)
    delivery = WebhookDelivery(Provider.TELEGRAM.value, TELEGRAM_UPDATE, key, raw.decode("utf-8", "replace"))
    outcome = await _receive(container, delivery)
    if outcome.staff_update and update is not None:
        await _hand_to_staff_bot(container, update)
    return _plain("")


async def _hand_to_staff_bot(container: Container, update: dict[str, Any]) -> None:
    staff_bot = container.telegram_staff
    if staff_bot is None:
        log.warning("telegram update %s is from staff but no staff bot is wired", update.get("update_id"))
        return
    try:
        await staff_bot.handle(update)
    except Exception:  # the staff bot's failure must not make Telegram redeliver the update forever
        log.exception("staff bot failed on telegram update %s", update.get("update_id"))


# --- Email --------------------------------------------------------------------------------------------


@post(
    "/webhooks/email/inbound",
    exclude_from_auth=True,
    status_code=HTTP_200_OK,
    name="email_inbound",
    media_type=MediaType.TEXT,
    responses={
        HTTP_400_BAD_REQUEST: _said("The body is empty, or JSON without a `raw` message."),
        HTTP_401_UNAUTHORIZED: UNAUTHORIZED,
        HTTP_413_REQUEST_ENTITY_TOO_LARGE: TOO_LARGE,
    },
)
async def email_inbound(request: AnyRequest) -> Response[str]:
    """A relay posts the raw RFC 822 message (or JSON {"raw": "..."}) with the API token as Bearer."""
    container = _container(request)
    if not bearer_matches(
        request.headers.get("authorization"), container.settings.api_token.get_secret_value()
    ):
        return _plain("unauthorized", HTTP_401_UNAUTHORIZED)
    raw = await request.body()
    if request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json":
        try:
            value = json_object(raw, "email webhook").get("raw")
        except MalformedWebhook:
            value = None
        if not isinstance(value, str):
            return _plain('expected {"raw": "<RFC 822 message>"}', HTTP_400_BAD_REQUEST)
        raw = value.encode("utf-8", "surrogateescape")
    if not raw.strip():
        return _plain("empty message", HTTP_400_BAD_REQUEST)
    await _receive(container, email_delivery(raw))
    return _plain("ok")


webhook_handlers = [
    twilio_status,
    twilio_inbound,
    whatsapp_handshake,
    whatsapp_webhook,
    telegram_webhook,
    email_inbound,
]
