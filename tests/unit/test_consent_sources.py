"""Every consent source the product writes reads as words on the customer page and in the bot."""

from __future__ import annotations

from domain.consent.sources import SOURCE_WORDS, source_words
from domain.conversations.model import KEYWORD_SOURCE
from storage.seeding import people


def test_every_source_written_has_words() -> None:
    written = {
        *KEYWORD_SOURCE.values(),
        "keyword",  # a keyword on a channel without its own source
        "email_unsubscribe",
        "sms_unsubscribe",
        "whatsapp_unsubscribe",
        "telegram_unsubscribe",  # api/unsubscribe.py: the one-click link per channel
        "erasure",
        "import",
        "api",
        *(source for source, _share in people._OPT_IN_SOURCES),
        *(source for _share, source, _detail in people._OPT_OUTS.values()),
        "whatsapp_optin",
        "telegram_start",
    }
    assert sorted(written - SOURCE_WORDS.keys()) == []
    assert source_words("sms_keyword") == "replied with a keyword"
    assert source_words("partner_portal") == "partner portal"  # an import's own source, readable
