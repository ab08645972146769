"""Runs the sandbox: the HTTP app on 127.0.0.1 and the aiosmtpd SMTP server on its own port."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from api.sandbox.app import create_sandbox_app
from api.sandbox.config import SandboxConfig
from api.sandbox.keys import STATE, WEBHOOKS
from api.sandbox.smtp_server import DsnController, SandboxSmtpHandler
from api.sandbox.state import SandboxState
from api.sandbox.webhooks import WebhookDispatcher


@dataclass
class RunningSandbox:
    """A started sandbox: where to reach it and its in-process state."""

    app: web.Application
    host: str
    port: int
    smtp_port: int

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def state(self) -> SandboxState:
        return self.app[STATE]

    @property
    def webhooks(self) -> WebhookDispatcher:
        return self.app[WEBHOOKS]

    async def settle(self, limit_seconds: float = 10.0) -> None:
        """Wait for every status progression and webhook in flight to finish."""
        await self.webhooks.settle(limit_seconds)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def run_sandbox(config: SandboxConfig) -> AsyncIterator[RunningSandbox]:
    """Start the sandbox (port 0 picks free ports) and stop it on exit."""
    app = create_sandbox_app(config)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
        port = int(runner.addresses[0][1])
        smtp_port = config.smtp_port or free_port(config.host)
        # aiosmtpd checks it is up by connecting to the hostname, so it must be given explicitly.
        controller = DsnController(
            SandboxSmtpHandler(app[STATE], app[WEBHOOKS]), hostname=config.host, port=smtp_port
        )
        await asyncio.to_thread(controller.start)
    except BaseException:  # a port taken: what started (the webhook sender's session) stops again
        await runner.cleanup()
        raise
    try:
        yield RunningSandbox(app=app, host=config.host, port=port, smtp_port=smtp_port)
    finally:
        await asyncio.to_thread(controller.stop)
        await runner.cleanup()
