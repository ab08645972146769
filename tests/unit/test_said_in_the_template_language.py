"""A message never mixes two languages: values that depend on the language (a service's name, a time) are read
in the language of the template chosen, which can differ from the patient's when a channel has no template in
it (an English WhatsApp template for a German patient)."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.consent.model import ConsentPolicy
from domain.messages.model import Recipient, StoredTemplate
from domain.messages.send_decision import OutboxPlanner
from domain.templates.model import MessageTemplate
from domain.templates.selection import BY_LANGUAGE, said_in
from domain.video.booking import said_by_language
from domain.video.reminders import ReminderCandidate, ReminderStep, reminder_payload
from domain.vocabulary import Channel, MessageCategory, MessageSource

STARTS = datetime(2026, 12, 10, 9, 30, tzinfo=UTC)  # Thu 10:30 in Berlin
GERMAN = {"de": "Hautsprechstunde per Video"}
BODIES = {
    "de": "Hallo {{ first_name }}, Ihr Termin ({{ service }}) am {{ appointment_time }}.",
    "en": "Hi {{ first_name }}, your {{ service }} on {{ appointment_time }}.",
}


def template(channel: Channel, locale: str) -> MessageTemplate:
    approved = channel is Channel.WHATSAPP
    return MessageTemplate(
        name="video_booked",
        channel=channel,
        locale=locale,
        body=BODIES[locale[:2]],
        category=MessageCategory.TRANSACTIONAL,
        variables=("first_name", "service", "appointment_time"),
        whatsapp_name="video_booked" if approved else None,
        whatsapp_params=("first_name", "service", "appointment_time") if approved else (),
    )


def test_a_template_reads_its_own_languages_values_else_the_fallback_ones() -> None:
    values = {
        "service": "Hautsprechstunde",
        BY_LANGUAGE: {"de": {"service": "Hautsprechstunde"}, "*": {"service": "Skin"}},
    }
    assert said_in(values, "de-AT") == {"service": "Hautsprechstunde"}
    assert said_in(values, "en") == {"service": "Skin"}
    assert said_in(values, "fr_FR") == {"service": "Skin"}
    assert said_in({"service": "x"}, "en") == {"service": "x"}, "without a table the values stand"
    assert said_in({BY_LANGUAGE: "not a table", "a": 1}, "de") == {"a": 1}


def test_the_table_names_the_service_and_time_in_each_language_and_the_staff_name_otherwise() -> None:
    table = said_by_language("Video skin consultation", GERMAN, STARTS, "Europe/Berlin", "fr-FR")
    assert table["de"] == {
        "service": "Hautsprechstunde per Video",
        "appointment_time": "Do., 10. Dez., 10:30 Uhr MEZ",
    }
    assert table["fr"]["service"] == "Video skin consultation", "no French name: the staff name"
    assert table["*"] == {"service": "Video skin consultation", "appointment_time": "Thu 10 Dec 10:30 CET"}
    english = said_by_language("Hautsprechstunde", {"en": "Skin consultation"}, STARTS, "Europe/Berlin", "fr")
    assert english["*"]["service"] == "Skin consultation", "a German business's English name reads in English"
    moved = said_by_language("X", None, STARTS, "Europe/Berlin", "de", previous=STARTS.replace(hour=8))
    assert (moved["de"]["previous_time"], moved["*"]["previous_time"]) == (
        "Do., 10. Dez., 09:30 Uhr MEZ",
        "Thu 10 Dec 09:30 CET",
    )
    unnamed = said_by_language(None, None, STARTS, "Europe/Berlin", "de")
    assert (unnamed["de"]["service"], unnamed["*"]["service"]) == ("Videosprechstunde", "video consultation")


def test_a_german_patient_reads_german_by_sms_and_english_through_an_english_only_whatsapp_template() -> None:
    candidate = ReminderCandidate(
        consultation_id=7,
        version=1,
        customer_id=3,
        scheduled_at=STARTS,
        booked_at=datetime(2026, 12, 1, tzinfo=UTC),
        reminder_minutes=(1440,),
        link_token="tok",
        service="Video skin consultation",
        clinician="Dr Mara Weiss",
        customer_timezone="Europe/Berlin",
        customer_locale="de-DE",
        service_names=GERMAN,
    )
    payload = reminder_payload(candidate, ReminderStep(1440, True), "https://clinic.example")
    assert payload["service"] == "Hautsprechstunde per Video"
    planner = OutboxPlanner(
        source=MessageSource.NOTIFICATION,
        source_ref="1:1",
        category=MessageCategory.TRANSACTIONAL,
        templates=(
            StoredTemplate(1, template(Channel.SMS, "de")),
            StoredTemplate(2, template(Channel.SMS, "en")),
            StoredTemplate(3, template(Channel.WHATSAPP, "en")),
        ),
        variables=payload,
        policy=ConsentPolicy(),
    )
    klara = Recipient(
        customer_id=3,
        name="Klara Wolf",
        locale="de-DE",
        timezone="Europe/Berlin",
        addresses={Channel.SMS: "+4915112345678", Channel.WHATSAPP: "+4915112345678"},
    )
    now = datetime(2026, 12, 9, 9, 0, tzinfo=UTC)
    by_sms = planner.plan(klara, (Channel.SMS,), now)
    by_whatsapp = planner.plan(klara, (Channel.WHATSAPP,), now)
    assert (
        by_sms.body == "Hallo Klara, Ihr Termin (Hautsprechstunde per Video) am Do., 10. Dez., 10:30 Uhr MEZ."
    )
    assert by_whatsapp.status_reason is None, by_whatsapp.payload
    assert by_whatsapp.body == "Hi Klara, your Video skin consultation on Thu 10 Dec 10:30 CET."
    [body] = by_whatsapp.payload["whatsapp_template"]["components"]  # type: ignore[index]
    assert [p["text"] for p in body["parameters"]] == [
        "Klara",
        "Video skin consultation",
        "Thu 10 Dec 10:30 CET",
    ]


def test_values_per_language_are_refused_unless_keyed_by_a_language_code_beside_a_plain_value() -> None:
    import pytest

    from domain.messages.send_decision import check_variables
    from domain.templates.model import TemplateError
    from domain.templates.validation import validate_template

    check_variables({"offer": "20% off", BY_LANGUAGE: {"de": {"offer": "20 % Rabatt"}, "*": {"offer": "x"}}})
    for table, words in (
        (
            {"DE": {"offer": "y"}},
            "“DE” in by_language is not a language: write its code in small letters \\(de\\)",
        ),
        ({"de-DE": {"offer": "y"}}, "write its code in small letters \\(de\\)"),
        ({"de": {"note": "y"}}, "note is given for “de” only: give note for the other languages too"),
        ({"de": {"unsubscribe_url": "y"}}, "is given for “de” only"),
        ({"de": "y"}, "by_language gives values per language"),
    ):
        with pytest.raises(TemplateError, match=words):
            check_variables({"offer": "x", BY_LANGUAGE: table})
    with pytest.raises(TemplateError, match="filled in by Switchboard"):
        check_variables({"offer": "x", "unsubscribe_url": "u", BY_LANGUAGE: {"de": {"unsubscribe_url": "y"}}})
    with pytest.raises(TemplateError, match="the name Switchboard gives values per language"):
        validate_template(
            MessageTemplate(
                name="t",
                channel=Channel.SMS,
                locale="en",
                body="{{ by_language }}",
                category=MessageCategory.MARKETING,
                variables=("by_language",),
            )
        )
