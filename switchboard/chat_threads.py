"""Live chat in Slack threads, put together: the pass that posts conversations into threads, and what an
agent's reply, note, edit or delete in a thread does (the Slack front end's `ThreadDesk`)."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.threads import SlackThreadPoster, shown_fields
from domain.clock import Clock
from domain.conversations.model import ChatNotFound
from domain.conversations.slack_threads import (
    MirrorPass,
    ThreadAnswer,
    ThreadMessage,
    mirror_to_slack,
    note_text,
    record_thread_edit,
    slack_ref,
)
from domain.conversations.use_cases import DeskActor, add_note, reply_in_chat
from domain.messages.sending import MessageRequestError
from domain.vocabulary import MessageStatus, Role, role_allows
from storage.database import Database
from storage.queries.staff import staff_by_slack
from storage.slack_threads import SqlSlackThreadUnitOfWork
from storage.units import UnitsOfWork
from switchboard.policies import business_consent_policy
from switchboard.settings import Settings

#: `<https://x|label>`, `<mailto:a@b|a@b>`, `<@U123>`, `<#C1|name>`, `<!here>` in what Slack sends.
_SLACK_REFERENCE = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")

NOT_STAFF = (
    "Only staff with a Switchboard account linked to Slack can answer customers; nothing was sent. "
    "Ask an administrator to link your Slack account."
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

    @property
    def channel(self) -> str:
        return self.settings.slack_chat_channel

    def _uow(self) -> SqlSlackThreadUnitOfWork:
        return self.units.slack_threads()

    def _read(self) -> SqlSlackThreadUnitOfWork:
        return self.units.slack_threads(read_only=True)

    async def mirror(self) -> MirrorPass:
        poster = SlackThreadPoster(
            self.client, self.settings.public_url, shown_fields(self.settings.slack_customer_fields)
        )
        return await mirror_to_slack(self._uow, self._read, poster, self.channel, self.clock())

    async def answer(self, message: ThreadMessage) -> ThreadAnswer:
        async with self._read() as uow:
            chat_id = await uow.threads.chat_for_thread(message.channel_id, message.thread_ts)
        if chat_id is None:
            return (
                ThreadAnswer("refused", UNKNOWN_THREAD) if message.root_is_ours else ThreadAnswer("ignored")
            )
        staff = await staff_by_slack(self.database, message.team_id, message.slack_user_id)
        if staff is None:
            return ThreadAnswer("refused", NOT_STAFF, chat_id)
        if not role_allows(staff.role, Role.AGENT):
            return ThreadAnswer("refused", NOT_AN_AGENT, chat_id)
        ref = slack_ref(message.channel_id, message.ts)
        now = self.clock()
        note = note_text(message.text, self.settings.slack_note_prefix)
        if note is not None:
            actor = DeskActor(staff.staff_id, staff.email, "slack")
            try:
                added = await add_note(
                    self.units.desk(), chat_id, actor, plain_text(note), now=now, external_ref=ref
                )
            except (MessageRequestError, ChatNotFound) as refusal:
                return ThreadAnswer("refused", f"Not saved: {refusal}", chat_id)
            return ThreadAnswer("note" if added else "duplicate", None, chat_id)
        body = plain_text(message.text)
        if not body:
            return ThreadAnswer("refused", "That reply has no words to send; nothing was sent.", chat_id)
        try:
            result = await reply_in_chat(
                self.units.chat_replies(),
                chat_id,
                staff_id=staff.staff_id,
                staff_email=staff.email,
                body=body,
                request_key=message.ts,
                business_name=self.settings.business_name,
                now=now,
                policy=business_consent_policy(self.settings),
                route_uow=self.units.chat_replies(read_only=True),
                via="slack",
                external_ref=ref,
            )
        except (MessageRequestError, ChatNotFound) as refusal:
            return ThreadAnswer("refused", f"Not sent: {refusal}", chat_id)
        if result.duplicate:
            return ThreadAnswer("duplicate", None, chat_id)
        if result.status is MessageStatus.SUPPRESSED:
            return ThreadAnswer("refused", f"Not sent: {result.explanation}", chat_id)
        self.on_reply()
        return ThreadAnswer("sent", None, chat_id)

    async def changed(
        self, channel_id: str, ts: str, slack_user_id: str, team_id: str | None, new_text: str | None
    ) -> ThreadAnswer:
        staff = await staff_by_slack(self.database, team_id, slack_user_id)
        return await record_thread_edit(
            self._uow,
            slack_ref(channel_id, ts),
            new_text=None if new_text is None else plain_text(new_text),
            staff_name=staff.name if staff else "Someone",
            note_prefix=self.settings.slack_note_prefix,
            now=self.clock(),
        )
