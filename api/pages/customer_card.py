"""The customer card on a conversation page, in words: consent per channel, preferences, recent orders and
appointments (the business's dates and money), and the customer's other open conversations."""

from __future__ import annotations

from datetime import time
from typing import Any
from zoneinfo import ZoneInfo

from babel.numbers import get_currency_precision

from api.pages.common import Formats
from domain.consent.model import ConsentPolicy
from domain.consent.said import business_cap_words, business_quiet_hours_words, cap_words
from domain.conversations.desk import STATUS_WORDS
from domain.messages.words import channel_words
from storage.queries.customer_card import CustomerCard

#: Consent statuses as staff read them.
CONSENT_WORDS = {"opted_in": "opted in", "opted_out": "opted out", "unknown": "not asked"}


def money_minor(formats: Formats, amount_minor: int, currency: str) -> str:
    """An amount stored in minor units (cents), formatted like every other amount on the dashboard."""
    return formats.value(amount_minor / 10 ** get_currency_precision(currency), "currency", currency)


def _clock(value: time) -> str:
    return value.strftime("%H:%M")


def business_rules(policy: ConsentPolicy) -> dict[str, str]:
    """What an empty field of a customer's preferences leaves to the business, for the form's labels."""
    quiet = business_quiet_hours_words(policy)
    return {
        "quiet_hours": quiet or "",
        "marketing_cap": business_cap_words(policy),
    }


def card_view(card: CustomerCard | None, formats: Formats, policy: ConsentPolicy) -> dict[str, Any] | None:
    """The card in words; where the customer set nothing of their own, what the business's rules apply
    (the default quiet hours, the per-channel marketing cap), so the page never says "none" while a rule
    holds marketing back."""
    if card is None:
        return None
    preferences = card.preferences
    zone = ZoneInfo(formats.timezone)
    if preferences.quiet_hours_start and preferences.quiet_hours_end:
        quiet = f"{_clock(preferences.quiet_hours_start)}–{_clock(preferences.quiet_hours_end)}"
    else:
        business = business_quiet_hours_words(policy)
        quiet = (
            f"{business}, the business's default"
            if business
            else "none (neither the customer's nor the business's)"
        )
    cap = preferences.marketing_max_per_week
    first_contact = next((t.partition(":")[2] for t in card.tags if t.startswith("first-contact:")), None)
    return {
        # A record made by the customer's first message holds only what it showed: say so, so staff complete it.
        "first_contact": channel_words(first_contact) if first_contact else None,
        "tags": list(card.tags),
        "consents": [
            {
                "channel": channel_words(c.channel),
                "status": c.status,
                "words": CONSENT_WORDS.get(c.status, c.status.replace("_", " ")),
                "since": formats.day(c.changed_at.astimezone(zone).date()),
            }
            for c in preferences.consents
        ],
        "preferred_channel": channel_words(preferences.preferred_channel)
        if preferences.preferred_channel
        else "none",
        "quiet_hours": quiet,
        "quiet_none": quiet.startswith("none"),
        "marketing_cap": cap_words(cap, business_cap_words(policy)),
        "orders": [
            {
                "number": o.order_number,
                "status": o.status,
                "amount": money_minor(formats, o.amount_minor, o.currency),
                "day": formats.day(o.created_at.astimezone(zone).date()),
            }
            for o in card.orders
        ],
        "appointments": [
            {
                "service": a.service,
                "status": a.status.replace("_", "-") if a.status == "no_show" else a.status.replace("_", " "),
                "when": formats.moment(a.scheduled_at),
                "price": money_minor(formats, a.price_minor, a.currency),
            }
            for a in card.appointments
        ],
        "other_conversations": [
            {
                "id": other.id,
                "channel": channel_words(other.channel),
                "status": other.status,
                "status_label": STATUS_WORDS.get(other.status, other.status),
                "last_message": formats.moment(other.last_message_at) if other.last_message_at else "—",
            }
            for other in card.other_conversations
        ],
    }
