"""Merging an imported customer list into the database, a batch of rows per transaction.

A row is the customer with the same external reference, else the same phone number, else the same email
address: in the database, or earlier in the same file. That customer is updated (a name, empty contact
details filled, tags added, consent changes appended to the ledger); anyone else is created. Consent is
appended only when it differs from the customer's current consent for that channel, so importing the same
file again changes nothing. Everything is written with bulk statements (executemany), which is what makes a
million rows a matter of seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.pool import NullPool

from domain.clock import utc_now
from domain.consent.sources import IMPORTED_FROM
from domain.customers.importing import ImportRow
from domain.vocabulary import Channel
from storage.backups import BackupError, in_memory, scratch_copy
from storage.database import Database
from storage.engine import create_engine
from storage.models import (
    AuditLog,
    CommunicationPreference,
    ConsentRecord,
    Customer,
    CustomerConsent,
    CustomerTag,
)
from storage.sql import insert_rows, table_of

log = logging.getLogger(__name__)
CUSTOMERS = table_of(Customer)
#: Rows per transaction: a crash loses at most this many, and importing again finishes the rest.
BATCH_ROWS = 5_000
#: Ids per IN (...) when reading what the database holds about matched customers.
READ_CHUNK = 900


def _reaches(channel: str, has_phone: bool, has_email: bool) -> bool:
    """Whether a customer with (or without) a phone number and an email address has `channel`'s address."""
    return has_email if channel == Channel.EMAIL.value else has_phone


@dataclass
class ImportCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    merged_in_file: int = 0
    consents_recorded: int = 0
    tags_added: int = 0
    preferences_set: int = 0
    rejected: int = 0
    #: Rows imported without a part of them (a phone number that is none).
    left_out: int = 0
    #: Yeses and preferred channels for an address the customer has nowhere, in the file or on file.
    without_address: int = 0
    #: Lines of the file that gave a customer another phone number, email or reference than the one they
    #: have (stored, or from an earlier line): the held one is kept, and the summary names these lines.
    other_details_lines: list[int] = field(default_factory=list)

    def add(self, other: ImportCounts) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class _Pending:
    """A customer to create in this batch; later rows of the file may merge into it."""

    row: ImportRow
    slot: int
    #: Every (index, key) that points at `slot` until the customer has its id.
    keys: list[tuple[dict[str, int], str]] = field(default_factory=list)


@dataclass
class KnownCustomers:
    """Which customer each external reference, phone number and email address belongs to."""

    by_ref: dict[str, int] = field(default_factory=dict)
    by_phone: dict[str, int] = field(default_factory=dict)
    by_email: dict[str, int] = field(default_factory=dict)
    #: Each customer's reference (also for the placeholders of customers about to be created).
    ref_of: dict[int, str] = field(default_factory=dict)

    def find(self, row: ImportRow) -> int | None:
        """The customer this row is about: the same reference, else the same phone, else the same email. A
        customer with another reference is someone else, even with the same number (a family's mobile)."""
        if row.external_ref and row.external_ref in self.by_ref:
            return self.by_ref[row.external_ref]
        for key, index in ((row.phone, self.by_phone), (row.email, self.by_email)):
            if key and key in index:
                candidate = index[key]
                theirs = self.ref_of.get(candidate)
                if row.external_ref and theirs and theirs != row.external_ref:
                    continue
                return candidate
        return None

    def learn(
        self, customer_id: int, ref: str | None, phone: str | None, email: str | None
    ) -> list[tuple[dict[str, int], str]]:
        """Record the keys not yet known; returns those that now point at `customer_id`."""
        learned = []
        for key, index in ((ref, self.by_ref), (phone, self.by_phone), (email, self.by_email)):
            if key and index.setdefault(key, customer_id) == customer_id:
                learned.append((index, key))
        if ref and self.by_ref.get(ref) == customer_id:
            self.ref_of.setdefault(customer_id, ref)
        return learned

    def may_have(self, customer_id: int, kind: str, value: str | None) -> bool:
        """Whether `value` is free for this customer (nobody else's)."""
        return self.owner(kind, value) in (None, customer_id)

    def owner(self, kind: str, value: str | None) -> int | None:
        index = {"ref": self.by_ref, "phone": self.by_phone, "email": self.by_email}[kind]
        return index.get(value) if value else None


async def known_customers(database: Database) -> KnownCustomers:
    known = KnownCustomers()
    async with database.engine.connect() as connection:
        result = await connection.stream(
            select(Customer.id, Customer.external_ref, Customer.phone_e164, Customer.email).order_by(
                Customer.id
            )
        )
        async for customer_id, ref, phone, email in result:
            known.learn(customer_id, ref, phone, email)
    return known


@dataclass(frozen=True)
class ImportDefaults:
    timezone: str
    locale: str
    file_name: str


class CustomerImport:
    """One import run: feed it batches of rows; `dry_run` rolls every batch back after counting it."""

    def __init__(
        self, database: Database, known: KnownCustomers, defaults: ImportDefaults, *, dry_run: bool
    ) -> None:
        self.database = database
        self.known = known
        self.defaults = defaults
        self.dry_run = dry_run
        self.counts = ImportCounts()
        self._connection: AsyncConnection | None = None
        self._scratch = AsyncExitStack()

    async def __aenter__(self) -> CustomerImport:
        if self.dry_run:
            # One transaction for the whole run, rolled back at the end: the counts are exact, nothing stays.
            # On SQLite that transaction would hold the write lock from the first row to the last, and every
            # other write (a webhook, a Slack command, a send) would wait for it; so the run goes to a
            # scratch copy of the database instead, taken with the online backup API and deleted after.
            engine = self.database.engine
            async with AsyncExitStack() as stack:
                if engine.dialect.name == "sqlite" and not in_memory(self.database.url):
                    try:
                        scratch = await stack.enter_async_context(scratch_copy(self.database.url))
                    except (BackupError, OSError) as error:
                        # A full disk, say: the check still runs, on the database itself.
                        log.warning("dry run on the database itself, holding its write lock: %s", error)
                    else:
                        engine = create_engine(scratch, poolclass=NullPool)
                        stack.push_async_callback(engine.dispose)
                self._connection = await stack.enter_async_context(engine.connect())
                await self._connection.begin()
                stack.push_async_callback(self._connection.rollback)
                self._scratch = stack.pop_all()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._scratch.aclose()

    async def apply(self, rows: Sequence[ImportRow]) -> ImportCounts:
        if self._connection is not None:
            counts = await self._apply(self._connection, rows)
        else:
            async with self.database.engine.begin() as connection:
                counts = await self._apply(connection, rows)
        self.counts.add(counts)
        return counts

    async def record_run(self, actor: str, rejected: int, via: str = "cli", *, left_out: int = 0) -> None:
        """The run's audit entry (a dry run leaves none)."""
        if self.dry_run:
            return
        self.counts.rejected = rejected
        self.counts.left_out = left_out
        detail: dict[str, Any] = {"file": self.defaults.file_name, **self.counts.__dict__}
        # A count: the summary names the lines, and a big file's list has no place in an audit entry.
        detail["other_details_lines"] = len(self.counts.other_details_lines)
        async with self.database.engine.begin() as connection:
            await connection.execute(
                table_of(AuditLog).insert(),
                [
                    {
                        "actor": actor,
                        "via": via,
                        "action": "customers.import",
                        "target": None,
                        "detail": detail,
                    }
                ],
            )

    async def _apply(self, connection: AsyncConnection, rows: Sequence[ImportRow]) -> ImportCounts:
        counts = ImportCounts()
        pending: list[_Pending] = []
        # Rows for customers already stored, merged per customer (a file may name one several times).
        matched: dict[int, ImportRow] = {}
        for row in rows:
            found = self.known.find(row)
            if found is None:
                slot = -(len(pending) + 1)
                item = _Pending(row, slot)
                item.keys = self.known.learn(slot, row.external_ref, row.phone, row.email)
                pending.append(item)
            elif found < 0:
                item = pending[-found - 1]
                if _merge(item.row, row, partial(self.known.may_have, found)):
                    counts.other_details_lines.append(row.line)
                item.keys += self.known.learn(found, item.row.external_ref, item.row.phone, item.row.email)
                counts.merged_in_file += 1
            else:
                if found in matched:
                    if _merge(matched[found], row, partial(self.known.may_have, found)):
                        counts.other_details_lines.append(row.line)
                    counts.merged_in_file += 1
                else:
                    matched[found] = row
                # Later rows of the file with this customer's other details find them too.
                self.known.learn(
                    found,
                    row.external_ref if self.known.may_have(found, "ref", row.external_ref) else None,
                    row.phone if self.known.may_have(found, "phone", row.phone) else None,
                    row.email if self.known.may_have(found, "email", row.email) else None,
                )
        created = await self._create(connection, pending, counts)
        same_profile = await self._update(connection, matched, counts)
        everyone = {**created, **matched}
        await self._drop_what_has_no_address(connection, everyone, set(created), counts)
        # Existing customers who get a tag, a consent change or a preferred channel are updated too.
        touched: set[int] = set()
        await self._tags(connection, everyone, set(created), counts, touched)
        await self._consents(connection, everyone, set(created), counts, touched)
        await self._preferences(connection, everyone, set(created), counts, touched)
        counts.unchanged += len(same_profile - touched)
        counts.updated += len(matched) - len(same_profile - touched)
        return counts

    async def _create(
        self, connection: AsyncConnection, pending: list[_Pending], counts: ImportCounts
    ) -> dict[int, ImportRow]:
        if not pending:
            return {}
        defaults = self.defaults
        # Known as brought in by a list: a clinic's long-standing patients are no new customers of today.
        now = utc_now()
        values = [
            {
                "created_at": now,
                "imported_at": now,
                "external_ref": p.row.external_ref,
                "name": p.row.name,
                "phone_e164": p.row.phone,
                "email": p.row.email,
                "timezone": p.row.timezone or p.row.zone_guessed or defaults.timezone,
                "locale": p.row.locale or p.row.language_guessed or defaults.locale,
                "country": p.row.country,
                "segment": p.row.segment or "standard",
            }
            for p in pending
        ]
        ids = await _insert_returning_ids(connection, CUSTOMERS, values)
        created: dict[int, ImportRow] = {}
        for item, customer_id in zip(pending, ids, strict=True):
            for index, key in item.keys:
                index[key] = customer_id
            ref = self.known.ref_of.pop(item.slot, None)
            if ref:
                self.known.ref_of[customer_id] = ref
            created[customer_id] = item.row
        counts.created += len(created)
        return created

    async def _update(
        self, connection: AsyncConnection, matched: dict[int, ImportRow], counts: ImportCounts
    ) -> set[int]:
        """Updates the stored customers' details from their rows; returns those whose details were the same.
        A row naming another number, email or patient number than the customer has is listed (the held one
        stays)."""
        same: set[int] = set()
        if not matched:
            return same
        columns = (
            Customer.id,
            Customer.name,
            Customer.phone_e164,
            Customer.email,
            Customer.external_ref,
            Customer.country,
            Customer.locale,
            Customer.timezone,
            Customer.segment,
        )
        stored: dict[int, Any] = {}
        for chunk in _chunks(sorted(matched), READ_CHUNK):
            for record in (await connection.execute(select(*columns).where(Customer.id.in_(chunk)))).all():
                stored[record.id] = record
        changes = []
        for customer_id, row in matched.items():
            now = stored[customer_id]
            if any(
                given and held and given != held
                for given, held in (
                    (row.phone, now.phone_e164),
                    (row.email, now.email),
                    (row.external_ref, now.external_ref),
                )
            ):
                counts.other_details_lines.append(row.line)
            wanted = {
                "name": row.name,
                # Contact details fill what is empty; one that belongs to someone else is left alone.
                "phone_e164": now.phone_e164
                or (row.phone if self.known.owner("phone", row.phone) in (None, customer_id) else None),
                "email": now.email
                or (row.email if self.known.owner("email", row.email) in (None, customer_id) else None),
                "external_ref": now.external_ref
                or (
                    row.external_ref
                    if self.known.owner("ref", row.external_ref) in (None, customer_id)
                    else None
                ),
                "country": (row.country if row.country_given else now.country or row.country),
                "locale": row.locale or now.locale,
                "timezone": row.timezone or now.timezone,
                "segment": row.segment or now.segment,
            }
            if all(getattr(now, name) == value for name, value in wanted.items()):
                same.add(customer_id)
                continue
            changes.append({"b_id": customer_id, **{f"b_{name}": value for name, value in wanted.items()}})
            self.known.learn(customer_id, wanted["external_ref"], wanted["phone_e164"], wanted["email"])
        if changes:
            # Bound as b_<column>: a bind parameter may not share a column's name in an UPDATE.
            statement = (
                update(CUSTOMERS)
                .where(CUSTOMERS.c.id == bindparam("b_id"))
                .values(
                    {name.removeprefix("b_"): bindparam(name) for name in changes[0] if name != "b_id"}
                    | {"updated_at": bindparam("b_updated_at")}
                )
            )
            stamp = utc_now()
            await connection.execute(statement, [change | {"b_updated_at": stamp} for change in changes])
        return same

    async def _tags(
        self,
        connection: AsyncConnection,
        everyone: dict[int, ImportRow],
        created: set[int],
        counts: ImportCounts,
        touched: set[int],
    ) -> None:
        tagged = {customer_id: row.tags for customer_id, row in everyone.items() if row.tags}
        if not tagged:
            return
        held: set[tuple[int, str]] = set()
        existing = sorted(set(tagged) - created)
        for chunk in _chunks(existing, READ_CHUNK):
            held.update(
                (
                    await connection.execute(
                        select(CustomerTag.customer_id, CustomerTag.tag).where(
                            CustomerTag.customer_id.in_(chunk)
                        )
                    )
                ).all()
            )
        new: list[dict[str, Any]] = [
            {"customer_id": customer_id, "tag": tag}
            for customer_id, tags in tagged.items()
            for tag in sorted(tags)
            if (customer_id, tag) not in held
        ]
        await insert_rows(connection, table_of(CustomerTag), new)
        counts.tags_added += len(new)
        touched.update(tag["customer_id"] for tag in new)

    async def _drop_what_has_no_address(
        self,
        connection: AsyncConnection,
        everyone: dict[int, ImportRow],
        created: set[int],
        counts: ImportCounts,
    ) -> None:
        """A yes or a preferred channel the row gives without its address stands when the customer has that
        address on file (a consent refresh by patient number), else it is dropped: it would otherwise apply to
        whatever number or address is added later."""
        asking = {
            customer_id: row
            for customer_id, row in everyone.items()
            if row.preferred_needs_address or any(c.needs_address for c in row.consents)
        }
        if not asking:
            return
        on_file: dict[int, tuple[bool, bool]] = {}
        for chunk in _chunks(sorted(set(asking) - created), READ_CHUNK):
            query = select(Customer.id, Customer.phone_e164, Customer.email).where(Customer.id.in_(chunk))
            for customer_id, phone, email in (await connection.execute(query)).all():
                on_file[customer_id] = (phone is not None, email is not None)
        for customer_id, row in asking.items():
            has_phone, has_email = on_file.get(customer_id, (False, False))
            has = (has_phone or row.phone is not None, has_email or row.email is not None)
            kept = [c for c in row.consents if not c.needs_address or _reaches(c.channel, *has)]
            counts.without_address += len(row.consents) - len(kept)
            row.consents = kept
            if (
                row.preferred_needs_address
                and row.preferred_channel
                and not _reaches(row.preferred_channel, *has)
            ):
                row.preferred_channel = None
                counts.without_address += 1

    async def _consents(
        self,
        connection: AsyncConnection,
        everyone: dict[int, ImportRow],
        created: set[int],
        counts: ImportCounts,
        touched: set[int],
    ) -> None:
        given = {customer_id: row for customer_id, row in everyone.items() if row.consents}
        if not given:
            return
        current: dict[tuple[int, str], str] = {}
        #: When each current consent was given: what a file says of an earlier moment is old news (and
        #: importing the same file again must add nothing).
        since: dict[tuple[int, str], datetime] = {}
        for chunk in _chunks(sorted(set(given) - created), READ_CHUNK):
            query = select(
                CustomerConsent.customer_id,
                CustomerConsent.channel,
                CustomerConsent.status,
                CustomerConsent.changed_at,
            ).where(CustomerConsent.customer_id.in_(chunk))
            for customer_id, channel, status, changed_at in (await connection.execute(query)).all():
                current[(customer_id, channel)] = status
                since[(customer_id, channel)] = _aware(changed_at)
        records: list[dict[str, Any]] = []
        for customer_id, row in given.items():
            # The file's last word per channel (its latest date; the later line when two share one).
            final: dict[str, Any] = {}
            for consent in sorted(row.consents, key=lambda c: (c.at, c.line)):
                final[consent.channel] = consent
            for channel, consent in final.items():
                key = (customer_id, channel)
                if key in current:
                    if current[key] == consent.status.value:
                        continue
                    # Old news, or undated: a consent on record is only changed by a later, dated one.
                    if not consent.dated or consent.at <= since[key]:
                        continue
                records.append(
                    {
                        "customer_id": customer_id,
                        "channel": channel,
                        "status": consent.status.value,
                        "source": consent.source,
                        "detail": f"{IMPORTED_FROM}{self.defaults.file_name[:180]}, line {consent.line}",
                        "recorded_at": consent.at,
                    }
                )
        if not records:
            return
        ids = await _insert_returning_ids(connection, table_of(ConsentRecord), records)
        # The current consent is each customer and channel's last change (one row each for the upsert).
        last: dict[tuple[int, str], dict[str, Any]] = {}
        for record, record_id in zip(records, ids, strict=True):
            last[(record["customer_id"], record["channel"])] = {
                "customer_id": record["customer_id"],
                "channel": record["channel"],
                "status": record["status"],
                "source": record["source"],
                "record_id": record_id,
                "changed_at": record["recorded_at"],
            }
        await insert_rows(
            connection,
            table_of(CustomerConsent),
            list(last.values()),
            update_on_conflict=(("customer_id", "channel"), ("status", "source", "record_id", "changed_at")),
        )
        counts.consents_recorded += len(records)
        touched.update(record["customer_id"] for record in records)

    async def _preferences(
        self,
        connection: AsyncConnection,
        everyone: dict[int, ImportRow],
        created: set[int],
        counts: ImportCounts,
        touched: set[int],
    ) -> None:
        wanted = {
            customer_id: row.preferred_channel
            for customer_id, row in everyone.items()
            if row.preferred_channel
        }
        held: dict[int, str | None] = {}
        for chunk in _chunks(sorted(set(wanted) - created), READ_CHUNK):
            query = select(
                CommunicationPreference.customer_id, CommunicationPreference.preferred_channel
            ).where(CommunicationPreference.customer_id.in_(chunk))
            held.update(
                {customer_id: channel for customer_id, channel in (await connection.execute(query)).all()}
            )
        preferred: list[dict[str, Any]] = [
            {"customer_id": customer_id, "preferred_channel": channel}
            for customer_id, channel in wanted.items()
            if held.get(customer_id) != channel
        ]
        if not preferred:
            return
        await insert_rows(
            connection,
            table_of(CommunicationPreference),
            preferred,
            update_on_conflict=(("customer_id",), ("preferred_channel",)),
        )
        counts.preferences_set += len(preferred)
        touched.update(row["customer_id"] for row in preferred)


def _merge(into: ImportRow, row: ImportRow, free: Callable[[str, str | None], bool]) -> bool:
    """A later row of the file about the same customer: its name and profile win where it has them; its
    contact details and reference only fill what the earlier row left empty, as for a stored customer, and
    never take one that belongs to someone else (`free` says which are this customer's to take). True when
    it named another phone number, email or reference than the earlier row's, which is kept."""
    into.name = row.name or into.name
    differs = False
    for name, kind in (("phone", "phone"), ("email", "email"), ("external_ref", "ref")):
        value, held = getattr(row, name), getattr(into, name)
        if value and held and value != held:
            differs = True
        elif value and not held and free(kind, value):
            setattr(into, name, value)
            if name == "phone":
                into.zone_guessed = row.zone_guessed  # a zone read from a number goes with the number
    for name in ("locale", "timezone", "segment", "preferred_channel"):
        value = getattr(row, name)
        if value:
            setattr(into, name, value)
            if name == "preferred_channel":
                into.preferred_needs_address = row.preferred_needs_address
    # A country the row names wins; one guessed (from its number, which may not have been taken, or from the
    # import's region) only fills a country not held yet.
    if row.country and (row.country_given or not into.country):
        into.country, into.country_given = row.country, row.country_given
        into.language_guessed = row.language_guessed  # the language guessed goes with its country
    into.tags |= row.tags
    into.consents.extend(row.consents)
    into.line = row.line
    return differs


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _chunks(items: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def _insert_returning_ids(
    connection: AsyncConnection, table: Any, values: list[dict[str, Any]]
) -> list[int]:
    """Insert `values` and return their new ids in the same order.

    PostgreSQL: one executemany with RETURNING, ordered by SQLAlchemy. SQLite: RETURNING there would make
    SQLAlchemy send the rows one at a time (40x slower), so the rows get the ids above the highest one, given
    explicitly. Nobody else can insert in between: a SQLite write transaction holds the database's write
    lock from its first statement (storage/engine.py begins them IMMEDIATE)."""
    if connection.dialect.name == "postgresql":
        result = await connection.execute(
            table.insert().returning(table.c.id, sort_by_parameter_order=True), values
        )
        return [row[0] for row in result.all()]
    before = (await connection.execute(select(func.coalesce(func.max(table.c.id), 0)))).scalar_one()
    ids = list(range(before + 1, before + 1 + len(values)))
    await insert_rows(
        connection, table, [{"id": new_id, **row} for new_id, row in zip(ids, values, strict=True)]
    )
    return ids


@dataclass(frozen=True)
class PastImport:
    """One finished import, from its audit entry."""

    at: datetime
    actor: str
    via: str
    file: str
    created: int
    updated: int
    rejected: int
    left_out: int


async def past_imports(database: Database, limit: int = 10) -> list[PastImport]:
    """The latest finished imports (command line and dashboard), newest first."""
    async with database.read_sessions() as session:
        entries = await session.scalars(
            select(AuditLog)
            .where(AuditLog.action == "customers.import")
            .order_by(AuditLog.occurred_at.desc(), AuditLog.id.desc())
            .limit(limit)
        )
        found = []
        for entry in entries:
            detail = dict(entry.detail or {})
            found.append(
                PastImport(
                    _aware(entry.occurred_at),
                    entry.actor,
                    entry.via,
                    str(detail.get("file") or ""),
                    int(detail.get("created") or 0),
                    int(detail.get("updated") or 0),
                    int(detail.get("rejected") or 0),
                    int(detail.get("left_out") or 0),
                )
            )
        return found
