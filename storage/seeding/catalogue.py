"""The fixed Northwind Clinics set-up: clinics, staff, services, channels, templates and notification rules."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from domain.services import service_name_in
from domain.video.reminders import RULE_OFFSET_MINUTES
from domain.vocabulary import Channel, MessageCategory, Provider, Role

Row = dict[str, Any]


@dataclass(frozen=True)
class Clinic:
    id: int
    code: str
    name: str
    country: str
    timezone: str


CLINICS: tuple[Clinic, ...] = (
    Clinic(1, "BER", "Northwind Berlin Mitte", "DE", "Europe/Berlin"),
    Clinic(2, "MUC", "Northwind München Schwabing", "DE", "Europe/Berlin"),
    Clinic(3, "VIE", "Northwind Wien Innere Stadt", "AT", "Europe/Vienna"),
    Clinic(4, "ZRH", "Northwind Zürich Seefeld", "CH", "Europe/Zurich"),
    Clinic(5, "LON", "Northwind London Marylebone", "GB", "Europe/London"),
    Clinic(6, "NYC", "Northwind New York SoHo", "US", "America/New_York"),
)

#: Our sender identity per channel (fictional numbers and domains).
BUSINESS_ADDRESS: dict[str, str] = {
    Channel.SMS: "+4915199990000",
    Channel.EMAIL: "care@northwind.example",
    Channel.WHATSAPP: "4915199990001",
    Channel.TELEGRAM: "@NorthwindClinicsBot",
    Channel.CHAT: "web-chat",
    Channel.VIDEO: "video",
}


@dataclass(frozen=True)
class ServiceOffer:
    id: int
    code: str
    name: str
    kind: str
    duration_minutes: int
    price_minor: int
    #: The name German-speaking patients read.
    german: str

    def name_for(self, locale: str) -> str:
        return service_name_in(self.name, {"de": self.german}, locale)


SERVICES: tuple[ServiceOffer, ...] = (
    ServiceOffer(
        1, "SKIN-CONSULT", "Initial skin consultation", "in_person", 45, 9500, "Hautärztliche Erstberatung"
    ),
    ServiceOffer(2, "SKIN-FOLLOWUP", "Follow-up consultation", "in_person", 30, 6000, "Folgetermin"),
    ServiceOffer(
        3, "LASER-TREAT", "Laser skin treatment", "in_person", 60, 16900, "Laserbehandlung der Haut"
    ),
    ServiceOffer(4, "NUTRI-ASSESS", "Nutrition assessment", "in_person", 45, 8500, "Ernährungsberatung"),
    ServiceOffer(5, "SKIN-VIDEO", "Video skin consultation", "video", 30, 6900, "Hautsprechstunde per Video"),
    ServiceOffer(
        6, "NUTRI-VIDEO", "Video nutrition check-in", "video", 20, 4500, "Ernährungs-Check-in per Video"
    ),
    ServiceOffer(7, "FOLLOWUP-VIDEO", "Video follow-up", "video", 15, 3500, "Folgetermin per Video"),
)
IN_PERSON_SERVICES = tuple(s for s in SERVICES if s.kind == "in_person")
VIDEO_SERVICES = tuple(s for s in SERVICES if s.kind == "video")

#: Online product lines (price range in EUR cents); the services table only allows bookable kinds.
PRODUCT_LINES: tuple[tuple[str, int, int, float], ...] = (
    ("supplements", 1900, 5900, 0.5),
    ("skincare", 2500, 12000, 0.38),
    ("devices", 8900, 39900, 0.12),
)

#: channel, provider, display name, messages per second, unit cost (USD micros), settings.
CHANNELS: tuple[tuple[str, str, str, float, int, dict[str, Any]], ...] = (
    ("sms", Provider.TWILIO, "SMS (Twilio)", 30.0, 75000, {"sender": BUSINESS_ADDRESS["sms"]}),
    ("email", Provider.SMTP, "Email", 50.0, 100, {"from_address": BUSINESS_ADDRESS["email"]}),
    ("whatsapp", Provider.WHATSAPP_CLOUD, "WhatsApp", 80.0, 45000, {"phone_number": "+4915199990001"}),
    ("telegram", Provider.TELEGRAM, "Telegram", 30.0, 0, {"bot_username": "NorthwindClinicsBot"}),
    ("chat", Provider.INTERNAL, "Web chat", 100.0, 0, {}),
    (
        "video",
        Provider.INTERNAL,
        "Video consultations",
        5.0,
        0,
        {"room_base_url": "https://video.northwind.example"},
    ),
)
CHANNEL_IDS = {name: index + 1 for index, (name, *_rest) in enumerate(CHANNELS)}
PROVIDER_OF = {name: str(provider) for name, provider, *_rest in CHANNELS}

MESSAGING_CHANNELS = ("sms", "email", "whatsapp", "telegram")


@dataclass(frozen=True)
class TemplateText:
    """One template in both languages: (subject, body) per locale, with Jinja placeholders."""

    name: str
    category: str
    channels: tuple[str, ...]
    en: tuple[str, str]
    de: tuple[str, str]


T = MessageCategory.TRANSACTIONAL.value
M = MessageCategory.MARKETING.value

TEMPLATE_TEXTS: tuple[TemplateText, ...] = (
    TemplateText(
        "appointment_reminder", T, MESSAGING_CHANNELS,
        ("Your appointment tomorrow", "Hi {{ first_name }}, a reminder of your {{ service }} at {{ clinic }} on {{ appointment_time }}. Reply here if you need to change it."),
        ("Ihr Termin morgen", "Hallo {{ first_name }}, wir erinnern an Ihren Termin ({{ service }}) in {{ clinic }} am {{ appointment_time }}. Antworten Sie hier, wenn Sie ihn ändern möchten."),
    ),
    TemplateText(
        "appointment_booked", T, MESSAGING_CHANNELS,
        ("Your booking is confirmed", "Hi {{ first_name }}, your {{ service }} at {{ clinic }} is booked for {{ appointment_time }}."),
        ("Ihre Buchung ist bestätigt", "Hallo {{ first_name }}, Ihr Termin ({{ service }}) in {{ clinic }} ist für {{ appointment_time }} gebucht."),
    ),
    TemplateText(
        "order_confirmation", T, MESSAGING_CHANNELS,
        ("Thank you for your order {{ order_number }}", "Thanks {{ first_name }}! We received order {{ order_number }} ({{ amount }})."),
        ("Danke für Ihre Bestellung {{ order_number }}", "Danke {{ first_name }}! Ihre Bestellung {{ order_number }} ({{ amount }}) ist eingegangen."),
    ),
    TemplateText(
        "order_shipped", T, MESSAGING_CHANNELS,
        ("Order {{ order_number }} is on its way", "Good news {{ first_name }}: order {{ order_number }} has shipped. Track it: {{ tracking_url }}"),
        ("Bestellung {{ order_number }} ist unterwegs", "Gute Nachricht {{ first_name }}: Bestellung {{ order_number }} wurde versandt. Sendungsverfolgung: {{ tracking_url }}"),
    ),
    TemplateText(
        "payment_failed", T, MESSAGING_CHANNELS,
        ("Payment for {{ order_number }} did not go through", "Hi {{ first_name }}, the payment for order {{ order_number }} failed. Please update your card: {{ payment_url }}"),
        ("Zahlung für {{ order_number }} fehlgeschlagen", "Hallo {{ first_name }}, die Zahlung für Bestellung {{ order_number }} ist fehlgeschlagen. Bitte Karte aktualisieren: {{ payment_url }}"),
    ),
    TemplateText(
        "welcome", T, MESSAGING_CHANNELS,
        ("Welcome to Northwind Clinics", "Welcome {{ first_name }}! Your home clinic is {{ clinic }}. Book online or reply here any time."),
        ("Willkommen bei Northwind Clinics", "Willkommen {{ first_name }}! Ihre Klinik ist {{ clinic }}. Buchen Sie online oder antworten Sie hier."),
    ),
    TemplateText(
        "csat_survey", T, MESSAGING_CHANNELS,
        ("How was your visit?", "Hi {{ first_name }}, how was your visit at {{ clinic }}? Reply with a score from 1 to 5."),
        ("Wie war Ihr Besuch?", "Hallo {{ first_name }}, wie war Ihr Besuch in {{ clinic }}? Antworten Sie mit einer Note von 1 bis 5."),
    ),
    TemplateText(
        "spring_promo", M, MESSAGING_CHANNELS,
        ("🌸 {{ offer }}", "🌸 {{ first_name }}, spring is here: {{ offer }} with code {{ code }}. Reply STOP to opt out."),
        ("🌸 {{ offer }}", "🌸 {{ first_name }}, der Frühling ist da: {{ offer }} mit Code {{ code }}. Abmelden mit STOP."),
    ),
    TemplateText(
        "seasonal_offer", M, MESSAGING_CHANNELS,
        ("{{ offer }}", "{{ first_name }}, {{ offer }} with code {{ code }} until Sunday. Reply STOP to opt out."),
        ("{{ offer }}", "{{ first_name }}, {{ offer }} mit Code {{ code }} bis Sonntag. Abmelden mit STOP."),
    ),
    TemplateText(
        "monthly_newsletter", M, ("email", "whatsapp", "telegram"),
        ("Northwind news: {{ headline }}", "Hi {{ first_name }}, this month: {{ headline }}. Read more: {{ link }}"),
        ("Northwind News: {{ headline }}", "Hallo {{ first_name }}, diesen Monat: {{ headline }}. Mehr: {{ link }}"),
    ),
    # CSAT: the survey a resolved conversation sends on WhatsApp once the customer's 24-hour window has
    # closed (inside it, plain text goes; domain/conversations/csat.py).
    TemplateText(
        "chat_csat_survey", T, ("whatsapp",),
        ("How did we do?", "Hi {{ first_name }}, thank you for talking with us. How did we do? Reply 1 (poor) to 5 (great)."),
        ("Wie war es?", "Hallo {{ first_name }}, danke für das Gespräch. Wie zufrieden waren Sie? Antworten Sie mit 1 (schlecht) bis 5 (sehr gut)."),
    ),
    # Live chat: an agent's reply missed WhatsApp's 24-hour window; this approved template asks the customer to
    # write back, which opens the window again (the button under the failure in the Slack thread sends it).
    TemplateText(
        "chat_follow_up", T, ("whatsapp",),
        ("We have answered you", "Hi {{ first_name }}, we have answered your message. Reply here to read our answer and carry on."),
        ("Wir haben geantwortet", "Hallo {{ first_name }}, wir haben auf Ihre Nachricht geantwortet. Antworten Sie hier, um unsere Antwort zu lesen."),
    ),
    # Video consultations (domain/video/booking.py): the patient is told of a booking, a new time and a
    # cancellation with the time in their own timezone and their link, on their preferred channel.
    TemplateText(
        "video_booked", T, MESSAGING_CHANNELS,
        ("Your video consultation is booked", "Hi {{ first_name }}, your {{ service }} with {{ clinician }} is booked for {{ appointment_time }}. Join here: {{ link }}"),
        ("Ihre Videosprechstunde ist gebucht", "Hallo {{ first_name }}, Ihr Termin ({{ service }}) mit {{ clinician }} ist für {{ appointment_time }} gebucht. Hier teilnehmen: {{ link }}"),
    ),
    TemplateText(
        "video_rescheduled", T, MESSAGING_CHANNELS,
        ("Your video consultation has moved", "Hi {{ first_name }}, your {{ service }} with {{ clinician }} has moved to {{ appointment_time }}. Your link stays the same: {{ link }}"),
        ("Ihre Videosprechstunde wurde verlegt", "Hallo {{ first_name }}, Ihr Termin ({{ service }}) mit {{ clinician }} ist jetzt am {{ appointment_time }}. Ihr Link bleibt gleich: {{ link }}"),
    ),
    TemplateText(
        "video_cancelled", T, MESSAGING_CHANNELS,
        ("Your video consultation is cancelled", "Hi {{ first_name }}, your {{ service }} with {{ clinician }} on {{ appointment_time }} is cancelled. Reply here to book a new time."),
        ("Ihre Videosprechstunde ist abgesagt", "Hallo {{ first_name }}, Ihr Termin ({{ service }}) mit {{ clinician }} am {{ appointment_time }} ist abgesagt. Antworten Sie hier für einen neuen Termin."),
    ),
    # Video reminders (domain/video/reminders.py), a day and two hours before by default: the link, and on the
    # channels that carry replies the "1"/"2" answers (domain/video/replies.py); email gets the link only.
    TemplateText(
        "video_reminder", T, ("sms", "whatsapp", "telegram"),
        ("Your video consultation", "Hi {{ first_name }}, a reminder of your {{ service }} with {{ clinician }} on {{ appointment_time }}. Join here: {{ link }} Reply 1 to confirm or 2 to choose another time."),
        ("Ihre Videosprechstunde", "Hallo {{ first_name }}, wir erinnern an Ihren Termin ({{ service }}) mit {{ clinician }} am {{ appointment_time }}. Hier teilnehmen: {{ link }} Antworten Sie 1 zum Bestätigen oder 2 für einen anderen Termin."),
    ),
    TemplateText(
        "video_reminder", T, ("email",),
        ("Your video consultation on {{ appointment_time }}", "Hi {{ first_name }}, a reminder of your {{ service }} with {{ clinician }} on {{ appointment_time }}. Join here: {{ link }} (the link opens 10 minutes before the start). Reply to this email if you need another time."),
        ("Ihre Videosprechstunde am {{ appointment_time }}", "Hallo {{ first_name }}, wir erinnern an Ihren Termin ({{ service }}) mit {{ clinician }} am {{ appointment_time }}. Hier teilnehmen: {{ link }} (der Link öffnet 10 Minuten vor Beginn). Antworten Sie auf diese E-Mail, wenn Sie einen anderen Termin brauchen."),
    ),
    # After a no-show or when staff offer new times (domain/video/rebooking.py): `options` lists them as
    # "A) ..., B) ...; reply A, B or C to book it" in the patient's language, or asks them to reply when there
    # are none.
    TemplateText(
        "video_rebook_offer", T, MESSAGING_CHANNELS,
        ("New times for your video consultation", "Hi {{ first_name }}, here are new times for your {{ service }} (booked for {{ appointment_time }}) with {{ clinician }}: {{ options }}"),
        ("Neue Termine für Ihre Videosprechstunde", "Hallo {{ first_name }}, hier sind neue Termine für Ihren Termin ({{ service }}, gebucht für {{ appointment_time }}) mit {{ clinician }}: {{ options }}"),
    ),
)  # fmt: skip

_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def template_variables(*texts: str) -> list[str]:
    """The variable names a template declares, in order of first use."""
    seen: list[str] = []
    for text in texts:
        for name in _PLACEHOLDER.findall(text):
            if name not in seen:
                seen.append(name)
    return seen


def as_format_string(jinja_text: str) -> str:
    """The same text for `str.format_map`: rendering millions of messages through Jinja is too slow."""
    parts: list[str] = []
    last = 0
    for match in _PLACEHOLDER.finditer(jinja_text):
        parts.append(jinja_text[last : match.start()].replace("{", "{{").replace("}", "}}"))
        parts.append("{" + match.group(1) + "}")
        last = match.end()
    parts.append(jinja_text[last:].replace("{", "{{").replace("}", "}}"))
    return "".join(parts)


#: The keyword way out a marketing text offers on the chat channels. An email has its unsubscribe link (in the
#: List-Unsubscribe header and the body) instead, so its variant leaves the sentence out.
KEYWORD_OPT_OUT = (" Reply STOP to opt out.", " Abmelden mit STOP.")


def _without_keyword_opt_out(body: str) -> str:
    for sentence in KEYWORD_OPT_OUT:
        body = body.replace(sentence, "")
    return body


@dataclass(frozen=True)
class TemplateVariant:
    id: int
    name: str
    channel: str
    locale: str
    category: str
    subject: str | None
    body_format: str


def template_rows(created_at: datetime) -> tuple[list[Row], dict[tuple[str, str, str], TemplateVariant]]:
    """Every (template, channel, locale) variant as a row, and the lookup the message generator uses."""
    rows: list[Row] = []
    lookup: dict[tuple[str, str, str], TemplateVariant] = {}
    for text in TEMPLATE_TEXTS:
        for channel in text.channels:
            for locale, (subject, raw_body) in (("en", text.en), ("de", text.de)):
                variant_id = len(rows) + 1
                is_email = channel == "email"
                body = _without_keyword_opt_out(raw_body) if is_email else raw_body
                html_body = _html(body, text.category, locale) if is_email else None
                # A marketing email's text part carries its unsubscribe link too, as its HTML footer does.
                stored = f"{body}\n\n{_unsubscribe_line(locale)}" if is_email and text.category == M else body
                variables = template_variables(*((subject, stored, html_body or "") if is_email else (body,)))
                body_variables = template_variables(body)
                rows.append(
                    {
                        "id": variant_id,
                        "name": text.name,
                        "channel": channel,
                        "locale": locale,
                        "category": text.category,
                        "status": "active",
                        "subject": subject if is_email else None,
                        "body": stored,
                        "html_body": html_body,
                        "variables": variables,
                        "whatsapp_name": f"nw_{text.name}" if channel == "whatsapp" else None,
                        "whatsapp_language": ("en_US" if locale == "en" else "de")
                        if channel == "whatsapp"
                        else None,
                        "whatsapp_params": body_variables if channel == "whatsapp" else [],
                        "version": 1,
                        "created_at": created_at,
                        "updated_at": created_at,
                    }
                )
                lookup[(text.name, channel, locale)] = TemplateVariant(
                    variant_id, text.name, channel, locale, text.category,
                    as_format_string(subject) if is_email else None, as_format_string(body),
                )  # fmt: skip
    return rows, lookup


def _unsubscribe_line(locale: str) -> str:
    return f"{'Abmelden' if locale == 'de' else 'Unsubscribe'}: {{{{ unsubscribe_url }}}}"


def _html(body: str, category: str, locale: str = "en") -> str:
    unsubscribe = "Abmelden" if locale == "de" else "Unsubscribe"
    footer = (
        f'<p style="font-size:12px;color:#777"><a href="{{{{ unsubscribe_url }}}}">{unsubscribe}</a></p>'
        if category == M
        else ""
    )
    # A link a patient should follow is a link in the HTML part too, not text to copy.
    linked = re.sub(r"\{\{ (link|\w+_url) \}\}", r'<a href="{{ \1 }}">{{ \1 }}</a>', body)
    return f'<html><body style="font-family:sans-serif"><p>{linked}</p>{footer}</body></html>'


#: name, event, template, channel order, offset minutes.
NOTIFICATION_RULES: tuple[tuple[str, str, str, tuple[str, ...], int], ...] = (
    ("order_confirmation", "order.created", "order_confirmation", ("whatsapp", "email", "sms"), 0),
    ("order_shipped", "order.shipped", "order_shipped", ("whatsapp", "telegram", "email", "sms"), 0),
    ("appointment_booked", "appointment.booked", "appointment_booked", ("whatsapp", "telegram", "sms", "email"), 0),
    ("appointment_reminder_24h", "appointment.reminder", "appointment_reminder", ("whatsapp", "telegram", "sms", "email"), -1440),
    ("payment_failed", "payment.failed", "payment_failed", ("email", "sms"), 0),
    ("welcome", "customer.created", "welcome", ("email", "whatsapp", "telegram", "sms"), 1),
    ("csat_after_visit", "appointment.completed", "csat_survey", ("sms", "whatsapp", "email"), 120),
    # No channel order: the patient's preferred channel first, then the default order.
    ("video_booked", "video.booked", "video_booked", (), 0),
    ("video_rescheduled", "video.rescheduled", "video_rescheduled", (), 0),
    ("video_cancelled", "video.cancelled", "video_cancelled", (), 0),
    # Recorded the moment each reminder is due; the offset only has to be as early as any reminder so that
    # each goes out at once (and none once the consultation has begun).
    ("video_consultation_reminder", "video.reminder", "video_reminder", (), RULE_OFFSET_MINUTES),
    ("video_rebook_offer", "video.rebook_offer", "video_rebook_offer", (), 0),
)  # fmt: skip
RULE_CHANNELS = {name: order for name, _event, _template, order, _offset in NOTIFICATION_RULES}


def notification_rows(created_at: datetime, created_by: int | None) -> list[Row]:
    return [
        {
            "id": index + 1,
            "name": name,
            "event_type": event,
            "template_name": template,
            "channel_order": list(order),
            "offset_minutes": offset,
            "category": T,
            "enabled": True,
            "created_by": created_by,
            "created_at": created_at,
        }
        for index, (name, event, template, order, offset) in enumerate(NOTIFICATION_RULES)
    ]


def location_rows(created_at: datetime) -> list[Row]:
    return [
        {
            "id": c.id,
            "code": c.code,
            "name": c.name,
            "country": c.country,
            "timezone": c.timezone,
            "created_at": created_at,
        }
        for c in CLINICS
    ]


def service_rows() -> list[Row]:
    return [
        {
            "id": s.id,
            "code": s.code,
            "name": s.name,
            "names": {"de": s.german},
            "kind": s.kind,
            "duration_minutes": s.duration_minutes,
            "price_minor": s.price_minor,
            "currency": "EUR",
            "reminder_minutes": None,  # the business's default reminder times
        }
        for s in SERVICES
    ]


def channel_rows(created_at: datetime) -> list[Row]:
    return [
        {
            "id": CHANNEL_IDS[name],
            "channel": name,
            "provider": str(provider),
            "display_name": display,
            "enabled": True,
            "rate_limit_per_second": rate,
            "unit_cost_micros": cost,
            "currency": "USD",
            "settings": settings,
            "created_at": created_at,
        }
        for name, provider, display, rate, cost, settings in CHANNELS
    ]


_AGENT_NAMES = (
    "Lena Hoffmann", "Jonas Becker", "Sophie Wagner", "Maximilian Huber", "Anna Gruber", "Lukas Steiner",
    "Laura Meier", "Noah Keller", "Olivia Hughes", "Harry Patel", "Emma Rodriguez", "Liam Chen",
)  # fmt: skip


@dataclass(frozen=True)
class StaffMember:
    id: int
    role: str
    location_id: int | None


def staff_rows(created_at: datetime) -> tuple[list[Row], list[StaffMember]]:
    """An admin, two managers, two agents per clinic and two viewers, with demo Slack/Telegram ids."""
    people: list[tuple[str, str, str, int | None, str, int | None]] = [
        ("Amelia Novak", "admin@northwind.example", Role.ADMIN, None, "U0ADMIN", 1001),
        ("Markus Brandt", "markus.brandt@northwind.example", Role.MANAGER, 1, "U0MANAGER1", 1002),
        ("Grace Whitfield", "grace.whitfield@northwind.example", Role.MANAGER, 5, "U0MANAGER2", 1003),
    ]
    for index, name in enumerate(_AGENT_NAMES):
        clinic = CLINICS[index // 2]
        email = name.lower().replace(" ", ".") + "@northwind.example"
        telegram = 1004 + index if index % 3 == 0 else None
        people.append((name, email, Role.AGENT, clinic.id, f"U0AGENT{index + 1:02d}", telegram))
    people.append(("Finance Viewer", "finance@northwind.example", Role.VIEWER, None, "U0VIEWER1", None))
    people.append(("Board Viewer", "board@northwind.example", Role.VIEWER, None, "U0VIEWER2", None))
    rows: list[Row] = []
    members: list[StaffMember] = []
    for index, (name, email, role, location_id, slack_id, telegram_id) in enumerate(people):
        clinic = CLINICS[location_id - 1] if location_id else CLINICS[0]
        rows.append(
            {
                "id": index + 1,
                "email": email,
                "name": name,
                "role": str(role),
                "slack_team_id": "T0NORTHWIND",
                "slack_user_id": slack_id,
                "telegram_user_id": telegram_id,
                "location_id": location_id,
                "timezone": clinic.timezone,
                "locale": "de" if clinic.country in ("DE", "AT", "CH") else "en",
                "active": True,
                "created_at": created_at - timedelta(days=index),
                "last_question": None,
                "last_question_at": None,
                # The demo's agents are at work, so new conversations are assigned to them at once.
                "availability": "online" if role is Role.AGENT else "away",
                "chat_capacity": 8,
            }
        )
        members.append(StaffMember(index + 1, str(role), location_id))
    return rows, members
