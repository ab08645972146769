"""/api/messages: preview, send one message, list and inspect messages with their status history."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, JSONBody, Parameter

from api.rest.common import (
    API_SECURITY,
    BodyId,
    QueryInt,
    RowId,
    Unprocessable,
    api_actor,
    container_of,
    documented_enum,
    problems,
    require_api_token,
)
from domain.clock import utc_now
from domain.messages.sending import (
    MessagePreview,
    MessageRequest,
    MessageRequestError,
    preview_message,
    send_message,
)
from domain.vocabulary import OUTBOUND_CHANNELS, Channel, MessageCategory, MessageStatus
from storage.queries.messages import MessageRecord, message_page, message_with_history


class MessageIn(msgspec.Struct):
    """One message: a template with its variables, or typed text (`body`); `channel` defaults to the customer's."""

    channel: Annotated[str | None, documented_enum(OUTBOUND_CHANNELS, nullable=True)] = None
    body: str | None = None
    template: str | None = None
    subject: str | None = None
    variables: dict[str, Any] = {}
    customer_id: BodyId | None = None
    locale: str | None = None
    # default: the template's own category, conversational for typed text
    category: Annotated[str | None, documented_enum(MessageCategory, nullable=True)] = None


def to_request(data: MessageIn, request_id: str = "") -> MessageRequest:
    try:
        channel = Channel(data.channel) if data.channel else None
    except ValueError:
        raise Unprocessable(
            f"unknown channel {data.channel!r}; use sms, email, whatsapp or telegram"
        ) from None
    try:
        category = MessageCategory(data.category) if data.category else None
    except ValueError:
        raise Unprocessable(
            f"unknown category {data.category!r}; use transactional, marketing or conversational"
        ) from None
    return MessageRequest(
        customer_id=data.customer_id,
        channel=channel,
        template=data.template,
        body=data.body,
        subject=data.subject,
        variables=data.variables,
        locale=data.locale,
        category=category,
        request_id=request_id,
    )


def preview_json(preview: MessagePreview) -> dict[str, Any]:
    decision = preview.decision
    return {
        "channel": preview.channel.value,
        "text": preview.text,
        "subject": preview.subject,
        "html": preview.html,
        "encoding": preview.encoding,
        "segments": preview.segments,
        "characters": preview.characters,
        "estimated_cost": preview.estimated_cost_micros / 1_000_000,
        "estimated_cost_micros": preview.estimated_cost_micros,
        "currency": preview.currency,
        "template": preview.template,
        "decision": None
        if decision is None
        else {
            "verdict": decision.verdict,
            "reason": decision.reason,
            "explanation": decision.explanation,
            "send_at": decision.send_at.isoformat() if decision.send_at else None,
        },
    }


def message_json(message: MessageRecord) -> dict[str, Any]:
    return {
        "id": message.id,
        "customer_id": message.customer_id,
        "channel": message.channel,
        "provider": message.provider,
        "direction": message.direction,
        "source": message.source,
        "category": message.category,
        "status": message.status,
        "status_reason": message.status_reason,
        "error_code": message.error_code,
        "to": message.to_address,
        "subject": message.subject,
        "body": message.body,
        "campaign_id": message.campaign_id,
        "attempts": message.attempts,
        "segments": message.segments,
        "encoding": message.encoding,
        "cost_micros": message.cost_micros,
        "created_at": message.created_at.isoformat(),
        "sent_at": message.sent_at and message.sent_at.isoformat(),
        "delivered_at": message.delivered_at and message.delivered_at.isoformat(),
        "read_at": message.read_at and message.read_at.isoformat(),
        "explanation": message.explanation,
    }


class MessagesController(Controller):
    path = "/api/messages"
    guards = [require_api_token]
    security = API_SECURITY
    tags = ["messages"]

    @post("/preview", status_code=200, responses=problems(body=True))
    async def preview(self, request: Request[Any, Any, Any], data: JSONBody[MessageIn]) -> dict[str, Any]:
        """Renders a message without sending it: text, SMS encoding and segments, estimated cost, consent verdict."""
        container = container_of(request)
        try:
            preview = await preview_message(
                container.messaging_uow(), to_request(data), utc_now(), container.consent_policy()
            )
        except MessageRequestError as error:
            raise Unprocessable(str(error)) from None
        return preview_json(preview)

    @post("/", status_code=201, responses=problems(body=True))
    async def send(self, request: Request[Any, Any, Any], data: JSONBody[MessageIn]) -> dict[str, Any]:
        """Queues one message; send the same `Idempotency-Key` header again and nothing is sent twice."""
        container = container_of(request)
        key = request.headers.get("idempotency-key") or uuid.uuid4().hex
        if len(key) > 60:  # it is kept as "api-<key>" in a 64-character column
            raise Unprocessable("Idempotency-Key is at most 60 characters")
        try:
            result = await send_message(
                container.messaging_uow(),
                to_request(data, f"api-{key}"),
                actor=api_actor(request),
                via="api",
                now=utc_now(),
                policy=container.consent_policy(),
            )
        except MessageRequestError as error:
            raise Unprocessable(str(error)) from None
        return {
            "id": result.message_id,
            "status": result.status.value,
            "reason": result.reason,
            "explanation": result.explanation,
            "duplicate": result.duplicate,
            "preview": preview_json(result.preview),
        }

    @get("/", responses=problems())
    async def list_messages(
        self,
        request: Request[Any, Any, Any],
        customer_id: QueryInt = None,
        status: FromQuery[MessageStatus | None] = None,
        channel: FromQuery[Channel | None] = None,
        campaign_id: QueryInt = None,
        before_id: QueryInt = None,
        limit: int = Parameter(default=50, ge=1, le=500),
    ) -> dict[str, Any]:
        """Newest first by when each was written; page with `before_id` (the last id of the previous page)."""
        messages = await message_page(
            container_of(request).database,
            customer_id=customer_id,
            status=status,
            channel=channel,
            campaign_id=campaign_id,
            before_id=before_id,
            limit=limit,
        )
        return {
            "messages": [message_json(m) for m in messages],
            "next_before_id": messages[-1].id if messages else None,
        }

    @get("/{message_id:int}", responses=problems(404))
    async def get_message(
        self, request: Request[Any, Any, Any], message_id: FromPath[RowId]
    ) -> dict[str, Any]:
        found = await message_with_history(container_of(request).database, message_id)
        if found is None:
            raise NotFoundException(f"no message {message_id}")
        message, history = found
        return {
            **message_json(message),
            "history": [
                {
                    "status": change.status,
                    "source": change.source,
                    "at": change.occurred_at.isoformat(),
                    "error_code": change.error_code,
                    "detail": change.detail,
                }
                for change in history
            ],
        }
