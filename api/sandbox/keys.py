"""Typed keys under which the sandbox app keeps its state and webhook dispatcher."""

from __future__ import annotations

from aiohttp import web

from api.sandbox.state import SandboxState
from api.sandbox.webhooks import WebhookDispatcher

STATE: web.AppKey[SandboxState] = web.AppKey("sandbox_state", SandboxState)
WEBHOOKS: web.AppKey[WebhookDispatcher] = web.AppKey("sandbox_webhooks", WebhookDispatcher)
