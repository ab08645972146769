"""Slack listeners: the slash command, @mentions, direct messages and button presses, all running commands.

Every listener acknowledges first and only then does work: Slack gives up after 3 seconds, and Bolt
runs the rest of the listener after the HTTP answer has gone out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.command_runner import CommandRunner
from bot.replies import Reply
from bot.slack.compose import COMPOSE_CALLBACK, command_from_submission, compose_view
from bot.slack.delivery import Conversation, deliver_reply
from bot.slack.progress import track_progress
from bot.slack.render import ACTION_PREFIX, CHAT_CARD_BLOCK_ID, CONFIRM_BLOCK_ID, escape_mrkdwn
from bot.slack.threads import ThreadDesk, tell_privately, thread_message_of
from domain.conversations.slack_threads import ThreadAnswer

log = logging.getLogger(__name__)

MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")
BUTTON_ACTION = re.compile(rf"^{ACTION_PREFIX}\d+$")

TROUBLE = Reply(
    text="Sorry, something went wrong while answering that. It has been logged; please try again shortly.",
    kind="error",
    private=True,
)


def refusal(business_name: str, user_id: str = "") -> Reply:
    """What anyone not linked to a staff account gets: no data, no hint of what exists, only their own Slack
    member id, which the administrator links (`switchboard staff link EMAIL --slack ID`)."""
    yours = f" (your Slack member id is {user_id})" if user_id else ""
    return Reply(
        text=(
            f"Sorry, Switchboard only answers staff of {business_name}. If you work here, ask an "
            f"administrator to link your Slack account{yours}."
        ),
        kind="denied",
        private=True,
    )


def command_text_of_mention(text: str) -> str:
    """`<@U0BOT> sales this week` -> `sales this week`."""
    return MENTION.sub("", text).strip()


class SlackFrontEnd:
    """Turns Slack interactions into command runs and their replies into Slack messages."""

    def __init__(
        self,
        runner: CommandRunner,
        *,
        business_name: str,
        progress_interval: float = 5.0,
        progress_command: str = "campaign status {key}",
        threads: ThreadDesk | None = None,
    ) -> None:
        self.runner = runner
        #: Live chat in threads: agents' replies in a conversation's thread go to the customer.
        self.threads = threads
        self.business_name = business_name
        self.progress_interval = progress_interval
        # The command that re-reads a running job's progress; `{key}` is the reply's progress_key.
        self.progress_command = progress_command
        self._background: set[asyncio.Task[Any]] = set()

    def register(self, app: AsyncApp, slash_command: str) -> None:
        app.command(slash_command)(self.on_slash_command)
        app.event("app_mention")(self.on_mention)
        app.event("message")(self.on_message)
        app.action(BUTTON_ACTION)(self.on_button)
        app.view(COMPOSE_CALLBACK)(self.on_compose_submit)

    async def answer(
        self,
        client: AsyncWebClient,
        text: str,
        where: Conversation,
        respond: AsyncRespond | None = None,
    ) -> None:
        """Runs `text` as the Slack user in `where` and delivers the reply (or a refusal) there."""
        try:
            reply = await self.runner.run(
                text or "help", slack_user_id=where.user_id, slack_team_id=where.team_id, via="slack"
            )
        except Exception:  # any failure inside a command must still answer the person
            log.exception("Slack command %r from %s failed", text, where.user_id)
            reply = TROUBLE
        if reply is None:
            reply = refusal(self.business_name, where.user_id or "")
        ts = await deliver_reply(client, reply, where, respond)
        if ts is not None and where.channel_id and reply.kind == "progress" and reply.progress_key:
            self.follow_progress(client, where, ts, reply.progress_key)

    def follow_progress(self, client: AsyncWebClient, where: Conversation, ts: str, key: str) -> None:
        assert where.channel_id is not None
        command = self.progress_command.format(key=key)

        async def fetch() -> Reply:
            reply = await self.runner.run(
                command, slack_user_id=where.user_id, slack_team_id=where.team_id, via="slack"
            )
            # Losing access mid-way ends the tracking rather than showing a refusal in a shared message.
            return reply or Reply(text="Progress is no longer available to you.", kind="answer")

        task = asyncio.create_task(
            track_progress(client, where.channel_id, fetch, self.progress_interval, message_ts=ts)
        )
        # Keep a reference: the event loop holds tasks only weakly.
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def on_slash_command(
        self, ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        await ack()  # before anything else: no database work may delay the 3-second acknowledgement
        where = Conversation(
            user_id=command["user_id"], channel_id=command.get("channel_id"), team_id=command.get("team_id")
        )
        text = str(command.get("text", "")).strip()
        if text.lower() in ("send", "compose") and command.get("trigger_id"):
            await client.views_open(trigger_id=command["trigger_id"], view=compose_view(where.channel_id))
            return
        await self.answer(client, text, where, respond)

    async def on_compose_submit(
        self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        """The compose modal was submitted: field errors go back to the form, else `send` runs (a preview)."""
        command, errors = command_from_submission(view)
        if command is None:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        metadata = json.loads(view.get("private_metadata") or "{}")
        user = body.get("user") or {}
        where = Conversation(
            user_id=user["id"],
            channel_id=metadata.get("channel_id") or user["id"],
            team_id=user.get("team_id") or (body.get("team") or {}).get("id"),
        )
        await self.answer(client, command, where)

    async def on_mention(self, event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient) -> None:
        where = Conversation(
            user_id=event["user"],
            channel_id=event["channel"],
            team_id=event.get("team") or body.get("team_id"),
            # Answer in a thread so a busy channel is not flooded.
            thread_ts=event.get("thread_ts") or event.get("ts"),
        )
        await self.answer(client, command_text_of_mention(event.get("text", "")), where)

    async def on_message(
        self, event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        if self.threads is not None and event.get("channel_type") in ("channel", "group"):
            await self.on_channel_message(self.threads, event, body, client, context.bot_user_id)
            return
        # Only plain messages typed by a person in a DM with the bot; edits, joins and bots are ignored.
        if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id"):
            return
        if "user" not in event:
            return
        where = Conversation(
            user_id=event["user"],
            channel_id=event["channel"],
            team_id=event.get("team") or body.get("team_id"),
            thread_ts=event.get("thread_ts"),
        )
        await self.answer(client, command_text_of_mention(event.get("text", "")), where)

    async def on_channel_message(
        self,
        threads: ThreadDesk,
        event: dict[str, Any],
        body: dict[str, Any],
        client: AsyncWebClient,
        bot_user_id: str | None,
    ) -> None:
        """A reply, edit or delete in a channel thread: live chat's business when the thread is a conversation."""
        team_id = event.get("team") or body.get("team_id")
        subtype = event.get("subtype")
        if subtype in ("message_changed", "message_deleted"):
            changed = event.get("message") if subtype == "message_changed" else event.get("previous_message")
            if not isinstance(changed, dict) or changed.get("bot_id") or "user" not in changed:
                return
            thread_ts = changed.get("thread_ts")
            if not thread_ts or thread_ts == changed.get("ts"):
                return
            new_text = str(changed.get("text") or "") if subtype == "message_changed" else None
            if new_text is not None and new_text == str(
                (event.get("previous_message") or {}).get("text") or ""
            ):
                return  # an unfurl or a reaction, not an edit of the words
            outcome = await threads.changed(
                event["channel"], str(changed["ts"]), changed["user"], team_id, new_text, str(thread_ts)
            )
            if outcome.say:
                await tell_privately(client, event["channel"], changed["user"], thread_ts, outcome.say)
            return
        message = thread_message_of(event, bot_user_id, team_id)
        if message is None:
            return
        try:
            outcome = await threads.answer(message)
        except Exception:  # the agent must hear that it failed; the event is not retried by us
            log.exception("thread reply %s in %s failed", message.ts, message.channel_id)
            outcome = ThreadAnswer(
                "refused",
                "Sorry, something went wrong with that reply and it may not have been sent. Check the "
                "conversation in Switchboard before sending it again.",
            )
        if outcome.say:
            await tell_privately(
                client, message.channel_id, message.slack_user_id, message.thread_ts, outcome.say
            )

    async def on_button(
        self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        await ack()
        action = body["actions"][0]
        container = body.get("container") or {}
        message = body.get("message") or {}
        user_id = body["user"]["id"]
        channel_id = (body.get("channel") or {}).get("id") or container.get("channel_id")
        if action.get("block_id") == CONFIRM_BLOCK_ID:
            await self.retire_question(respond, message, user_id, action)
        on_card = action.get("block_id") == CHAT_CARD_BLOCK_ID
        where = Conversation(
            user_id=user_id,
            channel_id=channel_id,
            team_id=(body.get("team") or {}).get("id") or body["user"].get("team_id"),
            # A conversation card's answer goes beside it in its thread, to the presser alone: the thread
            # itself says "Resolved." to everyone, once.
            thread_ts=message.get("thread_ts")
            or container.get("thread_ts")
            or (message.get("ts") or container.get("message_ts") if on_card else None),
            asked_privately=bool(container.get("is_ephemeral")) or on_card,
        )
        has_response_url = bool(body.get("response_url"))
        await self.answer(client, str(action.get("value", "")), where, respond if has_response_url else None)

    async def retire_question(
        self, respond: AsyncRespond, message: dict[str, Any], user_id: str, action: dict[str, Any]
    ) -> None:
        """Replaces a confirmation question with who chose what, so it cannot be pressed twice."""
        if respond.response_url is None:
            return
        label = (action.get("text") or {}).get("text", "an option")
        question = message.get("text", "")
        await respond(
            text=f"{question}\n\n<@{user_id}> chose *{escape_mrkdwn(label)}*.",
            replace_original=True,
        )
