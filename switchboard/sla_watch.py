"""The worker's SLA job, wired: the SLA pass over the database, with alerts posted to the team's Slack channel."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.threads import shown_fields
from domain.clock import utc_now
from domain.conversations.sla_watch import SlaAlertPoster, SlaPassResult, watch_slas
from providers.slack.client import slack_client
from storage.database import Database
from storage.sla import SqlSlaUnitOfWork
from switchboard.settings import Settings

#: A Slack call that takes longer fails this pass; the claim is released and the next pass tries again.
SLACK_TIMEOUT_SECONDS = 10


class SlackSlaChannel:
    """Posts an alert to its team's Slack channel, or the one channel for all; raises (slack_sdk's errors)
    when Slack did not take it."""

    def __init__(
        self, client: AsyncWebClient, channel: str, team_channels: Mapping[str, str] | None = None
    ) -> None:
        self._client = client
        self.channel = channel
        self._team_channels = {code.casefold(): ch for code, ch in (team_channels or {}).items()}

    def channel_for(self, team: str | None) -> str:
        return self._team_channels.get((team or "").casefold(), self.channel)

    async def post(self, text: str, team: str | None) -> None:
        channel = self.channel_for(team)
        if not channel:
            raise ValueError(f"no Slack channel for SLA alerts of team {team or '(none)'}")
        await self._client.chat_postMessage(channel=channel, text=text, unfurl_links=False)


def team_chat_channels(per_team: str) -> dict[str, str]:
    """SWITCHBOARD_SLACK_CHAT_CHANNELS ("BER=C0BERLIN,LON=#london-chat") as clinic code -> channel."""
    pairs = (part.partition("=") for part in per_team.split(","))
    return {
        code.strip(): channel.strip()
        for code, sep, channel in pairs
        if sep and code.strip() and channel.strip()
    }


def sla_channel(settings: Settings) -> str:
    """SWITCHBOARD_SLACK_SLA_CHANNEL, else the live-chat channel (SWITCHBOARD_SLACK_CHAT_CHANNEL), else ""."""
    return (settings.slack_sla_channel or settings.slack_chat_channel).strip()


def sla_poster(settings: Settings) -> SlaAlertPoster | None:
    """Where alerts go: SWITCHBOARD_SLACK_SLA_CHANNEL for every team when it is set; else each team's live-chat
    channel (SWITCHBOARD_SLACK_CHAT_CHANNELS), else SWITCHBOARD_SLACK_CHAT_CHANNEL. None when there is no channel
    at all: warnings and breaches are still stored (and counted), just not posted."""
    teams = {} if settings.slack_sla_channel.strip() else team_chat_channels(settings.slack_chat_channels)
    channel = sla_channel(settings)
    if not channel and not teams:
        return None
    client = slack_client(
        settings.slack_bot_token.get_secret_value(),
        settings.slack_base_url,
        timeout_seconds=SLACK_TIMEOUT_SECONDS,
    )
    return SlackSlaChannel(client, channel, teams)


class SlaWatch:
    """`SlaWatch(database, settings).run()` is one pass of the job (the background table calls it)."""

    def __init__(self, database: Database, settings: Settings, poster: SlaAlertPoster | None = None) -> None:
        self._database = database
        self._settings = settings
        self._poster = poster if poster is not None else sla_poster(settings)

    def _unit(self) -> SqlSlaUnitOfWork:
        return SqlSlaUnitOfWork(self._database, business_tz=self._settings.business_timezone)

    async def run(self, now: datetime | None = None) -> SlaPassResult:
        return await watch_slas(
            self._unit,
            self._poster,
            now or utc_now(),
            self._settings.public_url,
            show_customer_name="name" in shown_fields(self._settings.slack_customer_fields),
        )
