"""The one way Switchboard builds a Slack Web API client: the staff bot and report delivery."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

SLACK_API = "https://slack.com/api/"


def slack_client(
    token: str, base_url: str = SLACK_API, *, timeout_seconds: int | None = None
) -> AsyncWebClient:
    """A client talking to `base_url` (configurable so the sandbox can stand in for slack.com)."""
    if timeout_seconds is None:
        return AsyncWebClient(token=token, base_url=base_url)
    return AsyncWebClient(token=token, base_url=base_url, timeout=timeout_seconds)
