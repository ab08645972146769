"""Every stored value of a message a page shows has words staff read, so none reaches them raw."""

from __future__ import annotations

import pytest

from domain.messages.words import (
    CATEGORY_WORDS,
    DIRECTION_WORDS,
    PROVIDER_WORDS,
    SOURCE_WORDS,
    STATUS_WORDS,
    channel_words,
    failure_words,
    status_words,
)
from domain.vocabulary import (
    OUTBOUND_CHANNELS,
    Direction,
    MessageCategory,
    MessageSource,
    MessageStatus,
    Provider,
)


def test_every_status_direction_provider_source_and_category_has_words() -> None:
    for words, values in (
        (STATUS_WORDS, MessageStatus),
        (DIRECTION_WORDS, Direction),
        (PROVIDER_WORDS, Provider),
        (SOURCE_WORDS, MessageSource),
        (CATEGORY_WORDS, MessageCategory),
    ):
        missing = {v.value for v in values} - set(words)
        assert not missing, missing
        assert all("_" not in said for said in words.values())


def test_channels_are_named_and_unknown_values_lose_their_underscores() -> None:
    assert [channel_words(c.value) for c in OUTBOUND_CHANNELS] == ["SMS", "email", "WhatsApp", "Telegram"]
    assert status_words("suppressed") == "held back"
    assert status_words("some_new_state") == "some new state"


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("5.1.1 Mailbox unavailable", "Mailbox unavailable (5.1.1)"),
        (
            "550 5.1.1 The email account that you tried to reach does not exist",
            "The email account that you tried to reach does not exist (5.1.1)",
        ),
        ("552-5.2.2   mailbox   full", "Mailbox full (5.2.2)"),
        # A send decision's code reads as a reason, as the message's own page says it.
        ("no_consent", "needs the customer's opt-in"),
        ("frequency_cap_channel", "the business's limit of marketing on this channel was reached"),
        ("some_new_code", "some new code"),
        # Refused at once (several recipients refused), as the SMTP sender now stores it.
        (
            "smtp 550: 5.1.1 <upload3@example.de>: Recipient address rejected: User unknown",
            "Recipient address rejected: User unknown (5.1.1)",
        ),
        ("Unreachable destination handset", "Unreachable destination handset"),
        ("5.1.1", "5.1.1"),  # a code alone has no words to put first
        # Refused at once by the server, as our sending stores it, with the address: one reason with the rest.
        (
            "550: smtp 550: 5.1.1 <anna@example.com>: Recipient address rejected: User unknown",
            "Recipient address rejected: User unknown (5.1.1)",
        ),
        (
            "550-5.1.1 The email account that you tried to reach does not exist. Please try 550-5.1.1 "
            "double-checking the address 550 5.1.1 https://support.google.com/mail/?p=NoSuchUser d2si1234 - gsmtp",
            "The email account that you tried to reach does not exist. Please try double-checking the address "
            "https://support.google.com/mail/?p=NoSuchUser (5.1.1)",
        ),
    ],
)
def test_a_mail_servers_reason_reads_words_first(reason: str, words: str) -> None:
    assert failure_words(reason) == words
