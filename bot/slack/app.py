"""Builds the Slack Bolt app for staff from settings; `api/slack_events.py` feeds it HTTP requests."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.command_runner import CommandRunner
from bot.slack.handlers import SlackFrontEnd
from bot.slack.threads import ThreadDesk
from providers.slack.client import slack_client
from switchboard.settings import Settings


def build_slack_client(settings: Settings) -> AsyncWebClient:
    # base_url is configurable so tests and the sandbox can stand in for slack.com.
    return slack_client(settings.slack_bot_token.get_secret_value(), settings.slack_base_url)


def build_slack_app(
    settings: Settings,
    runner: CommandRunner,
    *,
    client: AsyncWebClient | None = None,
    progress_interval: float = 5.0,
    threads: ThreadDesk | None = None,
) -> AsyncApp:
    """A single-workspace Bolt app that verifies Slack's signature and answers with `runner`.

    Bolt calls auth.test on the first request to learn its bot user id (used to ignore its own
    messages), so whatever serves `slack_base_url` must answer auth.test.
    """
    # The token travels inside the client; Bolt warns when given both and ignores `token`.
    app = AsyncApp(
        name="switchboard",
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        client=client or build_slack_client(settings),
    )
    front_end = SlackFrontEnd(
        runner, business_name=settings.business_name, progress_interval=progress_interval, threads=threads
    )
    front_end.register(app, settings.slack_command)
    return app
