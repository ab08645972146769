"""The one way Switchboard builds a Slack Web API client: the staff bot and report delivery."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

SLACK_API = "https://slack.com/api/"

#: The bot token's scopes Switchboard needs: slack-app-manifest.yaml asks for exactly these (a test holds the
#: two together), and `switchboard doctor` names any a workspace's token lacks.
BOT_SCOPES = (
    "commands",
    "chat:write",
    "files:write",
    "channels:history",
    "groups:history",
    "files:read",
    "app_mentions:read",
    "im:history",
    "im:read",
    "users:read",
)


def slack_client(
    token: str, base_url: str = SLACK_API, *, timeout_seconds: int | None = None
) -> AsyncWebClient:
    """A client talking to `base_url` (configurable so the sandbox can stand in for slack.com)."""
    if timeout_seconds is None:
        return AsyncWebClient(token=token, base_url=base_url)
    return AsyncWebClient(token=token, base_url=base_url, timeout=timeout_seconds)
