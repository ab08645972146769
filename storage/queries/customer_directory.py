"""The dashboard's customer list and customer page: customers found by a search (name, email, phone or #id)
and segment, newest first, a page at a time; and everything staff see of one customer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, select

from storage.database import Database
from storage.models import ChatSession, ConsentRecord, Customer, Location
from storage.queries.customer_card import CustomerCard, customer_card
from storage.queries.customers import ConsentStatement
from storage.sql import contains_folded, equals_folded, name_has_words

#: Customers per page of the list.
PAGE_SIZE = 50
#: Conversations the customer page lists, the latest first.
CONVERSATIONS_SHOWN = 10


@dataclass(frozen=True)
class DirectorySearch:
    """What staff typed, as conditions: `text` in the name, or in the email when they may see emails whole
    (`whole_emails`; otherwise the email must be all of `text`, so that a shortened address cannot be guessed
    a letter at a time), `phones` (what was typed read as a number of the business's or a clinic's country,
    E.164) or `customer_id` exactly; and a
    segment. Letters are compared without case by the database, so both sides are lowercased alike."""

    text: str = ""
    phones: tuple[str, ...] = ()
    customer_id: int | None = None
    segment: str | None = None
    whole_emails: bool = False

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.text:
            email = (
                contains_folded(Customer.email, self.text)
                if self.whole_emails
                else equals_folded(Customer.email, self.text)
            )
            # The practice's own patient number ("NW-C0000005") finds its patient, whole, in any case.
            anywhere = [
                name_has_words(Customer.name, self.text),
                email,
                equals_folded(Customer.external_ref, self.text.strip()),
            ]
            if self.phones:
                anywhere.append(Customer.phone_e164.in_(self.phones))
            if self.customer_id is not None:
                anywhere.append(Customer.id == self.customer_id)
            found.append(or_(*anywhere))
        if self.segment:
            found.append(Customer.segment == self.segment)
        return found


@dataclass(frozen=True)
class CustomerListRow:
    id: int
    name: str
    phone_e164: str | None
    email: str | None
    segment: str
    created_at: datetime
    erased_at: datetime | None
    #: The practice's own number for them (imported or sent by its system), if any.
    external_ref: str | None = None


@dataclass(frozen=True)
class CustomerList:
    rows: tuple[CustomerListRow, ...]
    #: Every customer the search matches, on every page, counted up to COUNTED_UP_TO + 1 (then "more than").
    total: int
    next_before: int | None  # the id the next (older) page starts before; None: this is the last page

    @property
    def more_than_counted(self) -> bool:
        return self.total > COUNTED_UP_TO


#: A count stops here: a search over millions of customers should not read them all to say how many.
COUNTED_UP_TO = 100_000


async def customer_list(
    database: Database, search: DirectorySearch, *, before: int | None = None, limit: int = PAGE_SIZE
) -> CustomerList:
    """The customers `search` matches, newest first, `limit` at a time, starting below id `before`."""
    conditions = search.conditions()
    page = select(Customer).where(*conditions)
    if before is not None:
        page = page.where(Customer.id < before)
    page = page.order_by(Customer.id.desc()).limit(limit + 1)
    matching = select(Customer.id).where(*conditions).limit(COUNTED_UP_TO + 1).subquery()
    async with database.read_sessions() as session:
        found = list(await session.scalars(page))
        total = int(await session.scalar(select(func.count()).select_from(matching)) or 0)
    rows = tuple(
        CustomerListRow(
            c.id, c.name, c.phone_e164, c.email, c.segment, c.created_at, c.erased_at, c.external_ref
        )
        for c in found[:limit]
    )
    return CustomerList(rows, total, rows[-1].id if len(found) > limit else None)


async def customer_segments(database: Database) -> list[str]:
    async with database.read_sessions() as session:
        return sorted(await session.scalars(select(Customer.segment).distinct()))


@dataclass(frozen=True)
class ConversationLine:
    id: int
    channel: str
    status: str
    started_at: datetime
    last_message_at: datetime | None


@dataclass(frozen=True)
class CustomerRecord:
    """One customer as the customer page shows them."""

    id: int
    name: str
    phone_e164: str | None
    email: str | None
    external_ref: str | None
    locale: str
    timezone: str
    country: str | None
    segment: str
    home_clinic: str | None
    telegram: bool
    whatsapp: bool
    created_at: datetime
    erased_at: datetime | None
    card: CustomerCard  # consent, preferences, recent orders and appointments, tags
    ledger: tuple[ConsentStatement, ...]  # every consent statement, oldest first
    conversations: tuple[ConversationLine, ...]  # the latest CONVERSATIONS_SHOWN, any status


async def customer_record(database: Database, customer_id: int) -> CustomerRecord | None:
    # The card reads the preferences and current consent; only the ledger is read here besides.
    card = await customer_card(database, customer_id, chat_id=None)
    if card is None:
        return None
    async with database.read_sessions() as session:
        customer = await session.get(Customer, customer_id)
        if customer is None:
            return None
        ledger = tuple(
            ConsentStatement(r.channel, r.status, r.source, r.detail, r.recorded_at)
            for r in await session.scalars(
                select(ConsentRecord)
                .where(ConsentRecord.customer_id == customer_id)
                .order_by(ConsentRecord.recorded_at, ConsentRecord.id)
            )
        )
        clinic = (
            await session.scalar(select(Location.name).where(Location.id == customer.home_location_id))
            if customer.home_location_id is not None
            else None
        )
        conversations = (
            await session.execute(
                select(
                    ChatSession.id,
                    ChatSession.channel,
                    ChatSession.status,
                    ChatSession.started_at,
                    ChatSession.last_message_at,
                )
                .where(ChatSession.customer_id == customer_id)
                .order_by(ChatSession.started_at.desc(), ChatSession.id.desc())
                .limit(CONVERSATIONS_SHOWN)
            )
        ).all()
    return CustomerRecord(
        id=customer.id,
        name=customer.name,
        phone_e164=customer.phone_e164,
        email=customer.email,
        external_ref=customer.external_ref,
        locale=customer.locale,
        timezone=customer.timezone,
        country=customer.country,
        segment=customer.segment,
        home_clinic=clinic,
        telegram=customer.telegram_chat_id is not None,
        whatsapp=customer.whatsapp_id is not None,
        created_at=customer.created_at,
        erased_at=customer.erased_at,
        card=card,
        ledger=ledger,
        conversations=tuple(ConversationLine(*row) for row in conversations),
    )
