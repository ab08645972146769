"""The messages and their status history by month: PostgreSQL's month partitions (migration 0020), and
dropping old months of messages on either engine.

On PostgreSQL `customer_communications` is partitioned by month of `created_at` and `message_status_events`
by month of `message_created_at`, with one default partition each for rows no month holds yet (history
imported from years back, say). `keep_month_partitions` runs in every worker's retention pass: it makes the
months ahead and moves rows out of a default partition into their months. `drop_old_messages` removes
whole months of messages older than SWITCHBOARD_MESSAGE_RETENTION_MONTHS: on PostgreSQL by dropping their
partitions (instant, and no dead rows left behind), on SQLite by deleting them in batches. Both remove the
same messages, with their status history and their send-once keys; chat turns that pointed at one keep
their text and lose the pointer. The daily figures (storage/message_feed.py) are separate tables: the
dashboard's counts for those months stay, and the removed messages' own figures are set aside as they go
(`dropped_message_figures`), so `switchboard analytics verify` still adds up.

A partitioned table's unique keys must hold its partition column, so on PostgreSQL a trigger keeps the
messages' two unique keys in key tables (`communication_idempotency_keys`, `communication_provider_ids`)
and refuses a duplicate as a unique constraint would. Where the SQLite statement says ON CONFLICT DO
NOTHING, the PostgreSQL one runs inside `skipping_duplicate_messages`, and the trigger skips the row instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BindParameter,
    bindparam,
    case,
    column,
    delete,
    func,
    select,
    table,
    text,
    true,
    update,
)
from sqlalchemy.engine import Result
from sqlalchemy.exc import DBAPIError, InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.expression import TableClause

from storage.analytics.rollup_store import ROLLUPS_LOCK_KEY
from storage.database import Database
from storage.message_feed import set_aside_figures
from storage.message_months import DETACHED_MARK, marked_tables, month_named, month_of, months_detached
from storage.models import AuditLog, ChatMessage, CustomerCommunication, MessageStatusEvent, RetentionMark
from storage.sql import dialect_of, insert_for, table_of

log = logging.getLogger(__name__)

#: (table, the column its months are of)
PARTITIONED = (("customer_communications", "created_at"), ("message_status_events", "message_created_at"))
KEY_TABLES = ("communication_idempotency_keys", "communication_provider_ids")
#: Month partitions kept ready ahead of this month.
MONTHS_AHEAD = 3
#: One process at a time changes the partitions (a transaction-scoped lock: fine behind PgBouncer).
PARTITIONS_LOCK_KEY = 0x5B_0020
#: DDL on a partitioned table waits for every transaction using it; past this it gives up until next pass.
LOCK_TIMEOUT = "5s"
#: Messages still to be sent: their month (and every later one) is kept until they are.
UNFINISHED = ("planned", "sending")
#: Messages deleted per transaction on SQLite.
DELETE_BATCH = 2_000
#: Messages (by their ids) whose send-once keys are deleted per transaction, when a month goes on PostgreSQL.
KEYS_BATCH = 100_000
#: Detaching a month holds every send back while it waits for a table: past this, the next pass tries again.
#: Its four waits stay below PostgreSQL's deadlock_timeout (1 s) together, so in a deadlock with another
#: transaction the removal gives way, not the other.
DETACH_LOCK_TIMEOUT = "200ms"
#: Dropping a removed month's table holds the readers of the tables its messages refer to back meanwhile.
DROP_LOCK_TIMEOUT = "200ms"
#: The suffix of a detached month's table once set aside (it keeps DETACHED_MARK until dropped).
REMOVED = "_removed"
#: The retention mark saying before when messages may be gone (through_at), written with each removal.
MESSAGES_GONE_MARK = "messages_removed"


def retention_boundary(now: datetime, months: int) -> datetime | None:
    """Messages created before this go (whole months: the first day of the month `months` months back);
    None when `months` is 0 (keep them)."""
    return month_of(now, -months) if months > 0 else None


async def messages_gone_before(session: AsyncSession | AsyncConnection) -> datetime | None:
    """Before when messages may have been removed by the retention setting (None: none ever were). What was
    counted from them before (the KPI rollups, the daily figures) cannot be counted again from what is left."""
    found = await session.execute(
        select(RetentionMark.through_at).where(RetentionMark.name == MESSAGES_GONE_MARK)
    )
    return found.scalar()


async def _mark_messages_gone(connection: AsyncConnection, before: datetime) -> None:
    """Note, in the removal's own transaction, that messages created before `before` may be gone."""
    marks = table_of(RetentionMark)
    statement = insert_for(connection, marks).values(
        name=MESSAGES_GONE_MARK, through_at=before, through_id=0, updated_at=datetime.now(UTC)
    )
    later = case(
        (marks.c.through_at < statement.excluded.through_at, statement.excluded.through_at),
        else_=marks.c.through_at,
    )
    await connection.execute(
        statement.on_conflict_do_update(
            index_elements=["name"], set_={"through_at": later, "updated_at": statement.excluded.updated_at}
        )
    )


def keys_written_here(session: AsyncSession | AsyncConnection) -> AbstractAsyncContextManager[None]:
    """Inserts of messages in this block write their idempotency keys themselves (storage.outbox_insert's
    set-based batch insert), so the key trigger leaves the rows alone (PostgreSQL only)."""
    return _message_keys(session, "off")


def skipping_duplicate_messages(session: AsyncSession | AsyncConnection) -> AbstractAsyncContextManager[None]:
    """Inserts of messages in this block skip a row whose idempotency key or provider id is taken, as
    ON CONFLICT DO NOTHING does on SQLite (PostgreSQL only; elsewhere it changes nothing)."""
    return _message_keys(session, "skip")


@asynccontextmanager
async def _message_keys(session: AsyncSession | AsyncConnection, mode: str) -> AsyncIterator[None]:
    """The key trigger's mode for this block (a setting local to the transaction, so fine behind PgBouncer)."""
    if dialect_of(session) != "postgresql":
        yield
        return
    await session.execute(text("SELECT set_config('switchboard.message_keys', :mode, true)"), {"mode": mode})
    try:
        yield
    except Exception:
        # A Python error leaves the transaction usable, so the mode must not outlive the block in it. A
        # database error has aborted the transaction, and with it the (transaction-local) setting: the reset
        # then fails too, and the first error is the one to raise.
        with suppress(DBAPIError, InvalidRequestError):
            await session.execute(text("SELECT set_config('switchboard.message_keys', '', true)"))
        raise
    await session.execute(text("SELECT set_config('switchboard.message_keys', '', true)"))


async def insert_message_once(session: AsyncSession, statement: Any, keys: Sequence[str]) -> Result[Any]:
    """Run an INSERT into customer_communications that skips a row whose `keys` (the idempotency key, or
    provider and provider id) another message has: ON CONFLICT DO NOTHING on SQLite, the key trigger's
    skip on PostgreSQL."""
    result: Result[Any]
    if dialect_of(session) == "postgresql":
        async with skipping_duplicate_messages(session):
            result = await session.execute(statement)
    else:
        result = await session.execute(statement.on_conflict_do_nothing(index_elements=list(keys)))
    return result


async def message_creation_times(
    session: AsyncSession, message_ids: Sequence[int], known: Mapping[int, datetime] | None = None
) -> dict[int, datetime]:
    """Each message's `created_at`, which its status-history rows carry (the column they are partitioned by):
    those `known` says, and the rest read from the messages."""
    found = {i: known[i] for i in message_ids if i in known} if known else {}
    wanted = sorted(set(message_ids) - set(found))
    if wanted:
        rows = await session.execute(
            select(CustomerCommunication.id, CustomerCommunication.created_at).where(
                CustomerCommunication.id.in_(wanted)
            )
        )
        found.update({row.id: row.created_at for row in rows})
    return found


@dataclass
class PartitionPass:
    created: list[str] = field(default_factory=list)
    moved: int = 0
    skipped: str | None = None  # why nothing was done (another process holds the lock, a lock timed out)


async def keep_month_partitions(database: Database, now: datetime) -> PartitionPass:
    """Make the month partitions from this month to MONTHS_AHEAD ahead, and one for every month a default
    partition holds rows of, moving those rows in. PostgreSQL only; one process at a time, one month per
    transaction (a move holds the default partition's lock until it commits)."""
    done = PartitionPass()
    if database.engine.dialect.name != "postgresql":
        return done
    try:
        await _keep_months(database, now, done)
    except DBAPIError as error:
        if (busy := _why_busy(error)) is None:
            raise
        done.skipped = busy
    return done


async def _keep_months(database: Database, now: datetime, done: PartitionPass) -> None:
    wanted = {month_of(now, ahead) for ahead in range(MONTHS_AHEAD + 1)}
    async with database.engine.connect() as connection:
        missing: list[tuple[str, str, datetime, bool]] = []
        for table, column in PARTITIONED:
            held = await _months_held(connection, table)
            # A month being removed keeps its name until it is set aside: its strays wait in the default.
            held |= await months_detached(connection, table)
            strays = {month.replace(tzinfo=UTC) for month in await _default_months(connection, table, column)}
            missing += [(table, column, m, m in strays) for m in sorted((wanted | strays) - held)]
    for table, column, month, stray in missing:
        async with database.engine.begin() as connection:
            if not await _lock(connection, done):
                return
            if month in await _months_held(connection, table):
                continue  # another process made it meanwhile
            name = f"{table}_{month:%Y_%m}"
            bounds = f"FROM ('{month.isoformat()}') TO ('{month_of(month, 1).isoformat()}')"
            if stray:
                # A partition cannot be made over rows the default one holds: make it apart, move the rows
                # in (the trigger leaves their keys alone), then attach it.
                await connection.execute(
                    text(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
                )
                await connection.execute(text("SELECT set_config('switchboard.message_keys', 'off', true)"))
                moved = await connection.execute(
                    text(
                        f"WITH moved AS (DELETE FROM {table}_default WHERE {column} >= :start "
                        f"AND {column} < :end RETURNING *) INSERT INTO {name} SELECT * FROM moved"
                    ),
                    {"start": month, "end": month_of(month, 1)},
                )
                await connection.execute(text("SELECT set_config('switchboard.message_keys', '', true)"))
                await connection.execute(
                    text(f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES {bounds}")
                )
                done.moved += moved.rowcount or 0
            else:
                await connection.execute(
                    text(f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES {bounds}")
                )
        done.created.append(name)


async def _default_months(connection: AsyncConnection, table: str, column: str) -> list[datetime]:
    found = await connection.execute(
        text(f"SELECT DISTINCT date_trunc('month', {column} AT TIME ZONE 'UTC') FROM {table}_default")
    )
    return list(found.scalars())


@dataclass
class MessagesDropped:
    boundary: datetime | None
    messages: int = 0
    months: list[str] = field(default_factory=list)
    finished: bool = True
    skipped: str | None = None
    #: The month of the oldest message still to be sent, when it held the boundary back.
    held_back_from: datetime | None = None
    #: The partition pass made first on PostgreSQL (months made ahead, rows moved out of the default).
    kept: PartitionPass | None = None
    #: Removed months' emptied tables whose drop waited too long for the tables their messages refer to
    #: (PostgreSQL): the next pass drops them.
    left_to_drop: list[str] = field(default_factory=list)

    def in_words(self) -> str:
        """What `drop_old_messages` did, in one line: what went, what stopped it, what waits for the next pass."""
        months = f" (months {', '.join(self.months)})" if self.months else ""
        if self.boundary is None and not self.messages:
            line = "kept (SWITCHBOARD_MESSAGE_RETENTION_MONTHS=0)"
            if self.skipped:
                line += f"; a removal an earlier pass began waits: {self.skipped}"
        elif self.boundary is None:
            line = (
                f"dropped {self.messages:,} that an earlier pass began removing{months}; "
                "nothing more is dropped (SWITCHBOARD_MESSAGE_RETENTION_MONTHS=0)"
            )
            if self.skipped:
                line += f"; then stopped: {self.skipped}"
        elif self.skipped and not self.messages:
            line = f"kept this time: {self.skipped}"
        else:
            more = "" if self.finished else " (more on the next pass)"
            held = (
                f"; kept from {self.held_back_from:%Y-%m} on: a message created then is still to be sent"
                if self.held_back_from
                else ""
            )
            line = (
                f"dropped {self.messages:,} created before "
                f"{self.applied_boundary:%Y-%m-%d} with their status history{months}{more}{held}"
            )
            if self.skipped:
                line += f"; then stopped: {self.skipped}"
        if self.left_to_drop:
            line += (
                f"; removed months' emptied tables ({', '.join(self.left_to_drop)}) wait to be dropped: the "
                "customers, templates or campaigns were busy; the next pass drops them"
            )
        return line

    @property
    def applied_boundary(self) -> datetime | None:
        """The boundary the drop used: the setting's, or an earlier one a message still to be sent held back."""
        return self.held_back_from or self.boundary


async def drop_old_messages(
    database: Database, months: int, now: datetime, *, business_tz: str
) -> MessagesDropped:
    """Remove the messages created before `retention_boundary(now, months)`, with their status history
    and keys; chat turns keep their text. A message still to be sent (planned, or being sent) holds back
    its month and every later one. PostgreSQL drops whole month partitions, a month per transaction;
    SQLite deletes rows, DELETE_BATCH per transaction, up to 50 batches a pass (`finished` False: more on
    the next pass). Both remove the same messages. Their daily figures stay, and are set aside in the same
    transaction (by the business's days) for `switchboard analytics verify` to add to its recount."""
    zone = ZoneInfo(business_tz)
    boundary = retention_boundary(now, months)
    done = MessagesDropped(boundary)
    if boundary is not None:
        async with database.engine.connect() as connection:
            unfinished = (
                await connection.execute(
                    select(func.min(CustomerCommunication.created_at)).where(
                        CustomerCommunication.status.in_(UNFINISHED),
                        CustomerCommunication.created_at < boundary,
                    )
                )
            ).scalar()
        if unfinished is not None:
            done.held_back_from = boundary = month_of(unfinished)
    if database.engine.dialect.name == "postgresql":
        # Without a boundary (retention turned off) it still finishes a month an earlier pass began removing.
        try:
            await _drop_months(database, boundary, now, zone, done)
            await _drop_removed(database, done)
        except DBAPIError as error:
            if (busy := _why_busy(error)) is None:
                raise
            done.skipped = busy
    elif boundary is not None:
        await _delete_rows(database, boundary, zone, done)
    if done.messages:
        async with database.sessions() as session:
            session.add(
                AuditLog(
                    actor="retention",
                    via="worker",
                    action="messages.drop",
                    target=None,
                    detail={
                        "messages": done.messages,
                        "created_before": boundary.isoformat() if boundary else None,
                        "months": months,
                        "partitions": done.months,
                    },
                )
            )
            await session.commit()
    return done


async def _drop_months(
    database: Database, boundary: datetime | None, now: datetime, zone: ZoneInfo, done: MessagesDropped
) -> None:
    """Each old month goes in steps, none of which holds sends back for longer than a catalog change.

    1. Its two partitions are detached, in a short transaction. It takes its locks in one order: the rollups'
       (a rollup update under way ends first; later ones see the mark written here and keep what they
       counted of the month), the tables the messages refer to (DETACH gives the month its own foreign keys,
       which lock them against writes), then both message tables. Nothing can change the month after it.
    2. Its keys are deleted, KEYS_BATCH messages per transaction.
    3. Chat turns are unhooked from it, its figures set aside, and it is emptied and renamed
       `…_removed_<time>`, in one transaction, with nothing else waiting.
    4. The emptied tables are dropped, each waiting at most DROP_LOCK_TIMEOUT for the tables the messages
       refer to (dropping a table with foreign keys locks them against readers too).
    A month a stopped pass left at any step is finished first by the next pass, also with retention off."""
    if not await _finish_detached(database, zone, done) or boundary is None:
        return
    # Rows in the default partitions go to their months first, so whole months hold everything.
    kept = done.kept = await keep_month_partitions(database, now)
    if kept.skipped:
        done.skipped = kept.skipped
        return
    messages, events = PARTITIONED[0][0], PARTITIONED[1][0]
    async with database.engine.connect() as connection:
        held = await _months_held(connection, messages) | await _months_held(connection, events)
    for month in sorted(m for m in held if month_of(m, 1) <= boundary):
        async with database.engine.begin() as connection:
            if not await _lock(connection, done, DETACH_LOCK_TIMEOUT):
                return
            attached = [t for t in (messages, events) if month in await _months_held(connection, t)]
            if not attached:
                continue  # another process detached it meanwhile
            await connection.execute(select(func.pg_advisory_xact_lock(ROLLUPS_LOCK_KEY)))
            if referred := await _referred_tables(connection, messages):
                await connection.execute(
                    text(f"LOCK TABLE {', '.join(referred)} IN SHARE ROW EXCLUSIVE MODE")
                )
            await connection.execute(text(f"LOCK TABLE {messages}, {events} IN ACCESS EXCLUSIVE MODE"))
            for table in attached:
                await connection.execute(text(f"ALTER TABLE {table} DETACH PARTITION {table}_{month:%Y_%m}"))
                await connection.execute(text(f"COMMENT ON TABLE {table}_{month:%Y_%m} IS '{DETACHED_MARK}'"))
            if messages in attached:
                await _mark_messages_gone(connection, month_of(month, 1))
        if not await _finish_detached(database, zone, done):
            return


async def _finish_detached(database: Database, zone: ZoneInfo, done: MessagesDropped) -> bool:
    """Steps 2 to 4 of `_drop_months` for every month it detached. False: the pass stopped short (another
    process holds the partitions' lock, or a table stayed busy), and the next one goes on. A removed month's
    empty table that could not be dropped yet (step 4) does not stop it."""
    messages, events = PARTITIONED[0][0], PARTITIONED[1][0]
    async with database.engine.connect() as connection:
        detached = {table: await months_detached(connection, table) for table in (messages, events)}
    for month in sorted(detached[messages] | detached[events]):
        name, history = f"{messages}_{month:%Y_%m}", f"{events}_{month:%Y_%m}"
        if month in detached[messages] and not await _release_month(database, name, done):
            return False
        async with database.engine.begin() as connection:
            if not await _lock(connection, done):
                return False
            here = [table for table in (name, history) if await _is_detached(connection, table)]
            if not here:
                continue  # another process finished it meanwhile
            # Locked before the long part: a long reader of the month (a backup) makes this pass give way
            # at once, not after summing it.
            await connection.execute(text(f"LOCK TABLE {', '.join(here)} IN ACCESS EXCLUSIVE MODE"))
            count = 0
            if name in here:
                count = (await connection.execute(text(f"SELECT count(*) FROM {name}"))).scalar_one()
                await set_aside_figures(connection, zone, true(), source=_like_messages(name))
                await _mark_messages_gone(connection, month_of(month, 1))
                # Emptied and renamed, not dropped: dropping a table with foreign keys locks the tables they
                # refer to (step 4). TRUNCATE locks only itself; the messages' text is gone with this commit.
                gone = f"{name}{REMOVED}_{int(datetime.now(UTC).timestamp())}"
                # Chat turns keep their text and lose the pointer (their row locks last only to the commit).
                await connection.execute(
                    text(
                        f"UPDATE chat_messages c SET communication_id = NULL FROM {name} m "
                        "WHERE c.communication_id = m.id"
                    )
                )
                await connection.execute(text(f"TRUNCATE {name}"))
                await connection.execute(text(f"ALTER TABLE {name} RENAME TO {gone}"))
            if history in here:
                await connection.execute(text(f"DROP TABLE {history}"))  # no foreign keys: locks only itself
        done.messages += int(count)
        done.months.append(f"{month:%Y-%m}")
    return True


async def _release_month(database: Database, name: str, done: MessagesDropped) -> bool:
    """Delete the key-table rows of exactly the messages of a detached month (a message dated in the month
    that arrived later sits in the default partition and keeps its keys; a key a newer message holds since is
    not theirs), KEYS_BATCH messages per transaction. Nothing can reach the month's messages any more, so
    doing this ahead of the figures changes nothing another process can see, and doing it again is harmless.
    False: another process holds the partitions' lock."""
    after = -1
    while True:
        async with database.engine.begin() as connection:
            if not await _lock(connection, done):
                return False
            if not await _is_detached(connection, name):
                return True  # another process finished it meanwhile
            last = (
                await connection.execute(
                    text(
                        f"SELECT max(id) FROM (SELECT id FROM {name} WHERE id > :after ORDER BY id LIMIT :n) s"
                    ),
                    {"after": after, "n": KEYS_BATCH},
                )
            ).scalar()
            if last is None:
                return True
            ids = {"low": after, "high": last}
            await connection.execute(
                text(
                    f"DELETE FROM communication_idempotency_keys k USING {name} m WHERE m.id > :low "
                    "AND m.id <= :high AND k.idempotency_key = m.idempotency_key AND k.created_at = m.created_at"
                ),
                ids,
            )
            await connection.execute(
                text(
                    f"DELETE FROM communication_provider_ids k USING {name} m WHERE m.id > :low AND m.id <= :high "
                    "AND k.provider = m.provider AND k.provider_message_id = m.provider_message_id "
                    "AND k.created_at = m.created_at"
                ),
                ids,
            )
            after = int(last)


async def _drop_removed(database: Database, done: MessagesDropped) -> None:
    """Step 4: drop the months' tables set aside, emptied and renamed. Each drop waits at most
    DROP_LOCK_TIMEOUT for the tables the messages refer to (their readers wait behind it meanwhile), three
    times, then is left to the next pass (`left_to_drop`): the month is gone already, only an empty table
    waits."""
    async with database.engine.connect() as connection:
        names = await marked_tables(
            connection, f"^{PARTITIONED[0][0]}_[0-9]{{4}}_[0-9]{{2}}{REMOVED}_[0-9]+$"
        )
    done.left_to_drop = []
    for name in names:
        for attempt in range(3):
            try:
                async with database.engine.begin() as connection:
                    if not await _lock(connection, done, DROP_LOCK_TIMEOUT):
                        return  # another process holds the partitions' lock
                    await connection.execute(text(f"DROP TABLE IF EXISTS {name}"))
                break
            except DBAPIError as error:
                if _why_busy(error) is None:
                    raise
                await asyncio.sleep(0.5 * (attempt + 1))
        else:
            done.left_to_drop.append(name)


async def _referred_tables(connection: AsyncConnection, table: str) -> list[str]:
    """The tables `table`'s foreign keys refer to (customers, templates, campaigns), in name order."""
    found = await connection.execute(
        text(
            "SELECT DISTINCT confrelid::regclass::text AS name FROM pg_constraint "
            "WHERE conrelid = CAST(:table AS regclass) AND contype = 'f' ORDER BY 1"
        ),
        {"table": table},
    )
    return list(found.scalars())


async def _is_detached(connection: AsyncConnection, name: str) -> bool:
    """Whether `name` is a month `_drop_months` detached (marked, and no partition) and still there."""
    found = await connection.execute(
        text(
            "SELECT 1 FROM pg_class WHERE oid = to_regclass(:name) AND NOT relispartition "
            "AND obj_description(oid, 'pg_class') = :mark"
        ),
        {"name": name, "mark": DETACHED_MARK},
    )
    return found.scalar() is not None


def _like_messages(name: str) -> TableClause:
    """A table with the messages' columns under another name (a detached month)."""
    return table(name, *(column(c.name, c.type) for c in table_of(CustomerCommunication).c))


async def _delete_rows(database: Database, boundary: datetime, zone: ZoneInfo, done: MessagesDropped) -> None:
    cc, events, turns = CustomerCommunication, MessageStatusEvent, ChatMessage
    for _ in range(50):
        async with database.engine.begin() as connection:
            ids = list(
                (
                    await connection.execute(
                        select(cc.id).where(cc.created_at < boundary).order_by(cc.id).limit(DELETE_BATCH)
                    )
                ).scalars()
            )
            if not ids:
                return
            await set_aside_figures(connection, zone, cc.id.in_(ids))
            await _mark_messages_gone(connection, boundary)
            chosen: BindParameter[int] = bindparam("ids", expanding=True)
            await connection.execute(
                update(turns).where(turns.communication_id.in_(chosen)).values(communication_id=None),
                {"ids": ids},
            )
            await connection.execute(delete(events).where(events.communication_id.in_(chosen)), {"ids": ids})
            await connection.execute(delete(cc).where(cc.id.in_(chosen)), {"ids": ids})
            done.messages += len(ids)
    done.finished = False


def _why_busy(error: DBAPIError) -> str | None:
    """Why a pass gave way to the transactions using the tables (the next pass tries again), if it did."""
    code = getattr(error.orig, "sqlstate", None)
    if code == "55P03" or "lock timeout" in str(error):
        return "another transaction kept a table busy; the next pass tries again"
    if code == "40P01" or "deadlock detected" in str(error):
        return "another transaction was waiting for a table this pass held; the next pass tries again"
    return None


async def _lock(
    connection: AsyncConnection, done: PartitionPass | MessagesDropped, wait: str | None = None
) -> bool:
    taken = (
        await connection.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": PARTITIONS_LOCK_KEY})
    ).scalar_one()
    if not taken:
        done.skipped = "another process is changing the partitions"
        return False
    await connection.execute(text(f"SET LOCAL lock_timeout = '{wait or LOCK_TIMEOUT}'"))
    return True


async def _months_held(connection: AsyncConnection, table: str) -> set[datetime]:
    """The months `table` has a partition for (named `{table}_YYYY_MM`, as migration 0020 names them)."""
    names = (
        await connection.execute(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = CAST(:table AS regclass)"
            ),
            {"table": table},
        )
    ).scalars()
    return {month_named(table, name) for name in names if name != f"{table}_default"}
