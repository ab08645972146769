"""The providers registry is the one table: routes, readers, drivers and pacing all come from it."""

from __future__ import annotations

from api.webhooks.routes import webhook_handlers
from domain.vocabulary import OUTBOUND_CHANNELS, Channel
from providers.registry import PROVIDERS, WEBHOOK_ENDPOINTS, build_drivers, build_pacing
from switchboard.settings import Settings


def test_every_webhook_url_of_the_registry_is_a_route_and_nothing_else_is() -> None:
    routes = {
        (handler.name, next(iter(handler.paths)) if len(handler.paths) == 1 else None)
        for handler in webhook_handlers
    }
    assert routes == {(endpoint.name, endpoint.path) for endpoint in WEBHOOK_ENDPOINTS}
    assert len({endpoint.name for endpoint in WEBHOOK_ENDPOINTS}) == len(WEBHOOK_ENDPOINTS)


def test_every_customer_channel_has_one_provider_with_a_driver_a_rate_and_a_reader() -> None:
    settings = Settings(database_url="sqlite+aiosqlite:///unused.db")
    # Every outbound channel is carried by one, and so is the website chat (by its widget).
    assert {entry.channel for entry in PROVIDERS} >= {*OUTBOUND_CHANNELS, Channel.CHAT}
    assert len({entry.channel for entry in PROVIDERS}) == len(PROVIDERS)
    assert (
        set(build_drivers(settings)) == set(build_pacing(settings)) == {entry.channel for entry in PROVIDERS}
    )
    # The website chat's widget has its own routes (/widget/...) rather than webhooks.
    assert all(entry.readers and entry.endpoints for entry in PROVIDERS if entry.channel.value != "chat")
