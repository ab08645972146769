"""What the sandbox's Slack sends Switchboard: Events API callbacks and button presses, shaped, signed and retried as Slack does.

Events (a person's thread reply, its edit, its deletion) go as JSON to the events URL; a button press goes as a
form with one `payload` field. Both are signed v0: HMAC-SHA256 of `v0:{timestamp}:{body}` with the signing
secret. Slack retries an event it did not see answered with a 2xx within 3 seconds, with the same body (same
`event_id`) re-signed, and `X-Slack-Retry-Num` / `X-Slack-Retry-Reason` headers; a button press is never retried.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

from api.sandbox.config import SandboxConfig
from api.sandbox.slack_people import SlackPerson
from api.sandbox.slack_workspace import (
    APP_ID,
    BOT_USER_ID,
    Delivery,
    DeliveryAttempt,
    SlackMessage,
    SlackWorkspace,
)

#: Slack's deprecated verification token, still sent in every body; Bolt ignores it.
VERIFICATION_TOKEN = "sandbox-verification-token"  # noqa: S105
#: Slack retries an event at most three times.
MAX_RETRIES = 3
#: Why Slack says it retried (X-Slack-Retry-Reason).
RETRY_REASONS = (
    "http_timeout",
    "too_many_redirects",
    "connection_failed",
    "ssl_error",
    "http_error",
    "unknown_error",
)
#: How many delivered events the sandbox remembers for retries.
KEPT_DELIVERIES = 1000
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def signed_headers(
    secret: str, body: str, timestamp: int | None = None, *, content_type: str = FORM
) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": str(signature),
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
    }


async def post_signed(
    config: SandboxConfig,
    body: str,
    *,
    content_type: str = FORM,
    retry: tuple[int, str] | None = None,
) -> tuple[int | None, str]:
    """POST a signed body to Switchboard's events URL; (status, body), or (None, why) when it never answered."""
    headers = signed_headers(config.slack_signing_secret, body, content_type=content_type)
    if retry is not None:
        headers["X-Slack-Retry-Num"] = str(retry[0])
        headers["X-Slack-Retry-Reason"] = retry[1]
    timeout = aiohttp.ClientTimeout(total=config.slack_ack_timeout_seconds)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(
                config.webhook_url(config.slack_events_path), data=body.encode(), headers=headers
            ) as answer,
        ):
            return answer.status, await answer.text()
    except TimeoutError:
        return None, "operation_timeout"
    except aiohttp.ClientError as error:
        return None, f"dispatch_failed ({error.__class__.__name__})"


def event_outcome(status: int | None, answer: str, timeout_seconds: float) -> str:
    """An event delivery in words, naming the reason Slack would give when it retries."""
    if status is None:
        if answer == "operation_timeout":
            return f"failed: http_timeout (no answer within {timeout_seconds:g} s; Slack would retry)"
        return f"failed: connection_failed ({answer}; Slack would retry)"
    if 200 <= status < 300:
        return f"delivered ({status})"
    return f"failed: http_error ({status}; Slack would retry)"


# --- the shapes -----------------------------------------------------------------------------------


def message_json(workspace: SlackWorkspace, message: SlackMessage, base_url: str) -> dict[str, Any]:
    """A message as events carry it: a thread reply also names who wrote the thread's first message."""
    data = message.as_json(workspace.team_id, base_url, workspace.files)
    root = workspace.root_of(message)
    if root is not None:
        data["parent_user_id"] = root.user
    return data


def envelope(workspace: SlackWorkspace, event: dict[str, Any]) -> dict[str, Any]:
    """The event_callback wrapper every Events API request has."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": workspace.team_id,
        "context_team_id": workspace.team_id,
        "context_enterprise_id": None,
        "api_app_id": APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": f"Ev{secrets.token_hex(5).upper()}",
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": workspace.team_id,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{secrets.token_urlsafe(24)}",
    }


def reply_event(workspace: SlackWorkspace, message: SlackMessage, base_url: str) -> dict[str, Any]:
    """`message` for a reply a person typed in a thread (message.channels)."""
    data = message_json(workspace, message, base_url)
    return {
        **data,
        "channel": message.channel,
        "event_ts": message.ts,
        "channel_type": "channel",
    }


def changed_event(
    message: SlackMessage, before: dict[str, Any], after: dict[str, Any], event_ts: str
) -> dict[str, Any]:
    """`message` / `message_changed`: the edited message in full, as it was before, and a new event ts."""
    return {
        "type": "message",
        "subtype": "message_changed",
        "message": {**after, "source_team": after.get("team"), "user_team": after.get("team")},
        "previous_message": before,
        "channel": message.channel,
        "hidden": True,
        "ts": event_ts,
        "event_ts": event_ts,
        "channel_type": "channel",
    }


def deleted_event(message: SlackMessage, before: dict[str, Any], event_ts: str) -> dict[str, Any]:
    """`message` / `message_deleted`: which message went, and what it said."""
    return {
        "type": "message",
        "subtype": "message_deleted",
        "previous_message": before,
        "channel": message.channel,
        "hidden": True,
        "deleted_ts": message.ts,
        "ts": event_ts,
        "event_ts": event_ts,
        "channel_type": "channel",
    }


def person_json(workspace: SlackWorkspace, person: SlackPerson) -> dict[str, str]:
    username = person.name.lower().replace(" ", ".")
    return {"id": person.id, "username": username, "name": username, "team_id": workspace.team_id}


def block_actions_payload(
    workspace: SlackWorkspace,
    *,
    person: SlackPerson,
    message: SlackMessage,
    button: PressedButton,
    response_url: str,
    trigger_id: str,
    base_url: str,
) -> dict[str, Any]:
    """What Slack posts when a person presses a button in a message."""
    channel = workspace.channels[message.channel]
    container: dict[str, Any] = {
        "type": "message",
        "message_ts": message.ts,
        "channel_id": channel.id,
        "is_ephemeral": message.visible_to is not None,
    }
    thread_ts = thread_of_pressed(workspace, message)
    if thread_ts:
        container["thread_ts"] = thread_ts
    action: dict[str, Any] = {
        "action_id": button.action_id,
        "block_id": button.block_id,
        "text": button.element.get("text") or {"type": "plain_text", "text": button.action_id},
    }
    if "value" in button.element:
        action["value"] = button.element["value"]
    if "style" in button.element:
        action["style"] = button.element["style"]
    action["type"] = "button"
    action["action_ts"] = f"{time.time():.6f}"
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": person_json(workspace, person),
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "container": container,
        "trigger_id": trigger_id,
        "team": {"id": workspace.team_id, "domain": workspace.team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel.id, "name": channel.name},
    }
    if message.visible_to is None:  # Slack leaves the message out for an ephemeral one
        payload["message"] = pressed_message_json(workspace, message, base_url)
    payload["state"] = {"values": {}}
    payload["response_url"] = response_url
    payload["actions"] = [action]
    return payload


def thread_of_pressed(workspace: SlackWorkspace, message: SlackMessage) -> str | None:
    """The thread a pressed message is part of: its root's ts for a reply, its own for a root with replies."""
    if message.thread_ts and message.thread_ts != message.ts:
        return message.thread_ts
    if message.visible_to is None and workspace.thread_of(message):
        return message.ts
    return None


def pressed_message_json(workspace: SlackWorkspace, message: SlackMessage, base_url: str) -> dict[str, Any]:
    """The message a button was on; a root with replies carries its thread's summary, as in Slack."""
    data = message_json(workspace, message, base_url)
    replies = workspace.thread_of(message)
    if replies and (not message.thread_ts or message.thread_ts == message.ts):
        data["thread_ts"] = message.ts
        data["reply_count"] = len(replies)
        data["reply_users"] = sorted({reply.user for reply in replies})
        data["reply_users_count"] = len(data["reply_users"])
        data["latest_reply"] = replies[-1].ts
    return data


# --- buttons --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PressedButton:
    """A button in a message's blocks, with the ids Slack would report (made up when the app gave none)."""

    block_id: str
    action_id: str
    element: dict[str, Any]
    #: Where it sits: "block index.element index" (a section's accessory is element 0).
    where: str

    @property
    def label(self) -> str:
        text = self.element.get("text")
        return str(text.get("text", "")) if isinstance(text, dict) else self.action_id


def buttons_of(message: SlackMessage) -> list[PressedButton]:
    """Every button in an actions block or a section's accessory, in order."""
    found: list[PressedButton] = []
    for index, block in enumerate(message.blocks):
        block_id = str(block.get("block_id") or _made_up_id(message.ts, str(index)))
        elements: list[Any] = []
        if block.get("type") == "actions":
            elements = list(block.get("elements") or [])
        elif block.get("type") == "section" and isinstance(block.get("accessory"), dict):
            elements = [block["accessory"]]
        for position, element in enumerate(elements):
            if isinstance(element, dict) and element.get("type") == "button":
                action_id = str(element.get("action_id") or _made_up_id(message.ts, f"{index}.{position}"))
                found.append(PressedButton(block_id, action_id, element, f"{index}.{position}"))
    return found


def _made_up_id(ts: str, where: str) -> str:
    """Slack fills in a short id for a block or button the app left without one; the same every time here."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{ts}/{where}").hex[:5]


# --- delivery -------------------------------------------------------------------------------------


async def deliver_event(
    config: SandboxConfig,
    workspace: SlackWorkspace,
    message: SlackMessage,
    event: dict[str, Any],
    *,
    kind: str,
    retries: int = 0,
    retry_reason: str = "http_timeout",
) -> Delivery | None:
    """Send an event about a message (and as many retries as asked); None when Slack would send none."""
    channel = workspace.channels[message.channel]
    if BOT_USER_ID not in channel.members:
        message.outcome = (
            f"not delivered: Switchboard is not in #{channel.name}, so Slack sends it no events from here"
        )
        workspace.version += 1
        return None
    body = json.dumps(envelope(workspace, event))
    delivery = Delivery(
        event_id=json.loads(body)["event_id"],
        kind=kind,
        channel=message.channel,
        ts=message.ts,
        body=body,
        content_type=JSON,
    )
    workspace.deliveries[delivery.event_id] = delivery
    while len(workspace.deliveries) > KEPT_DELIVERIES:
        del workspace.deliveries[next(iter(workspace.deliveries))]
    message.event_id = delivery.event_id
    await attempt(config, delivery)
    for _ in range(retries):
        await attempt(config, delivery, retry_reason)
    message.outcome = delivery.outcome
    workspace.version += 1
    return delivery


async def attempt(config: SandboxConfig, delivery: Delivery, retry_reason: str | None = None) -> None:
    """One delivery of a stored event; a retry sends the identical body with a fresh signature."""
    retry = None if retry_reason is None else (delivery.retries + 1, retry_reason)
    status, answer = await post_signed(config, delivery.body, content_type=delivery.content_type, retry=retry)
    delivery.attempts.append(
        DeliveryAttempt(
            retry_num=0 if retry is None else retry[0],
            retry_reason=retry_reason,
            status=status,
            outcome=event_outcome(status, answer, config.slack_ack_timeout_seconds),
            at=time.time(),
        )
    )


async def press_button(config: SandboxConfig, payload: dict[str, Any]) -> tuple[int | None, str]:
    """A button press as Slack posts it: `payload=<JSON>`, form-encoded and signed."""
    status, answer = await post_signed(config, urlencode({"payload": json.dumps(payload)}))
    if status is None:
        return None, f"failed: {answer} (Slack shows the person a warning beside the button)"
    if status != 200:
        return status, f"failed: http_service_error ({status})"
    return status, "acknowledged"
