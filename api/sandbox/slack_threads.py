"""The sandbox Slack page's thread side: a person replies in a thread, edits or deletes that reply, presses a
button, or has an event sent again as Slack's retry. Each is a form on the page and a JSON endpoint for tests.

JSON answers are 202 with what Switchboard was sent and how it answered; a refusal is a 4xx with `error`
(Slack's code where Slack has one) and `message` (in words).
"""

from __future__ import annotations

import base64
import functools
import html
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn
from urllib.parse import urlencode

from aiohttp import web

from api.sandbox.keys import STATE
from api.sandbox.slack_events import (
    MAX_RETRIES,
    RETRY_REASONS,
    attempt,
    block_actions_payload,
    buttons_of,
    changed_event,
    deleted_event,
    deliver_event,
    message_json,
    press_button,
    reply_event,
)
from api.sandbox.slack_people import SlackPerson
from api.sandbox.slack_workspace import Delivery, SlackChannel, SlackFile, SlackMessage, SlackWorkspace

#: What the page calls a person's message typed into a thread.
TYPED_IN_THREAD = "thread_reply"


_REFUSALS: dict[int, type[web.HTTPClientError]] = {
    400: web.HTTPBadRequest,
    403: web.HTTPForbidden,
    404: web.HTTPNotFound,
    409: web.HTTPConflict,
}


Handler = Callable[[web.Request], Awaitable[web.Response]]


def answered_in_words(handler: Handler) -> Handler:
    """A refusal to the page's form is a short page in words with a way back; to JSON callers it stays JSON."""

    @functools.wraps(handler)
    async def answer(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except web.HTTPClientError as refusal:
            if request.content_type == "application/json" or refusal.content_type != "application/json":
                raise
            words = json.loads(refusal.text or "{}").get("message", "That did not work.")
            back = request.headers.get("Referer") or "/_sandbox/slack"
            page = (
                f"<!doctype html><meta charset='utf-8'><title>Slack refused</title>"
                f"<p>{html.escape(words)}</p><p><a href='{html.escape(back)}'>Back to the workspace</a></p>"
            )
            return web.Response(status=refusal.status, text=page, content_type="text/html")

    return answer


def refuse(code: str, words: str, status: int = 400) -> NoReturn:
    raise _REFUSALS[status](
        text=json.dumps({"error": code, "message": words}), content_type="application/json"
    )


async def _read(request: web.Request) -> tuple[dict[str, Any], bool]:
    """The fields, and whether they came from the page's form (answered by going back to the page)."""
    from_page = request.content_type != "application/json"
    try:
        data: Any = dict(await request.post()) if from_page else await request.json()
    except ValueError:
        refuse("invalid_json", "The body is not JSON.")
    if not isinstance(data, dict):
        refuse("invalid_arguments", "Send a JSON object.")
    return data, from_page


def _person(workspace: SlackWorkspace, data: dict[str, Any]) -> SlackPerson:
    person = workspace.people.get(str(data.get("user", "")))
    if person is None:
        refuse("user_not_found", "Nobody in the workspace has that user id.")
    return person


def _channel(workspace: SlackWorkspace, data: dict[str, Any]) -> SlackChannel:
    channel = workspace.channel_by_name_or_id(str(data.get("channel", "")))
    if channel is None:
        refuse("channel_not_found", "The workspace has no such channel.", 404)
    return channel


def _text(data: dict[str, Any]) -> str:
    text = str(data.get("text", "")).strip()
    if not text:
        refuse("no_text", "Type something first.")
    return text


#: The largest file a person may attach in the sandbox (Slack's own limit is 1 GB).
MAX_SHARED_BYTES = 50 * 1024 * 1024


def _shared_file(data: dict[str, Any], user: str, channel: str) -> SlackFile | None:
    """A file attached to a thread reply: the page's file field, or JSON {"file": {"name", "content_base64"}}."""
    given = data.get("file")
    if isinstance(given, web.FileField):
        name, content = given.filename, given.file.read(MAX_SHARED_BYTES + 1)
    elif isinstance(given, dict):
        name = str(given.get("name") or "")
        try:
            content = base64.b64decode(str(given.get("content_base64") or ""), validate=True)
        except ValueError:
            refuse("invalid_arguments", "file.content_base64 is not base64.")
    else:
        return None
    if not name or not content:
        return None  # the page's form sends an empty file field when nothing was chosen
    if len(content) > MAX_SHARED_BYTES:
        refuse("file_too_large", "The sandbox takes files up to 50 MB.")
    return SlackFile(
        id="", name=name, length=len(content), alt_txt=None, created=int(time.time()), content=content,
        channels=[channel], user=user,
    )  # fmt: skip


def _count(data: dict[str, Any], name: str, default: int) -> int:
    try:
        value = int(data.get(name, default) or 0)
    except (TypeError, ValueError):
        refuse("invalid_arguments", f"{name} must be a whole number.")
    if not 0 <= value <= MAX_RETRIES:
        refuse("invalid_arguments", f"Slack retries an event at most {MAX_RETRIES} times.")
    return value


def _reason(data: dict[str, Any]) -> str:
    reason = str(data.get("retry_reason") or "http_timeout")
    if reason not in RETRY_REASONS:
        refuse("invalid_arguments", f"A retry reason is one of: {', '.join(RETRY_REASONS)}.")
    return reason


def _own_message(
    workspace: SlackWorkspace, person: SlackPerson, channel: SlackChannel, ts: str
) -> SlackMessage:
    """A thread message the person typed: the only kind the page lets them edit or delete."""
    message = workspace.find(channel.id, ts)
    if message is None or message.visible_to not in (None, person.id):
        refuse("message_not_found", "That message is not in this channel (or was deleted).", 404)
    if message.is_bot or message.user != person.id or message.via != TYPED_IN_THREAD:
        refuse("cant_update_message", "Only the person who wrote a thread reply can change it.", 403)
    return message


def _delivered(message: SlackMessage, delivery: Delivery | None) -> dict[str, Any]:
    if delivery is None:
        return {"status": None, "outcome": message.outcome, "event_id": None, "attempts": []}
    shown = delivery.as_json()
    return {
        "status": delivery.attempts[-1].status,
        "outcome": delivery.outcome,
        "event_id": delivery.event_id,
        "attempts": shown["attempts"],
        "event": shown["body"]["event"],
    }


def _answer(from_page: bool, channel: str, user: str, anchor: str, data: dict[str, Any]) -> web.Response:
    if from_page:
        query = urlencode({"channel": channel, "as": user})
        raise web.HTTPSeeOther(f"/_sandbox/slack?{query}#m-{anchor}")
    return web.json_response(data, status=202)


# --- handlers -------------------------------------------------------------------------------------


async def thread_reply(request: web.Request) -> web.Response:
    """A person's reply in a thread: shown in the workspace and sent to Switchboard as a `message` event."""
    state = request.app[STATE]
    workspace, config = state.slack, state.config
    data, from_page = await _read(request)
    person, channel = _person(workspace, data), _channel(workspace, data)
    shared = _shared_file(data, person.id, channel.id)
    text = str(data.get("text", "")).strip() if shared is not None else _text(data)
    retries, reason = _count(data, "retries", 0), _reason(data)
    root = workspace.find(channel.id, str(data.get("thread_ts", "")))
    if root is None or root.visible_to is not None or root.lost_thread:
        refuse("thread_not_found", "That thread is not in this channel.", 404)
    if shared is not None:
        shared.id = workspace.next_id("F")
        workspace.files[shared.id] = shared
    message = workspace.post(
        SlackMessage(
            channel=channel.id,
            ts=workspace.next_ts(),
            user=person.id,
            text=text,
            is_bot=False,
            thread_ts=root.ts,
            via=TYPED_IN_THREAD,
            client_msg_id=str(uuid.uuid4()),
            files=[shared.id] if shared is not None else [],
        )
    )
    event = reply_event(workspace, message, str(request.url.origin()))
    delivery = await deliver_event(
        config, workspace, message, event, kind="message", retries=retries, retry_reason=reason
    )
    shown = {"ts": message.ts, "thread_ts": message.thread_ts, **_delivered(message, delivery)}
    return _answer(from_page, channel.id, person.id, message.ts, shown)


async def edit(request: web.Request) -> web.Response:
    """A person edits their thread reply: Slack sends `message_changed` with the old and the new message."""
    state = request.app[STATE]
    workspace, config = state.slack, state.config
    data, from_page = await _read(request)
    person, channel = _person(workspace, data), _channel(workspace, data)
    message = _own_message(workspace, person, channel, str(data.get("ts", "")))
    text, retries = _text(data), _count(data, "retries", 0)
    reason = _reason(data)
    base_url = str(request.url.origin())
    before = message_json(workspace, message, base_url)
    event_ts = workspace.next_ts()
    message.text, message.edited_ts = text, event_ts
    workspace.version += 1
    after = message_json(workspace, message, base_url)
    delivery = await deliver_event(
        config,
        workspace,
        message,
        changed_event(message, before, after, event_ts),
        kind="message_changed",
        retries=retries,
        retry_reason=reason,
    )
    return _answer(
        from_page, channel.id, person.id, message.ts, {"ts": message.ts, **_delivered(message, delivery)}
    )


async def delete(request: web.Request) -> web.Response:
    """A person deletes their thread reply: it goes, and Slack sends `message_deleted` with what it said."""
    state = request.app[STATE]
    workspace, config = state.slack, state.config
    data, from_page = await _read(request)
    person, channel = _person(workspace, data), _channel(workspace, data)
    message = _own_message(workspace, person, channel, str(data.get("ts", "")))
    retries, reason = _count(data, "retries", 0), _reason(data)
    before = message_json(workspace, message, str(request.url.origin()))
    workspace.remove(message)
    workspace.deleted.append(message)
    delivery = await deliver_event(
        config,
        workspace,
        message,
        deleted_event(message, before, workspace.next_ts()),
        kind="message_deleted",
        retries=retries,
        retry_reason=reason,
    )
    anchor = message.thread_ts or message.ts
    return _answer(
        from_page, channel.id, person.id, anchor, {"ts": message.ts, **_delivered(message, delivery)}
    )


async def retry(request: web.Request) -> web.Response:
    """Send a delivered event again as Slack's retry: the identical body, re-signed, X-Slack-Retry-Num counting up."""
    state = request.app[STATE]
    workspace, config = state.slack, state.config
    data, from_page = await _read(request)
    delivery = workspace.deliveries.get(str(data.get("event_id", "")))
    if delivery is None:
        refuse("event_not_found", "The sandbox has not sent an event with that id.", 404)
    times, reason = _count(data, "retries", 1), _reason(data)
    if delivery.retries + times > MAX_RETRIES:
        refuse(
            "too_many_retries",
            f"Slack retries an event at most {MAX_RETRIES} times; this one has been retried {delivery.retries}.",
            409,
        )
    for _ in range(times):
        await attempt(config, delivery, reason)
    message = workspace.find(delivery.channel, delivery.ts) or next(
        (m for m in workspace.deleted if m.channel == delivery.channel and m.ts == delivery.ts), None
    )
    if message is not None and message.event_id == delivery.event_id:
        message.outcome = delivery.outcome
    workspace.version += 1
    anchor = message.thread_ts or message.ts if message is not None else ""
    user = str(data.get("user") or (message.user if message is not None else ""))
    shown = {
        "ts": delivery.ts,
        **(_delivered(message, delivery) if message is not None else delivery.as_json()),
    }
    return _answer(from_page, delivery.channel, user, anchor, shown)


async def click(request: web.Request) -> web.Response:
    """A person presses a button in an app's message: Slack posts a signed `block_actions` payload."""
    state = request.app[STATE]
    workspace, config = state.slack, state.config
    data, from_page = await _read(request)
    person, channel = _person(workspace, data), _channel(workspace, data)
    message = workspace.find(channel.id, str(data.get("ts", "")))
    if message is None or message.visible_to not in (None, person.id) or message.lost_thread:
        refuse("message_not_found", "That message is not in this channel for this person.", 404)
    action_id = str(data.get("action_id", ""))
    button = next((b for b in buttons_of(message) if b.action_id == action_id), None)
    if button is None:
        refuse("action_not_found", "That message has no button with this action_id.", 404)
    base_url = str(request.url.origin())
    in_thread = message.thread_ts if message.thread_ts and message.thread_ts != message.ts else None
    key = workspace.open_response_url(channel.id, person.id, message_ts=message.ts, thread_ts=in_thread)
    response_url = f"{base_url}/slack/commands/{key}"
    trigger_id = workspace.issue_trigger(person.id)
    payload = block_actions_payload(
        workspace,
        person=person,
        message=message,
        button=button,
        response_url=response_url,
        trigger_id=trigger_id,
        base_url=base_url,
    )
    status, outcome = await press_button(config, payload)
    message.pressed = f"{person.name} pressed “{button.label}”: {outcome}"
    workspace.version += 1
    anchor = message.ts
    shown = {
        "status": status,
        "outcome": outcome,
        "action_id": button.action_id,
        "block_id": button.block_id,
        "response_url": response_url,
        "trigger_id": trigger_id,
        "payload": payload,
    }
    return _answer(from_page, channel.id, person.id, anchor, shown)


async def events(request: web.Request) -> web.Response:
    """Every event the sandbox sent Switchboard (the latest 1,000), with each attempt's answer."""
    deliveries = request.app[STATE].slack.deliveries.values()
    return web.json_response({"events": [delivery.as_json() for delivery in deliveries]})


def routes() -> list[web.RouteDef]:
    return [
        web.post("/_sandbox/slack/thread-reply", answered_in_words(thread_reply)),
        web.post("/_sandbox/slack/edit", answered_in_words(edit)),
        web.post("/_sandbox/slack/delete", answered_in_words(delete)),
        web.post("/_sandbox/slack/retry", answered_in_words(retry)),
        web.post("/_sandbox/slack/click", answered_in_words(click)),
        web.get("/_sandbox/slack/events", events),
    ]
