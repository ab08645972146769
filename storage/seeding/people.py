"""Demo customers: who they are, how to reach them, what they agreed to and how active they are."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from storage.seeding.catalogue import CLINICS, Clinic, Row
from storage.seeding.plan import Calendar

#: Home clinic shares (sum to 1), in the order of CLINICS.
CLINIC_SHARES = (0.22, 0.18, 0.14, 0.12, 0.18, 0.16)

_FIRST = {
    "de": ("Anna", "Lena", "Marie", "Sophie", "Laura", "Julia", "Hannah", "Lea", "Katharina", "Clara",
           "Lukas", "Jonas", "Felix", "Paul", "Leon", "Maximilian", "Tobias", "Florian", "Niklas", "Moritz"),
    "en": ("Olivia", "Amelia", "Isla", "Ava", "Emily", "Grace", "Chloe", "Ella", "Mia", "Harper",
           "Oliver", "George", "Harry", "Jack", "Noah", "James", "Liam", "Ethan", "Lucas", "Mason"),
}  # fmt: skip
_LAST = {
    "de": ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Huber",
           "Gruber", "Steiner", "Keller", "Hofmann", "Bauer", "Koch", "Richter", "Wolf", "Brunner"),
    "en": ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel",
           "Garcia", "Miller", "Clarke", "Walker", "Wright", "Thompson", "Robinson", "Lee", "Khan"),
}  # fmt: skip
_EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example")
_US_AREA_CODES = (
    "201", "202", "212", "213", "215", "305", "310", "312", "347", "404", "415", "503", "512", "516",
    "617", "646", "702", "713", "718", "720", "732", "773", "786", "808", "813", "818", "845", "914",
    "917", "929", "949", "973",
)  # fmt: skip
_ASCII = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"})

TAG_SHARES = (
    ("skincare", 0.42), ("supplements", 0.35), ("devices", 0.12), ("newsletter", 0.5),
    ("video-first", 0.15), ("sensitive-skin", 0.1),
)  # fmt: skip
#: Orders and appointments per 30 days, by segment.
ORDER_RATE = {"vip": 1.1, "regular": 0.38, "new": 0.5, "lapsed": 0.3}
APPOINTMENT_RATE = {"vip": 0.45, "regular": 0.2, "new": 0.3, "lapsed": 0.15}
THREAD_RATE = {"vip": 1.0, "regular": 0.6, "new": 0.75, "lapsed": 0.2}
CHAT_RATE = {"vip": 0.2, "regular": 0.12, "new": 0.2, "lapsed": 0.05}


class PhoneBook:
    """Hands out unique, valid E.164 numbers per country from mobile (or fictional) ranges.

    US numbers come from the fictional 555-01xx block, which holds only 100 per area code; past
    that numbers repeat (a shared household line) and such repeats get no WhatsApp id, which must
    stay unique.
    """

    def __init__(self) -> None:
        self._issued: dict[str, int] = {}

    def issue(self, country: str) -> tuple[str, bool]:
        """A number and whether it is the only customer with it."""
        n = self._issued.get(country, 0)
        self._issued[country] = n + 1
        if country == "DE":
            prefix = ("151", "160", "170", "152", "176")[n % 5]
            return f"+49{prefix}{(n // 5 * 7919 + 1234567) % 10**8:08d}", True
        if country == "AT":
            return f"+43664{(n * 7919 + 123456) % 10**7:07d}", n < 10**7
        if country == "CH":
            return f"+4179{(n * 7919 + 123456) % 10**7:07d}", n < 10**7
        if country == "GB":
            return f"+4477001{(n * 7919 + 12345) % 10**5:05d}", n < 10**5
        area = _US_AREA_CODES[n % len(_US_AREA_CODES)]
        return f"+1{area}55501{n // len(_US_AREA_CODES) % 100:02d}", n < 100 * len(_US_AREA_CODES)


@dataclass
class ConsentEntry:
    channel: str
    status: str
    source: str
    detail: str | None
    at: datetime


@dataclass
class Customer:
    """One customer and the facts their story is generated from."""

    id: int
    first_name: str
    name: str
    clinic: Clinic
    locale: str
    segment: str
    created_at: datetime
    active_from: int  # first day index the customer can act on
    active_until: int  # last day index (lapsed customers stop early)
    tags: tuple[str, ...]
    preferred: str | None
    quiet_hours: bool
    marketing_cap: int | None
    addresses: dict[str, str]
    consents: list[ConsentEntry] = field(default_factory=list)
    marketing_sent: list[datetime] = field(default_factory=list)

    @property
    def timezone(self) -> str:
        return self.clinic.timezone

    def opted_in(self, channel: str, at: datetime) -> bool:
        status = None
        for entry in self.consents:
            if entry.channel == channel and entry.at <= at:
                status = entry.status
        return status == "opted_in"

    def reachable_on(self, channels: tuple[str, ...], at: datetime) -> str | None:
        """The channel a message goes out on: the preferred one if the rule allows it, else the rule's order."""
        ordered = (self.preferred, *channels) if self.preferred in channels else channels
        for channel in ordered:
            if channel and channel in self.addresses and self.opted_in(channel, at):
                return channel
        return None

    def row(self) -> Row:
        phone = self.addresses.get("sms")
        return {
            "id": self.id,
            "external_ref": f"NW-C{self.id:07d}",
            "name": self.name,
            "phone_e164": phone,
            "email": self.addresses.get("email"),
            "telegram_chat_id": int(self.addresses["telegram"]) if "telegram" in self.addresses else None,
            "whatsapp_id": self.addresses.get("whatsapp"),
            "timezone": self.timezone,
            "locale": self.locale,
            "country": self.clinic.country,
            "segment": self.segment,
            "home_location_id": self.clinic.id,
            "created_at": self.created_at,
            "updated_at": self.created_at,
            "erased_at": None,
            "imported_at": None,
        }

    def preference_row(self) -> Row:
        return {
            "customer_id": self.id,
            "preferred_channel": self.preferred,
            "quiet_hours_start": time(21) if self.quiet_hours else None,
            "quiet_hours_end": time(8) if self.quiet_hours else None,
            "marketing_max_per_week": self.marketing_cap,
            "updated_at": self.created_at,
        }


def make_customer(
    customer_id: int, total: int, rng: random.Random, calendar: Calendar, phones: PhoneBook
) -> Customer:
    clinic = rng.choices(CLINICS, CLINIC_SHARES)[0]
    locale = "de" if clinic.country in ("DE", "AT", "CH") else "en"
    first, last = rng.choice(_FIRST[locale]), rng.choice(_LAST[locale])
    created_at = calendar.signup_time(rng, (customer_id - 1 + rng.random()) / total)
    created_index = calendar.day_index(created_at)
    segment = _segment(rng, created_at, calendar)
    active_until = calendar.days - 1
    if segment == "lapsed":
        active_until = min(active_until, max(created_index, 0) + rng.randrange(30, 150))
    tags = tuple(tag for tag, share in TAG_SHARES if rng.random() < share)
    addresses = _addresses(customer_id, first, last, clinic, rng, phones)
    messaging = [c for c in ("whatsapp", "telegram", "sms", "email") if c in addresses]
    preferred = rng.choice(messaging) if messaging and rng.random() < 0.75 else None
    customer = Customer(
        id=customer_id,
        first_name=first,
        name=f"{first} {last}",
        clinic=clinic,
        locale=locale,
        segment=segment,
        created_at=created_at,
        active_from=max(created_index, 0),
        active_until=active_until,
        tags=tags,
        preferred=preferred,
        quiet_hours=rng.random() < 0.3,
        marketing_cap=rng.choice((1, 2)) if rng.random() < 0.15 else None,
        addresses=addresses,
    )
    customer.consents = _consent_history(customer, rng, calendar)
    return customer


def _segment(rng: random.Random, created_at: datetime, calendar: Calendar) -> str:
    if created_at >= calendar.end_at - timedelta(days=60):
        return "new"
    draw = rng.random()
    if draw < 0.09:
        return "vip"
    if draw < 0.25:
        return "lapsed"
    return "regular"


def _addresses(
    customer_id: int, first: str, last: str, clinic: Clinic, rng: random.Random, phones: PhoneBook
) -> dict[str, str]:
    addresses: dict[str, str] = {}
    if rng.random() < 0.93:
        phone, unique = phones.issue(clinic.country)
        addresses["sms"] = phone
        whatsapp_share = 0.35 if clinic.country == "US" else 0.6
        if unique and rng.random() < whatsapp_share:
            addresses["whatsapp"] = phone[1:]
    if rng.random() < 0.9 or "sms" not in addresses:
        local = f"{first}.{last}".lower().translate(_ASCII)
        addresses["email"] = f"{local}{customer_id}@{rng.choice(_EMAIL_DOMAINS)}"
    if rng.random() < 0.15:
        addresses["telegram"] = str(5_000_000_000 + customer_id)
    return addresses


_OPT_IN_SOURCES = (("web_form", 0.45), ("checkout", 0.3), ("in_clinic", 0.2), ("import", 0.05))
#: channel -> (share that opts out, source of the opt-out, detail)
_OPT_OUTS = {
    "sms": (0.06, "sms_keyword", "STOP"),
    "email": (0.04, "email_unsubscribe", "list-unsubscribe header"),
    "whatsapp": (0.02, "whatsapp_block", "customer blocked the business"),
    "telegram": (0.02, "telegram_block", "bot blocked"),
}


def _consent_history(customer: Customer, rng: random.Random, calendar: Calendar) -> list[ConsentEntry]:
    """Opt-ins at signup, some opt-outs later and a few opt-ins again, in time order."""
    entries: list[ConsentEntry] = []
    sources = [source for source, _share in _OPT_IN_SOURCES]
    weights = [share for _source, share in _OPT_IN_SOURCES]
    for channel in ("sms", "email", "whatsapp", "telegram"):
        if channel not in customer.addresses:
            continue
        source = rng.choices(sources, weights)[0]
        if channel == "whatsapp":
            source = "whatsapp_optin"
        elif channel == "telegram":
            source = "telegram_start"
        entries.append(ConsentEntry(channel, "opted_in", source, None, customer.created_at))
        share, out_source, detail = _OPT_OUTS[channel]
        if rng.random() >= share:
            continue
        span = (calendar.end_at - customer.created_at).total_seconds()
        out_at = customer.created_at + timedelta(seconds=int(span * (0.1 + 0.85 * rng.random())))
        entries.append(ConsentEntry(channel, "opted_out", out_source, detail, out_at))
        if rng.random() < 0.12:
            back_at = out_at + (calendar.end_at - out_at) * rng.uniform(0.2, 0.9)
            back_at = back_at.replace(microsecond=0)
            entries.append(ConsentEntry(channel, "opted_in", "web_form", "preference centre", back_at))
    entries.sort(key=lambda e: (e.at, e.channel))
    return entries
