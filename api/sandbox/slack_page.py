"""The sandbox's Slack page: channels and threads as Slack shows them, and slash commands typed as a staff member.

A typed command goes to Switchboard's /slack/events exactly as Slack sends one: a form body signed with
the signing secret (v0 HMAC over `v0:{timestamp}:{body}`), a response_url back to this sandbox, and a
trigger_id for a modal.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from aiohttp import web
from markupsafe import Markup, escape

from api.sandbox import slack_threads
from api.sandbox.config import SandboxConfig
from api.sandbox.keys import STATE
from api.sandbox.slack_events import MAX_RETRIES, VERIFICATION_TOKEN, buttons_of, post_signed
from api.sandbox.slack_workspace import BOT_NAME, BOT_USER_ID, SlackMessage, SlackWorkspace

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
#: `<https://x|label>`, `<@U123>`, `<#C123|name>`, `<!here>`: Slack's angle-bracket references.
_REFERENCE = re.compile(r"<([^<>]+)>")
_STYLES = (
    (re.compile(r"```(.+?)```", re.S), r"<pre>\1</pre>"),
    (re.compile(r"`([^`\n]+)`"), r"<code>\1</code>"),
    (re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])"), r"<b>\1</b>"),
    (re.compile(r"(?<![\w_])_([^_\n]+)_(?![\w_])"), r"<i>\1</i>"),
    (re.compile(r"(?<![\w~])~([^~\n]+)~(?![\w~])"), r"<s>\1</s>"),
)


def mrkdwn(text: str, workspace: SlackWorkspace) -> Markup:
    """Slack's mrkdwn as safe HTML: bold, italic, strike, code, links and mentions; everything else escaped."""
    parts: list[str] = []
    last = 0
    for match in _REFERENCE.finditer(text):
        parts.append(_styled(text[last : match.start()]))
        parts.append(_reference(match.group(1), workspace))
        last = match.end()
    parts.append(_styled(text[last:]))
    # Every piece was escaped in _styled or _reference before it was joined.
    return Markup("".join(parts))  # noqa: S704


#: The emoji Switchboard's messages use, drawn as Slack draws them; any other :name: stays as typed.
_EMOJI = {
    "white_check_mark": "✅",
    "heavy_check_mark": "✔️",
    "x": "❌",
    "warning": "⚠️",
    "hourglass_flowing_sand": "⏳",
    "speech_balloon": "💬",
    "lock": "🔒",
    "eyes": "👀",
    "email": "📧",
    "iphone": "📱",
    "bell": "🔔",
    "zzz": "💤",
    "+1": "👍",
}
_SHORTCODE = re.compile(r":([a-z0-9_+\-]+):")


def _styled(plain: str) -> str:
    shown = str(escape(html.unescape(plain)))
    for pattern, replacement in _STYLES:
        shown = pattern.sub(replacement, shown)
    return _SHORTCODE.sub(lambda m: _EMOJI.get(m.group(1), m.group(0)), shown)


def _reference(inner: str, workspace: SlackWorkspace) -> str:
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        person = workspace.people.get(target[1:])
        name = person.name if person else (BOT_NAME if target[1:] == BOT_USER_ID else target[1:])
        return f'<span class="mention">@{escape(name)}</span>'
    if target.startswith("#"):
        channel = workspace.channels.get(target[1:])
        return f'<span class="mention">#{escape(label or (channel.name if channel else target[1:]))}</span>'
    if target.startswith("!"):
        return f'<span class="mention">@{escape(target[1:])}</span>'
    return f'<a href="{escape(target)}">{escape(html.unescape(label or target))}</a>'


def _text_of(element: Any, workspace: SlackWorkspace) -> Markup:
    """A text object (plain_text or mrkdwn) as HTML."""
    if not isinstance(element, dict):
        return Markup("")
    text = str(element.get("text", ""))
    return mrkdwn(text, workspace) if element.get("type") == "mrkdwn" else escape(text)


def _view(
    message: SlackMessage, workspace: SlackWorkspace, base_url: str, *, deleted: bool = False
) -> dict[str, Any]:
    person = workspace.people.get(message.user)
    delivery = workspace.deliveries.get(message.event_id or "")
    return {
        "ts": message.ts,
        "when": time.strftime("%H:%M:%S", time.localtime(float(message.ts))),
        "author": BOT_NAME if message.is_bot else (person.name if person else message.user),
        "is_bot": message.is_bot,
        "text": mrkdwn(message.text, workspace),
        "raw_text": message.text,
        "blocks": message.blocks,
        "files": [workspace.files[f].as_json(base_url) for f in message.files if f in workspace.files],
        "visible_to": message.visible_to,
        "via": message.via,
        "edited": message.edited_ts is not None,
        "outcome": message.outcome,
        "lost_thread": message.lost_thread,
        "user": message.user,
        "typed_in_thread": message.via == slack_threads.TYPED_IN_THREAD,
        "deleted": deleted,
        "event_id": message.event_id if delivery is not None else None,
        "retries_left": MAX_RETRIES - delivery.retries if delivery is not None else 0,
        "button_ids": {button.where: button.action_id for button in buttons_of(message)},
        "pressed": message.pressed,
        "reactions": {name: len(users) for name, users in message.reactions.items()},
    }


def _thread_views(
    workspace: SlackWorkspace, root: SlackMessage, base_url: str, shown: Callable[[SlackMessage], bool]
) -> list[dict[str, Any]]:
    """A thread's replies the person sees, with the ones their authors deleted marked where they were."""
    replies = [_view(r, workspace, base_url) for r in workspace.thread_of(root) if shown(r)]
    replies += [
        _view(m, workspace, base_url, deleted=True)
        for m in workspace.deleted
        if m.channel == root.channel and m.thread_ts == root.ts
    ]
    return sorted(replies, key=lambda view: float(view["ts"]))


async def page(request: web.Request) -> web.Response:
    state = request.app[STATE]
    workspace = state.slack
    channel = workspace.channels.get(request.query.get("channel", "")) or next(
        iter(workspace.channels.values())
    )
    acting = request.query.get("as", "")
    if acting not in workspace.people:
        acting = next(iter(workspace.people))
    base_url = str(request.url.origin())

    def shown(message: SlackMessage) -> bool:
        return message.visible_to in (None, acting) and not message.lost_thread

    roots = [
        m
        for m in workspace.messages
        if m.channel == channel.id and shown(m) and (not m.thread_ts or m.thread_ts == m.ts)
    ]
    threads = [
        (_view(root, workspace, base_url), _thread_views(workspace, root, base_url, shown)) for root in roots
    ]
    everything = [message for _, replies in threads for message in replies] + [root for root, _ in threads]
    newest = max((float(m["ts"]) for m in everything), default=0.0)
    rendered = _TEMPLATES.get_template("slack.html").render(
        workspace=workspace,
        channel=channel,
        acting=acting,
        threads=threads,
        views=[v for v in workspace.views if v.user == acting],
        lost=[
            _view(m, workspace, base_url)
            for m in workspace.messages
            if m.lost_thread and m.channel == channel.id
        ],
        command=state.config.slack_command,
        events_url=state.config.webhook_url(state.config.slack_events_path),
        text_of=lambda element: _text_of(element, workspace),
        bot_member=BOT_USER_ID in channel.members,
        newest=next((m["ts"] for m in everything if float(m["ts"]) == newest), ""),
    )
    return web.Response(text=rendered, content_type="text/html")


async def version(request: web.Request) -> web.Response:
    return web.json_response({"version": request.app[STATE].slack.version})


async def channel_messages(request: web.Request) -> web.Response:
    """Everything in a channel for tests and scripts: messages, thread replies, ephemeral ones marked."""
    workspace = request.app[STATE].slack
    channel = workspace.channel_by_name_or_id(request.match_info["channel"])
    if channel is None:
        raise web.HTTPNotFound(
            text=json.dumps({"error": "channel_not_found"}), content_type="application/json"
        )
    return web.json_response(
        {"channel": channel.id, "messages": workspace.channel_json(channel.id, str(request.url.origin()))}
    )


async def calls(request: web.Request) -> web.Response:
    return web.json_response({"calls": list(request.app[STATE].slack.calls)})


def slash_command_form(
    config: SandboxConfig,
    workspace: SlackWorkspace,
    *,
    user: str,
    channel: str,
    command: str,
    text: str,
    base_url: str,
) -> dict[str, str]:
    """The form fields Slack posts for a slash command."""
    person = workspace.people[user]
    found = workspace.channels[channel]
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": workspace.team_id,
        "team_domain": workspace.team_domain,
        "channel_id": found.id,
        "channel_name": found.name,
        "user_id": person.id,
        "user_name": person.name.lower().replace(" ", "."),
        "command": command,
        "text": text,
        "api_app_id": "A0SWITCHBOT",
        "is_enterprise_install": "false",
        "response_url": f"{base_url}/slack/commands/{workspace.open_response_url(found.id, person.id)}",
        "trigger_id": workspace.issue_trigger(person.id),
    }


async def _deliver(config: SandboxConfig, body: str) -> tuple[int | None, str]:
    """POST the signed command to Switchboard; (status, body), or (None, why) when it never answered."""
    return await post_signed(config, body)


def _outcome(status: int | None, answer: str) -> tuple[str, str | None]:
    """What Slack would show the asker: nothing for an empty 200, the ack's text, or the failure."""
    if status is None:
        return f"failed: {answer}", None
    if status != 200:
        return f"failed: http_service_error ({status})", None
    if not answer.strip():
        return "acknowledged", None
    try:
        parsed = json.loads(answer)
        shown = str(parsed.get("text", "")) if isinstance(parsed, dict) else answer
    except ValueError:
        shown = answer
    return "acknowledged with a message", shown or None


async def slash_command(request: web.Request) -> web.Response:
    """Type `/sb revenue last 30 days` as a staff member in a channel: delivered to Switchboard, signed."""
    state = request.app[STATE]
    workspace, config = state.slack, state.config
    from_page = request.content_type != "application/json"
    data: Any = dict(await request.post()) if from_page else await request.json()
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "give user, channel and text"}), content_type="application/json"
        )
    user, channel = str(data.get("user", "")), str(data.get("channel", ""))
    typed = str(data.get("text", "")).strip()
    command, _, text = typed.partition(" ")
    if user not in workspace.people or channel not in workspace.channels:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "unknown user or channel"}), content_type="application/json"
        )
    note = SlackMessage(
        channel=channel,
        ts=workspace.next_ts(),
        user=user,
        text=typed,
        is_bot=False,
        visible_to=user,
        via="slash_command",
    )
    workspace.post(note)  # first, so Switchboard's answer comes after it, as in Slack
    status: int | None = None
    if command != config.slack_command:
        note.outcome = (
            f"failed: {command or 'that'} is not a valid command (this app's is {config.slack_command})"
        )
    else:
        form = slash_command_form(
            config,
            workspace,
            user=user,
            channel=channel,
            command=command,
            text=text.strip(),
            base_url=str(request.url.origin()),
        )
        status, answer = await _deliver(config, urlencode(form))
        note.outcome, acked = _outcome(status, answer)
        if acked:
            workspace.bot_posts(channel, acked, visible_to=user, via="ack")
    workspace.version += 1
    if from_page:
        raise web.HTTPSeeOther(f"/_sandbox/slack?{urlencode({'channel': channel, 'as': user})}")
    return web.json_response({"command": typed, "status": status, "outcome": note.outcome}, status=202)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/_sandbox/slack", page),
        web.get("/_sandbox/slack/version", version),
        web.get("/_sandbox/slack/calls", calls),
        web.get("/_sandbox/slack/channels/{channel}/messages", channel_messages),
        web.post("/_sandbox/slack/command", slash_command),
        *slack_threads.routes(),
    ]
