"""Naming messages with their month: on PostgreSQL `customer_communications` is partitioned by month of
`created_at` (storage/partitions.py), and an id alone does not say which month holds a message. A statement
that also says when its messages were created reads only their months' partitions. And which months are
being removed: the tables retention detached and marked, not yet set aside (storage/partitions.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, text, true
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from storage.sql import dialect_of

#: The comment storage/partitions.py puts on a month's table it detached, until the table is gone. The
#: removal (partitions) and the figures' check (message_feed, which partitions sets figures aside through)
#: both read it here.
DETACHED_MARK = "switchboard: a month of messages being removed"
#: Receipts look among the messages created since the start of this many months back first (a handful of
#: partitions), and among all months only for those not found there (storage/outbox.py).
RECENT_MONTHS = 1


def month_of(moment: datetime, ahead: int = 0) -> datetime:
    """The first instant (UTC) of the month `ahead` months after the one holding `moment`."""
    moment = moment.astimezone(UTC)
    index = moment.year * 12 + moment.month - 1 + ahead
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def recent_since(now: datetime) -> datetime:
    """Where "recent" messages begin: a receipt is nearly always for a message created since then, so a
    statement saying `created_at >= recent_since(now)` reads only the last months' partitions."""
    return month_of(now, -RECENT_MONTHS)


def known_creation_times(
    message_ids: Iterable[int], created: Mapping[int, datetime] | None
) -> dict[int, datetime] | None:
    """These messages' creation times if `created` knows every one (as a worker knows those it claimed), else
    None: a statement can name the rows by (id, created_at) only when it has both for all of them."""
    if not created:
        return None
    wanted = set(message_ids)
    known = {i: created[i] for i in wanted if i in created}
    return known if len(known) == len(wanted) else None


def within_their_months(
    created_column: ColumnElement[datetime],
    message_ids: Iterable[int],
    created: Mapping[int, datetime] | None,
) -> ColumnElement[bool]:
    """A condition every one of these messages meets, given their creation times: `created_column` between
    the earliest and the latest, so PostgreSQL reads only the month partitions in between rather than every
    month's index. No condition (TRUE) when one of them is not known."""
    known = known_creation_times(message_ids, created)
    if not known:
        return true()
    return created_column.between(min(known.values()), max(known.values()))


# --- months being removed (PostgreSQL): the tables storage/partitions.py detached and marked ---------------


async def marked_tables(session: AsyncSession | AsyncConnection, pattern: str) -> list[str]:
    """The plain tables (no partitions) of this schema named to `pattern` that `_drop_months` marked."""
    names = await session.execute(
        text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind = 'r' AND NOT c.relispartition "
            "AND c.relname ~ :pattern AND obj_description(c.oid, 'pg_class') = :mark ORDER BY 1"
        ),
        {"pattern": pattern, "mark": DETACHED_MARK},
    )
    return list(names.scalars())


async def months_detached(session: AsyncSession | AsyncConnection, table: str) -> set[datetime]:
    """The months of `table` that `_drop_months` detached and has not set aside yet."""
    names = await marked_tables(session, f"^{table}_[0-9]{{4}}_(0[1-9]|1[0-2])$")
    return {month_named(table, name) for name in names}


async def months_being_removed(session: AsyncSession) -> tuple[str, ...]:
    """The months of messages retention has taken out of sight and not yet set aside: ("2025-06",)."""
    if dialect_of(session) != "postgresql":
        return ()
    return tuple(
        f"{month:%Y-%m}" for month in sorted(await months_detached(session, "customer_communications"))
    )


def month_named(table: str, name: str) -> datetime:
    year, month = name.removeprefix(f"{table}_").split("_")
    return datetime(int(year), int(month), 1, tzinfo=UTC)
