"""The sandbox's Slack workspace: channels, messages and threads, uploaded files, response URLs and modals.

Only the aiohttp handlers touch it, all on the sandbox's event loop, so it needs no lock.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from api.sandbox.config import SandboxConfig
from api.sandbox.slack_people import SlackPerson

BOT_USER_ID = "U0SWITCHBOT"
BOT_ID = "B0SWITCHBOT"
APP_ID = "A0SWITCHBOT"
BOT_NAME = "Switchboard"
#: Slack lets a response_url be used five times within thirty minutes.
RESPONSE_URL_USES = 5
RESPONSE_URL_SECONDS = 30 * 60


@dataclass
class SlackChannel:
    id: str
    name: str
    topic: str
    members: set[str]
    is_archived: bool = False


@dataclass
class SlackFile:
    """An upload: announced by files.getUploadURLExternal, its bytes posted, shared by completeUploadExternal."""

    id: str
    name: str
    length: int
    alt_txt: str | None
    created: int
    content: bytes | None = None
    title: str | None = None
    channels: list[str] = field(default_factory=list)
    #: Who shared it: the bot (an upload through the API) or a person (a file attached to a thread reply).
    user: str = BOT_USER_ID

    @property
    def mimetype(self) -> str:
        kind = self.name.rsplit(".", 1)[-1].lower() if "." in self.name else ""
        return {
            "png": "image/png",
            "jpg": "image/jpeg",
            "jpeg": "image/jpeg",
            "gif": "image/gif",
            "pdf": "application/pdf",
            "csv": "text/csv",
        }.get(kind, "application/octet-stream")

    def as_json(self, base_url: str) -> dict[str, Any]:
        download = f"{base_url}/slack/files/{self.id}/{self.name}"
        data: dict[str, Any] = {
            "id": self.id,
            "created": self.created,
            "timestamp": self.created,
            "name": self.name,
            "title": self.title or self.name,
            "mimetype": self.mimetype,
            "filetype": self.name.rsplit(".", 1)[-1].lower() if "." in self.name else "binary",
            "user": self.user,
            "mode": "hosted",
            "is_external": False,
            "is_public": True,
            "size": len(self.content or b""),
            "url_private": download,
            "url_private_download": download,
            "permalink": download,
            "channels": list(self.channels),
        }
        if self.alt_txt:
            data["alt_txt"] = self.alt_txt
        return data


@dataclass
class SlackMessage:
    """A message in a channel: the bot's, a response_url answer, or (only for its author) a slash command."""

    channel: str
    ts: str
    user: str
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str | None = None
    files: list[str] = field(default_factory=list)
    is_bot: bool = True
    #: Only this user sees it (chat.postEphemeral, an ephemeral response_url answer, a typed command).
    visible_to: str | None = None
    #: How it got here: "chat.postMessage", "files.completeUploadExternal", "response_url", "slash_command".
    via: str = "chat.postMessage"
    edited_ts: str | None = None
    #: Set when thread_ts named no message in the channel: Slack accepts such a post and nobody sees it.
    lost_thread: bool = False
    #: For a typed slash command or a person's thread message: what became of delivering it to Switchboard.
    outcome: str | None = None
    #: A person's message carries the id their Slack client gave it.
    client_msg_id: str | None = None
    #: The latest event delivered to Switchboard about this message (so the page can deliver it again).
    event_id: str | None = None
    #: The latest button press on this message, in words, for the page.
    pressed: str | None = None
    #: reactions.add: emoji name -> who reacted.
    reactions: dict[str, list[str]] = field(default_factory=dict)

    def as_json(self, team_id: str, base_url: str, files: dict[str, SlackFile]) -> dict[str, Any]:
        data: dict[str, Any] = {"type": "message", "user": self.user, "ts": self.ts, "text": self.text}
        if self.is_bot:
            data["bot_id"] = BOT_ID
            data["app_id"] = APP_ID
            data["bot_profile"] = {"id": BOT_ID, "app_id": APP_ID, "name": BOT_NAME, "team_id": team_id}
        elif self.client_msg_id:
            data["client_msg_id"] = self.client_msg_id
        data["team"] = team_id
        if self.blocks:
            data["blocks"] = self.blocks
        elif self.client_msg_id:
            data["blocks"] = rich_text_of(self.text)
        if self.thread_ts and self.thread_ts != self.ts:
            data["thread_ts"] = self.thread_ts
        if self.files:
            data["files"] = [files[f].as_json(base_url) for f in self.files if f in files]
            data["upload"] = self.is_bot
            if not self.is_bot:
                data["subtype"] = "file_share"  # what Slack sends for a person's message with a file
                data["display_as_bot"] = False
        if self.edited_ts:
            data["edited"] = {"user": self.user, "ts": self.edited_ts}
        if self.reactions:
            data["reactions"] = [
                {"name": name, "users": list(users), "count": len(users)}
                for name, users in self.reactions.items()
            ]
        return data


def rich_text_of(text: str) -> list[dict[str, Any]]:
    """The rich_text block Slack's client attaches to what a person types."""
    return [
        {
            "type": "rich_text",
            "block_id": hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:5],
            "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}],
        }
    ]


@dataclass
class ResponseUrl:
    """Where Switchboard answers one slash command: its channel and asker, used at most five times."""

    channel: str
    user: str
    created: float
    uses: int = 0
    #: For a button press: the message the button was on (replace_original / delete_original act on it).
    message_ts: str | None = None
    #: Where a new answer goes when it names no thread: the pressed message's thread, if it is in one.
    thread_ts: str | None = None


@dataclass
class DeliveryAttempt:
    """One POST of an event to Switchboard: the first (retry_num 0) or one of Slack's retries."""

    retry_num: int
    retry_reason: str | None
    status: int | None
    outcome: str
    at: float


@dataclass
class Delivery:
    """An event sent to Switchboard, kept so it can be sent again, byte for byte, as Slack's retry."""

    event_id: str
    #: "message", "message_changed" or "message_deleted".
    kind: str
    channel: str
    #: The message the event is about.
    ts: str
    body: str
    content_type: str
    attempts: list[DeliveryAttempt] = field(default_factory=list)

    @property
    def retries(self) -> int:
        return sum(1 for attempt in self.attempts if attempt.retry_num > 0)

    @property
    def outcome(self) -> str:
        if not self.attempts:
            return "not sent yet"
        latest = self.attempts[-1]
        if latest.retry_num:
            return f"{latest.outcome} · retry {latest.retry_num} ({latest.retry_reason})"
        return latest.outcome

    def as_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "kind": self.kind,
            "channel": self.channel,
            "ts": self.ts,
            "body": json.loads(self.body),
            "attempts": [
                {
                    "retry_num": a.retry_num,
                    "retry_reason": a.retry_reason,
                    "status": a.status,
                    "outcome": a.outcome,
                    "at": a.at,
                }
                for a in self.attempts
            ],
        }


@dataclass
class OpenedView:
    user: str | None
    trigger_id: str
    view: dict[str, Any]
    id: str


class SlackWorkspace:
    """One Slack workspace with one installed app (Switchboard's bot)."""

    def __init__(self, config: SandboxConfig) -> None:
        self.team_id = config.slack_team_id
        self.team_domain = config.slack_team_domain
        self.people: dict[str, SlackPerson] = {person.id: person for person in config.slack_people}
        self.channels: dict[str, SlackChannel] = {}
        for spec in config.slack_channels:
            members = set(self.people)
            if spec.bot_member:
                members.add(BOT_USER_ID)
            self.channels[spec.id] = SlackChannel(spec.id, spec.name, spec.topic, members)
        self.messages: list[SlackMessage] = []
        self.files: dict[str, SlackFile] = {}
        self.response_urls: dict[str, ResponseUrl] = {}
        #: trigger_id -> the user whose slash command issued it (views.open needs a fresh one).
        self.triggers: dict[str, str] = {}
        self.views: list[OpenedView] = []
        #: Events sent to Switchboard by event_id (the latest 1,000), for retries and for tests.
        self.deliveries: dict[str, Delivery] = {}
        #: Thread replies their authors deleted: the page still says so where they were.
        self.deleted: list[SlackMessage] = []
        #: The latest Web API calls, for tests and for seeing what Switchboard asked.
        self.calls: deque[dict[str, Any]] = deque(maxlen=1000)
        #: The next this many Web API calls are refused as Slack refuses a caller over its rate limit
        #: (HTTP 429, Retry-After, "ratelimited"): set by tests and the sandbox's fault drills.
        self.rate_limited_calls = 0
        #: Goes up with every change the page shows, so an open page knows when to reload.
        self.version = 0
        self._last_micros = 0
        self._serial = 0

    # --- identifiers ----------------------------------------------------------------------
    def next_ts(self) -> str:
        """A message timestamp in Slack's "1700000000.000100" form, unique and increasing."""
        micros = max(int(time.time() * 1_000_000), self._last_micros + 1)
        self._last_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def next_id(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}0{self._serial:07d}{secrets.token_hex(2).upper()}"

    # --- messages -------------------------------------------------------------------------
    def find(self, channel: str, ts: str) -> SlackMessage | None:
        for message in self.messages:
            if message.channel == channel and message.ts == ts:
                return message
        return None

    def post(self, message: SlackMessage) -> SlackMessage:
        if message.thread_ts:
            parent = self.find(message.channel, message.thread_ts)
            if parent is None or parent.visible_to is not None:
                message.lost_thread = True
            elif parent.thread_ts and parent.thread_ts != parent.ts:
                message.thread_ts = parent.thread_ts  # a reply to a reply joins the root's thread
        self.messages.append(message)
        self.version += 1
        return message

    def bot_posts(
        self,
        channel: str,
        text: str,
        *,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        files: list[str] | None = None,
        visible_to: str | None = None,
        via: str = "chat.postMessage",
    ) -> SlackMessage:
        """A message from Switchboard's bot, however it was sent."""
        return self.post(
            SlackMessage(
                channel=channel,
                ts=self.next_ts(),
                user=BOT_USER_ID,
                text=text,
                blocks=blocks or [],
                thread_ts=thread_ts,
                files=files or [],
                visible_to=visible_to,
                via=via,
            )
        )

    def remove(self, message: SlackMessage) -> None:
        self.messages.remove(message)
        self.version += 1

    def root_of(self, message: SlackMessage) -> SlackMessage | None:
        """The thread's first message, for a reply; None for a message that is not in a thread."""
        if not message.thread_ts or message.thread_ts == message.ts:
            return None
        return self.find(message.channel, message.thread_ts)

    def thread_of(self, root: SlackMessage) -> list[SlackMessage]:
        return [
            m
            for m in self.messages
            if m.channel == root.channel and m.thread_ts == root.ts and m.ts != root.ts and not m.lost_thread
        ]

    def channel_by_name_or_id(self, value: str) -> SlackChannel | None:
        if value in self.people:
            return self.direct_messages(value)
        name = value.lstrip("#")
        for channel in self.channels.values():
            if channel.id == value or channel.name == name:
                return channel
        return None

    def direct_messages(self, user: str) -> SlackChannel:
        """The app's direct messages with a person (chat.postMessage to a user id posts there, as in Slack)."""
        channel_id = f"D{user.removeprefix('U')}"
        if channel_id not in self.channels:
            person = self.people[user]
            self.channels[channel_id] = SlackChannel(
                channel_id,
                f"dm-{person.name.split()[0].lower()}",
                f"Direct messages with {person.name}",
                {user, BOT_USER_ID},
            )
            self.version += 1
        return self.channels[channel_id]

    # --- slash commands -------------------------------------------------------------------
    def open_response_url(
        self, channel: str, user: str, *, message_ts: str | None = None, thread_ts: str | None = None
    ) -> str:
        key = f"{self.team_id}/{secrets.randbelow(10**13):013d}/{secrets.token_urlsafe(18)}"
        self.response_urls[key] = ResponseUrl(
            channel=channel, user=user, created=time.monotonic(), message_ts=message_ts, thread_ts=thread_ts
        )
        return key

    def use_response_url(self, key: str) -> ResponseUrl | str:
        """The command a response_url answers, or why Slack refuses it ("used_url", "expired_url")."""
        found = self.response_urls.get(key)
        if found is None:
            return "invalid_url"
        if time.monotonic() - found.created > RESPONSE_URL_SECONDS:
            return "expired_url"
        if found.uses >= RESPONSE_URL_USES:
            return "used_url"
        found.uses += 1
        return found

    def issue_trigger(self, user: str) -> str:
        trigger = f"{int(time.time())}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"
        self.triggers[trigger] = user
        return trigger

    # --- for tests and the page -----------------------------------------------------------
    def channel_json(self, channel: str, base_url: str) -> list[dict[str, Any]]:
        """Every message in a channel (ephemeral ones marked with who sees them), oldest first."""
        shown = []
        for message in self.messages:
            if message.channel != channel:
                continue
            data = message.as_json(self.team_id, base_url, self.files)
            data["via"] = message.via
            if message.visible_to:
                data["visible_to"] = message.visible_to
            if message.lost_thread:
                data["lost_thread"] = True
            shown.append(data)
        return shown
