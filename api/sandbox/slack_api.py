"""The sandbox's stand-in for the Slack Web API (`/slack/api/{method}`), its upload URLs and response URLs.

It answers the methods Switchboard calls with Slack's JSON shapes: HTTP 200 with `{"ok": true, ...}` or
`{"ok": false, "error": "..."}`, as slack.com does, so slack_sdk raises the same SlackApiError.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from api.sandbox.keys import STATE
from api.sandbox.slack_workspace import (
    BOT_ID,
    BOT_USER_ID,
    OpenedView,
    SlackChannel,
    SlackFile,
    SlackWorkspace,
)
from providers.slack.client import BOT_SCOPES

#: Slack's limits on a message (see PROVIDERS.md).
MAX_BLOCKS = 50
MAX_TEXT = 40_000
#: What files.completeUploadExternal accepts as channel_id.
CONVERSATION_ID = re.compile(r"^[CGDZ][A-Z0-9]{8,}$")

Params = dict[str, Any]


class SlackError(Exception):
    """A refusal Slack gives as `{"ok": false, "error": code}`."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


Method = Callable[[SlackWorkspace, Params, str], dict[str, Any]]


async def _params(request: web.Request) -> Params:
    """Query string plus a JSON or form body, as slack_sdk sends them (params=, json= or data=)."""
    params: Params = dict(request.query)
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise SlackError("invalid_json") from None
        if not isinstance(body, dict):
            raise SlackError("invalid_json")
        params.update(body)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        params.update({key: value for key, value in form.items() if isinstance(value, str)})
    return params


def _token(request: web.Request, params: Params) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[len("Bearer ") :].strip()
    # Form bodies and query strings may carry the token instead; JSON bodies may not (Slack's rule).
    token = params.pop("token", None) if request.content_type != "application/json" else None
    return str(token) if token else None


def _json_field(params: Params, name: str) -> Any:
    """A structured argument: JSON bodies carry it as is, form bodies as a JSON string."""
    value = params.get(name)
    if isinstance(value, str) and value.strip():
        try:
            return json.loads(value)
        except ValueError:
            raise SlackError(f"invalid_{name}") from None
    return value


def _channel(workspace: SlackWorkspace, params: Params, name: str = "channel") -> SlackChannel:
    value = str(params.get(name) or "")
    if not value:
        raise SlackError("channel_not_found")
    channel = workspace.channel_by_name_or_id(value)
    if channel is None:
        raise SlackError("channel_not_found")
    return channel


def _bot_may_post(channel: SlackChannel) -> None:
    if channel.is_archived:
        raise SlackError("is_archived")
    if BOT_USER_ID not in channel.members:
        raise SlackError("not_in_channel")


def _content(params: Params) -> tuple[str, list[dict[str, Any]]]:
    text = str(params.get("text") or "")
    blocks = _json_field(params, "blocks") or []
    attachments = _json_field(params, "attachments") or []
    if not isinstance(blocks, list) or not all(
        isinstance(block, dict) and "type" in block for block in blocks
    ):
        raise SlackError("invalid_blocks")
    if len(blocks) > MAX_BLOCKS:
        raise SlackError("invalid_blocks")
    if not text and not blocks and not attachments:
        raise SlackError("no_text")
    if len(text) > MAX_TEXT:
        raise SlackError("msg_too_long")
    return text, blocks


def _thread_ts(params: Params) -> str | None:
    value = params.get("thread_ts")
    return str(value) if value else None


def auth_test(workspace: SlackWorkspace, params: Params, base_url: str) -> dict[str, Any]:
    return {
        "ok": True,
        "url": f"https://{workspace.team_domain}.slack.com/",
        "team": "Northwind Clinics (sandbox)",
        "user": "switchboard",
        "team_id": workspace.team_id,
        "user_id": BOT_USER_ID,
        "bot_id": BOT_ID,
        "is_enterprise_install": False,
    }


def chat_post_message(workspace: SlackWorkspace, params: Params, base_url: str) -> dict[str, Any]:
    channel = _channel(workspace, params)
    _bot_may_post(channel)
    text, blocks = _content(params)
    message = workspace.bot_posts(channel.id, text, blocks=blocks, thread_ts=_thread_ts(params))
    return {
        "ok": True,
        "channel": channel.id,
        "ts": message.ts,
        "message": message.as_json(workspace.team_id, base_url, workspace.files),
    }


def chat_update(workspace: SlackWorkspace, params: Params, base_url: str) -> dict[str, Any]:
    channel = _channel(workspace, params)
    message = workspace.find(channel.id, str(params.get("ts") or ""))
    if message is None or message.visible_to is not None:
        raise SlackError("message_not_found")
    if message.user != BOT_USER_ID:
        raise SlackError("cant_update_message")
    text, blocks = _content(params)
    # Slack keeps the message's blocks when the update names none; an empty list removes them.
    message.text = text
    if "blocks" in params:
        message.blocks = blocks
    message.edited_ts = workspace.next_ts()
    workspace.version += 1
    return {
        "ok": True,
        "channel": channel.id,
        "ts": message.ts,
        "text": text,
        "message": message.as_json(workspace.team_id, base_url, workspace.files),
    }


def chat_post_ephemeral(workspace: SlackWorkspace, params: Params, base_url: str) -> dict[str, Any]:
    channel = _channel(workspace, params)
    _bot_may_post(channel)
    user = str(params.get("user") or "")
    if user not in workspace.people:
        raise SlackError("user_not_found")
    if user not in channel.members:
        raise SlackError("user_not_in_channel")
    text, blocks = _content(params)
    message = workspace.bot_posts(
        channel.id,
        text,
        blocks=blocks,
        thread_ts=_thread_ts(params),
        visible_to=user,
        via="chat.postEphemeral",
    )
    return {"ok": True, "message_ts": message.ts}


def files_get_upload_url_external(workspace: SlackWorkspace, params: Params, base_url: str) -> dict[str, Any]:
    filename = str(params.get("filename") or "")
    try:
        length = int(str(params.get("length") or ""))
    except ValueError:
        raise SlackError("invalid_arguments") from None
    if not filename or length <= 0:
        raise SlackError("invalid_arguments")
    alt_txt = params.get("alt_txt")
    upload = SlackFile(
        id=workspace.next_id("F"),
        name=filename,
        length=length,
        alt_txt=str(alt_txt) if alt_txt else None,
        created=int(time.time()),
    )
    workspace.files[upload.id] = upload
    return {"ok": True, "upload_url": f"{base_url}/slack/files/upload/v1/{upload.id}", "file_id": upload.id}


def files_complete_upload_external(
    workspace: SlackWorkspace, params: Params, base_url: str
) -> dict[str, Any]:
    wanted = _json_field(params, "files")
    if (
        not isinstance(wanted, list)
        or not wanted
        or not all(isinstance(f, dict) and f.get("id") for f in wanted)
    ):
        raise SlackError("invalid_arguments")
    uploads = [workspace.files.get(str(f["id"])) for f in wanted]
    if any(upload is None or upload.content is None for upload in uploads):
        raise SlackError("file_not_found")
    shared = [upload for upload in uploads if upload is not None]
    for upload, asked in zip(shared, wanted, strict=True):
        upload.title = str(asked.get("title") or upload.name)
    if params.get("channel_id") or params.get("channels"):
        channel_ref = str(params.get("channel_id") or str(params.get("channels")).split(",")[0])
        # Unlike chat.postMessage, only a conversation id will do here: a "#name" or user id is refused
        # (python-slack-sdk #1326, bolt-js #2115).
        if not CONVERSATION_ID.match(channel_ref):
            raise SlackError("invalid_arguments")
        channel = _channel(workspace, {"channel": channel_ref})
        _bot_may_post(channel)
        for upload in shared:
            upload.channels.append(channel.id)
        workspace.bot_posts(
            channel.id,
            str(params.get("initial_comment") or ""),
            thread_ts=_thread_ts(params),
            files=[upload.id for upload in shared],
            via="files.completeUploadExternal",
        )
    return {"ok": True, "files": [upload.as_json(base_url) for upload in shared]}


def views_open(workspace: SlackWorkspace, params: Params, base_url: str) -> dict[str, Any]:
    trigger = str(params.get("trigger_id") or "")
    view = _json_field(params, "view")
    if not trigger or not isinstance(view, dict):
        raise SlackError("invalid_arguments")
    if trigger not in workspace.triggers:
        raise SlackError("invalid_trigger_id")
    user = workspace.triggers.pop(trigger)  # a trigger opens one modal
    opened = OpenedView(user=user, trigger_id=trigger, view=view, id=workspace.next_id("V"))
    workspace.views.append(opened)
    return {
        "ok": True,
        "view": {
            **view,
            "id": opened.id,
            "team_id": workspace.team_id,
            "state": {"values": {}},
            "hash": secrets.token_hex(8),
            "app_id": "A0SWITCHBOT",
            "bot_id": BOT_ID,
        },
    }


def conversations_info(workspace: SlackWorkspace, params: Params, base_url: str) -> dict[str, Any]:
    channel = _channel(workspace, params)
    return {"ok": True, "channel": _channel_json(workspace, channel)}


def _channel_json(workspace: SlackWorkspace, channel: SlackChannel) -> dict[str, Any]:
    return {
        "id": channel.id,
        "name": channel.name,
        "name_normalized": channel.name,
        "is_channel": True,
        "is_group": False,
        "is_im": False,
        "is_private": False,
        "is_archived": channel.is_archived,
        "is_general": channel.name == "general",
        "is_member": BOT_USER_ID in channel.members,
        "context_team_id": workspace.team_id,
        "topic": {"value": channel.topic, "creator": "", "last_set": 0},
        "purpose": {"value": "", "creator": "", "last_set": 0},
        "num_members": len(channel.members),
    }


def conversations_replies(workspace: SlackWorkspace, params: Params, base_url: str) -> dict[str, Any]:
    """A thread, root first; the root carries the thread's summary as Slack's does."""
    channel = _channel(workspace, params)
    if BOT_USER_ID not in channel.members:
        raise SlackError("not_in_channel")
    root = workspace.find(channel.id, str(params.get("ts") or ""))
    if root is None or root.visible_to is not None:
        raise SlackError("thread_not_found")
    if root.thread_ts and root.thread_ts != root.ts:
        root = workspace.find(channel.id, root.thread_ts) or root  # Slack answers with the whole thread
    replies = [reply for reply in workspace.thread_of(root) if reply.visible_to is None]
    first = root.as_json(workspace.team_id, base_url, workspace.files)
    if replies:
        users = sorted({reply.user for reply in replies})
        first.update(
            thread_ts=root.ts,
            reply_count=len(replies),
            reply_users=users,
            reply_users_count=len(users),
            latest_reply=replies[-1].ts,
        )
    shown = [first]
    for reply in replies:
        data = reply.as_json(workspace.team_id, base_url, workspace.files)
        data["parent_user_id"] = root.user
        shown.append(data)
    return {"ok": True, "messages": shown, "has_more": False, "response_metadata": {"next_cursor": ""}}


def reactions_add(workspace: SlackWorkspace, params: Params, base_url: str) -> dict[str, Any]:
    channel = _channel(workspace, params)
    name = str(params.get("name") or "").strip(":")
    if not name or not re.fullmatch(r"[a-z0-9_+\-']+", name):
        raise SlackError("invalid_name")
    message = workspace.find(channel.id, str(params.get("timestamp") or ""))
    if message is None or message.visible_to is not None:
        raise SlackError("message_not_found")
    users = message.reactions.setdefault(name, [])
    if BOT_USER_ID in users:
        raise SlackError("already_reacted")
    users.append(BOT_USER_ID)
    workspace.version += 1
    return {"ok": True}


METHODS: dict[str, Method] = {
    "auth.test": auth_test,
    "chat.postMessage": chat_post_message,
    "chat.update": chat_update,
    "chat.postEphemeral": chat_post_ephemeral,
    "files.getUploadURLExternal": files_get_upload_url_external,
    "files.completeUploadExternal": files_complete_upload_external,
    "views.open": views_open,
    "conversations.info": conversations_info,
    "conversations.replies": conversations_replies,
    "reactions.add": reactions_add,
}


def _base_url(request: web.Request) -> str:
    return str(request.url.origin())


async def web_api(request: web.Request) -> web.Response:
    state = request.app[STATE]
    workspace = state.slack
    name = request.match_info["method"]
    try:
        params = await _params(request)
        token = _token(request, params)
        workspace.calls.append({"method": name, "params": params, "at": time.time()})
        if not token:
            raise SlackError("not_authed")
        if not secrets.compare_digest(token, state.config.slack_bot_token):
            raise SlackError("invalid_auth")
        method = METHODS.get(name)
        if method is None:
            raise SlackError("unknown_method")
        if workspace.rate_limited_calls > 0:
            workspace.rate_limited_calls -= 1
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "1"}
            )
        answer = method(workspace, params, _base_url(request))
    except SlackError as refusal:
        return web.json_response({"ok": False, "error": refusal.code})
    # As Slack does, every answer to a bot token names the token's scopes (the app's manifest's).
    return web.json_response(answer, headers={"X-OAuth-Scopes": ",".join(BOT_SCOPES)})


async def upload(request: web.Request) -> web.Response:
    """The upload URL files.getUploadURLExternal handed out: takes the file's raw bytes once."""
    workspace = request.app[STATE].slack
    found = workspace.files.get(request.match_info["file_id"])
    if found is None or found.content is not None:
        return web.Response(status=404, text="file not found or already uploaded")
    found.content = await request.read()
    return web.Response(text=f"OK - {len(found.content)}")


#: What Slack answers a url_private request without the right token: its sign-in page, with 200.
SIGN_IN_PAGE = "<!DOCTYPE html><html><head><title>Slack</title></head><body><h1>Sign in to your workspace</h1></body></html>"


async def download(request: web.Request) -> web.Response:
    """url_private: a person's file needs the bot token as Bearer (without it Slack shows its sign-in page);
    the bot's own uploads are also served without one, for the workspace page."""
    state = request.app[STATE]
    found = state.slack.files.get(request.match_info["file_id"])
    if found is None or found.content is None:
        raise web.HTTPNotFound()
    if found.user != BOT_USER_ID:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not secrets.compare_digest(token, state.config.slack_bot_token):
            return web.Response(text=SIGN_IN_PAGE, content_type="text/html")
    return web.Response(body=found.content, content_type=found.mimetype)


async def preview(request: web.Request) -> web.Response:
    """The workspace page shows every file (it stands in for Slack's own app, signed in)."""
    found = request.app[STATE].slack.files.get(request.match_info["file_id"])
    if found is None or found.content is None:
        raise web.HTTPNotFound()
    return web.Response(body=found.content, content_type=found.mimetype)


async def response_url(request: web.Request) -> web.Response:
    """A slash command's or button's response_url: the answer lands in the channel (or only for the asker).

    For a button, `replace_original` puts the answer in place of the message the button was on, and
    `delete_original` removes that message; a slash command has no original, so both add nothing there.
    """
    workspace = request.app[STATE].slack
    key = "/".join(request.match_info[part] for part in ("team", "command_id", "secret"))
    try:
        payload = json.loads(await request.read() or b"{}")
    except ValueError:
        return web.Response(status=400, text="invalid_payload")
    command = workspace.use_response_url(key)
    if isinstance(command, str):
        return web.Response(status=404, text=command)
    if not isinstance(payload, dict):
        return web.Response(status=400, text="invalid_payload")
    original = workspace.find(command.channel, command.message_ts) if command.message_ts else None
    if payload.get("delete_original"):
        if original is not None:
            workspace.remove(original)
        return web.Response(text="ok")  # a slash command has no original message to delete
    try:
        text, blocks = _content(payload)
    except SlackError as refusal:
        return web.Response(status=400, text=refusal.code)
    if payload.get("replace_original") and command.message_ts:
        if original is None:
            return web.Response(status=404, text="message_not_found")
        original.text, original.blocks = text, blocks
        workspace.version += 1
        return web.Response(text="ok")
    in_channel = payload.get("response_type") == "in_channel"
    workspace.bot_posts(
        command.channel,
        text,
        blocks=blocks,
        thread_ts=_thread_ts(payload) or command.thread_ts,
        visible_to=None if in_channel else command.user,
        via="response_url",
    )
    return web.Response(text="ok")


def routes() -> list[web.RouteDef]:
    return [
        web.route("*", "/slack/api/{method}", web_api),
        web.post("/slack/files/upload/v1/{file_id}", upload),
        web.get("/slack/files/{file_id}/{name}", download),
        web.get("/_sandbox/slack/files/{file_id}/{name}", preview),
        web.post("/slack/commands/{team}/{command_id}/{secret}", response_url),
    ]
