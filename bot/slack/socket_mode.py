"""Socket Mode: the Slack app over an outbound WebSocket, for hosts Slack cannot reach over HTTPS."""

from __future__ import annotations

import logging

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from bot.command_runner import CommandRunner
from bot.slack.app import build_slack_app
from switchboard.settings import ConfigurationError, Settings

log = logging.getLogger(__name__)


def build_socket_mode_handler(settings: Settings, app: AsyncApp) -> AsyncSocketModeHandler:
    """The handler for `app`; it calls apps.connections.open through app.client on connect."""
    app_token = settings.slack_app_token.get_secret_value()
    if not app_token:
        raise ConfigurationError(
            "SWITCHBOARD_SLACK_APP_TOKEN is empty: Socket Mode needs an app-level token (xapp-...) "
            "with the connections:write scope"
        )
    return AsyncSocketModeHandler(app, app_token)


async def run_slack_socket_mode(settings: Settings, runner: CommandRunner) -> None:
    """Runs until cancelled: the body of a `switchboard slack-socket` command."""
    handler = build_socket_mode_handler(settings, build_slack_app(settings, runner))
    log.info("Slack Socket Mode: connecting")
    try:
        await handler.start_async()  # type: ignore[no-untyped-call]
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]
