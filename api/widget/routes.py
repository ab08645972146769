"""The widget's routes: public (no session, no CSRF token), each checked against its key and origin.

The script posts its JSON as text/plain and passes its token in the body or the query string, so a page
on another origin needs no CORS preflight; answers carry CORS headers only for the key's origins.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import cache
from html import escape
from pathlib import Path
from typing import Any, TypeVar

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromQuery
from litestar.response import Stream

from domain.clock import utc_now
from domain.conversations.attachments import AttachmentRules, RefusedFile, check_file
from domain.conversations.use_cases import InboundPolicy
from domain.widget.model import (
    Visitor,
    VisitorPlace,
    WidgetKey,
    WidgetRefused,
    WidgetTurn,
    check_key,
    check_origin,
    origin_of,
    visitor_place,
)
from domain.widget.use_cases import confirm_replies, send_visitor_message, start_visit
from storage.queries.widget import (
    TurnPage,
    agents_online,
    recent_turns,
    visitor_by_token,
    visitor_turns,
    widget_key,
    widget_keys,
)
from storage.widget_visits import widget_unit
from switchboard.wiring import Container

HERE = Path(__file__).parent
#: Session auth and CSRF tokens cannot apply to a stranger's browser; the key and origin checks do.
PUBLIC = {"exclude_from_auth": True, "exclude_from_csrf": True}
#: The biggest body a widget request may have (a message of 4,000 characters fits many times over).
MAX_BODY_BYTES = 64_000
#: How often an open stream looks for new turns, and how long it stays open before the widget reconnects.
POLL_SECONDS = 1.0
HOLD_SECONDS = 300
KEEP_ALIVE_SECONDS = 15.0
#: The most turns one stream sends before it ends and the widget reconnects after the last.
STREAM_TURNS = 1000
#: Messages one visitor may send per minute (counted per web process).
MESSAGES_PER_MINUTE = 30
#: New visitors one client address may start per minute (counted per web process).
NEW_VISITS_PER_MINUTE = 20


class SessionBody(msgspec.Struct, forbid_unknown_fields=False):
    key: str
    token: str | None = None
    name: str | None = None
    email: str | None = None
    #: The browser's time zone and language ("Europe/Vienna", "de-AT"): a visitor who writes is placed by them.
    zone: str | None = None
    lang: str | None = None


class MessageBody(msgspec.Struct, forbid_unknown_fields=False):
    key: str
    id: str
    text: str
    token: str | None = None
    name: str | None = None
    email: str | None = None
    zone: str | None = None
    lang: str | None = None


class ReceiptBody(msgspec.Struct, forbid_unknown_fields=False):
    key: str
    token: str
    delivered: list[int] = []
    read: list[int] = []


Body = TypeVar("Body", SessionBody, MessageBody, ReceiptBody)


@dataclass
class SendingPace:
    """At most `per_minute` of something per sender (a visitor, a client address); more are refused with 429."""

    sent: dict[int | str, deque[float]]
    per_minute: int = MESSAGES_PER_MINUTE

    def allow(self, sender: int | str) -> bool:
        now = time.monotonic()
        recent = self.sent.setdefault(sender, deque())
        while recent and now - recent[0] > 60:
            recent.popleft()
        if len(recent) >= self.per_minute:
            return False
        recent.append(now)
        if len(self.sent) > 50_000:  # forget idle senders rather than grow without end
            self.sent = {k: v for k, v in self.sent.items() if v and now - v[-1] <= 60}
        return True


PACE = SendingPace({})
#: New visits per client address: opening the chat stores a visitor row, so a script cannot make endless ones.
VISIT_PACE = SendingPace({}, NEW_VISITS_PER_MINUTE)


def _container(request: Request[Any, Any, Any]) -> Container:
    container: Container = request.app.state.container
    return container


def _origin(request: Request[Any, Any, Any]) -> str | None:
    return request.headers.get("origin")


def _own_origins(request: Request[Any, Any, Any]) -> list[str]:
    """Switchboard's own pages (the demo page) may always use a key."""
    return [origin_of(_container(request).settings.public_url), origin_of(str(request.base_url))]


def _cors(request: Request[Any, Any, Any], key: WidgetKey | None) -> dict[str, str]:
    origin = _origin(request)
    if origin is None or key is None:
        return {"Vary": "Origin"}
    try:
        check_origin(key, origin, _own_origins(request))
    except WidgetRefused:
        return {"Vary": "Origin"}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin", "Cache-Control": "no-store"}


def _answer(
    request: Request[Any, Any, Any], key: WidgetKey | None, content: dict[str, Any], status: int = 200
) -> Response[dict[str, Any]]:
    return Response(content, status_code=status, headers=_cors(request, key), media_type="application/json")


def _refusal(
    request: Request[Any, Any, Any], key: WidgetKey | None, error: WidgetRefused
) -> Response[dict[str, Any]]:
    return _answer(request, key, {"error": str(error)}, error.status)


async def _allowed_key(request: Request[Any, Any, Any], key: str) -> WidgetKey:
    found = check_key(await widget_key(_container(request).database, key))
    check_origin(found, _origin(request), _own_origins(request))
    return found


async def _visitor(request: Request[Any, Any, Any], key: WidgetKey, token: str | None) -> Visitor:
    visitor = await visitor_by_token(_container(request).database, token)
    if visitor is None or visitor.key_id != key.id:
        raise WidgetRefused("This chat has expired; reload the page to start again.", 401)
    return visitor


async def _body(request: Request[Any, Any, Any], kind: type[Body]) -> Body:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise WidgetRefused(f"The request is too large; at most {MAX_BODY_BYTES:,} bytes.", 413)
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as error:
        raise WidgetRefused(f"The request is not as expected: {error}.", 422) from None
    except msgspec.DecodeError:
        raise WidgetRefused("The request is not JSON.", 400) from None


async def _recent(container: Container, visitor: Visitor) -> TurnPage:
    """A returning visitor's recent turns; one who has not written yet has none."""
    if visitor.customer_id is None:
        return TurnPage([], 0)
    return await recent_turns(container.database, visitor.customer_id)


def _turn(turn: WidgetTurn) -> dict[str, Any]:
    return {
        "id": turn.id,
        "mine": turn.mine,
        "body": turn.body,
        "at": turn.at.isoformat(),
        "client_id": turn.client_id,
    }


async def _new_visit_allowed(request: Request[Any, Any, Any], key: WidgetKey, token: str | None) -> None:
    """A request that will start a new visitor counts against its client address's pace."""
    known = await visitor_by_token(_container(request).database, token)
    if known is not None and known.key_id == key.id:
        return
    address = request.client.host if request.client else "unknown"
    if not VISIT_PACE.allow(address):
        raise WidgetRefused(
            "Too many chats were started from your network just now; please wait a minute.", 429
        )


def _policy(request: Request[Any, Any, Any]) -> InboundPolicy:
    settings = _container(request).settings
    return InboundPolicy(
        settings.business_name,
        business_timezone=settings.business_timezone,
        customer_language=settings.customer_language,
    )


def _place(request: Request[Any, Any, Any], body: SessionBody | MessageBody) -> VisitorPlace:
    """Where a visitor who writes now is taken to be: their browser's zone and language, else the business's."""
    settings = _container(request).settings
    return visitor_place(body.zone, body.lang, settings.business_timezone, settings.customer_language)


@post("/widget/session", opt=PUBLIC, include_in_schema=False, status_code=200)
async def open_session(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """Start or resume a visit: the token to keep, whether anyone is online, and the recent turns."""
    key: WidgetKey | None = None
    try:
        body = await _body(request, SessionBody)
        key = await _allowed_key(request, body.key)
        await _new_visit_allowed(request, key, body.token)
        container = _container(request)
        session = await start_visit(
            widget_unit(container.units),
            key,
            body.token,
            now=utc_now(),
            name=body.name,
            email=body.email,
            place=_place(request, body),
        )
    except WidgetRefused as error:
        return _refusal(request, key, error)
    recent = await _recent(container, session.visitor)
    return _answer(
        request,
        key,
        {
            "token": session.token,
            "name": key.name,
            "business": container.settings.business_name,
            "visitor": {"name": session.visitor.name, "email": session.visitor.email},
            "online": await agents_online(container.database) > 0,
            "turns": [_turn(t) for t in recent.turns],
            "position": recent.position,
        },
    )


async def _receive(request: Request[Any, Any, Any], *, offline: bool) -> Response[dict[str, Any]]:
    key: WidgetKey | None = None
    try:
        body = await _body(request, MessageBody)
        key = await _allowed_key(request, body.key)
        container = _container(request)
        token = body.token
        if offline and (token is None or await visitor_by_token(container.database, token) is None):
            await _new_visit_allowed(request, key, None)
            token = (await start_visit(widget_unit(container.units), key, None, now=utc_now())).token
        visitor = await _visitor(request, key, token)
        if offline and not (body.name and body.email):
            raise WidgetRefused("Please give your name and email, so that we can answer you.", 422)
        if not PACE.allow(visitor.id):
            raise WidgetRefused("You are sending messages very fast; please wait a minute.", 429)
        result = await send_visitor_message(
            widget_unit(container.units),
            key,
            visitor,
            client_id=body.id,
            text=body.text,
            policy=_policy(request),
            now=utc_now(),
            name=body.name,
            email=body.email,
            place=_place(request, body),
        )
    except WidgetRefused as error:
        return _refusal(request, key, error)
    duplicate = result.communication_id is None
    return _answer(
        request,
        key,
        {"id": result.communication_id, "duplicate": duplicate, "token": token},
        200 if duplicate else 201,
    )


@post("/widget/messages", opt=PUBLIC, include_in_schema=False)
async def visitor_writes(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """A visitor's message: into their conversation on the website chat (201), or 200 for a retry."""
    return await _receive(request, offline=False)


#: The largest upload read at all; the attachment rules (SWITCHBOARD_ATTACHMENT_MAX_BYTES) refuse a file in words.
MAX_FILE_BODY_BYTES = 32 * 1024 * 1024


@post(
    "/widget/files",
    opt=PUBLIC,
    include_in_schema=False,
    request_max_body_size=MAX_FILE_BODY_BYTES,
)
async def visitor_sends_a_file(
    request: Request[Any, Any, Any],
    key: FromQuery[str],
    id: FromQuery[str],
    name: FromQuery[str],
    token: FromQuery[str | None] = None,
    text: FromQuery[str] = "",
) -> Response[dict[str, Any]]:
    """A visitor's image or PDF (the raw bytes as the body, sent as text/plain so the clinic's page needs no
    CORS preflight), with optional words: checked by the attachment rules from its first bytes and kept on
    their turn (201), or refused in words; a retry with the same id is stored once (200)."""
    found: WidgetKey | None = None
    try:
        found = await _allowed_key(request, key)
        container = _container(request)
        visitor = await _visitor(request, found, token)
        if not PACE.allow(visitor.id):
            raise WidgetRefused("You are sending messages very fast; please wait a minute.", 429)
        content = await request.body()
        if not content:
            raise WidgetRefused("The file is empty.", 422)
        checked = check_file(content, name, None, AttachmentRules(container.settings.attachment_max_bytes))
        if isinstance(checked, RefusedFile):
            raise WidgetRefused(checked.reason, 422)
        result = await send_visitor_message(
            widget_unit(container.units),
            found,
            visitor,
            client_id=id,
            text=text,
            policy=_policy(request),
            now=utc_now(),
            file=checked,
        )
    except WidgetRefused as error:
        return _refusal(request, found, error)
    duplicate = result.communication_id is None
    return _answer(
        request, found, {"id": result.communication_id, "duplicate": duplicate}, 200 if duplicate else 201
    )


@post("/widget/offline", opt=PUBLIC, include_in_schema=False)
async def visitor_leaves_a_message(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """The offline form: name, email and message, kept in a conversation for the first agent back."""
    return await _receive(request, offline=True)


@post("/widget/receipts", opt=PUBLIC, include_in_schema=False, status_code=200)
async def widget_receipts(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """The widget received (delivered) or showed (read) replies."""
    key: WidgetKey | None = None
    try:
        body = await _body(request, ReceiptBody)
        key = await _allowed_key(request, body.key)
        visitor = await _visitor(request, key, body.token)
        applied = await confirm_replies(
            widget_unit(_container(request).units),
            visitor,
            delivered=body.delivered,
            read=body.read,
            now=utc_now(),
        )
    except WidgetRefused as error:
        return _refusal(request, key, error)
    return _answer(request, key, {"applied": applied})


@get("/widget/events", opt=PUBLIC, include_in_schema=False)
async def widget_events(
    request: Request[Any, Any, Any],
    key: FromQuery[str] = "",
    token: FromQuery[str] = "",
    after: FromQuery[int] = 0,
    hold: FromQuery[int] = HOLD_SECONDS,
) -> Response[Any]:
    """Server-sent events: each turn once, in order, with its id; a reconnect names the last id it had
    (Last-Event-ID) and carries on from there. Any web process can serve it: it reads the database."""
    found: WidgetKey | None = None
    try:
        found = await _allowed_key(request, key)
        visitor = await _visitor(request, found, token)
    except WidgetRefused as error:
        return _refusal(request, found, error)
    resumed = request.headers.get("last-event-id", "")
    start = int(resumed) if resumed.isdigit() and len(resumed) < 19 else max(after, 0)
    database = _container(request).database

    async def events() -> AsyncIterator[str]:
        yield "retry: 2000\n\n"
        # Each poll reads every turn since the stream began, not just those after the last one sent: a turn
        # whose transaction committed after a later one (ids are handed out before commit) still goes out.
        sent: set[int] = set()
        quiet_since = time.monotonic()
        ends = time.monotonic() + min(max(hold, 0), HOLD_SECONDS)
        customer_id = visitor.customer_id
        while True:
            if customer_id is None:  # a visitor who has not written yet: their turns begin when they do
                customer_id = (await visitor_by_token(database, token) or visitor).customer_id
            page = (
                await visitor_turns(database, customer_id, after=start, limit=STREAM_TURNS)
                if customer_id is not None
                else TurnPage([], start)
            )
            for turn in page.turns:
                if turn.id not in sent:
                    sent.add(turn.id)
                    yield f"id: {turn.id}\nevent: turn\ndata: {json.dumps(_turn(turn))}\n\n"
                    quiet_since = time.monotonic()
            if time.monotonic() >= ends or len(sent) >= STREAM_TURNS:
                return  # the widget reconnects, naming the last turn it had
            if time.monotonic() - quiet_since >= KEEP_ALIVE_SECONDS:
                yield ": still here\n\n"
                quiet_since = time.monotonic()
            await asyncio.sleep(POLL_SECONDS)

    headers = {**_cors(request, found), "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return Stream(events(), media_type="text/event-stream", headers=headers)


@get("/widget.js", opt=PUBLIC, include_in_schema=False)
async def widget_script() -> Response[bytes]:
    """The script a clinic embeds: `<script src=".../widget.js" data-key="KEY"></script>`."""
    return Response(
        _script(),
        media_type="application/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
    )


@cache
def _script() -> bytes:
    return (HERE / "widget.js").read_bytes()


DEMO_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{business} — website</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/widget/demo.css"></head>
<body><header><h1>{business}</h1><p>Clinics, skincare and supplements.</p></header>
<main><h2>Welcome</h2><p>This stands in for the clinic's own website. The chat bubble in the corner is the
Switchboard widget, embedded with one line:</p>
<pre>&lt;script src="{public_url}/widget.js" data-key="{key}"&gt;&lt;/script&gt;</pre>
<p>Write a message; an agent answers from the web inbox (<a href="/communication/chat">Live chat</a>).</p>
</main>{script}</body></html>"""

DEMO_CSS = b"""body{font-family:system-ui,sans-serif;margin:0;color:#1d2733;background:#f6f7f9}
header{background:#0f4c5c;color:#fff;padding:2rem}main{max-width:44rem;margin:2rem auto;padding:0 1rem}
pre{background:#fff;border:1px solid #d7dce2;padding:1rem;overflow-x:auto}"""

#: The demo page runs only our own script; styles the widget adds are inline.
DEMO_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@get("/widget/demo", opt=PUBLIC, include_in_schema=False)
async def widget_demo(request: Request[Any, Any, Any]) -> Response[str]:
    """A page standing in for the clinic's website, with the widget embedded on the first enabled key."""
    container = _container(request)
    usable = [k for k in await widget_keys(container.database) if k.enabled]
    business = container.settings.business_name
    if usable:
        key_text = escape(usable[0].key)
        script = f'<script src="/widget.js" data-key="{key_text}"></script>'
    else:
        script = "<p><strong>No widget key yet:</strong> run <code>switchboard widget-key create</code>.</p>"
        key_text = "KEY"
    html = DEMO_PAGE.format(
        business=escape(business),
        public_url=escape(container.settings.public_url.rstrip("/")),
        key=key_text,
        script=script,
    )
    return Response(html, media_type="text/html", headers={"Content-Security-Policy": DEMO_POLICY})


@get("/widget/demo.css", opt=PUBLIC, include_in_schema=False)
async def widget_demo_css() -> Response[bytes]:
    return Response(DEMO_CSS, media_type="text/css")


widget_handlers = [
    widget_script,
    open_session,
    visitor_writes,
    visitor_sends_a_file,
    visitor_leaves_a_message,
    widget_receipts,
    widget_events,
    widget_demo,
    widget_demo_css,
]
