"""Conversations in Slack threads, the Slack side: the root message with its buttons, each turn in the thread,
delivery echoes, and what an agent's thread reply, edit or delete becomes.

The rules (what is posted once, what a thread reply does) live in `domain.conversations.slack_threads`;
this module only speaks Slack: Block Kit, mrkdwn escaping, ephemeral answers.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any, Protocol

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.commands.masking import mask_email, mask_phone
from bot.delivery_outcomes import FOLLOW_UP_TEMPLATE, failure_reason, window_closed
from bot.slack.render import (
    ACTION_PREFIX,
    ACTIONS_BLOCK_ID,
    CHAT_CARD_BLOCK_ID,
    SECTION_TEXT_LIMIT,
    clip,
    escape_mrkdwn,
)
from domain.conversations.attachments import attachment_path
from domain.conversations.delivery_echoes import PostNotTaken, PostRefused
from domain.conversations.desk import STATUS_WORDS
from domain.conversations.slack_threads import (
    DeliveryEcho,
    ThreadAnswer,
    ThreadCard,
    ThreadFile,
    ThreadMessage,
    ThreadTurn,
)
from domain.messages.words import CHAT_CHANNEL_WORDS
from domain.vocabulary import ChatStatus, MessageStatus

log = logging.getLogger(__name__)

CUSTOMER_FIELDS = ("name", "phone", "email")


class ThreadDesk(Protocol):
    """What the Slack front end asks of live chat when someone writes in, edits or deletes in a thread."""

    async def answer(self, message: ThreadMessage) -> ThreadAnswer: ...

    async def changed(
        self,
        channel_id: str,
        ts: str,
        slack_user_id: str,
        team_id: str | None,
        new_text: str | None,
        thread_ts: str | None = None,
    ) -> ThreadAnswer: ...


def chat_link(public_url: str, chat_id: int) -> str:
    return f"{public_url.rstrip('/')}/communication/chat/{chat_id}"


def customer_line(card: ThreadCard, shown: Collection[str]) -> str:
    """Who the customer is, with each detail in full only where the business chose to show it."""
    name = card.customer_name or "A customer"
    if "name" not in shown:
        name = f"Customer {card.customer_id}"
    parts = [f"*{escape_mrkdwn(name)}*"]
    if card.customer_phone:
        parts.append(
            escape_mrkdwn(card.customer_phone if "phone" in shown else mask_phone(card.customer_phone))
        )
    if card.customer_email:
        parts.append(
            escape_mrkdwn(card.customer_email if "email" in shown else mask_email(card.customer_email))
        )
    return " · ".join(parts)


def root_blocks(
    card: ThreadCard, public_url: str, shown: Collection[str]
) -> tuple[str, list[dict[str, Any]]]:
    channel = CHAT_CHANNEL_WORDS.get(card.channel, card.channel)
    status = STATUS_WORDS.get(card.status.value, card.status.value)
    holder = f"assigned to {escape_mrkdwn(card.assignee)}" if card.assignee else "*unassigned*"
    subject = f"\n_{escape_mrkdwn(clip(card.subject, 200))}_" if card.subject else ""
    text = (
        f"Conversation {card.chat_id} on {channel}: {customer_line(card, shown)}\n"
        f"{status.capitalize()}, {holder}.{subject}\n"
        f"<{chat_link(public_url, card.chat_id)}|Open in Switchboard> · reply in this thread to answer; "
        "start with `note:` to write only to colleagues."
    )
    buttons: list[tuple[str, str, str]] = []
    if card.status is ChatStatus.CLOSED:
        buttons.append(("Reopen", f"chat reopen {card.chat_id}", "default"))
    else:
        buttons.append(("Assign to me", f"chat assign {card.chat_id} to me", "primary"))
        buttons.append(("Resolve", f"chat resolve {card.chat_id}", "default"))
        if card.status is not ChatStatus.SNOOZED:
            buttons.append(("Snooze 2 h", f"chat snooze {card.chat_id} for 2h", "default"))
    elements = []
    for index, (label, command, style) in enumerate(buttons):
        element: dict[str, Any] = {
            "type": "button",
            "action_id": f"{ACTION_PREFIX}{index}",
            "text": {"type": "plain_text", "text": label},
            "value": command,
        }
        if style != "default":
            element["style"] = style
        elements.append(element)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_TEXT_LIMIT)}},
        {"type": "actions", "block_id": CHAT_CARD_BLOCK_ID, "elements": elements},
    ]
    fallback = f"Conversation {card.chat_id} on {channel} ({status})"
    return fallback, blocks


def turn_text(turn: ThreadTurn, card: ThreadCard, shown: Collection[str], public_url: str = "") -> str:
    body = escape_mrkdwn(turn.body) + files_text(turn, public_url)
    if turn.author == "customer":
        name = (card.customer_name or "Customer") if "name" in shown else f"Customer {card.customer_id}"
        return f"*{escape_mrkdwn(name)}*: {body}"
    if turn.author == "staff" and turn.is_note:
        return (
            f":memo: *Note by {escape_mrkdwn(turn.staff_name or 'staff')}* (not sent to the customer): {body}"
        )
    if turn.author == "staff":
        where = {"telegram": "Telegram", "slack": "Slack"}.get(turn.written_in or "", "the web")
        return f"*{escape_mrkdwn(turn.staff_name or 'Staff')}* replied from {where}: {body}"
    if turn.author == "bot":
        return f"*Bot*: {body}"
    return f"_{body}_"


def files_text(turn: ThreadTurn, public_url: str) -> str:
    """ "📎 scan.pdf (2.5 MB)" per kept file, each a link to the dashboard (staff sign in to open it)."""
    lines = []
    for file in turn.files:
        url = f"{public_url.rstrip('/')}{attachment_path(file.id)}"
        lines.append(f"\n📎 <{url}|{escape_mrkdwn(file.label).replace('|', '¦')}>")
    return "".join(lines)


def echo_text(echo: DeliveryEcho) -> str:
    channel = CHAT_CHANNEL_WORDS.get(echo.channel, echo.channel)
    if echo.status is MessageStatus.DELIVERED:
        return f":white_check_mark: Delivered by {channel}."
    if echo.status is MessageStatus.READ:
        return ":eyes: Read by the customer."
    return f":warning: Not delivered by {channel}: {escape_mrkdwn(failure_reason(echo))}."


def echo_blocks(echo: DeliveryEcho, text: str) -> list[dict[str, Any]]:
    """The echo as blocks; outside WhatsApp's window, with a button that sends the approved follow-up template
    (through `send`, so the agent sees the preview and confirms)."""
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    if window_closed(echo) and echo.customer_id is not None:
        blocks[0]["text"]["text"] += " Once they write back, send your reply again."
        blocks.append(
            {
                "type": "actions",
                "block_id": ACTIONS_BLOCK_ID,
                "elements": [
                    {
                        "type": "button",
                        "action_id": f"{ACTION_PREFIX}0",
                        "text": {"type": "plain_text", "text": "Send the approved follow-up template"},
                        "value": f"send whatsapp to #{echo.customer_id} template {FOLLOW_UP_TEMPLATE}",
                        "style": "primary",
                    }
                ],
            }
        )
    return blocks


class SlackThreadPoster:
    """domain.conversations.slack_threads.ThreadPoster over the Slack Web API."""

    def __init__(self, client: AsyncWebClient, public_url: str, shown_fields: Collection[str]) -> None:
        self.client = client
        self.public_url = public_url
        self.shown = frozenset(shown_fields)

    async def post_root(self, channel: str, card: ThreadCard) -> tuple[str, str]:
        text, blocks = root_blocks(card, self.public_url, self.shown)
        answer = await self.client.chat_postMessage(
            channel=channel, text=text, blocks=blocks, unfurl_links=False
        )
        return str(answer["channel"]), str(answer["ts"])

    async def update_root(self, channel_id: str, thread_ts: str, card: ThreadCard) -> None:
        text, blocks = root_blocks(card, self.public_url, self.shown)
        await self.client.chat_update(channel=channel_id, ts=thread_ts, text=text, blocks=blocks)

    async def post_turn(self, channel_id: str, thread_ts: str, turn: ThreadTurn, card: ThreadCard) -> None:
        await self.client.chat_postMessage(
            channel=channel_id,
            thread_ts=thread_ts,
            text=clip(turn_text(turn, card, self.shown, self.public_url), 39_000),
        )

    async def post_echo(self, channel_id: str, thread_ts: str, echo: DeliveryEcho, card: ThreadCard) -> None:
        text = echo_text(echo)
        try:
            await self.client.chat_postMessage(
                channel=channel_id, thread_ts=thread_ts, text=text, blocks=echo_blocks(echo, text)
            )
        except SlackApiError as error:
            code = refusal_code(error)
            if code in REFUSED_FOR_GOOD:
                raise PostRefused(code) from error
            if code is not None and code not in HOLDS_EVERY_POST and not _busy(error):
                raise PostNotTaken(code) from error
            raise


#: Slack's refusals of this one post that posting it again would meet again: the channel (archived, gone,
#: the app not in it, posting restricted) or the message itself
#: (https://api.slack.com/methods/chat.postMessage#errors).
REFUSED_FOR_GOOD = frozenset(
    {
        "channel_not_found",
        "is_archived",
        "not_in_channel",
        "msg_too_long",
        "no_text",
        "invalid_blocks",
        "invalid_blocks_format",
        "too_many_attachments",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "restricted_action_non_threadable_channel",
        "cannot_reply_to_message",
    }
)
#: Refusals that hold back every post alike for now (rate limits, Slack's own trouble, the app's token
#: being replaced, the workspace migrating): the pass stops and what is left waits for the next one.
#: Any other code is about this post alone, which is tried again while the others go on.
HOLDS_EVERY_POST = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "team_added_to_org",
        "not_authed",
        "invalid_auth",
        "token_revoked",
        "token_expired",
        "account_inactive",
        "missing_scope",
        "no_permission",
        "ekm_access_denied",
        "accesslimited",
    }
)


def _busy(error: SlackApiError) -> bool:
    """An HTTP 429 or 5xx: Slack (or what stands before it) is busy, whatever the body says."""
    status = getattr(error.response, "status_code", None) or getattr(error.response, "status", None) or 0
    return isinstance(status, int) and (status == 429 or status >= 500)


def refusal_code(error: SlackApiError) -> str | None:
    """Slack's error code ("is_archived"), when its answer was the usual JSON (a proxy's page is not)."""
    data = getattr(error.response, "data", None)
    code = data.get("error") if isinstance(data, dict) else None
    return code if isinstance(code, str) else None


def shown_fields(setting: str) -> frozenset[str]:
    """`SWITCHBOARD_SLACK_CUSTOMER_FIELDS` ("name,phone") as the set of details shown in full."""
    return frozenset(
        part.strip().lower() for part in setting.split(",") if part.strip().lower() in CUSTOMER_FIELDS
    )


def thread_message_of(
    event: dict[str, Any], bot_user_id: str | None, team_id: str | None = None
) -> ThreadMessage | None:
    """A person's reply in a channel thread, or None when the event is anything else."""
    thread_ts = event.get("thread_ts")
    if not thread_ts or thread_ts == event.get("ts") or event.get("bot_id"):
        return None
    # "Also send to #channel" and a reply with a file are still replies; joins, edits and the rest are not.
    if event.get("subtype") not in (None, "thread_broadcast", "file_share"):
        return None
    if event.get("channel_type") not in ("channel", "group") or "user" not in event:
        return None
    return ThreadMessage(
        channel_id=str(event["channel"]),
        thread_ts=str(thread_ts),
        ts=str(event["ts"]),
        text=str(event.get("text") or ""),
        slack_user_id=str(event["user"]),
        root_is_ours=bool(bot_user_id) and event.get("parent_user_id") == bot_user_id,
        team_id=team_id,
        has_files=bool(event.get("files")) or event.get("subtype") == "file_share",
        files=tuple(_shared_files(event.get("files"))),
    )


def _shared_files(listed: object) -> list[ThreadFile]:
    """The files a message event lists, each with the address the bot token downloads it from."""
    found = []
    for item in listed if isinstance(listed, list) else []:
        if not isinstance(item, dict):
            continue
        url = item.get("url_private_download") or item.get("url_private")
        if not isinstance(url, str) or not url:
            continue  # a file from another workspace, or one deleted since: nothing to download
        size = item.get("size")
        found.append(
            ThreadFile(
                name=str(item.get("name") or item.get("title") or "file"),
                declared_type=str(item["mimetype"]) if item.get("mimetype") else None,
                url=url,
                size=size if isinstance(size, int) else None,
            )
        )
    return found


async def tell_privately(
    client: AsyncWebClient, channel_id: str, user_id: str, thread_ts: str, text: str
) -> None:
    """An ephemeral answer in the thread: only the agent who wrote sees it."""
    try:
        await client.chat_postEphemeral(channel=channel_id, user=user_id, thread_ts=thread_ts, text=text)
    except Exception:  # the refusal is also in the log; failing to say it must not fail the event
        log.warning("could not tell %s in %s: %s", user_id, channel_id, text, exc_info=True)
