"""Live chat in Slack threads, put together: the pass that posts conversations into threads, and what an
agent's reply, note, edit or delete in a thread does (the Slack front end's `ThreadDesk`)."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiogram import Bot
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.threads import SlackThreadPoster, shown_fields
from bot.telegram_staff.conversations import StaffFile, TelegramTurnSender
from domain.canned_replies.model import CannedReplyError
from domain.canned_replies.rules import require_filled, require_words_for_the_customer
from domain.clock import Clock
from domain.conversations.attachments import (
    AttachmentRules,
    KeptFile,
    MediaLinks,
    MediaReference,
    MediaSource,
    MediaTooLarge,
    MediaUnavailable,
    RefusedFile,
    check_file,
    kind_words,
    too_large_words,
)
from domain.conversations.model import ChatNotFound
from domain.conversations.slack_threads import (
    MirrorPass,
    SlackFiles,
    ThreadAnswer,
    ThreadMessage,
    mirror_to_slack,
    note_text,
    record_thread_edit,
    slack_ref,
    team_channels,
)
from domain.conversations.telegram_desk import ForwardPass, forward_to_telegram
from domain.conversations.use_cases import DeskActor, add_note, reply_in_chat, take_if_unassigned
from domain.messages.sending import MessageRequestError
from domain.staff import StaffIdentity
from domain.vocabulary import MessageStatus, Provider, Role, role_allows
from storage.database import Database
from storage.queries.staff import staff_by_slack, staff_by_telegram
from storage.slack_threads import SqlSlackThreadUnitOfWork
from storage.units import UnitsOfWork
from switchboard.policies import business_consent_policy
from switchboard.settings import Settings

#: Turns one mirror pass takes, and how long a pass keeps going while there is a backlog.
MIRROR_BATCH = 200
MIRROR_BUDGET_SECONDS = 5.0
#: `<https://x|label>`, `<mailto:a@b|a@b>`, `<@U123>`, `<#C1|name>`, `<!here>` in what Slack sends.
_SLACK_REFERENCE = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")

NOT_STAFF = (
    "Only staff with a linked Switchboard account can answer customers; nothing was sent. "
    "Ask an administrator to link your account."
)
NOT_AN_AGENT = "Your role can read conversations but not answer customers; nothing was sent."
UNKNOWN_THREAD = (
    "This thread is not a customer conversation Switchboard knows, so nothing was sent to anyone. "
    "Reply in the thread under a conversation's first message."
)


def plain_text(slack_text: str) -> str:
    """What the customer should read from an agent's Slack message: links as their address or label,
    mentions dropped, Slack's escaping undone."""

    def readable(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if target.startswith(("@", "!")):
            return ""
        if target.startswith("#"):
            return f"#{label}" if label else ""
        if target.startswith("mailto:"):
            return label or target.removeprefix("mailto:")
        return target if not label or label == target else f"{label} ({target})"

    return html.unescape(_SLACK_REFERENCE.sub(readable, slack_text)).strip()


@dataclass(frozen=True)
class AgentReplies:
    """What an agent's answer in a staff chat (a Slack thread, a Telegram reply) needs to become a reply."""

    settings: Settings
    units: UnitsOfWork
    clock: Clock
    on_reply: Callable[[], None]


async def agent_answers(
    parts: AgentReplies,
    chat_id: int,
    staff: StaffIdentity | None,
    text: str,
    *,
    via: str,
    ref: str,
    request_key: str,
    file: KeptFile | None = None,
) -> ThreadAnswer:
    """An agent wrote `text` about conversation `chat_id` in a staff chat: a note (with the note prefix) or a
    reply sent to the customer, once per `ref`, with the `file` they shared (checked by the attachment
    rules); refusals say why, and that nothing was sent."""
    if staff is None:
        return ThreadAnswer("refused", NOT_STAFF, chat_id)
    if not role_allows(staff.role, Role.AGENT):
        return ThreadAnswer("refused", NOT_AN_AGENT, chat_id)
    now = parts.clock()
    note = note_text(text, parts.settings.slack_note_prefix)
    if note is not None:
        actor = DeskActor(staff.staff_id, staff.email, via)
        try:
            added = await add_note(
                parts.units.desk(), chat_id, actor, note, now=now, external_ref=ref, file=file
            )
        except (MessageRequestError, ChatNotFound) as refusal:
            return ThreadAnswer("refused", f"Not saved: {refusal}", chat_id)
        return ThreadAnswer("note" if added else "duplicate", None, chat_id)
    if not text.strip() and file is None:
        return ThreadAnswer("refused", "That reply has no words to send; nothing was sent.", chat_id)
    try:
        require_words_for_the_customer(text, via, chat_id)  # "canned thanks for 12" typed in the thread
        require_filled(text)  # a canned reply pasted with a {variable} still in it
    except CannedReplyError as refusal:
        return ThreadAnswer("refused", f"Not sent: {refusal}", chat_id)
    try:
        result = await reply_in_chat(
            parts.units.chat_replies(),
            chat_id,
            staff_id=staff.staff_id,
            staff_email=staff.email,
            body=text.strip(),
            request_key=request_key,
            business_name=parts.settings.business_name,
            now=now,
            policy=business_consent_policy(parts.settings),
            route_uow=parts.units.chat_replies(read_only=True),
            via=via,
            external_ref=ref,
            file=file,
            media_links=MediaLinks(
                parts.settings.public_url, parts.settings.session_secret.get_secret_value()
            ),
        )
    except (MessageRequestError, ChatNotFound) as refusal:
        return ThreadAnswer("refused", f"Not sent: {refusal}", chat_id)
    if result.duplicate:
        return ThreadAnswer("duplicate", None, chat_id)
    if result.status is MessageStatus.SUPPRESSED:
        return ThreadAnswer("refused", f"Not sent: {result.explanation}", chat_id)
    parts.on_reply()
    # The first agent to answer a conversation nobody holds takes it, so a colleague does not answer too.
    await take_if_unassigned(
        parts.units.desk(), chat_id, DeskActor(staff.staff_id, staff.email, via), now=now
    )
    return ThreadAnswer("sent", None, chat_id)


async def checked_staff_file(
    download: Callable[[int], Awaitable[bytes]],
    name: str,
    declared_type: str | None,
    size: int | None,
    max_bytes: int,
    where: str,
) -> KeptFile | str:
    """A file an agent sent from a staff chat (`where`: Slack, Telegram), downloaded within the limit and
    checked by the attachment rules like a customer's; or why it cannot go, in words."""
    rules = AttachmentRules(max_bytes)
    kind = kind_words(None, declared_type)
    if size is not None and size > rules.max_bytes:
        return f"Not sent: {too_large_words(kind, size, name, rules)}"
    try:
        content = await download(rules.max_bytes)
    except MediaTooLarge as too_large:
        return f"Not sent: {too_large_words(kind, too_large.size, name, rules)}"
    except MediaUnavailable as unavailable:
        return f"Not sent: the file could not be fetched from {where} ({unavailable})."
    checked = check_file(content, name, declared_type, rules)
    if isinstance(checked, RefusedFile):
        return f"Not sent: {checked.reason}"
    return checked


@dataclass
class SlackThreadDesk:
    """Live chat's Slack threads for one process: `mirror()` posts, `answer()`/`changed()` take replies."""

    settings: Settings
    database: Database
    units: UnitsOfWork
    client: AsyncWebClient
    clock: Clock
    #: Called when a reply is queued, so a worker in this process sends it without waiting for its next look.
    on_reply: Callable[[], None] = lambda: None
    #: Downloads files agents share in threads (None: such replies are refused in words).
    files: SlackFiles | None = None

    @property
    def channel(self) -> str:
        return self.settings.slack_chat_channel

    @property
    def posts(self) -> bool:
        """Whether new conversations go to Slack at all (a channel, or teams' channels, is set); replies in
        threads that exist are taken either way."""
        return bool(self.settings.slack_chat_channel.strip() or self.settings.slack_chat_channels.strip())

    def _uow(self) -> SqlSlackThreadUnitOfWork:
        return self.units.slack_threads()

    def _read(self) -> SqlSlackThreadUnitOfWork:
        return self.units.slack_threads(read_only=True)

    async def mirror(self) -> MirrorPass:
        poster = SlackThreadPoster(
            self.client, self.settings.public_url, shown_fields(self.settings.slack_customer_fields)
        )
        channel_for = team_channels(self.channel, self.settings.slack_chat_channels)
        # A backlog (a burst of customers, Slack away for a while) is worked off at once, a few seconds at most.
        started = time.monotonic()
        while True:
            done = await mirror_to_slack(
                self._uow, self._read, poster, channel_for, self.clock(), limit=MIRROR_BATCH
            )
            if (
                done.claimed < MIRROR_BATCH
                or done.errors
                or time.monotonic() - started > MIRROR_BUDGET_SECONDS
            ):
                return done

    async def answer(self, message: ThreadMessage) -> ThreadAnswer:
        async with self._read() as uow:
            chat_id = await uow.threads.chat_for_thread(message.channel_id, message.thread_ts)
        if chat_id is None:
            return (
                ThreadAnswer("refused", UNKNOWN_THREAD) if message.root_is_ours else ThreadAnswer("ignored")
            )
        staff = await staff_by_slack(self.database, message.team_id, message.slack_user_id)
        shared: KeptFile | None = None
        if message.has_files and staff is not None:
            outcome = await self._shared_file(message)
            if isinstance(outcome, str):
                return ThreadAnswer("refused", outcome, chat_id)
            shared = outcome
        return await agent_answers(
            self.agents(),
            chat_id,
            staff,
            plain_text(message.text),
            via="slack",
            ref=slack_ref(message.channel_id, message.ts),
            request_key=message.ts,
            file=shared,
        )

    async def _shared_file(self, message: ThreadMessage) -> KeptFile | str:
        """The one file an agent shared with a reply, downloaded and checked like a customer's; or why not, in
        words (nothing is sent then)."""
        files = self.files
        if files is None or not message.files:
            return (
                "Files cannot be sent to customers from Slack here, so nothing was sent. Send the words on "
                "their own, or attach the file in the Switchboard inbox."
            )
        if len(message.files) > 1:
            return "Share one file per reply, so nothing was sent. Send each file in a reply of its own."
        shared = message.files[0]
        return await checked_staff_file(
            lambda limit: files.slack_file(shared.url, limit),
            shared.name,
            shared.declared_type,
            shared.size,
            self.settings.attachment_max_bytes,
            "Slack",
        )

    def agents(self) -> AgentReplies:
        return AgentReplies(self.settings, self.units, self.clock, self.on_reply)

    async def changed(
        self,
        channel_id: str,
        ts: str,
        slack_user_id: str,
        team_id: str | None,
        new_text: str | None,
        thread_ts: str | None = None,
    ) -> ThreadAnswer:
        staff = await staff_by_slack(self.database, team_id, slack_user_id)
        return await record_thread_edit(
            self._uow,
            slack_ref(channel_id, ts),
            new_text=None if new_text is None else plain_text(new_text),
            staff_name=staff.name if staff else "Someone",
            note_prefix=self.settings.slack_note_prefix,
            now=self.clock(),
            thread=(channel_id, thread_ts) if thread_ts else None,
        )


@dataclass
class TelegramConversationDesk:
    """Live chat in the staff bot's private chats: `forward()` sends turns, `answer()` takes replies to them."""

    settings: Settings
    database: Database
    units: UnitsOfWork
    bot: Bot
    clock: Clock
    on_reply: Callable[[], None] = lambda: None
    #: Downloads the photos and documents agents reply with (None: such replies are refused in words).
    files: MediaSource | None = None

    async def forward(self) -> ForwardPass:
        sender = TelegramTurnSender(
            self.bot, self.settings.public_url, shown_fields(self.settings.slack_customer_fields)
        )
        return await forward_to_telegram(
            self.units.telegram_desk, lambda: self.units.telegram_desk(read_only=True), sender, self.clock()
        )

    async def answer(
        self,
        telegram_chat_id: int,
        replied_to: int,
        message_id: int,
        text: str,
        telegram_user_id: int,
        file: StaffFile | None = None,
    ) -> ThreadAnswer | None:
        """None when the replied-to message is not about a conversation (the text is then a command). A
        `file` (a photo or document) goes with the words, downloaded and checked like a customer's."""
        async with self.units.telegram_desk(read_only=True) as uow:
            chat_id = await uow.telegram.chat_for_message(telegram_chat_id, replied_to)
        if chat_id is None:
            return None
        staff = await staff_by_telegram(self.database, telegram_user_id)
        kept: KeptFile | None = None
        if file is not None and staff is not None:
            outcome = await self._sent_file(file)
            if isinstance(outcome, str):
                return ThreadAnswer("refused", outcome, chat_id)
            kept = outcome
        return await agent_answers(
            AgentReplies(self.settings, self.units, self.clock, self.on_reply),
            chat_id,
            staff,
            text,
            via="telegram",
            ref=f"telegram:{telegram_chat_id}:{message_id}",
            request_key=f"{telegram_chat_id}-{message_id}",
            file=kept,
        )

    async def _sent_file(self, file: StaffFile) -> KeptFile | str:
        files = self.files
        if files is None:
            return "Files cannot be sent to customers from Telegram here, so nothing was sent."
        reference = MediaReference(
            provider=Provider.TELEGRAM.value,
            locator=file.file_id,
            kind="file",
            declared_type=file.declared_type,
            filename=file.name,
            declared_size=file.size,
        )
        return await checked_staff_file(
            lambda limit: files.fetch(reference, limit),
            file.name,
            file.declared_type,
            file.size,
            self.settings.attachment_max_bytes,
            "Telegram",
        )
