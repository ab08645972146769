"""The staff Telegram bot: commands as plain text or /commands, replies as messages, charts as photos."""
