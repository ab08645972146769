"""Local-time bucket keys in SQL, written per dialect, and their conversion back to UTC bucket starts.

PostgreSQL knows time zones, so it converts each timestamp with timezone() and truncates. SQLite
does not: there we compute in Python the UTC offset segments (between DST switches) covering the
queried range and shift each timestamp by a CASE over those few segments. Hours are cut in UTC on
both engines so that the repeated hour of an autumn night stays two buckets.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, Integer, String, case, cast, func, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FunctionElement

from storage.models.base import UtcDateTime

BucketGrain = Literal["hour", "day", "week", "month", "quarter"]
KeyBuilder = Callable[[Any], ColumnElement[Any]]  # takes a timestamp column or expression


class EpochSeconds(FunctionElement[int]):
    """A stored UTC timestamp as whole seconds since 1970, so readers key buckets by int, not datetime."""

    type = BigInteger()
    inherit_cache = True
    name = "epoch_seconds"


@compiles(EpochSeconds, "sqlite")
def _epoch_seconds_sqlite(element: EpochSeconds, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


@compiles(EpochSeconds, "postgresql")
def _epoch_seconds_postgres(element: EpochSeconds, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) AS BIGINT)"


def offset_segments(start: datetime, end: datetime, tz: str) -> list[tuple[datetime, int]]:
    """(segment start in UTC, offset in seconds) for each stretch of constant UTC offset in [start, end)."""
    zone = ZoneInfo(tz)

    def offset_at(moment: datetime) -> int:
        delta = moment.astimezone(zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    segments = [(start, offset_at(start))]
    step = timedelta(hours=6)  # DST switches are months apart, so 6-hour probes cannot miss one
    probe = start
    while probe < end:
        following = min(probe + step, end)
        if offset_at(following) != segments[-1][1]:
            low, high = probe, following
            while high - low > timedelta(seconds=1):  # bisect to the exact switching second
                middle = low + (high - low) / 2
                if offset_at(middle) == segments[-1][1]:
                    low = middle
                else:
                    high = middle
            segments.append((high.replace(microsecond=0), offset_at(following)))
        probe = following
    return segments


def local_key_builder(
    dialect: str, grain: BucketGrain, tz: str, start: datetime, end: datetime
) -> KeyBuilder:
    """A function turning a UTC timestamp column into its local `grain` bucket key for this dialect.

    Keys are strings on SQLite and naive timestamps on PostgreSQL; `key_to_utc` reads both.
    The [start, end) span tells SQLite which offset segments to encode.
    """
    if dialect == "postgresql":
        return _postgres_key(grain, tz)
    if dialect == "sqlite":
        return _sqlite_key(grain, offset_segments(start - timedelta(days=2), end + timedelta(days=2), tz))
    raise ValueError(f"analytics supports sqlite and postgresql, not {dialect!r}")


def _postgres_key(grain: BucketGrain, tz: str) -> KeyBuilder:
    def key(column: Any) -> ColumnElement[Any]:
        if grain == "hour":
            return func.date_trunc("hour", func.timezone("UTC", column))
        return func.date_trunc(grain, func.timezone(tz, column))

    return key


def _sqlite_key(grain: BucketGrain, segments: list[tuple[datetime, int]]) -> KeyBuilder:
    def local(column: Any) -> ColumnElement[Any]:
        if len(segments) == 1:
            modifier: ColumnElement[Any] = literal(f"{segments[0][1]:+d} seconds", String)
        else:
            # Each branch applies the offset valid from that segment's start; the values are bound.
            whens = [
                (column < literal(boundary, UtcDateTime), literal(f"{offset:+d} seconds", String))
                for (_, offset), (boundary, _) in itertools.pairwise(segments)
            ]
            modifier = case(*whens, else_=literal(f"{segments[-1][1]:+d} seconds", String))
        return func.datetime(column, modifier)

    def key(column: Any) -> ColumnElement[Any]:
        if grain == "hour":
            return func.strftime("%Y-%m-%d %H:00:00", column)
        if grain == "day":
            return func.date(local(column))
        if grain == "week":
            # Back six days, then forward to the next Monday (or stay): the Monday on or before.
            return func.date(local(column), "-6 days", "weekday 1")
        if grain == "month":
            return func.strftime("%Y-%m-01", local(column))
        moment = local(column)
        month = cast(func.strftime("%m", moment), Integer)
        first_month = ((month - 1) // 3) * 3 + 1
        return func.printf("%s-%02d-01", func.strftime("%Y", moment), first_month)

    return key


def key_to_utc(key: object, grain: BucketGrain, tz: str) -> datetime:
    """The UTC start of the bucket a SQL key names (a 'YYYY-MM-DD[ HH:MM:SS]' string or a naive timestamp)."""
    if isinstance(key, str):
        parsed = (
            datetime.fromisoformat(key) if " " in key else datetime.combine(date.fromisoformat(key), time())
        )
    elif isinstance(key, datetime):
        parsed = key.replace(tzinfo=None)
    elif isinstance(key, date):
        parsed = datetime.combine(key, time())
    else:
        raise TypeError(f"unexpected bucket key {key!r}")
    if grain == "hour":
        return parsed.replace(tzinfo=UTC)
    return parsed.replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)
