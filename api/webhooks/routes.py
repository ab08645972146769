"""Provider webhook routes, thin and generic: one route per URL in the providers registry.

Each route reads the request into a framework-free `IncomingWebhook`, lets the provider's check accept
or refuse it (`providers/<name>/webhooks.py`), keeps an accepted one in the inbox, hands a staff Telegram
update to the staff bot, and answers what the provider's check said. Adding a provider adds no route here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from litestar import MediaType, Request, Response, get, post
from litestar.exceptions import ClientException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import ResponseSpec
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
)

from api.problems import Problem
from domain.conversations.model import WebhookDelivery, WebhookOutcome
from domain.conversations.use_cases import receive_webhook, replay_failed_webhooks
from providers.registry import WEBHOOK_ENDPOINTS
from providers.webhook_bodies import IncomingWebhook, WebhookAnswer, WebhookEndpoint
from switchboard.wiring import Container

log = logging.getLogger(__name__)

AnyRequest = Request[Any, Any, Any]

#: Provider webhooks are small (a status callback is under 1 kB; an email with attachments is the largest).
MAX_WEBHOOK_BYTES = 10 * 1024 * 1024


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
    outcome = await receive_webhook(
        container.conversation_uow,
        delivery,
        container.webhook_reader,
        container.inbound_policy(),
        media=container.media_source,
    )
    if outcome.inbound:
        container.chat_news.set()  # a customer wrote: post it to its Slack thread now, not at the next look
    return outcome


async def _receive_receipts(container: Container, delivery: WebhookDelivery) -> WebhookOutcome:
    """Receipt-only webhooks share transactions with the others arriving at the same moment (group commit)."""
    return await container.receipt_batcher.submit(delivery)


async def replay_webhooks(container: Container, limit: int = 100) -> tuple[int, int]:
    """`switchboard webhooks replay`: applies failed inbox rows again; (replayed, still failing)."""
    return await replay_failed_webhooks(
        container.conversation_uow,
        container.webhook_reader,
        container.inbound_policy(),
        limit,
        media=container.media_source,
    )


def _said(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=str, media_type=MediaType.TEXT, description=description)


#: A body over MAX_WEBHOOK_BYTES, answered with a Problem.
TOO_LARGE = ResponseSpec(data_container=Problem, description="The body is larger than 10 MB.")


def _incoming(request: AnyRequest) -> IncomingWebhook:
    return IncomingWebhook(
        path=request.url.path,
        query=request.scope.get("query_string", b"").decode("latin-1"),
        header=lambda name: _header(request, name.encode("latin-1")),
        read_body=lambda: _body(request),
        query_params=lambda: {name: str(value) for name, value in request.query_params.items()},
    )


async def _hand_to_staff_bot(container: Container, update: Mapping[str, Any]) -> None:
    staff_bot = container.telegram_staff
    if staff_bot is None:
        log.warning("telegram update %s is from staff but no staff bot is wired", update.get("update_id"))
        return
    try:
        await staff_bot.handle(dict(update))
    except Exception:  # the staff bot's failure must not make Telegram redeliver the update forever
        log.exception("staff bot failed on telegram update %s", update.get("update_id"))


def _answer(answer: WebhookAnswer) -> Response[str]:
    return Response(answer.body, status_code=answer.status_code, media_type=answer.media_type)


def webhook_route(endpoint: WebhookEndpoint) -> HTTPRouteHandler:
    """The Litestar route for one provider webhook URL."""

    async def receive(request: AnyRequest) -> Response[str]:
        container = _container(request)
        accepted = await endpoint.accept(_incoming(request), container.settings)
        if isinstance(accepted, WebhookAnswer):
            return _answer(accepted)
        outcome = await (_receive_receipts if accepted.receipts_only else _receive)(
            container, accepted.delivery
        )
        if outcome.staff_update and accepted.staff_update is not None:
            await _hand_to_staff_bot(container, accepted.staff_update)
        return _answer(accepted.answer)

    receive.__name__ = receive.__qualname__ = endpoint.name
    responses = {status: _said(description) for status, description in endpoint.refusals.items()}
    if endpoint.method == "GET":
        return get(
            endpoint.path,
            exclude_from_auth=True,
            name=endpoint.name,
            media_type=endpoint.media_type,
            responses=responses,
        )(receive)
    responses[HTTP_413_REQUEST_ENTITY_TOO_LARGE] = TOO_LARGE
    return post(
        endpoint.path,
        exclude_from_auth=True,
        status_code=HTTP_200_OK,
        name=endpoint.name,
        media_type=endpoint.media_type,
        responses=dict(sorted(responses.items())),
    )(receive)


webhook_handlers = [webhook_route(endpoint) for endpoint in WEBHOOK_ENDPOINTS]
