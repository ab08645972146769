"""The daily communication figures (`communication_analytics`): each message counted once per figure.

A message's figures (sent, delivered, read, failed, replied, and its cost with "sent") go on the business
day it was sent — or failed, if it never went — under its channel, provider, campaign and template, so a
day's delivery rate is about that day's messages however late their receipts come. Whether a figure was
counted is a bit on the message itself (`counted`), flipped by the same statement that finds it unset;
so the worker's record of an acceptance and a receipt that overtook it, a retried webhook, a replayed
batch or two processes at once can each try, and exactly one of them adds to the figure.
`recount` derives the same figures from the messages' own timestamps, for `switchboard analytics verify`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    Table,
    and_,
    case,
    cast,
    delete,
    func,
    select,
    text,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.expression import TableClause

from storage.database import Database
from storage.message_months import months_being_removed, within_their_months
from storage.models import CommunicationAnalytics, CustomerCommunication, DroppedMessageFigures
from storage.sql import dialect_of, insert_for, table_of

CC = table_of(CustomerCommunication)
FEED = table_of(CommunicationAnalytics)
DROPPED = table_of(DroppedMessageFigures)

#: The bit each message figure keeps in `customer_communications.counted`.
FIGURE_BITS: Mapping[str, int] = {"sent": 1, "delivered": 2, "read": 4, "failed": 8, "replied": 16}
#: The timestamp that says a message reached a figure; only a message that has it is counted in it.
FIGURE_MOMENTS = {
    "sent": CC.c.sent_at,
    "delivered": CC.c.delivered_at,
    "read": CC.c.read_at,
    "failed": CC.c.failed_at,
    "replied": CC.c.replied_at,
}
#: What a sent SMS adds besides "sent" and its cost, under its encoding: itself, its billed segments, and
#: whether it took more than one segment ("long").
SEGMENT_FIGURES = ("gsm7_sent", "gsm7_segments", "gsm7_long", "ucs2_sent", "ucs2_segments", "ucs2_long")
#: The carriers' encodings as `customer_communications.encoding` names them, and their figures' prefix.
ENCODING_PREFIX = {"GSM-7": "gsm7", "UCS-2": "ucs2"}
#: The figures a message contributes to (opt-outs are counted per customer, not per message).
MESSAGE_FIGURES = ("sent", "delivered", "read", "failed", "replied", "cost_micros", *SEGMENT_FIGURES)
#: A feed row's key: (channel, provider, campaign id or 0, template id or 0).
FeedKey = tuple[str, str, int, int]


def send_day(
    sent_at: datetime | None, failed_at: datetime | None, created_at: datetime, zone: ZoneInfo
) -> date:
    """The business day a message's figures belong to: when it was sent, else when it failed, else written."""
    moment = sent_at or failed_at or created_at
    return moment.astimezone(zone).date()


def segment_figures(segments: int | None, encoding: str | None) -> dict[str, int]:
    """The segment figures a sent message adds: none unless it is an SMS whose segments were counted."""
    prefix = ENCODING_PREFIX.get(encoding or "")
    if not segments or prefix is None:
        return {}
    figures = {f"{prefix}_sent": 1, f"{prefix}_segments": segments}
    if segments > 1:
        figures[f"{prefix}_long"] = 1
    return figures


def counted_bits(
    sent_at: datetime | None,
    delivered_at: datetime | None,
    read_at: datetime | None,
    failed_at: datetime | None,
    replied_at: datetime | None,
) -> int:
    """The `counted` bits of a message whose figures are all in the feed (seeding, backfill)."""
    moments = {
        "sent": sent_at,
        "delivered": delivered_at,
        "read": read_at,
        "failed": failed_at,
        "replied": replied_at,
    }
    return sum(FIGURE_BITS[name] for name, moment in moments.items() if moment is not None)


async def count_once(
    session: AsyncSession,
    zone: ZoneInfo,
    figure: str,
    message_ids: Iterable[int],
    created: Mapping[int, datetime] | None = None,
) -> int:
    """Add 1 to `figure` for each message not yet counted in it (and its cost, for "sent"); how many were.
    `created`, the messages' creation times where the caller has them, lets PostgreSQL read only their months."""
    ids = sorted(set(message_ids))  # one lock order for every writer: no deadlocks between them
    if not ids:
        return 0
    bit = FIGURE_BITS[figure]
    rows = (
        await session.execute(
            update(CC)
            .where(
                CC.c.id.in_(ids),
                within_their_months(
                    CC.c.created_at, ids, created if dialect_of(session) == "postgresql" else None
                ),
                CC.c.counted.op("&", return_type=Integer)(bit) == 0,
                FIGURE_MOMENTS[figure].is_not(None),
            )
            .values(counted=CC.c.counted.op("|", return_type=Integer)(bit))
            .returning(
                CC.c.channel,
                CC.c.provider,
                CC.c.campaign_id,
                CC.c.template_id,
                CC.c.cost_micros,
                CC.c.segments,
                CC.c.encoding,
                CC.c.sent_at,
                CC.c.failed_at,
                CC.c.created_at,
            )
            .execution_options(synchronize_session=False)
        )
    ).all()
    totals: dict[date, Counter[tuple[str, str, int, int, str]]] = {}
    for row in rows:
        day = send_day(row.sent_at, row.failed_at, row.created_at, zone)
        key = (row.channel, row.provider, row.campaign_id or 0, row.template_id or 0)
        day_totals = totals.setdefault(day, Counter())
        day_totals[(*key, figure)] += 1
        if figure == "sent":
            if row.cost_micros:
                day_totals[(*key, "cost_micros")] += row.cost_micros
            for name, amount in segment_figures(row.segments, row.encoding).items():
                day_totals[(*key, name)] += amount
    for day in sorted(totals):
        await bump_feed(session, day, totals[day])
    return len(rows)


async def add_cost(session: AsyncSession, day: date, key: FeedKey, micros: int) -> None:
    """A provider told us a counted message's real cost afterwards: the day's cost follows it."""
    if micros:
        await bump_feed(session, day, Counter({(*key, "cost_micros"): micros}))


async def bump_feed(
    session: AsyncSession, day: date, totals: Counter[tuple[str, str, int, int, str]]
) -> None:
    """Adds to the daily communication figures, creating rows as needed (in key order: one lock order)."""
    by_key: dict[tuple[str, str, int, int], dict[str, int]] = {}
    for (channel, provider, campaign_id, template_id, name), amount in totals.items():
        by_key.setdefault((channel, provider, campaign_id, template_id), {})[name] = amount
    for key, amounts in sorted(by_key.items()):
        await _add_figures(session, FEED, day, key, amounts)


async def _add_figures(
    session: AsyncSession | AsyncConnection, table: Table, day: date, key: FeedKey, amounts: Mapping[str, int]
) -> None:
    """Add `amounts` to the row of `day` and `key` in `table` (the daily figures, or those set aside when
    retention removed their messages), creating it."""
    channel, provider, campaign_id, template_id = key
    statement = insert_for(session, table).values(
        day=day,
        channel=channel,
        provider=provider,
        campaign_id=campaign_id,
        template_id=template_id,
        updated_at=datetime.now(ZoneInfo("UTC")),
        **amounts,
    )
    statement = statement.on_conflict_do_update(
        index_elements=["day", "channel", "provider", "campaign_id", "template_id"],
        set_={name: table.c[name] + statement.excluded[name] for name in amounts}
        | {"updated_at": statement.excluded.updated_at},
    )
    await session.execute(statement)


@dataclass(frozen=True)
class Drift:
    """One figure of one feed row that differs from the recount."""

    day: date
    key: FeedKey
    figure: str
    recorded: int
    recounted: int


async def recount(
    session: AsyncSession | AsyncConnection, zone: ZoneInfo, where: ColumnElement[bool] | None = None
) -> dict[tuple[date, FeedKey], Counter[str]]:
    """Every outbound message's figures (or those `where` picks out) from its own timestamps, by send day and
    key (streamed)."""
    figures: dict[tuple[date, FeedKey], Counter[str]] = {}
    statement = (
        select(
            CC.c.channel,
            CC.c.provider,
            CC.c.campaign_id,
            CC.c.template_id,
            CC.c.cost_micros,
            CC.c.segments,
            CC.c.encoding,
            CC.c.created_at,
            CC.c.sent_at,
            CC.c.delivered_at,
            CC.c.read_at,
            CC.c.failed_at,
            CC.c.replied_at,
        )
        .where(CC.c.direction == "outbound", where if where is not None else true())
        .execution_options(yield_per=5000)
    )
    async for row in await session.stream(statement):
        day = send_day(row.sent_at, row.failed_at, row.created_at, zone)
        key: FeedKey = (row.channel, row.provider, row.campaign_id or 0, row.template_id or 0)
        counts = figures.setdefault((day, key), Counter())
        if row.sent_at is not None:
            counts["sent"] += 1
            counts["cost_micros"] += row.cost_micros or 0
            counts.update(segment_figures(row.segments, row.encoding))
        for name, moment in (
            ("delivered", row.delivered_at),
            ("read", row.read_at),
            ("failed", row.failed_at),
            ("replied", row.replied_at),
        ):
            if moment is not None:
                counts[name] += 1
    return figures


async def recorded_feed(session: AsyncSession) -> dict[tuple[date, FeedKey], Counter[str]]:
    return await _read_figures(session, FEED)


async def _read_figures(session: AsyncSession, table: Table) -> dict[tuple[date, FeedKey], Counter[str]]:
    rows = (await session.execute(select(table))).all()
    return {
        (row.day, (row.channel, row.provider, row.campaign_id, row.template_id)): Counter(
            {name: int(getattr(row, name) or 0) for name in MESSAGE_FIGURES}
        )
        for row in rows
    }


def drift_between(
    recorded: Mapping[tuple[date, FeedKey], Counter[str]],
    recounted: Mapping[tuple[date, FeedKey], Counter[str]],
) -> list[Drift]:
    found = []
    for day_key in sorted(set(recorded) | set(recounted)):
        have, want = recorded.get(day_key, Counter()), recounted.get(day_key, Counter())
        for figure in MESSAGE_FIGURES:
            if have[figure] != want[figure]:
                found.append(Drift(day_key[0], day_key[1], figure, have[figure], want[figure]))
    return found


async def repair_feed(session: AsyncSession, recounted: Mapping[tuple[date, FeedKey], Counter[str]]) -> int:
    """Set every message figure to its recount (opt-outs are kept); rows that hold nothing are removed."""
    opted_out = {
        (row.day, (row.channel, row.provider, row.campaign_id, row.template_id)): int(row.opted_out or 0)
        for row in (await session.execute(select(FEED))).all()
    }
    await session.execute(delete(FEED))
    written = 0
    for day_key in sorted(set(recounted) | set(opted_out)):
        counts = recounted.get(day_key, Counter())
        if not any(counts.values()) and not opted_out.get(day_key):
            continue
        day, (channel, provider, campaign_id, template_id) = day_key
        await session.execute(
            insert_for(session, FEED).values(
                day=day,
                channel=channel,
                provider=provider,
                campaign_id=campaign_id,
                template_id=template_id,
                opted_out=opted_out.get(day_key, 0),
                updated_at=datetime.now(ZoneInfo("UTC")),
                **{name: counts[name] for name in MESSAGE_FIGURES},
            )
        )
        written += 1
    return written


def figure_ids(pairs: Sequence[tuple[str, int]]) -> dict[str, list[int]]:
    """(figure, message id) pairs grouped by figure."""
    grouped: dict[str, list[int]] = {}
    for figure, message_id in pairs:
        grouped.setdefault(figure, []).append(message_id)
    return grouped


__all__ = [
    "FIGURE_BITS",
    "MESSAGE_FIGURES",
    "Drift",
    "add_cost",
    "bump_feed",
    "count_once",
    "counted_bits",
    "drift_between",
    "dropped_figures",
    "figure_ids",
    "recorded_feed",
    "recount",
    "repair_feed",
    "segment_figures",
    "send_day",
    "set_aside_figures",
]


@dataclass(frozen=True)
class FeedCheck:
    """What `switchboard analytics verify` found: how much it compared, and every difference."""

    rows: int
    drift: list[Drift]
    repaired: bool = False
    #: Daily rows of figures set aside for messages retention removed, added to the recount.
    set_aside_rows: int = 0
    #: Months of messages retention is removing (PostgreSQL): out of sight, their figures not yet set aside,
    #: so their days read short, and a repair is refused until the retention pass has finished them.
    being_removed: tuple[str, ...] = ()


async def verify_feed(session: AsyncSession, zone: ZoneInfo, *, repair: bool = False) -> FeedCheck:
    """Recount every message's figures and compare with the daily figures; with `repair`, rewrite them.

    The caller commits (a repair is one transaction: the figures are never seen half rewritten). Both
    sides are read from one snapshot, so receipts landing meanwhile cannot show up as drift."""
    fresh = not session.in_transaction()
    if fresh and session.bind is not None and session.bind.dialect.name == "postgresql":
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        if repair:
            # No month is detached while this repair runs (a detach waits for it): otherwise the snapshot,
            # taken before a detach committed, would count without the month yet not see it being removed.
            await session.execute(text("LOCK TABLE customer_communications IN ACCESS SHARE MODE"))
    recounted = await recount(session, zone)
    # Messages retention removed are no longer there to recount; their figures were set aside as they went.
    set_aside = await dropped_figures(session)
    for day_key, counts in set_aside.items():
        recounted.setdefault(day_key, Counter()).update(counts)
    recorded = await recorded_feed(session)
    drift = drift_between(recorded, recounted)
    pending = await months_being_removed(session)
    repaired = repair and bool(drift) and not pending
    if repaired:
        await repair_feed(session, recounted)
    return FeedCheck(len(recorded), drift, repaired, len(set_aside), pending)


async def check_message_feed(database: Database, zone: ZoneInfo, *, repair: bool = False) -> FeedCheck:
    """`switchboard analytics verify`: a check reads (from the read replica, when there is one: one
    snapshot either way); a repair writes, in one transaction."""
    if not repair:
        async with database.read_sessions() as session:
            return await verify_feed(session, zone)
    async with database.write_turn(), database.sessions() as session:
        check = await verify_feed(session, zone, repair=True)
        await session.commit()
    return check


async def set_aside_figures(
    connection: AsyncConnection, zone: ZoneInfo, where: ColumnElement[bool], *, source: TableClause = CC
) -> int:
    """Before the messages `where` picks out are removed (retention), add their daily figures to
    `dropped_message_figures`, in the same transaction; the day-key rows it added to. PostgreSQL sums them in
    one statement (a month of messages may be millions); SQLite, whose batches are small, recounts them.
    `source`: where the messages are, if not in the messages' table (a month detached from it, on PostgreSQL)."""
    if connection.dialect.name == "postgresql":
        figures = await _sum_in_database(connection, zone, where, source)
    else:
        figures = await recount(connection, zone, where)
    written = 0
    for (day, key), counts in sorted(figures.items()):
        amounts = {name: int(counts[name]) for name in MESSAGE_FIGURES if counts[name]}
        if amounts:
            await _add_figures(connection, DROPPED, day, key, amounts)
            written += 1
    return written


async def _sum_in_database(
    connection: AsyncConnection, zone: ZoneInfo, where: ColumnElement[bool], source: TableClause
) -> dict[tuple[date, FeedKey], Counter[str]]:
    """`recount`'s figures for the messages `where` picks out, summed by PostgreSQL (the same rules: the day
    of sent_at, else failed_at, else created_at, in the business's timezone)."""
    sent = source.c.sent_at.is_not(None)
    day = cast(
        func.timezone(zone.key, func.coalesce(source.c.sent_at, source.c.failed_at, source.c.created_at)),
        Date,
    )
    sums = [
        func.count(source.c.sent_at).label("sent"),
        func.coalesce(func.sum(case((sent, source.c.cost_micros), else_=0)), 0).label("cost_micros"),
        func.count(source.c.delivered_at).label("delivered"),
        func.count(source.c.read_at).label("read"),
        func.count(source.c.failed_at).label("failed"),
        func.count(source.c.replied_at).label("replied"),
    ]
    for encoding, prefix in ENCODING_PREFIX.items():
        counted = and_(
            sent, source.c.encoding == encoding, source.c.segments.is_not(None), source.c.segments != 0
        )
        sums += [
            func.count().filter(counted).label(f"{prefix}_sent"),
            func.coalesce(func.sum(source.c.segments).filter(counted), 0).label(f"{prefix}_segments"),
            func.count().filter(and_(counted, source.c.segments > 1)).label(f"{prefix}_long"),
        ]
    campaign, template = func.coalesce(source.c.campaign_id, 0), func.coalesce(source.c.template_id, 0)
    rows = await connection.execute(
        select(day.label("day"), source.c.channel, source.c.provider, campaign, template, *sums)
        .where(source.c.direction == "outbound", where)
        .group_by(day, source.c.channel, source.c.provider, campaign, template)
    )
    return {
        (row.day, (row.channel, row.provider, int(row[3]), int(row[4]))): Counter(
            {name: int(row._mapping[name] or 0) for name in MESSAGE_FIGURES}
        )
        for row in rows
    }


async def dropped_figures(session: AsyncSession) -> dict[tuple[date, FeedKey], Counter[str]]:
    """The figures set aside for messages retention removed, by day and key."""
    return await _read_figures(session, DROPPED)
