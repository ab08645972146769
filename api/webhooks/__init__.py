"""Provider webhooks: the routes, the reader that turns stored bodies into domain values, and replay."""

from api.webhooks.links import read_telegram_start_payload, telegram_start_payload
from api.webhooks.reading import ProviderWebhookReader
from api.webhooks.routes import TELEGRAM_STAFF_HANDLER, replay_webhooks, webhook_handlers

#: The name the brief and the CLI use.
replay_failed_webhooks = replay_webhooks

__all__ = [
    "TELEGRAM_STAFF_HANDLER",
    "ProviderWebhookReader",
    "read_telegram_start_payload",
    "replay_failed_webhooks",
    "replay_webhooks",
    "telegram_start_payload",
    "webhook_handlers",
]
