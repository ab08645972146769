"""Inbound opt-out, opt-in and help keywords, and the carrier-style replies that confirm them."""

from __future__ import annotations

import unicodedata
from enum import StrEnum

from domain.vocabulary import Channel


class KeywordAction(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


#: The carrier keywords (Twilio's defaults); each must be the whole message.
KEYWORDS: dict[str, KeywordAction] = {
    "STOP": KeywordAction.OPT_OUT,
    "STOPALL": KeywordAction.OPT_OUT,
    "UNSUBSCRIBE": KeywordAction.OPT_OUT,
    "CANCEL": KeywordAction.OPT_OUT,
    "END": KeywordAction.OPT_OUT,
    "QUIT": KeywordAction.OPT_OUT,
    "START": KeywordAction.OPT_IN,
    "YES": KeywordAction.OPT_IN,
    "UNSTOP": KeywordAction.OPT_IN,
    "HELP": KeywordAction.HELP,
    "INFO": KeywordAction.HELP,
    # German opt-outs, as patients of a German-speaking business write them, confirmed in German. Not
    # "Hilfe": a patient writing it may need a person, so it reaches an agent as any message does.
    "STOPP": KeywordAction.OPT_OUT,
    "ABMELDEN": KeywordAction.OPT_OUT,
    "ABBESTELLEN": KeywordAction.OPT_OUT,
}
#: The keywords that are German words: their confirmation is in German (every other one in English, as the
#: carriers' own are).
GERMAN_KEYWORDS = frozenset({"STOPP", "ABMELDEN", "ABBESTELLEN"})

#: Telegram bot commands with the same meaning.
TELEGRAM_COMMANDS: dict[str, KeywordAction] = {
    "/stop": KeywordAction.OPT_OUT,
    "/start": KeywordAction.OPT_IN,
    "/help": KeywordAction.HELP,
}


def interpret_keyword(text: str) -> KeywordAction | None:
    """The action a one-word inbound message asks for, or None when it is an ordinary message."""
    # NFKC folds full-width letters that some phone keyboards produce ("ＳＴＯＰ") into plain ones.
    words = unicodedata.normalize("NFKC", text).split()
    if not words:
        return None
    if words[0].startswith("/"):
        # "/start@OurBot" in groups, and "/start <payload>" from deep links, are still the command.
        return TELEGRAM_COMMANDS.get(words[0].split("@", 1)[0].casefold())
    if len(words) != 1:
        return None
    return KEYWORDS.get(_without_trailing_punctuation(words[0]).upper())


#: Keywords German speakers use as they are (a German SMS says "Abmelden mit STOP"; Telegram's buttons send
#: /start and /stop): their confirmation is in the sender's language.
NEUTRAL_KEYWORDS = frozenset({"STOP", "START", "INFO", "HELP", "/STOP", "/START", "/HELP"})


def keyword_language(text: str, sender_language: str = "en") -> str:
    """ "de" for a German keyword ("STOPP", "Abmelden"), and for one German speakers use too ("STOP") from a
    sender who reads German (`sender_language`); else "en"."""
    words = unicodedata.normalize("NFKC", text).split()
    if not words:
        return "en"
    first = words[0].split("@", 1)[0] if words[0].startswith("/") else _without_trailing_punctuation(words[0])
    word = first.upper()
    if len(words) == 1 and word in GERMAN_KEYWORDS:
        return "de"
    if word in NEUTRAL_KEYWORDS and sender_language == "de":
        return "de"
    return "en"


def keyword_reply(
    action: KeywordAction,
    business_name: str,
    channel: Channel = Channel.SMS,
    *,
    first_contact: bool = False,
    language: str = "en",
) -> str:
    """The confirmation sent back for ``action``, named for the business, in the channel's own words;
    `first_contact`: the sender was not known before (Telegram's Start button, a first START), so an opt-in
    is a welcome, not a re-subscription; `language` "de" answers a German keyword in German."""
    if language == "de":
        return f"{business_name}: {_german_reply(action, channel, first_contact=first_contact)}"
    telegram = channel is Channel.TELEGRAM
    start, stop, help_word = ("/start", "/stop", "/help") if telegram else ("START", "STOP", "HELP")
    verb = "Send" if telegram else "Reply"
    sender = "this bot" if telegram else "this number"
    if action is KeywordAction.OPT_OUT:
        text = (
            "You have successfully been unsubscribed. You will not receive any more messages from "
            f"{sender}. {verb} {start} to resubscribe."
        )
    elif action is KeywordAction.OPT_IN and first_contact:
        text = (
            f"Welcome! Write here any time and our team will answer. {verb} {help_word} for help. "
            f"{verb} {stop} to unsubscribe."
        )
    elif action is KeywordAction.OPT_IN:
        text = (
            f"You have successfully been re-subscribed to messages from {sender}. "
            f"{verb} {help_word} for help. {verb} {stop} to unsubscribe."
        )
    else:
        text = f"{verb} {stop} to unsubscribe. {verb} {start} to resubscribe."
    if channel is Channel.SMS and action is not KeywordAction.OPT_OUT:
        text += " Msg&Data Rates May Apply."
    return f"{business_name}: {text}"


def _german_reply(action: KeywordAction, channel: Channel, *, first_contact: bool) -> str:
    telegram = channel is Channel.TELEGRAM
    start, stop, help_word = ("/start", "/stop", "/help") if telegram else ("START", "STOPP", "HILFE")
    verb = "Senden Sie" if telegram else "Antworten Sie"
    sender = "diesem Bot" if telegram else "dieser Nummer"
    if action is KeywordAction.OPT_OUT:
        return (
            f"Sie wurden abgemeldet und erhalten keine Nachrichten mehr von {sender}. {verb} {start}, um "
            "sich wieder anzumelden."
        )
    if action is KeywordAction.OPT_IN and first_contact:
        return (
            f"Willkommen! Schreiben Sie uns hier jederzeit, unser Team antwortet. {verb} {help_word} für "
            f"Hilfe oder {stop} zum Abmelden."
        )
    if action is KeywordAction.OPT_IN:
        return (
            f"Sie erhalten wieder Nachrichten von {sender}. {verb} {help_word} für Hilfe oder {stop} zum "
            "Abmelden."
        )
    return f"{verb} {stop} zum Abmelden oder {start}, um sich wieder anzumelden."


def _without_trailing_punctuation(word: str) -> str:
    end = len(word)
    while end > 0 and unicodedata.category(word[end - 1]).startswith("P"):
        end -= 1
    return word[:end]
