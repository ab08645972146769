"""The clinician's Slack direct message when their patient is in the waiting room, with a one-tap join link."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.render import SECTION_TEXT_LIMIT, clip, escape_mrkdwn
from domain.video.waiting_room import WaitingPatient, waiting_words


class SlackWaitingRoom:
    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client

    async def tell(self, slack_user_id: str, patient: WaitingPatient, join_link: str) -> None:
        """Posts to the app's direct messages with the clinician (chat.postMessage to a user id); raises
        SlackApiError when Slack refuses."""
        words = waiting_words(patient)
        # A link, not a button: it opens the room in one tap and asks nothing of the Slack app.
        text = clip(f":wave: {escape_mrkdwn(words)}\n*<{join_link}|Join now>*", SECTION_TEXT_LIMIT)
        await self._client.chat_postMessage(
            channel=slack_user_id,
            text=f"{words} Join now: {join_link}",
            blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
            unfurl_links=False,
        )
