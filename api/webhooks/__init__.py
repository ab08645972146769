"""Provider webhook routes (thin: verify, keep in the inbox, hand over, answer) and their replay."""

from api.webhooks.routes import replay_webhooks, webhook_handlers

#: The name the brief and the CLI use.
replay_failed_webhooks = replay_webhooks

__all__ = ["replay_failed_webhooks", "replay_webhooks", "webhook_handlers"]
