"""The live inbox's server-sent events: a conversation's new turns and desk state, a queue's rows and counts.

Each stream polls the database (so any web process can serve any client, as the widget's stream does) and
names what it sent with an event id, so a browser that reconnects (Last-Event-ID) gets nothing twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from litestar import Request
from litestar.response import Stream

from api.widget.routes import HOLD_SECONDS, KEEP_ALIVE_SECONDS, POLL_SECONDS, STREAM_TURNS
from storage.database import Database
from storage.queries.chats import ChatTurn, chat_turns_after, desk_chat

#: One poll's events, already written as SSE text.
Poll = Callable[[], Awaitable[list[str]]]


def sse(data: dict[str, Any], event: str, event_id: str | None = None) -> str:
    """One event; JSON keeps every newline of a message inside a single data line."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def last_event_id(request: Request[Any, Any, Any]) -> str:
    """What the browser names on reconnecting (short, printable), or ''."""
    named = request.headers.get("last-event-id", "")
    return named if len(named) <= 64 and named.isprintable() else ""


async def polled(poll: Poll, hold: int) -> AsyncIterator[str]:
    """Every POLL_SECONDS the poll's events; a comment after a quiet spell keeps proxies from closing the
    connection; after `hold` seconds the stream ends and the browser reconnects (a closed tab ends it at once:
    the server stops the generator when the client goes away)."""
    yield "retry: 2000\n\n"
    quiet_since = time.monotonic()
    ends = time.monotonic() + min(max(hold, 0), HOLD_SECONDS)
    while True:
        for event in await poll():
            yield event
            quiet_since = time.monotonic()
        if time.monotonic() >= ends:
            return
        if time.monotonic() - quiet_since >= KEEP_ALIVE_SECONDS:
            yield ": still here\n\n"
            quiet_since = time.monotonic()
        await asyncio.sleep(POLL_SECONDS)


def event_stream(poll: Poll, hold: int) -> Stream:
    return Stream(
        polled(poll, hold),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def conversation_poll(
    database: Database,
    chat_id: int,
    after: int,
    describe_turn: Callable[[ChatTurn], dict[str, Any]],
    describe_state: Callable[[Any], dict[str, Any]],
) -> Poll:
    """New turns (id = the turn's id), a reply's delivery status when it changes, and the desk's state
    (status, who holds it) when it changes. Each poll reads every turn since the stream began, not only those
    after the last sent: a turn whose transaction committed after a later one still goes out, once."""
    delivery: dict[int, str | None] = {}
    last_state: list[str] = []

    async def poll() -> list[str]:
        events: list[str] = []
        for turn in await chat_turns_after(database, chat_id, after, STREAM_TURNS):
            if turn.id not in delivery:
                events.append(sse(describe_turn(turn), "turn", str(turn.id)))
            elif delivery[turn.id] != turn.delivery_status:
                events.append(sse({"id": turn.id, **describe_turn(turn)}, "delivery"))
            delivery[turn.id] = turn.delivery_status
        state = describe_state(await desk_chat(database, chat_id))
        written = json.dumps(state, sort_keys=True)
        if last_state != [written]:
            last_state[:] = [written]
            events.append(sse(state, "state"))
        return events

    return poll


def snapshot_poll(read: Callable[[], Awaitable[tuple[Any, dict[str, Any]]]], resumed_from: str) -> Poll:
    """A queue's snapshot (counts and rows) whenever what it is made of changes. Its id is a digest of that
    data, so a browser reconnecting with the digest it already shows is sent nothing until something changes."""
    last = [resumed_from]

    async def poll() -> list[str]:
        basis, shown = await read()
        digest = hashlib.sha256(repr(basis).encode()).hexdigest()[:16]
        if digest == last[0]:
            return []
        last[0] = digest
        return [sse(shown, "queue", digest)]

    return poll
