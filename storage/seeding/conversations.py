"""Conversations customers start: message threads on their messaging apps and web-chat sessions."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from storage.seeding.people import CHAT_RATE, THREAD_RATE, Customer
from storage.seeding.widget import seeded_visitor
from storage.seeding.world import World, poisson

_QUESTIONS = {
    "en": ("Hi, is my order on its way?", "Can I move my appointment to next week?",
           "Which serum do you recommend for dry skin?", "Do you have parking at the clinic?",
           "Is the vitamin D vegan?", "My device is not charging, can you help?"),
    "de": ("Hallo, ist meine Bestellung schon unterwegs?", "Kann ich meinen Termin auf nächste Woche verschieben?",
           "Welches Serum empfehlen Sie bei trockener Haut?", "Gibt es Parkplätze bei der Klinik?",
           "Ist das Vitamin D vegan?", "Mein Gerät lädt nicht, können Sie helfen?"),
}  # fmt: skip
_ANSWERS = {
    "en": ("Thanks for asking! I have checked this for you: all sorted.", "Happy to help, I have sent you the details.",
           "Of course, done. Anything else?"),
    "de": ("Danke für Ihre Nachricht! Ich habe das geprüft: alles erledigt.",
           "Gern, ich habe Ihnen die Details geschickt.", "Natürlich, erledigt. Sonst noch etwas?"),
}  # fmt: skip
_THANKS = {
    "en": ("Thank you!", "Great, thanks", "Perfect 👍"),
    "de": ("Danke!", "Super, danke", "Perfekt 👍"),
}
_SUBJECTS = (
    "Order status",
    "Reschedule appointment",
    "Product advice",
    "Clinic directions",
    "Device support",
)
_CSAT = ((1, 0.04), (2, 0.05), (3, 0.11), (4, 0.3), (5, 0.5))


def _response_delay(rng: random.Random) -> timedelta:
    """Staff answer within minutes mostly; one in ten waits hours (nights, busy Mondays)."""
    if rng.random() < 0.1:
        return timedelta(minutes=rng.randint(60, 8 * 60))
    return timedelta(seconds=int(rng.lognormvariate(5.3, 0.9)))


def threads(world: World, rng: random.Random, customer: Customer) -> None:
    """Customers writing to us on WhatsApp, Telegram, SMS or email, and our agents answering."""
    calendar, messenger = world.calendar, world.messenger
    rate = THREAD_RATE[customer.segment]
    for number in range(poisson(rng, world.expected(rate, customer, calendar.online_cumulative))):
        index = calendar.pick_day(
            rng, calendar.online_cumulative, customer.active_from, customer.active_until
        )
        at = (
            None
            if index is None
            else world.after_signup(customer, world.online_moment(rng, customer, index), rng)
        )
        if at is None:
            continue
        channel = customer.reachable_on(("whatsapp", "telegram", "sms", "email"), at)
        if channel is None:
            continue
        question = messenger.inbound(rng, customer, channel, at, rng.choice(_QUESTIONS[customer.locale]))
        messenger.emit(question)
        answer_at = at + _response_delay(rng)
        if answer_at >= calendar.end_at:
            continue
        answer = messenger.outbound(
            rng, customer, channel, answer_at, source="manual", key=f"manual:{customer.id}:{number}:1",
            body=f"{rng.choice(_ANSWERS[customer.locale])} – {customer.clinic.name}", category="conversational",
        )  # fmt: skip
        thanks = None
        if rng.random() < 0.55:
            thanks = messenger.reply(
                rng,
                customer,
                answer,
                timedelta(seconds=rng.randint(20, 3600)),
                rng.choice(_THANKS[customer.locale]),
            )
        messenger.emit(answer)
        if thanks is not None:
            messenger.emit(thanks)


def chats(world: World, rng: random.Random, customer: Customer) -> None:
    """Web-chat sessions: who answered, how fast, how it ended and how the customer rated it."""
    calendar = world.calendar
    rate = CHAT_RATE[customer.segment]
    first_chat_at: datetime | None = None
    for _ in range(poisson(rng, world.expected(rate, customer, calendar.online_cumulative))):
        index = calendar.pick_day(
            rng, calendar.online_cumulative, customer.active_from, customer.active_until
        )
        started_at = None if index is None else world.after_signup(customer, world.online_moment(rng, customer, index), rng)  # fmt: skip
        if started_at is not None:
            _chat_session(world, rng, customer, started_at)
            first_chat_at = min(first_chat_at or started_at, started_at)
    if first_chat_at is not None:
        seeded_visitor(world, customer.id, first_chat_at)


def session_status(closed: bool, turns: int) -> str:
    """A seeded conversation's status: its turns alternate, the customer's first, so it waits for the customer
    ("pending") only when the staff wrote last (an even number of turns); else it waits for us ("open")."""
    if closed:
        return "closed"
    return "pending" if turns >= 2 and turns % 2 == 0 else "open"


def _chat_session(world: World, rng: random.Random, customer: Customer, started_at: datetime) -> None:
    end = world.calendar.end_at
    session_id = world.ids.next("chat_sessions")
    staff_id = rng.choice(world.agents_by_clinic[customer.clinic.id])
    first_response_at = started_at + _response_delay(rng)
    stamps = [started_at]
    moment = first_response_at
    for _ in range(rng.randint(1, 7)):
        if moment >= end:
            break
        stamps.append(moment)
        moment += timedelta(seconds=rng.randint(30, 400))
    closed_at = stamps[-1] + timedelta(minutes=rng.randint(10, 60))
    closed = closed_at < end
    answered = len(stamps) > 1
    csat = None
    if closed and rng.random() < 0.4:
        csat = rng.choices([score for score, _ in _CSAT], [share for _, share in _CSAT])[0]
    world.sink.add(
        "chat_sessions",
        {"id": session_id, "customer_id": customer.id, "channel": "chat",
         "status": session_status(closed, len(stamps)),
         "assigned_staff_id": staff_id, "subject": rng.choice(_SUBJECTS), "started_at": started_at,
         "first_response_at": first_response_at if answered else None, "last_message_at": stamps[-1],
         "closed_at": closed_at if closed else None, "csat_score": csat, "snoozed_until": None,
         "resolved_by_staff_id": staff_id if closed else None,
         "csat_requested_at": closed_at if csat is not None else None,
         "csat_answered_at": closed_at + timedelta(minutes=5) if csat is not None else None,
         "csat_comment": None, "reopened_at": None},
    )  # fmt: skip
    for turn, at in enumerate(stamps):
        by_customer = turn % 2 == 0
        texts = _QUESTIONS if by_customer and turn == 0 else _THANKS if by_customer else _ANSWERS
        world.sink.add(
            "chat_messages",
            {"id": world.ids.next("chat_messages"), "session_id": session_id,
             "author": "customer" if by_customer else "staff", "staff_id": None if by_customer else staff_id,
             "communication_id": None, "body": rng.choice(texts[customer.locale]), "created_at": at,
             "is_note": False, "external_ref": None, "mirrored_at": at, "echoed_status": None,
             "telegram_posted_at": at, "telegram_echoed_status": None},
        )  # fmt: skip
