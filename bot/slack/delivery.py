"""Posts a rendered Reply back to where a Slack command was asked: channel, thread, or privately."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from slack_bolt.context.respond.async_respond import AsyncRespond as Respond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.replies import Reply
from bot.slack.render import message_payload

log = logging.getLogger(__name__)

#: Errors meaning the bot may not post into the channel (not invited, or a private channel / group DM).
NOT_A_MEMBER = {"not_in_channel", "channel_not_found", "is_archived"}

PRIVATE_FILES_NOTE = "_Charts and files from private answers are not posted in channels; ask me in a direct message to see them._"


@dataclass(frozen=True)
class Conversation:
    """Where a command was asked; the reply goes back there."""

    user_id: str
    channel_id: str | None
    #: the workspace; staff are matched by (team, user) because Slack user ids are per workspace
    team_id: str | None = None
    thread_ts: str | None = None
    #: set when the question itself was only visible to the asker (an ephemeral message's button)
    asked_privately: bool = False

    @property
    def is_direct_message(self) -> bool:
        # Slack's DM channel ids start with D; a DM is already private, so private replies may go there as-is.
        return bool(self.channel_id and self.channel_id.startswith("D"))


async def deliver_reply(
    client: AsyncWebClient, reply: Reply, where: Conversation, respond: Respond | None = None
) -> str | None:
    """Posts `reply`; returns the message ts when it was posted as an ordinary (updatable) message."""
    private = (reply.private or where.asked_privately) and not where.is_direct_message
    if private:
        await deliver_privately(client, reply, where, respond)
        return None
    return await deliver_publicly(client, reply, where, respond)


async def deliver_privately(
    client: AsyncWebClient, reply: Reply, where: Conversation, respond: Respond | None
) -> None:
    if reply.images or reply.attachments:
        # Slack has no ephemeral files: uploading would show contact details or previews to the channel.
        reply = replace(reply, text=f"{reply.text}\n\n{PRIVATE_FILES_NOTE}")
    payload = message_payload(reply)
    if respond is not None:
        await respond(response_type="ephemeral", replace_original=False, **payload)
        return
    if where.channel_id is None:
        log.warning("private Slack reply for %s has nowhere to go", where.user_id)
        return
    await client.chat_postEphemeral(
        channel=where.channel_id, user=where.user_id, thread_ts=where.thread_ts, **payload
    )


async def deliver_publicly(
    client: AsyncWebClient, reply: Reply, where: Conversation, respond: Respond | None
) -> str | None:
    payload = message_payload(reply)
    ts: str | None = None
    if where.channel_id is None:
        if respond is not None:
            await respond(response_type="in_channel", replace_original=False, **payload)
        return None
    try:
        posted = await client.chat_postMessage(channel=where.channel_id, thread_ts=where.thread_ts, **payload)
        ts = posted.get("ts")
    except SlackApiError as error:
        if error.response.get("error") not in NOT_A_MEMBER or respond is None:
            raise
        # A slash command works in channels the bot was never invited to; response_url still reaches them.
        await respond(response_type="in_channel", replace_original=False, **payload)
    await upload_files(client, reply, where, respond)
    return ts


async def upload_files(
    client: AsyncWebClient, reply: Reply, where: Conversation, respond: Respond | None
) -> None:
    uploads: list[dict[str, Any]] = [
        {
            "content": image.content,
            "filename": image.filename,
            "title": image.alt_text,
            "alt_txt": image.alt_text,
        }
        for image in reply.images
    ]
    uploads += [
        {"content": attachment.content, "filename": attachment.filename, "title": attachment.filename}
        for attachment in reply.attachments
    ]
    if not uploads or where.channel_id is None:
        return
    try:
        # files_upload_v2: getUploadURLExternal per file, a raw POST per file, one completeUploadExternal.
        await client.files_upload_v2(
            file_uploads=uploads, channel=where.channel_id, thread_ts=where.thread_ts
        )
    except SlackApiError as error:
        if error.response.get("error") not in NOT_A_MEMBER or respond is None:
            raise
        await respond(
            response_type="ephemeral",
            replace_original=False,
            text="I can't post charts here until someone invites me to this channel (`/invite @Switchboard`).",
        )
