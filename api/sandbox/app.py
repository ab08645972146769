"""Builds the sandbox's aiohttp application: Twilio, WhatsApp Cloud, Telegram and Slack fakes plus its pages."""

from __future__ import annotations

from aiohttp import web

from api.sandbox import console, media, slack_api, slack_page, telegram_api, twilio_api, whatsapp_api
from api.sandbox.config import SandboxConfig
from api.sandbox.keys import STATE, WEBHOOKS
from api.sandbox.state import SandboxState
from api.sandbox.video_rooms import install_video_rooms
from api.sandbox.webhooks import WebhookDispatcher


def create_sandbox_app(config: SandboxConfig) -> web.Application:
    """The sandbox as one aiohttp app; `app[STATE]` is its in-process memory for tests."""
    app = web.Application(client_max_size=50 * 1024 * 1024)
    state = SandboxState(config)
    app[STATE] = state
    app[WEBHOOKS] = WebhookDispatcher(state)
    app.add_routes(twilio_api.routes())
    app.add_routes(whatsapp_api.routes())
    app.add_routes(media.routes())
    app.add_routes(telegram_api.routes())
    app.add_routes(slack_api.routes())
    app.add_routes(slack_page.routes())
    app.add_routes(console.routes())
    install_video_rooms(app, config)
    app.router.add_get("/", _to_console)
    app.router.add_get("/favicon.ico", _icon)
    app.on_startup.append(_start)
    app.on_shutdown.append(_release_hung_requests)
    app.on_cleanup.append(_stop)
    return app


def sandbox_state(app: web.Application) -> SandboxState:
    return app[STATE]


#: The sandbox's tab icon: a phone outline, so it is told apart from Switchboard's own tab.
ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" '
    'fill="#7a4b00"/><rect x="10" y="5" width="12" height="22" rx="2" fill="none" stroke="#fff" '
    'stroke-width="2.5"/></svg>'
)


async def _icon(request: web.Request) -> web.Response:
    return web.Response(text=ICON, content_type="image/svg+xml")


async def _to_console(request: web.Request) -> web.Response:
    raise web.HTTPFound("/_sandbox/")


async def _start(app: web.Application) -> None:
    await app[WEBHOOKS].start()


async def _release_hung_requests(app: web.Application) -> None:
    # Chaos "timeout" answers wait on this, so shutting down never waits for them.
    app[STATE].closing.set()


async def _stop(app: web.Application) -> None:
    await app[WEBHOOKS].stop()
