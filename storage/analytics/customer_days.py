"""Kept daily sets of customers with a counted order (customer_activity_days): distinct customers over
whole local days without reading the period's orders.

Active, returning and churned customers are distinct counts, so day rollups do not add up to a month.
Each local business day instead keeps the set of customers who placed a counted order that day, as a
bitset of customer ids (bit i is customer i; Python's integers do the union, difference and count).
A period's customers are the union of its days; those who ordered before it, the union of the days
before. A day's set is (max customer id / 8) bytes: 25 KB at 200,000 customers.

The sets are exact only for ranges that start and end on local midnights of the timezone they were
cut in; callers check that (and the rollup watermark's timezone) before reading them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, literal, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.analytics.bucketing import key_to_utc, local_key_builder
from storage.analytics.facts import SOURCES
from storage.database import Database
from storage.models import CustomerActivityDay, Order
from storage.models.base import UtcDateTime

#: Rows written per INSERT (each carries one day's bitset).
_WRITE_BATCH = 200


def bitset(customer_ids: Sequence[int]) -> bytes:
    """Little-endian bytes in which bit i is set for each customer id i."""
    if not customer_ids:
        return b""
    bits = bytearray(max(customer_ids) // 8 + 1)
    for customer_id in customer_ids:
        bits[customer_id >> 3] |= 1 << (customer_id & 7)
    return bytes(bits)


def members(customers: int) -> list[int]:
    """The customer ids in a bitset (for checks and tests; counting needs only `int.bit_count`)."""
    found = []
    while customers:
        low = customers & -customers
        found.append(low.bit_length() - 1)
        customers ^= low
    return found


async def _customers_by_day(
    session: AsyncSession, dialect: str, tz: str, start: datetime, end: datetime
) -> dict[datetime, list[int]]:
    """{UTC start of each local day: ids of customers with a counted order that day} over [start, end)."""
    orders = SOURCES["orders"]
    key = local_key_builder(dialect, "day", tz, start, end)
    statement = (
        select(key(Order.created_at).label("day"), Order.customer_id)
        .where(
            orders.condition if orders.condition is not None else true(),
            Order.created_at >= literal(start, UtcDateTime),
            Order.created_at < literal(end, UtcDateTime),
            Order.customer_id.is_not(None),
        )
        .distinct()
    )
    days: dict[datetime, list[int]] = defaultdict(list)
    for day, customer_id in await session.execute(statement):
        days[key_to_utc(day, "day", tz)].append(int(customer_id))
    return days


async def recount_customer_days(
    session: AsyncSession, dialect: str, tz: str, ranges: Sequence[tuple[datetime, datetime]]
) -> int:
    """Rewrite the kept days of these [start, end) ranges (whole local days) from the orders.

    Days without counted orders keep no row. Rows are upserted, so two workers recounting the same day
    at once both succeed; on PostgreSQL `update_rollups_for` lets one worker at a time recount. Returns the
    day rows written.
    """
    written = 0
    for start, end in ranges:
        days = await _customers_by_day(session, dialect, tz, start, end)
        emptied = delete(CustomerActivityDay).where(
            CustomerActivityDay.day_start >= literal(start, UtcDateTime),
            CustomerActivityDay.day_start < literal(end, UtcDateTime),
        )
        if days:
            emptied = emptied.where(CustomerActivityDay.day_start.not_in(list(days)))
        await session.execute(emptied)
        now = datetime.now(UTC)
        rows = [
            {"day_start": day, "customers": bitset(ids), "customer_count": len(ids), "updated_at": now}
            for day, ids in sorted(days.items())
        ]
        for offset in range(0, len(rows), _WRITE_BATCH):
            await session.execute(_upsert(dialect), rows[offset : offset + _WRITE_BATCH])
        written += len(rows)
    return written


def _upsert(dialect: str) -> Any:
    statement = (
        postgresql.insert(CustomerActivityDay)
        if dialect == "postgresql"
        else sqlite.insert(CustomerActivityDay)
    )
    return statement.on_conflict_do_update(
        index_elements=["day_start"],
        set_={
            "customers": statement.excluded.customers,
            "customer_count": statement.excluded.customer_count,
            "updated_at": statement.excluded.updated_at,
        },
    )


async def clear_customer_days(session: AsyncSession) -> None:
    await session.execute(delete(CustomerActivityDay))


async def customers_between(session: AsyncSession, start: datetime | None, end: datetime) -> int:
    """The union of the kept days starting in [start, end) (from the first day when start is None)."""
    statement = select(CustomerActivityDay.customers).where(
        CustomerActivityDay.day_start < literal(end, UtcDateTime)
    )
    if start is not None:
        statement = statement.where(CustomerActivityDay.day_start >= literal(start, UtcDateTime))
    union = 0
    for (customers,) in await session.execute(statement):
        union |= int.from_bytes(customers, "little")
    return union


async def active_customers(session: AsyncSession, start: datetime, end: datetime) -> int:
    """Customers with a counted order in [start, end)."""
    return (await customers_between(session, start, end)).bit_count()


async def returning_customers(session: AsyncSession, start: datetime, end: datetime) -> int:
    """Customers with a counted order in [start, end) who had one before start."""
    during = await customers_between(session, start, end)
    before = await customers_between(session, None, start)
    return (during & before).bit_count()


async def churn_from_days(
    session: AsyncSession, *, start: datetime, end: datetime, previous_start: datetime
) -> tuple[float, float]:
    """(customers who ordered in [previous_start, start) but not in [start, end), those who ordered before).

    The same figures as `storage.analytics.queries.churn_counts`, from the kept days.
    """
    earlier = await customers_between(session, previous_start, start)
    later = await customers_between(session, start, end)
    return float((earlier & ~later).bit_count()), float(earlier.bit_count())


def _day_of(moment: datetime, tz: str) -> tuple[datetime, datetime]:
    """The UTC [start, end) of the local day containing `moment`."""
    zone = ZoneInfo(tz)
    day = moment.astimezone(zone).date()
    start = datetime.combine(day, time(), zone)
    end = datetime.combine(day + timedelta(days=1), time(), zone)
    return start.astimezone(UTC), end.astimezone(UTC)


@dataclass
class CustomerDaysCheck:
    """How the kept days compare with a recount of the orders."""

    days: int = 0
    #: (UTC day start, customers kept, customers recounted) for each day that differs.
    drift: list[tuple[datetime, int, int]] = field(default_factory=list)
    repaired: bool = False


async def check_customer_days(database: Database, tz: str, *, repair: bool = False) -> CustomerDaysCheck:
    """Recount every kept day from the orders; with repair, rewrite the days that differ."""
    check = CustomerDaysCheck()
    async with database.sessions() as session:
        span = (await session.execute(select(func.min(Order.created_at), func.max(Order.created_at)))).one()
        kept = {
            day: (customers, count)
            for day, customers, count in await session.execute(
                select(
                    CustomerActivityDay.day_start,
                    CustomerActivityDay.customers,
                    CustomerActivityDay.customer_count,
                )
            )
        }
        recounted: dict[datetime, list[int]] = {}
        if span[0] is not None:
            start, end = _day_of(span[0], tz)[0], _day_of(span[1], tz)[1]
            recounted = await _customers_by_day(session, database.dialect, tz, start, end)
        for day in sorted(set(kept) | set(recounted)):
            check.days += 1
            ids = recounted.get(day, [])
            customers, count = kept.get(day, (b"", 0))
            if int.from_bytes(customers, "little") != int.from_bytes(bitset(sorted(ids)), "little") or (
                count != len(ids)
            ):
                check.drift.append((day, count, len(ids)))
        if repair and check.drift:
            for day, _, _ in check.drift:
                await recount_customer_days(session, database.dialect, tz, [_day_of(day, tz)])
            await session.commit()
            check.repaired = True
    return check
