"""A first contact saved as "SMS contact …4321" is greeted as someone whose name we do not know, not as "Hi SMS,":
what was written around the name reads as if written for them, and an approved WhatsApp template (which
refuses an empty parameter) reads a word that greets anyone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.consent.model import ConsentPolicy
from domain.messages.model import Recipient, StoredTemplate
from domain.messages.send_decision import OutboxPlanner
from domain.templates.model import MessageTemplate
from domain.templates.nameless import NAMELESS
from domain.templates.rendering import render_html, render_text
from domain.vocabulary import Channel, MessageCategory, MessageSource

NOW = datetime(2026, 12, 9, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("Hi {{ first_name }}, a reminder of your visit.", "Hi, a reminder of your visit."),
        ("Hallo {{ first_name }}, wir erinnern an Ihren Termin.", "Hallo, wir erinnern an Ihren Termin."),
        ("Thanks {{ first_name }}! We received order 12.", "Thanks! We received order 12."),
        ("Good news {{ first_name }}: order 12 has shipped.", "Good news: order 12 has shipped."),
        ("Thank you, {{ first_name }}.", "Thank you."),
        ("{{ first_name }}, 20% off with code WINTER.", "20% off with code WINTER."),
        ("🌸 {{ first_name }}, der Frühling ist da.", "🌸 Der Frühling ist da."),
        ("Dear {{ name }},\n\n{{ first_name }}, see you soon.", "Dear,\n\nSee you soon."),
        ("Hello {{ first_name | upper }}", "Hello"),
        # The author's own words for someone without a name: the name is false, as an empty one would be.
        ("Hi {{ first_name or 'there' }},", "Hi there,"),
        ("{% if first_name %}Hi {{ first_name }}{% else %}Good morning{% endif %}!", "Good morning!"),
    ],
)
def test_what_was_written_around_a_name_reads_as_if_written_for_someone_without_one(
    written: str, read: str
) -> None:
    assert render_text(written, {"first_name": NAMELESS, "name": NAMELESS}) == read


def test_html_reads_the_same_and_a_real_name_is_left_alone() -> None:
    html = "<p>Hi {{ first_name }},</p><p>{{ first_name }}, welcome.</p>"
    assert render_html(html, {"first_name": NAMELESS}) == "<p>Hi,</p><p>Welcome.</p>"
    for written, read in (
        ("<p>Hi <b>{{ first_name }}</b>, welcome</p>", "<p>Hi, welcome</p>"),
        ("<p>Hi&nbsp;{{ first_name }}, thanks</p>", "<p>Hi, thanks</p>"),
        ("<p>Dear {{ first_name }} {{ name }}, hi</p>", "<p>Dear, hi</p>"),
        ("<p>Hi {{ first_name }}</p>", "<p>Hi</p>"),
        (
            '<a href="https://x.example/?n={{ first_name|urlencode }}&amp;a=1">x</a>',
            '<a href="https://x.example/?n=&amp;a=1">x</a>',
        ),
    ):
        assert render_html(written, {"first_name": NAMELESS, "name": NAMELESS}) == read, written
    assert render_text("{{ first_name|tojson }} 👋 {{ first_name }}", {"first_name": NAMELESS}) == '"" 👋'
    assert render_text("Hi {{ first_name }}, x", {"first_name": "Ana"}) == "Hi Ana, x"


def _planner(*templates: MessageTemplate) -> OutboxPlanner:
    return OutboxPlanner(
        source=MessageSource.NOTIFICATION,
        source_ref="1:1",
        category=MessageCategory.TRANSACTIONAL,
        templates=tuple(StoredTemplate(i, t) for i, t in enumerate(templates, start=1)),
        variables={"clinic": "Berlin Mitte"},
        policy=ConsentPolicy(),
    )


def _template(
    channel: Channel, locale: str, body: str, params: tuple[str, ...] = ("first_name", "clinic")
) -> MessageTemplate:
    approved = channel is Channel.WHATSAPP
    return MessageTemplate(
        name="welcome",
        channel=channel,
        locale=locale,
        body=body,
        category=MessageCategory.TRANSACTIONAL,
        variables=("first_name", "clinic"),
        whatsapp_name="welcome" if approved else None,
        whatsapp_params=params if approved else (),
    )


def _person(name: str, locale: str = "en", customer_id: int = 3) -> Recipient:
    phone = f"+44791112{customer_id:04d}"
    return Recipient(
        customer_id=customer_id,
        name=name,
        locale=locale,
        timezone="Europe/London",
        addresses={Channel.SMS: phone, Channel.WHATSAPP: phone},
    )


def test_a_first_contact_is_not_greeted_by_the_words_made_up_for_their_name() -> None:
    planner = _planner(_template(Channel.SMS, "en", "Hi {{ first_name }}, welcome to {{ clinic }}."))
    assert (
        planner.plan(_person("SMS contact …4321"), (Channel.SMS,), NOW).body == "Hi, welcome to Berlin Mitte."
    )
    # Someone whose first name happens to be the same word is greeted by it: the render cache keeps them apart.
    assert (
        planner.plan(_person("SMS Okafor", customer_id=4), (Channel.SMS,), NOW).body
        == "Hi SMS, welcome to Berlin Mitte."
    )
    assert planner.plan(_person("New Email contact", customer_id=5), (Channel.SMS,), NOW).body == (
        "Hi, welcome to Berlin Mitte."
    )


@pytest.mark.parametrize(
    ("locale", "body", "read"),
    [
        ("en", "Hi {{ first_name }}, welcome to {{ clinic }}.", "Hi there, welcome to Berlin Mitte."),
        (
            "de",
            "Hallo {{ first_name }}, willkommen in {{ clinic }}.",
            "Hallo zusammen, willkommen in Berlin Mitte.",
        ),
    ],
)
def test_an_approved_whatsapp_template_reads_a_word_that_greets_anyone(
    locale: str, body: str, read: str
) -> None:
    planner = _planner(_template(Channel.WHATSAPP, locale, body))
    planned = planner.plan(_person("WhatsApp contact …4321", locale), (Channel.WHATSAPP,), NOW)
    assert planned.status_reason is None, planned.payload
    assert planned.body == read, "the body kept is what Meta fills in"
    [component] = planned.payload["whatsapp_template"]["components"]  # type: ignore[index]
    assert component["parameters"][0]["text"] == read.split(",")[0].split(" ", 1)[1]


def test_a_whatsapp_template_in_a_language_without_a_greeting_word_fails_in_words() -> None:
    planner = _planner(_template(Channel.WHATSAPP, "fr", "Bonjour {{ first_name }}, bienvenue."))
    planned = planner.plan(_person("WhatsApp contact …4321", "fr"), (Channel.WHATSAPP,), NOW)
    assert planned.status_reason is not None
    assert "no greeting word for “fr”" in str(planned.payload)


def test_a_whatsapp_template_that_does_not_greet_by_name_goes_in_any_language() -> None:
    answered = _template(
        Channel.WHATSAPP, "fr", "Bonjour {{ first_name }}, {{ clinic }} vous a répondu.", ("clinic",)
    )
    planned = _planner(answered).plan(_person("WhatsApp contact …4321", "fr"), (Channel.WHATSAPP,), NOW)
    assert planned.status_reason is None, planned.payload
    assert planned.body == "Bonjour, Berlin Mitte vous a répondu."
