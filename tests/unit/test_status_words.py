"""`status` says the last webhook in words: who sent it and, where its kind tells, what it brought."""

from __future__ import annotations

from bot.commands.status import _webhook_words


def test_the_last_webhook_is_said_in_words_not_codes() -> None:
    assert _webhook_words("smtp", "email") == "an email from the mail server"
    assert _webhook_words("twilio", "status") == "a delivery receipt from Twilio"
    assert _webhook_words("twilio", "inbound") == "a customer's message from Twilio"
    assert _webhook_words("telegram", "update") == "from Telegram Bot API"
