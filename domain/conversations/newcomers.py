"""Someone no customer record knows writes in: they become a customer, so their conversation opens.

A new patient's first WhatsApp, SMS, Telegram message or email is exactly what live chat is for; before,
it was stored with no customer and reached no agent. The new record holds only what the message proves
(the address it came from, and the name the provider gave, if any); it is tagged `first-contact:CHANNEL`
so staff can find and complete such records. Consent is not assumed: the customer has no consent row
until they give or withdraw it (answering them in the conversation they opened is a reply, not marketing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from domain.said_place import known_zone, spoken_language
from domain.vocabulary import Channel
from domain.widget.model import UNNAMED_VISITOR

#: The tag a customer made from a first message carries, e.g. "first-contact:whatsapp".
FIRST_CONTACT_TAG = "first-contact:{channel}"

_CHANNEL_WORDS = {
    Channel.SMS: "SMS",
    Channel.WHATSAPP: "WhatsApp",
    Channel.TELEGRAM: "Telegram",
    Channel.EMAIL: "Email",
}
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_WHATSAPP_ID = re.compile(r"[1-9][0-9]{6,14}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{1,63}")
MAX_NAME = 200
#: Mail from mailboxes starting so is a machine's (bounces, notifications): it makes no customer. Compared
#: without dots, dashes and underscores, so "no_reply", "noreply-billing" and "bounces+123" match too.
MACHINE_MAILBOXES = ("mailerdaemon", "postmaster", "noreply", "donotreply", "bounce", "notification")


@dataclass(frozen=True)
class Newcomer:
    """The customer record a first message makes: one contact field set, and a name."""

    channel: Channel
    name: str
    phone_e164: str | None = None
    whatsapp_id: str | None = None
    telegram_chat_id: int | None = None
    email: str | None = None
    #: Where they are and what they read, as far as the address tells (`placed`).
    country: str | None = None
    timezone: str = "UTC"
    locale: str = "en"

    @property
    def tag(self) -> str:
        return FIRST_CONTACT_TAG.format(channel=self.channel.value)


def sender_language(channel: Channel, address: str, said_language: str | None, business_language: str) -> str:
    """The language a sender reads, as far as their address and app tell (+49…: German; Telegram's
    language_code), else the business's customers' language: what an automatic answer is written in."""
    found = newcomer(channel, address, None)
    if found is None:
        return spoken_language(said_language) or business_language
    return placed(found, "UTC", business_language, said_language=said_language).locale


def placed(
    found: Newcomer,
    business_timezone: str,
    business_language: str,
    *,
    said_language: str | None = None,
    said_timezone: str | None = None,
) -> Newcomer:
    """`found` with the country, timezone and language its phone number tells (+49 151…: DE, Europe/Berlin,
    German); where it tells none (an email, a Telegram chat, a website visitor, a number whose country spans
    several zones), the language and zone their app said (`said_language`: Telegram's language_code, a
    browser's; `said_timezone`: a browser's), else the business's. Quiet hours and the template's language
    follow from them."""
    country = None
    zone = known_zone(said_timezone) or business_timezone
    language = spoken_language(said_language) or business_language
    if found.phone_e164 is not None:
        import phonenumbers  # loaded for a first contact's number only

        from domain.customers.importing import language_of_country, zone_of_country, zone_of_number

        try:
            number = phonenumbers.parse(found.phone_e164, None)
        except phonenumbers.NumberParseException:
            number = None
        if number is not None:
            # A number no range lists (+1 555…) is still its calling code's main country's.
            region = phonenumbers.region_code_for_number(number)
            if not region and number.country_code is not None:
                region = phonenumbers.region_code_for_country_code(number.country_code)
            country = None if region in (None, "", "ZZ", "001") else region
            # The number's one zone, else its country's one clock (a UK mobile lists London and the Channel
            # Islands: London), else the business's (the US).
            zone = zone_of_number(found.phone_e164) or (zone_of_country(country) if country else None) or zone
            language = (language_of_country(country) if country else None) or business_language
    return replace(found, country=country, timezone=zone, locale=language)


def newcomer(channel: Channel, address: str, sender_name: str | None) -> Newcomer | None:
    """The record to make for an unknown sender on `channel`, or None when the address is not one we can
    answer on (a short code, a group chat, a malformed address): such messages stay stored, unowned."""
    address = address.strip()
    name = _name(channel, address, sender_name)
    if channel is Channel.WHATSAPP:
        digits = address.lstrip("+")
        if not _WHATSAPP_ID.fullmatch(digits):
            return None
        return Newcomer(channel, name, phone_e164=f"+{digits}", whatsapp_id=digits)
    if channel is Channel.SMS:
        return Newcomer(channel, name, phone_e164=address) if _E164.fullmatch(address) else None
    if channel is Channel.TELEGRAM:
        # A private chat's id is the person's (positive) user id; groups and channels are negative.
        chat = int(address) if address.isdigit() and len(address) <= 18 else 0
        return Newcomer(channel, name, telegram_chat_id=chat) if chat > 0 else None
    if channel is Channel.EMAIL:
        mailbox = re.sub(r"[._\-]", "", address.partition("@")[0].lower())
        if not _EMAIL.fullmatch(address) or mailbox.startswith(MACHINE_MAILBOXES):
            return None
        return Newcomer(channel, name, email=address.lower())
    return None


def _name(channel: Channel, address: str, sender_name: str | None) -> str:
    """The provider's display name when there is one; otherwise words that do not repeat the contact
    details in full (a name is shown in the Slack thread, where contact details are masked by default)."""
    given = " ".join((sender_name or "").split())[:MAX_NAME]
    # A display name that is the address itself ("ana@x.org" <ana@x.org>, a phone number as a profile name)
    # would show contact details wherever names are shown in full: it is not taken as the name.
    if given and "@" not in given and sum(c.isdigit() for c in given) < 7:
        return given
    words = _CHANNEL_WORDS.get(channel, channel.value)
    digits = "".join(c for c in address if c.isdigit())
    if channel in (Channel.SMS, Channel.WHATSAPP) and len(digits) >= 4:
        return f"{words} contact …{digits[-4:]}"
    return f"New {words} contact"


def is_placeholder_name(name: str) -> bool:
    """Whether `name` is one made up for someone who gave none (no first name to greet them by): `_name`'s,
    or the website chat's "Website visitor"."""
    return bool(_PLACEHOLDER.fullmatch(name)) or name == UNNAMED_VISITOR


_PLACEHOLDER = re.compile(r"(?:SMS|WhatsApp) contact …\d{4}|New (?:SMS|WhatsApp|Telegram|Email) contact")
