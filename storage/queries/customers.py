"""Customers as staff look them up: by id, phone, email or name, their profile, and their preferences."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time

from sqlalchemy import and_, func, or_, select

from domain.vocabulary import ConsentStatus
from storage.database import Database
from storage.models import (
    CommunicationPreference,
    ConsentRecord,
    Customer,
    CustomerCommunication,
    CustomerConsent,
    CustomerTag,
    Location,
)
from storage.sql import equals_folded, name_has_words


@dataclass(frozen=True)
class CustomerName:
    """A customer as a pick list shows them."""

    id: int
    name: str
    #: What tells two of one name apart: their phone number, else email, and the practice's patient number.
    detail: str = ""

    @property
    def label(self) -> str:
        """ "#551 Florian Schmidt (+4915112345678, P-1042)": a pick-one button's words."""
        return f"#{self.id} {self.name}" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class CustomerSummary:
    id: int
    name: str
    phone_e164: str | None
    email: str | None
    segment: str


@dataclass(frozen=True)
class CustomerProfile:
    id: int
    name: str
    phone_e164: str | None
    email: str | None
    locale: str
    timezone: str
    segment: str
    tags: tuple[str, ...]
    preferred_channel: str | None
    created_at: datetime


@dataclass(frozen=True)
class ChannelConsent:
    channel: str
    status: str
    source: str
    changed_at: datetime


@dataclass(frozen=True)
class HeldBackMessage:
    """The newest message not sent to the customer, and the reasons recorded for it."""

    channel: str
    created_at: datetime
    explanation: str | None
    status_reason: str | None


@dataclass(frozen=True)
class CustomerPreferences:
    id: int
    name: str
    preferred_channel: str | None
    quiet_hours_start: time | None
    quiet_hours_end: time | None
    marketing_max_per_week: int | None
    consents: tuple[ChannelConsent, ...]  # by channel
    last_held_back: HeldBackMessage | None


async def customers_by_reference(
    database: Database, kind: str, value: str, *, limit: int = 6
) -> list[CustomerName]:
    """Customers matching an id, an E.164 phone, an email (any case), part of a name or the practice's own
    patient number (whole, in any case), by id."""
    column = {"id": Customer.id, "phone": Customer.phone_e164, "email": func.lower(Customer.email)}
    if kind == "name":
        condition = or_(
            func.lower(Customer.name).contains(value.lower()),
            equals_folded(Customer.external_ref, value.strip()),
        )
    else:
        condition = column[kind] == (int(value) if kind == "id" else value)
    query = (
        select(Customer.id, Customer.name, Customer.phone_e164, Customer.email, Customer.external_ref)
        .where(condition)
        .order_by(Customer.id)
        .limit(limit)
    )
    async with database.read_sessions() as session:
        return [
            CustomerName(id, name, ", ".join(part for part in (phone or email, ref) if part))
            for id, name, phone, email, ref in (await session.execute(query)).all()
        ]


async def customers_matching(
    database: Database, text: str, *, limit: int, phones: Sequence[str] = ()
) -> list[CustomerSummary]:
    """Customers whose name contains `text` (in any case, `%` and `_` as letters), whose email is `text`,
    whose id it is, or whose phone is one of `phones` (what was typed, read as a number) or `text` in E.164, by id."""
    conditions = [
        name_has_words(Customer.name, text),
        equals_folded(Customer.email, text.strip()),
        equals_folded(Customer.external_ref, text.strip()),  # the practice's own patient number, in any case
    ]
    if phones:
        conditions.append(Customer.phone_e164.in_(phones))
    compact = text.replace(" ", "")
    number = compact.lstrip("#")
    if number.isascii() and number.isdigit() and len(number) < 19:
        conditions.append(Customer.id == int(number))
    if compact.startswith("+"):
        conditions.append(Customer.phone_e164 == compact)
    query = select(Customer).where(or_(*conditions)).order_by(Customer.id).limit(limit)
    async with database.read_sessions() as session:
        rows = list(await session.scalars(query))
    return [CustomerSummary(c.id, c.name, c.phone_e164, c.email, c.segment) for c in rows]


async def customer_profile(database: Database, customer_id: int) -> CustomerProfile | None:
    async with database.read_sessions() as session:
        customer = await session.get(Customer, customer_id)
        if customer is None:
            return None
        tags = list(
            await session.scalars(select(CustomerTag.tag).where(CustomerTag.customer_id == customer.id))
        )
        preference = await session.get(CommunicationPreference, customer.id)
    return CustomerProfile(
        id=customer.id,
        name=customer.name,
        phone_e164=customer.phone_e164,
        email=customer.email,
        locale=customer.locale,
        timezone=customer.timezone,
        segment=customer.segment,
        tags=tuple(tags),
        preferred_channel=preference.preferred_channel if preference else None,
        created_at=customer.created_at,
    )


async def customer_preferences(database: Database, customer_id: int) -> CustomerPreferences | None:
    async with database.read_sessions() as session:
        customer = await session.get(Customer, customer_id)
        if customer is None:
            return None
        preference = await session.get(CommunicationPreference, customer.id)
        consents = list(
            await session.scalars(
                select(CustomerConsent)
                .where(CustomerConsent.customer_id == customer.id)
                .order_by(CustomerConsent.channel)
            )
        )
        suppressed = await session.scalar(
            select(CustomerCommunication)
            .where(
                CustomerCommunication.customer_id == customer.id, CustomerCommunication.status == "suppressed"
            )
            .order_by(CustomerCommunication.created_at.desc(), CustomerCommunication.id.desc())
            .limit(1)
        )
    held_back = None
    if suppressed is not None:
        held_back = HeldBackMessage(
            suppressed.channel,
            suppressed.created_at,
            (suppressed.payload or {}).get("explanation"),
            suppressed.status_reason,
        )
    return CustomerPreferences(
        id=customer.id,
        name=customer.name,
        preferred_channel=preference.preferred_channel if preference else None,
        quiet_hours_start=preference.quiet_hours_start if preference else None,
        quiet_hours_end=preference.quiet_hours_end if preference else None,
        marketing_max_per_week=preference.marketing_max_per_week if preference else None,
        consents=tuple(ChannelConsent(c.channel, c.status, c.source, c.changed_at) for c in consents),
        last_held_back=held_back,
    )


@dataclass(frozen=True)
class ConsentStatement:
    """One entry of the consent ledger: what the customer said about a channel, through what, and when."""

    channel: str
    status: str
    source: str
    detail: str | None
    recorded_at: datetime


@dataclass(frozen=True)
class PreferencesAndConsent:
    """A customer's time zone, communication preferences, current consent per channel and whole consent ledger."""

    customer_id: int
    timezone: str
    preferred_channel: str | None
    quiet_hours_start: time | None
    quiet_hours_end: time | None
    marketing_max_per_week: int | None
    consents: tuple[ChannelConsent, ...]
    ledger: tuple[ConsentStatement, ...]  # oldest first


@dataclass(frozen=True)
class UnsubscribeSubject:
    """Who an unsubscribe link names, as its page needs them: their language, and whether they are already
    opted out of the link's channel."""

    locale: str
    opted_out: bool


async def unsubscribe_subject(
    database: Database, customer_id: int, channel: str
) -> UnsubscribeSubject | None:
    """None when there is no such customer."""
    async with database.read_sessions() as session:
        found = await session.execute(
            select(Customer.locale, CustomerConsent.status)
            .outerjoin(
                CustomerConsent,
                and_(CustomerConsent.customer_id == Customer.id, CustomerConsent.channel == channel),
            )
            .where(Customer.id == customer_id)
        )
        row = found.first()
    if row is None:
        return None
    return UnsubscribeSubject(str(row[0] or "en"), row[1] == ConsentStatus.OPTED_OUT.value)


async def customer_erased(database: Database, customer_id: int) -> bool | None:
    """Whether the customer was erased at their request (None: no such customer). Nothing more is recorded
    about an erased customer: their consent stays as the erasure closed it."""
    async with database.read_sessions() as session:
        found = await session.execute(select(Customer.erased_at).where(Customer.id == customer_id))
        row = found.first()
    return None if row is None else row[0] is not None


async def preferences_and_consent(database: Database, customer_id: int) -> PreferencesAndConsent | None:
    async with database.read_sessions() as session:
        customer = await session.get(Customer, customer_id)
        if customer is None:
            return None
        preference = await session.get(CommunicationPreference, customer_id)
        consents = await session.scalars(
            select(CustomerConsent).where(CustomerConsent.customer_id == customer_id)
        )
        current = tuple(ChannelConsent(c.channel, c.status, c.source, c.changed_at) for c in consents)
        ledger = await session.scalars(
            select(ConsentRecord)
            .where(ConsentRecord.customer_id == customer_id)
            .order_by(ConsentRecord.recorded_at, ConsentRecord.id)
        )
        statements = tuple(
            ConsentStatement(r.channel, r.status, r.source, r.detail, r.recorded_at) for r in ledger
        )
        return PreferencesAndConsent(
            customer_id=customer_id,
            timezone=customer.timezone,
            preferred_channel=preference.preferred_channel if preference else None,
            quiet_hours_start=preference.quiet_hours_start if preference else None,
            quiet_hours_end=preference.quiet_hours_end if preference else None,
            marketing_max_per_week=preference.marketing_max_per_week if preference else None,
            consents=current,
            ledger=statements,
        )


async def search_regions(database: Database, business_region: str) -> tuple[str, ...]:
    """The countries a phone number typed without +code may be of, in turn: the business's, then those of
    its clinics (a group with clinics in London and Zürich finds "07700 162625" and "079 040 85 40")."""
    async with database.read_sessions() as session:
        countries = await session.scalars(select(Location.country).distinct())
        clinics = sorted({c.upper() for c in countries if c})
    return tuple(dict.fromkeys([r for r in (business_region, *clinics) if r]))
