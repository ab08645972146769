"""Inbound opt-out, opt-in and help keywords, and the replies that confirm them."""

from __future__ import annotations

import pytest

from domain.consent.keywords import KeywordAction, interpret_keyword, keyword_language, keyword_reply
from domain.vocabulary import Channel

OPT_OUT = KeywordAction.OPT_OUT
OPT_IN = KeywordAction.OPT_IN
HELP = KeywordAction.HELP


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("STOP", OPT_OUT),
        ("stop", OPT_OUT),
        ("  Stop  ", OPT_OUT),
        ("STOP!", OPT_OUT),
        ("stop.", OPT_OUT),
        ("Stop!!!", OPT_OUT),
        ("STOPALL", OPT_OUT),
        ("Unsubscribe", OPT_OUT),
        ("cancel", OPT_OUT),
        ("END", OPT_OUT),
        ("quit?", OPT_OUT),
        ("ＳＴＯＰ", OPT_OUT),
        ("\nSTOP\n", OPT_OUT),
        ("START", OPT_IN),
        ("yes", OPT_IN),
        ("Yes!", OPT_IN),
        ("unstop", OPT_IN),
        ("HELP", HELP),
        ("info", HELP),
        ("help?", HELP),
        ("/stop", OPT_OUT),
        ("/STOP", OPT_OUT),
        ("/start", OPT_IN),
        ("/start promo-42", OPT_IN),
        ("/stop@SwitchboardBot", OPT_OUT),
        ("/help", HELP),
        # Not keywords: more than one word, words inside sentences, near misses, other commands.
        ("please stop", None),
        ("STOP sending me these", None),
        ("stop it", None),
        ("don't stop", None),
        ("STOPP", OPT_OUT),  # German, as is "Abmelden"
        ("S T O P", None),
        ("ST0P", None),
        ("stop123", None),
        ("yes please", None),
        ("/orders", None),
        ("/", None),
        ("", None),
        ("   ", None),
        ("!", None),
        ("...", None),
        ("STOP 🙏", None),
    ],
)
def test_keyword_table(text: str, action: KeywordAction | None) -> None:
    assert interpret_keyword(text) is action


def test_opt_out_reply_is_the_carrier_wording() -> None:
    assert keyword_reply(OPT_OUT, "Acme Spa") == (
        "Acme Spa: You have successfully been unsubscribed. You will not receive any more messages from "
        "this number. Reply START to resubscribe."
    )


def test_opt_in_reply() -> None:
    assert keyword_reply(OPT_IN, "Acme Spa") == (
        "Acme Spa: You have successfully been re-subscribed to messages from this number. "
        "Reply HELP for help. Reply STOP to unsubscribe. Msg&Data Rates May Apply."
    )


def test_help_reply() -> None:
    assert keyword_reply(HELP, "Acme Spa") == (
        "Acme Spa: Reply STOP to unsubscribe. Reply START to resubscribe. Msg&Data Rates May Apply."
    )


def test_telegram_replies_speak_in_commands() -> None:
    reply = keyword_reply(OPT_OUT, "Acme Spa", Channel.TELEGRAM)
    assert "Send /start to resubscribe." in reply
    assert "this bot" in reply
    assert "Rates" not in keyword_reply(HELP, "Acme Spa", Channel.TELEGRAM)


def test_whatsapp_replies_carry_no_carrier_rates_notice() -> None:
    assert "Rates" not in keyword_reply(OPT_IN, "Acme Spa", Channel.WHATSAPP)


@pytest.mark.parametrize("text", ["STOPP", "stopp", "Abmelden", "abbestellen."])
def test_a_german_opt_out_is_an_opt_out_confirmed_in_german(text: str) -> None:
    """A German patient's "STOPP" opened a conversation for an agent and they got the campaign anyway."""
    assert interpret_keyword(text) is OPT_OUT and keyword_language(text) == "de"
    reply = keyword_reply(OPT_OUT, "Northwind Clinics", Channel.SMS, language=keyword_language(text))
    assert reply == (
        "Northwind Clinics: Sie wurden abgemeldet und erhalten keine Nachrichten mehr von dieser Nummer. "
        "Antworten Sie START, um sich wieder anzumelden."
    )
    assert keyword_language("STOP") == "en" and interpret_keyword("Hilfe") is None  # a person may be needed


def test_stop_from_a_german_reader_is_confirmed_in_german() -> None:
    """A German SMS says "Abmelden mit STOP"; a German patient who did as told got Twilio's English default."""
    from domain.conversations.newcomers import sender_language

    german_number = sender_language(Channel.SMS, "+41790123456", None, "en")
    assert german_number == "de"
    assert keyword_language("STOP", german_number) == "de"
    assert keyword_reply(
        OPT_OUT, "Northwind", Channel.SMS, language=keyword_language("Stop", "de")
    ).startswith("Northwind: Sie wurden abgemeldet")
    assert keyword_language("/start", sender_language(Channel.TELEGRAM, "4242", "de-DE", "en")) == "de"
    assert keyword_language("HELP", "de") == "de", "HELP is read as INFO is"
    # An English word stays English; an English reader's STOP too.
    assert keyword_language("UNSUBSCRIBE", "de") == "en"
    assert keyword_language("STOP", sender_language(Channel.SMS, "+447400123456", None, "de")) == "en"
