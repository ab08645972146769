"""Where a consent statement came from (the ledger's `source`), as staff read it on the dashboard and in the bot."""

from __future__ import annotations

from domain.conversations.model import KEYWORD_SOURCE
from domain.vocabulary import OUTBOUND_CHANNELS

#: How a customer told staff what they want, as the dashboard records it.
TOLD_US = {"front_desk": "in person", "phone_call": "on the phone", "in_writing": "in writing"}

#: Every source the product writes, in words. A keyword's own word (STOP, START) is in the statement's note.
SOURCE_WORDS = {
    **TOLD_US,
    **{source: "replied with a keyword" for source in KEYWORD_SOURCE.values()},
    "keyword": "replied with a keyword",
    **{f"{channel.value}_unsubscribe": "unsubscribe link" for channel in OUTBOUND_CHANNELS},
    "web_form": "web form",
    "checkout": "at checkout",
    "in_clinic": "in the clinic",
    "import": "customer list import",
    "api": "through the API",
    "whatsapp_optin": "WhatsApp opt-in",
    "whatsapp_block": "blocked us on WhatsApp",
    "telegram_start": "started the Telegram bot",
    "telegram_block": "blocked the Telegram bot",
    "erasure": "erased at their request",
}


#: How the ledger's note of a statement a customer list brought in begins ("imported from clinic.csv, line 7"):
#: such a statement is a record of what the customer said elsewhere, before, so it is no opt-out (or opt-in)
#: counted in the analytics, whatever the file gave as its source.
IMPORTED_FROM = "imported from "


def source_words(source: str) -> str:
    """A source in words; one the product does not write itself (an import's own) with spaces for underscores."""
    return SOURCE_WORDS.get(source, source.replace("_", " "))
