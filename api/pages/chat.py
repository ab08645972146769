"""Live chat pages: open conversations with waiting and first-response times, one conversation, and replies."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy import select

from api.auth import requires_role
from api.pages.common import Formats, StaffPages, container_of, page, staff_of, utc_now
from domain.messages.sending import (
    MessageRequest,
    MessageRequestError,
    SendResult,
    preview_message,
    send_message,
)
from domain.vocabulary import OUTBOUND_CHANNELS, Channel, ChatStatus, MessageCategory, MessageStatus, Role
from storage.database import Database
from storage.models import ChatMessage, ChatSession, Customer, CustomerCommunication, StaffUser
from switchboard.wiring import Container

OPEN_STATUSES = (ChatStatus.OPEN.value, ChatStatus.PENDING.value)


def _session_row(chat: ChatSession, customer: str, now: datetime, formats: Formats) -> dict[str, Any]:
    waiting = None
    if chat.status in OPEN_STATUSES:
        waiting = (now - (chat.last_message_at or chat.started_at)).total_seconds()
    first_response = (
        (chat.first_response_at - chat.started_at).total_seconds() if chat.first_response_at else None
    )
    return {
        "id": chat.id,
        "customer": customer,
        "channel": chat.channel,
        "channel_label": CHANNEL_WORDS.get(chat.channel, chat.channel),
        "has_subject": bool(chat.subject),
        "status": chat.status,
        "subject": chat.subject or "—",
        "started": formats.moment(chat.started_at),
        "waiting": formats.duration(waiting) if waiting is not None else "—",
        "first_response": formats.duration(first_response) if first_response is not None else "not yet",
    }


async def chat_sessions(database: Database, formats: Formats) -> dict[str, list[dict[str, Any]]]:
    now = utc_now()
    base = select(ChatSession, Customer.name).join(Customer, Customer.id == ChatSession.customer_id)
    async with database.read_sessions() as session:
        open_rows = (
            await session.execute(
                base.where(ChatSession.status.in_(OPEN_STATUSES))
                .order_by(ChatSession.last_message_at.asc())
                .limit(200)
            )
        ).all()
        closed_rows = (
            await session.execute(
                base.where(ChatSession.status == ChatStatus.CLOSED.value)
                .order_by(ChatSession.started_at.desc())
                .limit(20)
            )
        ).all()
    return {
        "open_sessions": [_session_row(c, name, now, formats) for c, name in open_rows],
        "closed_sessions": [_session_row(c, name, now, formats) for c, name in closed_rows],
    }


CHANNEL_WORDS = {
    "sms": "SMS",
    "whatsapp": "WhatsApp",
    "email": "email",
    "telegram": "Telegram",
    "chat": "website chat",
}


@dataclass(frozen=True)
class ReplyRoute:
    """Where a reply in this conversation goes, said to the agent before they send it."""

    channel: Channel | None  # None: no channel can take a reply now
    note: str
    can_send: bool


def reply_request(
    container: Container, chat: ChatSession, channel: Channel | None, body: str, request_id: str
) -> MessageRequest:
    subject = f"Re: {chat.subject}" if chat.subject else f"Your message to {container.settings.business_name}"
    return MessageRequest(
        customer_id=chat.customer_id,
        channel=channel,
        body=body,
        subject=subject,
        category=MessageCategory.CONVERSATIONAL,
        request_id=request_id,
    )


async def reply_route(container: Container, chat: ChatSession, customer_name: str) -> ReplyRoute:
    """The channel the customer wrote on; for the website chat, which cannot take replies yet, the
    channel a conversational message to them would use. Decided with the same rules as the send."""
    own = Channel(chat.channel) if chat.channel in [c.value for c in OUTBOUND_CHANNELS] else None
    request = reply_request(container, chat, own, "…", "preview")
    try:
        preview = await preview_message(
            container.messaging_uow(), request, utc_now(), container.consent_policy()
        )
    except MessageRequestError as error:
        return ReplyRoute(own, f"A reply cannot be sent: {error}.", can_send=False)
    decision = preview.decision
    words = CHANNEL_WORDS.get(preview.channel.value, preview.channel.value)
    if decision is not None and decision.verdict == "suppress":
        return ReplyRoute(None, f"A reply cannot go by {words} now: {decision.explanation}", can_send=False)
    if own is not None:
        note = f"Your reply goes by {words}, the channel {customer_name} wrote on."
    else:
        came_from = CHANNEL_WORDS.get(chat.channel, chat.channel)
        note = (
            f"This conversation came from the {came_from}, which cannot take replies yet; "
            f"your reply goes by {words} to {preview.to_address}."
        )
    if decision is not None and decision.verdict == "defer" and decision.send_at is not None:
        note += f" {decision.explanation}"
    return ReplyRoute(preview.channel, note, can_send=True)


def _author(kind: str, staff_name: str | None, customer_name: str) -> str:
    if kind == "staff":
        return staff_name or "Staff"
    return customer_name if kind == "customer" else kind.capitalize()


async def conversation(
    database: Database, session_id: int, formats: Formats, sent_id: int | None
) -> dict[str, Any]:
    async with database.read_sessions() as session:
        chat = await session.get(ChatSession, session_id)
        if chat is None:
            raise NotFoundException(f"There is no chat {session_id}.")
        customer = await session.get(Customer, chat.customer_id)
        rows = (
            await session.execute(
                select(ChatMessage, StaffUser.name)
                .outerjoin(StaffUser, StaffUser.id == ChatMessage.staff_id)
                .where(ChatMessage.session_id == session_id)
                .order_by(ChatMessage.created_at, ChatMessage.id)
            )
        ).all()
        sent = await session.get(CustomerCommunication, sent_id) if sent_id else None
    if sent is not None and sent.customer_id != chat.customer_id:
        sent = None
    name = customer.name if customer else "—"
    return {
        "session": chat,
        "chat": _session_row(chat, name, utc_now(), formats),
        "customer_id": chat.customer_id,
        "turns": [
            {
                "author": _author(m.author, staff_name, name),
                "from_customer": m.author == "customer",
                "when": formats.moment(m.created_at),
                "body": m.body,
            }
            for m, staff_name in rows
        ],
        "sent": None if sent is None else _sent_notice(sent),
    }


#: What happened to a reply, in words (the worker sends within seconds of it being queued).
_SENT_WORDS = {
    "planned": "is queued and goes out by {channel} within seconds",
    "sending": "is being sent by {channel}",
    "queued": "was handed to the {channel} provider",
    "sent": "was sent by {channel}",
    "delivered": "was delivered by {channel}",
    "read": "was delivered by {channel} and read",
    "suppressed": "was not sent",
    "failed": "could not be sent by {channel}",
    "undelivered": "could not be delivered by {channel}",
    "dead": "could not be sent by {channel}",
}


def _sent_notice(sent: CustomerCommunication) -> dict[str, Any]:
    channel = CHANNEL_WORDS.get(sent.channel, sent.channel)
    what = _SENT_WORDS.get(sent.status, "is {status}").format(channel=channel, status=sent.status)
    why = (sent.payload or {}).get("explanation") or ""
    return {
        "id": sent.id,
        "ok": sent.status not in ("suppressed", "failed", "undelivered", "dead"),
        "text": f"Your reply {what}.",
        "why": why if sent.status in ("suppressed", "failed", "undelivered", "dead") else "",
    }


async def send_reply(container: Container, chat_id: int, staff_email: str, body: str, key: str) -> SendResult:
    async with container.database.read_sessions() as session:
        chat = await session.get(ChatSession, chat_id)
        customer_name = (
            (await session.scalar(select(Customer.name).where(Customer.id == chat.customer_id)))
            if chat
            else None
        )
    if chat is None:
        raise NotFoundException(f"There is no chat {chat_id}.")
    route = await reply_route(container, chat, customer_name or "the customer")
    if not route.can_send or route.channel is None:
        raise MessageRequestError(route.note)
    request = reply_request(container, chat, route.channel, body, f"web-chat-{chat_id}-{key}")
    return await send_message(
        container.messaging_uow(),
        request,
        actor=staff_email,
        via="web",
        now=utc_now(),
        policy=container.consent_policy(),
    )


async def record_staff_turn(
    container: Container, chat_id: int, staff_id: int, result: SendResult, body: str
) -> None:
    """The queued reply joins the conversation (once, however often the form is re-sent)."""
    if result.duplicate or result.status is MessageStatus.SUPPRESSED or result.message_id is None:
        return
    now = utc_now()
    async with container.unit_of_work() as uow:
        chat = await uow.session.get(ChatSession, chat_id)
        if chat is None:
            return
        uow.session.add(
            ChatMessage(
                session_id=chat_id,
                author="staff",
                staff_id=staff_id,
                communication_id=result.message_id,
                body=body,
                created_at=now,
            )
        )
        chat.first_response_at = chat.first_response_at or now
        chat.last_message_at = now
        await uow.commit()


class ChatPages(StaffPages):
    @get("/communication/chat", name="chat")
    async def sessions(self, request: Request[Any, Any, Any]) -> Template:
        data = await chat_sessions(container_of(request).database, Formats.of(request))
        return page(request, "communication/chat.html", "communication", "chat", **data)

    @get("/communication/chat/{session_id:int}", name="chat_session")
    async def session(self, request: Request[Any, Any, Any], session_id: FromPath[int]) -> Template:
        sent = request.query_params.get("sent", "")
        return await self._conversation_page(request, session_id, int(sent) if sent.isdigit() else None)

    async def _conversation_page(
        self, request: Request[Any, Any, Any], session_id: int, sent: int | None, **extra: Any
    ) -> Template:
        container = container_of(request)
        data = await conversation(container.database, session_id, Formats.of(request), sent)
        route = await reply_route(container, data["session"], data["chat"]["customer"])
        data.pop("session")
        return page(
            request,
            "communication/chat_session.html",
            "communication",
            "chat",
            may_reply=staff_of(request).may(Role.AGENT),
            route=route,
            request_key=uuid.uuid4().hex,
            **data,
            **extra,
        )

    @post(
        "/communication/chat/{session_id:int}/reply",
        name="chat_reply",
        guards=[requires_role(Role.AGENT)],
        status_code=303,
    )
    async def reply(self, request: Request[Any, Any, Any], session_id: FromPath[int]) -> Redirect | Template:
        form = await request.form()
        body = str(form.get("body", "")).strip()
        key = "".join(ch for ch in str(form.get("request_key", "")) if ch.isalnum())[:40] or uuid.uuid4().hex
        container, staff = container_of(request), staff_of(request)
        try:
            result = await send_reply(container, session_id, staff.email, body, key)
        except MessageRequestError as error:
            template = await self._conversation_page(request, session_id, None, error=str(error), draft=body)
            template.status_code = 422
            return template
        await record_staff_turn(container, session_id, staff.id, result, body)
        return Redirect(f"/communication/chat/{session_id}?sent={result.message_id}", status_code=303)
