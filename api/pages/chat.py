"""Live chat pages: open conversations with waiting and first-response times, one conversation, replies and notes."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from litestar import Request, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Response, Stream, Template

from api.auth import requires_role
from api.media_links import file_response, media_links_of
from api.pages import notices
from api.pages.canned_replies import filled_for_chat, picker
from api.pages.chat_live import conversation_poll, event_stream, last_event_id, snapshot_poll
from api.pages.common import Formats, StaffPages, container_of, page, staff_of, utc_now, whole_number
from api.pages.customer_card import card_view
from api.pages.notices import after_change
from api.security_headers import LIVE_PAGE_POLICY
from api.widget.routes import HOLD_SECONDS
from domain.canned_replies.model import CannedReplyError
from domain.canned_replies.rules import SHORTCUT, missing_sentence, require_filled
from domain.conversations.attachments import (
    AttachmentRules,
    KeptFile,
    RefusedFile,
    attachment_path,
    check_file,
)
from domain.conversations.desk import STATUS_WORDS, DeskChat, DeskError
from domain.conversations.model import ChatNotFound, ReplyRoute
from domain.conversations.use_cases import (
    DeskActor,
    add_note,
    assign_chat,
    reopen_chat,
    reply_in_chat,
    reply_route,
    resolve_chat,
    set_availability,
    snooze_chat,
)
from domain.messages.sending import MessageRequestError
from domain.messages.words import CHAT_CHANNEL_WORDS
from domain.vocabulary import Availability, ChatStatus, Role, role_allows
from storage.database import Database
from storage.queries.canned_replies import canned_reply_named
from storage.queries.chat_attachments import stored_file
from storage.queries.chats import (
    DESK_VIEWS,
    OPEN_STATUSES,
    ChatSummary,
    ChatTurn,
    QueuedChat,
    ReplySent,
    chat_conversation,
    desk_chat,
    desk_counts,
    desk_queue,
    open_chats,
    recently_closed_chats,
)
from storage.queries.customer_card import customer_card
from storage.queries.customers import customer_erased
from storage.queries.staff import staff_availability
from switchboard.wiring import Container


def waiting_words(status: str, waiting_since: datetime | None, now: datetime, formats: Formats) -> str:
    """How long a live conversation's customer has waited on us, since their oldest turn staff have not
    answered; "answered" when nothing waits on staff; "—" for one not live."""
    if status not in OPEN_STATUSES:
        return "—"
    if waiting_since is None:
        return "answered"
    return formats.duration(max((now - waiting_since).total_seconds(), 0.0))


def _session_row(chat: ChatSummary, now: datetime, formats: Formats) -> dict[str, Any]:
    first_response = (
        (chat.first_response_at - chat.started_at).total_seconds() if chat.first_response_at else None
    )
    return {
        "id": chat.id,
        "customer": chat.customer,
        "channel": chat.channel,
        "channel_label": CHAT_CHANNEL_WORDS.get(chat.channel, chat.channel),
        "has_subject": bool(chat.subject),
        "status": chat.status,
        "status_label": STATUS_WORDS.get(chat.status, chat.status),
        "subject": chat.subject or "—",
        "started": formats.moment(chat.started_at),
        "waiting": waiting_words(chat.status, chat.waiting_since, now, formats),
        "first_response": formats.duration(first_response) if first_response is not None else "not yet",
        "agent": chat.agent or "unassigned",
        # The customer's answer to the satisfaction survey (its comment is their turn in the timeline).
        "rated": f"rated {chat.csat_score} of 5" if chat.csat_score is not None else "",
    }


async def chat_sessions(database: Database, formats: Formats) -> dict[str, list[dict[str, Any]]]:
    now = utc_now()
    open_rows = await open_chats(database)
    closed_rows = await recently_closed_chats(database)
    return {
        "open_sessions": [_session_row(c, now, formats) for c in open_rows],
        "closed_sessions": [_session_row(c, now, formats) for c in closed_rows],
    }


async def route_of(container: Container, chat: ChatSummary) -> ReplyRoute:
    """Where a reply would go, decided with the same rules as the send."""
    return await reply_route(
        container.messaging_uow(),
        chat.reply_target(),
        chat.customer,
        container.settings.business_name,
        utc_now(),
        container.consent_policy(),
    )


def _author(kind: str, staff_name: str | None, customer_name: str) -> str:
    if kind == "staff":
        return staff_name or "Staff"
    if kind == "bot":
        return "Switchboard (automatic)"  # the satisfaction survey, a greeting: sent by us, written by nobody
    return customer_name if kind == "customer" else kind.capitalize()


async def conversation(
    database: Database, session_id: int, formats: Formats, sent_id: int | None
) -> dict[str, Any]:
    found = await chat_conversation(database, session_id, sent_id)
    if found is None:
        raise NotFoundException(f"There is no chat {session_id}.")
    name = found.chat.customer
    return {
        "session": found.chat,
        "chat": _session_row(found.chat, utc_now(), formats),
        "customer_id": found.chat.customer_id,
        "turns": [turn_view(m, name, formats) for m in found.turns],
        "last_turn_id": max((m.id for m in found.turns), default=0),
        "sent": None if found.sent is None else _sent_notice(found.sent),
    }


def turn_view(turn: ChatTurn, customer_name: str, formats: Formats) -> dict[str, Any]:
    """One turn of the timeline as the page (and its live stream) shows it."""
    return {
        "id": turn.id,
        "author": _author(turn.author, turn.staff_name, customer_name),
        "from_customer": turn.author == "customer",
        "when": formats.moment(turn.created_at),
        "body": turn.body,
        "is_note": turn.is_note,
        **_delivery(turn.delivery_status, turn.delivery_reason),
        "files": [
            {"url": attachment_path(f.id), "name": f.filename, "label": f.label, "is_image": f.is_image}
            for f in turn.files
        ],
    }


#: A staff reply's delivery status in the timeline, in words.
_DELIVERY_WORDS = {
    "planned": "queued",
    "sending": "sending",
    "queued": "sent to the provider",
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "suppressed": "not sent",
    "failed": "failed",
    "undelivered": "not delivered",
    "dead": "failed",
    "cancelled": "not sent",
}
_DELIVERY_FAILED = ("suppressed", "failed", "undelivered", "dead", "cancelled")


def _delivery(status: str | None, reason: str | None) -> dict[str, Any]:
    if status is None:
        return {"delivery": "", "delivery_status": "", "delivery_why": ""}
    return {
        "delivery": _DELIVERY_WORDS.get(status, status),
        "delivery_status": status,
        "delivery_why": (reason or "") if status in _DELIVERY_FAILED else "",
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


def _sent_notice(sent: ReplySent) -> dict[str, Any]:
    channel = CHAT_CHANNEL_WORDS.get(sent.channel, sent.channel)
    what = _SENT_WORDS.get(sent.status, "is {status}").format(channel=channel, status=sent.status)
    why = sent.payload.get("explanation") or ""
    return {
        "id": sent.id,
        "ok": sent.status not in ("suppressed", "failed", "undelivered", "dead"),
        "text": f"Your reply {what}.",
        "why": why if sent.status in ("suppressed", "failed", "undelivered", "dead") else "",
    }


#: The desk's queues as tabs, in the order agents work them.
QUEUE_TABS = (
    ("mine", "Mine"),
    ("unassigned", "Unassigned"),
    ("waiting", "Waiting on us"),
    ("open", "All open"),
    ("snoozed", "Snoozed"),
    ("resolved", "Resolved"),
)
#: What the desk's buttons do, for the notice after one is pressed.
DESK_DONE = {
    "assign": "is now yours",
    "snooze": "is snoozed for 2 hours (the customer writing brings it back sooner)",
    "resolve": "is resolved",
    "reopen": "is open again",
    "note": "has your internal note; the customer does not see it",
}


def _queue_row(row: QueuedChat, formats: Formats, now: datetime) -> dict[str, Any]:
    return {
        "waiting": waiting_words(row.status, row.waiting_since, now, formats),
        "id": row.id,
        "customer": row.customer,
        "channel_label": CHAT_CHANNEL_WORDS.get(row.channel, row.channel),
        "status": STATUS_WORDS.get(row.status, row.status),
        "agent": row.agent or "unassigned",
        "last_message": formats.moment(row.last_message_at) if row.last_message_at else "—",
        "snoozed_until": formats.moment(row.snoozed_until) if row.snoozed_until else "",
    }


async def desk_tabs(database: Database, staff_id: int, view: str | None) -> list[dict[str, Any]]:
    counts = await desk_counts(database, staff_id)
    return [
        {"view": key, "label": label, "count": counts[key], "current": key == view}
        for key, label in QUEUE_TABS
    ]


def desk_view(desk: DeskChat | None, formats: Formats, viewer_id: int | None = None) -> dict[str, Any]:
    """Who holds a conversation and where it stands, as the page's desk line (and its live stream) says it;
    `mine` when the staff member viewing it holds it (no "Assign to me" then)."""
    if desk is None:
        return {"gone": True}
    status = desk.status.value
    return {
        "agent": desk.assigned_name or "nobody yet",
        "mine": viewer_id is not None and desk.assigned_staff_id == viewer_id,
        "resolved": desk.status is ChatStatus.CLOSED,
        "snoozed_until": formats.moment(desk.snoozed_until) if desk.snoozed_until else "",
        "status": status,
        "status_label": STATUS_WORDS.get(status, status),
    }


def _cells(row: dict[str, Any], keys: tuple[str, ...]) -> list[dict[str, str]]:
    """A queue row as the live script rebuilds it: the first two cells link to the conversation; a status
    cell is a pill (its text, its class) with an optional tail such as ' until ...'."""
    cells: list[dict[str, str]] = [{"text": str(row["id"])}, {"text": str(row["customer"])}]
    for key in keys:
        if key == "status":
            cells.append({"text": row["status_label"], "status": row["status"], "tail": row.get("tail", "")})
        else:
            cells.append({"text": str(row[key])})
    return cells


async def queue_snapshot(
    database: Database, staff_id: int, view: str | None, formats: Formats
) -> tuple[Any, dict[str, Any]]:
    """What a queue page shows (its tab counts and its rows) and the raw data that decides whether it changed."""
    counts = await desk_counts(database, staff_id)
    if view is None:  # the overview's open conversations
        chats = await open_chats(database)
        now = utc_now()
        rows = [
            _cells(
                _session_row(c, now, formats),
                ("channel_label", "status", "agent", "subject", "started", "waiting", "first_response"),
            )
            for c in chats
        ]
        basis: Any = (counts, chats)
    else:
        now = utc_now()
        queued = await desk_queue(database, view, staff_id, limit=200)
        rows = []
        for q in queued:
            shown = _queue_row(q, formats, now)
            shown["status_label"], shown["status"] = shown["status"], q.status
            shown["tail"] = f" until {shown['snoozed_until']}" if shown["snoozed_until"] else ""
            rows.append(_cells(shown, ("channel_label", "status", "agent", "waiting", "last_message")))
        basis = (counts, queued)
    ids = [chat.id for chat in basis[1]]
    return basis, {"counts": counts, "rows": [{"id": i, "cells": r} for i, r in zip(ids, rows, strict=True)]}


#: The largest reply form taken at all (Litestar's default, 10 MB, is below a 10 MiB file with its form).
REPLY_MAX_BODY = 32 * 1024 * 1024


async def _attached_file(upload: object, max_bytes: int) -> KeptFile | RefusedFile | None:
    """The image or PDF an agent attached to a reply, checked by the same rules as customers' files."""
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None
    content = await upload.read()  # bounded by REPLY_MAX_BODY; its real size goes into the words
    if not content:
        return None
    return check_file(content, upload.filename, upload.content_type, AttachmentRules(max_bytes))


def _live(template: Template) -> Template:
    """A live inbox page: it may load our own chat_live.js (see api/security_headers.py)."""
    template.headers["Content-Security-Policy"] = LIVE_PAGE_POLICY
    return template


class ChatPages(StaffPages):
    @get("/communication/chat", name="chat")
    async def sessions(self, request: Request[Any, Any, Any]) -> Template:
        container, staff, formats = container_of(request), staff_of(request), Formats.of(request)
        view = request.query_params.get("view")
        view = view if view in DESK_VIEWS else None
        tabs = await desk_tabs(container.database, staff.id, view)
        availability = await staff_availability(container.database, staff.id)
        mine = {
            "at_work": availability is Availability.ONLINE,
            "can_take": role_allows(staff.role, Role.AGENT),
        }
        if view is None:  # the overview: every open conversation and the recently resolved
            data = await chat_sessions(container.database, formats)
            return _live(
                page(request, "communication/chat.html", "communication", "chat", tabs=tabs, me=mine, **data)
            )
        rows = await desk_queue(container.database, view, staff.id, limit=200)
        return _live(
            page(
                request,
                "communication/chat.html",
                "communication",
                "chat",
                tabs=tabs,
                me=mine,
                view=view,
                view_label=dict(QUEUE_TABS)[view],
                queue=[_queue_row(row, formats, utc_now()) for row in rows],
            )
        )

    @get("/communication/chat/events", name="chat_queue_events")
    async def queue_events(
        self, request: Request[Any, Any, Any], view: FromQuery[str] = "", hold: FromQuery[int] = HOLD_SECONDS
    ) -> Stream:
        """Server-sent events for a queue page: its tab counts and rows whenever they change."""
        container, staff, formats = container_of(request), staff_of(request), Formats.of(request)
        chosen = view if view in DESK_VIEWS else None

        async def read() -> tuple[Any, dict[str, Any]]:
            return await queue_snapshot(container.database, staff.id, chosen, formats)

        return event_stream(snapshot_poll(read, last_event_id(request)), hold)

    @get("/communication/chat/{session_id:int}/events", name="chat_session_events")
    async def session_events(
        self,
        request: Request[Any, Any, Any],
        session_id: FromPath[int],
        after: FromQuery[int] = 0,
        hold: FromQuery[int] = HOLD_SECONDS,
    ) -> Stream:
        """Server-sent events for a conversation page: each new turn once (its id is the event id, so a
        reconnect carries on after the last one it had), a reply's delivery status, the desk's state."""
        container, formats = container_of(request), Formats.of(request)
        found = await desk_chat(container.database, session_id)
        if found is None:
            raise NotFoundException(f"There is no chat {session_id}.")
        resumed = last_event_id(request)
        start = whole_number(resumed)
        start = max(after, 0) if start is None else start
        name, viewer = found.customer_name, staff_of(request).id
        poll = conversation_poll(
            container.database,
            session_id,
            start,
            lambda turn: turn_view(turn, name, formats),
            lambda desk: desk_view(desk, formats, viewer),
        )
        return event_stream(poll, hold)

    @get("/communication/chat/attachments/{attachment_id:int}", name="chat_attachment")
    async def attachment(
        self, request: Request[Any, Any, Any], attachment_id: FromPath[int]
    ) -> Response[bytes]:
        """A file a customer sent, to signed-in staff only: images shown inline, PDFs downloaded, and neither
        able to run a script (the type is the one its first bytes showed, and nosniff holds the browser to it)."""
        found = await stored_file(container_of(request).database, attachment_id)
        if found is None:
            raise NotFoundException(f"There is no file {attachment_id}.")
        return file_response(found)

    @get("/communication/chat/{session_id:int}", name="chat_session")
    async def session(self, request: Request[Any, Any, Any], session_id: FromPath[int]) -> Template:
        sent = notices.said(request).get("sent", "")
        return await self._conversation_page(request, session_id, whole_number(sent))

    @post(
        "/communication/chat/{session_id:int}/canned",
        name="chat_canned_fill",
        guards=[requires_role(Role.AGENT)],
        status_code=200,
    )
    async def fill_canned(self, request: Request[Any, Any, Any], session_id: FromPath[int]) -> Template:
        """The conversation again with a canned reply filled in from what the agent typed for its variables
        (posted, not in the address)."""
        return await self._conversation_page(request, session_id, None, canned_form=await request.form())

    @get(
        "/communication/chat/{session_id:int}/canned",
        name="chat_canned_page",
        guards=[requires_role(Role.AGENT)],
    )
    async def canned_page(self, session_id: FromPath[int]) -> Redirect:
        """The address a filled canned reply leaves in the bar, opened again: the conversation itself."""
        return Redirect(f"/communication/chat/{session_id}", status_code=303)

    async def _conversation_page(
        self,
        request: Request[Any, Any, Any],
        session_id: int,
        sent: int | None,
        canned_form: Any = None,
        **extra: Any,
    ) -> Template:
        container = container_of(request)
        formats = Formats.of(request)
        data = await conversation(container.database, session_id, formats, sent)
        route = await route_of(container, data.pop("session"))
        desk = await desk_chat(container.database, session_id)
        card = await customer_card(container.database, data["customer_id"], session_id)
        erased = bool(await customer_erased(container.database, data["customer_id"]))
        done = notices.said(request).get("done", "")
        canned = await picker(request, container, session_id, canned_form)
        if canned["chosen"] is not None and "draft" not in extra:
            extra["draft"] = canned["chosen"]["text"]
        return _live(
            page(
                request,
                "communication/chat_session.html",
                "communication",
                "chat",
                may_reply=staff_of(request).may(Role.AGENT),
                may_manage=staff_of(request).may(Role.MANAGER),
                erased=erased,
                route=route,
                desk=None if desk is None else desk_view(desk, formats, staff_of(request).id),
                card=card_view(card, formats, container.consent_policy()),
                desk_done=f"This conversation {DESK_DONE[done]}." if done in DESK_DONE else "",
                request_key=uuid.uuid4().hex,
                canned=canned,
                **data,
                **extra,
            )
        )

    async def _refused(
        self, request: Request[Any, Any, Any], session_id: int, error: str, draft: str
    ) -> Template:
        """The conversation page again with why it was refused, and the agent's text kept in the box."""
        template = await self._conversation_page(request, session_id, None, error=error, draft=draft)
        template.status_code = 422
        return template

    @post(
        "/communication/chat/{session_id:int}/reply",
        name="chat_reply",
        guards=[requires_role(Role.AGENT)],
        status_code=303,
        # A reply may carry a file up to SWITCHBOARD_ATTACHMENT_MAX_BYTES; the rules, not this cap, refuse it.
        request_max_body_size=REPLY_MAX_BODY,
    )
    async def reply(self, request: Request[Any, Any, Any], session_id: FromPath[int]) -> Redirect | Template:
        form = await request.form()
        body = str(form.get("body", "")).strip()
        key = "".join(ch for ch in str(form.get("request_key", "")) if ch.isalnum())[:40] or uuid.uuid4().hex
        container, staff = container_of(request), staff_of(request)
        if body.startswith("/") and SHORTCUT.fullmatch(body[1:].lower()):
            return await self._expand_shortcut(request, session_id, body)
        try:
            require_filled(body)
        except CannedReplyError as error:
            return await self._refused(request, session_id, str(error), body)
        attached = await _attached_file(form.get("file"), container.settings.attachment_max_bytes)
        if isinstance(attached, RefusedFile):
            return await self._refused(request, session_id, attached.reason, body)
        try:
            result = await reply_in_chat(
                container.units.chat_replies(),
                session_id,
                staff_id=staff.id,
                staff_email=staff.email,
                body=body,
                request_key=key,
                business_name=container.settings.business_name,
                route_uow=container.units.chat_replies(read_only=True),
                now=utc_now(),
                policy=container.consent_policy(),
                file=attached,
                media_links=media_links_of(container.settings),
            )
        except ChatNotFound as error:
            raise NotFoundException(str(error)) from None
        except MessageRequestError as error:
            return await self._refused(request, session_id, str(error), body)
        return after_change(request, f"/communication/chat/{session_id}", sent=result.message_id or "")

    async def _expand_shortcut(
        self, request: Request[Any, Any, Any], session_id: int, typed: str
    ) -> Template:
        """`/hours` typed alone in the reply box: nothing is sent; the box comes back with the reply filled."""
        container = container_of(request)
        reply = await canned_reply_named(container.database, typed)
        if reply is None:
            return await self._refused(request, session_id, f"There is no canned reply {typed}.", typed)
        text, missing = await filled_for_chat(
            container.database, reply, session_id, staff_of(request), container.settings.business_name
        )
        inserted = f"Inserted /{reply.shortcut} ({reply.title}). {missing_sentence(missing)}".strip()
        return await self._conversation_page(request, session_id, None, inserted=inserted, draft=text)

    @post(
        "/communication/chat/{session_id:int}/note",
        name="chat_note",
        guards=[requires_role(Role.AGENT)],
        status_code=303,
        request_max_body_size=REPLY_MAX_BODY,  # a note may keep a file, like a reply
    )
    async def note(self, request: Request[Any, Any, Any], session_id: FromPath[int]) -> Redirect | Template:
        """An internal note, with the file chosen in the reply box if any (same rules): staff see it in the
        inbox and the Slack thread; the customer never does."""
        form = await request.form()
        body = str(form.get("body", "")).strip()
        container, staff = container_of(request), staff_of(request)
        attached = await _attached_file(form.get("file"), container.settings.attachment_max_bytes)
        if isinstance(attached, RefusedFile):
            return await self._refused(request, session_id, attached.reason, body)
        try:
            await add_note(
                container.units.desk(),
                session_id,
                DeskActor(staff.id, staff.email, "web"),
                body,
                now=utc_now(),
                file=attached,
            )
        except ChatNotFound as error:
            raise NotFoundException(str(error)) from None
        except MessageRequestError as error:
            return await self._refused(request, session_id, str(error), body)
        return after_change(request, f"/communication/chat/{session_id}", done="note")

    @post(
        "/communication/chat/availability",
        name="chat_availability",
        guards=[requires_role(Role.AGENT)],
        status_code=303,
    )
    async def availability(self, request: Request[Any, Any, Any]) -> Redirect:
        """At work or away, as `back` and `away` say in Slack and Telegram (audited)."""
        form = await request.form()
        wanted = str(form.get("availability", ""))
        if wanted not in (Availability.ONLINE.value, Availability.AWAY.value):
            raise ValidationException("Say online (at work) or away.")
        container, staff = container_of(request), staff_of(request)
        await set_availability(
            container.units.desk(), DeskActor(staff.id, staff.email, "web"), Availability(wanted)
        )
        back = request.query_params.get("view")
        target = f"/communication/chat?view={back}" if back in DESK_VIEWS else "/communication/chat"
        return Redirect(target, status_code=303)

    @post(
        "/communication/chat/{session_id:int}/desk/{action:str}",
        name="chat_desk",
        guards=[requires_role(Role.AGENT)],
        status_code=303,
    )
    async def desk_action(
        self, request: Request[Any, Any, Any], session_id: FromPath[int], action: FromPath[str]
    ) -> Redirect | Template:
        """The desk's buttons: assign to me, snooze for 2 hours, resolve, reopen."""
        container, staff = container_of(request), staff_of(request)
        actor, now = DeskActor(staff.id, staff.email, "web"), utc_now()
        try:
            if action == "assign":
                await assign_chat(container.units.desk(), session_id, actor, now=now)
            elif action == "snooze":
                await snooze_chat(
                    container.units.desk(),
                    session_id,
                    actor,
                    until=now + timedelta(hours=2),
                    now=now,
                    timezone=container.settings.business_timezone,
                )
            elif action == "resolve":
                await resolve_chat(container.units.desk(), session_id, actor, now=now)
            elif action == "reopen":
                await reopen_chat(container.units.desk(), session_id, actor, now=now)
            else:
                raise NotFoundException(
                    f"Conversations cannot {action!r}; use assign, snooze, resolve or reopen."
                )
        except ChatNotFound as error:
            raise NotFoundException(str(error)) from None
        except DeskError as error:
            template = await self._conversation_page(request, session_id, None, error=str(error))
            template.status_code = 409
            return template
        return after_change(request, f"/communication/chat/{session_id}", done=action)
