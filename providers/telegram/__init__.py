"""Telegram Bot API: the Bot client, the customer driver, update reading and signed /start links."""
