"""Fakes for tests: local Slack Web API and Telegram Bot API servers, and in-memory units of work."""
