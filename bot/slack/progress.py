"""Campaign progress in Slack: one message, posted once and then edited in place until the work is done."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.replies import Reply
from bot.slack.render import message_payload

log = logging.getLogger(__name__)

#: fetch_progress returns the latest Reply; kind == "progress" means "still running, ask again later".
FetchProgress = Callable[[], Awaitable[Reply]]


def is_finished(reply: Reply) -> bool:
    return reply.kind != "progress"


async def track_progress(
    client: AsyncWebClient,
    channel: str,
    fetch_progress: FetchProgress,
    interval: float = 5.0,
    *,
    message_ts: str | None = None,
    thread_ts: str | None = None,
    max_updates: int = 2000,
) -> str:
    """Keeps one Slack message showing the latest progress until `fetch_progress` reports it finished.

    Posts the first message unless `message_ts` names one already posted, and returns its ts. Only
    changed content is sent, because chat.update is rate limited (about 50 a minute) and a campaign
    may run for hours; `max_updates` bounds a tracker whose campaign never reports finished.
    """
    last = await fetch_progress()
    payload = message_payload(last)
    if message_ts is None:
        posted = await client.chat_postMessage(channel=channel, thread_ts=thread_ts, **payload)
        message_ts = str(posted["ts"])
    else:
        await client.chat_update(channel=channel, ts=message_ts, **payload)
    for _ in range(max_updates):
        if is_finished(last):
            break
        await asyncio.sleep(interval)
        current = await fetch_progress()
        if current != last:
            try:
                await client.chat_update(channel=channel, ts=message_ts, **message_payload(current))
            except SlackApiError as error:
                if error.response.get("error") in ("message_not_found", "channel_not_found"):
                    log.info("progress message %s in %s is gone; stop tracking", message_ts, channel)
                    break
                raise
        last = current
    return message_ts
