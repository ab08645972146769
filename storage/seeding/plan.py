"""What a seed run is asked for, what it reports back, and the calendar of busy and quiet days it implies."""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, TypeVar
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from _typeshed import SupportsLenAndGetItem

T = TypeVar("T")


@dataclass(frozen=True)
class SeedPlan:
    """How much demo history to generate; `end_date` is the last seeded day (today for the CLI).

    `now` is the moment the seed runs: nothing that happened is dated later, so the last day is
    partial, up to `now`. Without it the seed runs at the end of `end_date` (midnight after it, UTC),
    which keeps a plan for a past day deterministic.
    """

    customers: int
    days: int
    seed: int
    end_date: date
    now: datetime | None = None
    #: The business's timezone: the daily communication figures are cut on its days, as the app cuts them.
    business_tz: str = "Europe/Berlin"

    def __post_init__(self) -> None:
        if self.now is None:
            return
        if self.now.tzinfo is None:
            raise ValueError("the seed's now must be timezone-aware")
        day_start = datetime.combine(self.end_date, time(), UTC)
        if not day_start < self.now <= day_start + timedelta(days=1):
            raise ValueError(
                f"the seed's now ({self.now.isoformat()}) is not on its last day, {self.end_date}"
            )

    @property
    def end_at(self) -> datetime:
        """The moment the seed runs: every row that records something happening is dated before it."""
        if self.now is not None:
            return self.now.astimezone(UTC)
        return datetime.combine(self.end_date + timedelta(days=1), time(), UTC)


@dataclass(frozen=True)
class SeedSummary:
    """Rows written per table."""

    counts: dict[str, int]


class DatabaseNotEmpty(RuntimeError):
    """Seeding would mix demo rows into existing data; pass force=True to wipe the seeded tables first."""


class SeedRandom(random.Random):
    """`random.Random` with leaner integer draws for the generator's hot loops.

    `randrange`, `randint` and `choice` return exactly what the standard methods return for the
    same state (the same `getrandbits` calls), without their argument checks and call layers.
    """

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:
        if step != 1:
            return super().randrange(start, stop, step)
        if stop is None:
            start, stop = 0, start
        width = stop - start
        if width <= 0:
            raise ValueError(f"empty range for randrange() ({start}, {stop})")
        getrandbits, bits = self.getrandbits, width.bit_length()
        drawn = getrandbits(bits)
        while drawn >= width:
            drawn = getrandbits(bits)
        return start + drawn

    def randint(self, a: int, b: int) -> int:
        width = b + 1 - a
        if width <= 0:
            raise ValueError(f"empty range for randint() ({a}, {b})")
        getrandbits, bits = self.getrandbits, width.bit_length()
        drawn = getrandbits(bits)
        while drawn >= width:
            drawn = getrandbits(bits)
        return a + drawn

    def choice(self, seq: SupportsLenAndGetItem[T]) -> T:
        width = len(seq)
        if not width:
            raise IndexError("Cannot choose from an empty sequence")
        getrandbits, bits = self.getrandbits, width.bit_length()
        drawn = getrandbits(bits)
        while drawn >= width:
            drawn = getrandbits(bits)
        return seq[drawn]


def weighted(rng: random.Random, population: Sequence[T], cumulative: Sequence[float]) -> T:
    """`rng.choices(population, cum_weights=cumulative)[0]`, draw for draw, without building a list."""
    return population[
        bisect.bisect_right(cumulative, rng.random() * (cumulative[-1] + 0.0), 0, len(population) - 1)
    ]


def derive_rng(seed: int, *concern: object) -> SeedRandom:
    """A generator of its own for one concern (a customer, a day, the campaign calendar).

    String seeds are hashed with SHA-512 by `random`, so the stream does not depend on
    PYTHONHASHSEED and a batch can be regenerated on its own.
    """
    return SeedRandom(":".join([str(seed), *map(str, concern)]))


#: Orders and bookings grow by this share per year (the brief asks for +30-60%).
GROWTH_PER_YEAR = 0.45
#: Fixed-date days on which the clinics close and online shopping slows.
HOLIDAYS = {(1, 1), (5, 1), (12, 24), (12, 25), (12, 26), (12, 31)}
#: Clinic demand Monday..Sunday: Mondays catch up on the weekend, Sunday is closed.
CLINIC_WEEKDAY = (1.1, 1.0, 1.0, 1.0, 0.95, 0.55, 0.0)
#: Online demand Monday..Sunday: people browse on Sunday evening.
ONLINE_WEEKDAY = (1.0, 0.95, 0.95, 1.0, 0.9, 0.85, 1.3)


def _black_friday(year: int) -> date:
    first = date(year, 11, 1)
    first_friday = first + timedelta(days=(4 - first.weekday()) % 7)
    return first_friday + timedelta(days=21)


def clinic_factor(day: date) -> float:
    if (day.month, day.day) in HOLIDAYS:
        return 0.0
    return CLINIC_WEEKDAY[day.weekday()]


def online_factor(day: date) -> float:
    factor = ONLINE_WEEKDAY[day.weekday()]
    if (day.month, day.day) in HOLIDAYS:
        factor *= 0.6
    black_friday = _black_friday(day.year)
    if day == black_friday:
        factor *= 2.6
    elif day == black_friday + timedelta(days=3):  # Cyber Monday
        factor *= 1.8
    elif day.month == 12 and day.day <= 20:
        factor *= 1.2
    return factor


@dataclass
class Calendar:
    """The seeded days with cumulative demand weights, so an event's day is one bisect away."""

    plan: SeedPlan
    start: date = field(init=False)
    start_at: datetime = field(init=False)
    end_at: datetime = field(init=False)
    clinic_cumulative: list[float] = field(init=False)
    online_cumulative: list[float] = field(init=False)
    _midnights: dict[str, list[datetime]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.start = self.plan.end_date - timedelta(days=self.plan.days - 1)
        self.start_at = datetime.combine(self.start, time(), UTC)
        self.end_at = self.plan.end_at
        growth = [self.growth(i) for i in range(self.plan.days)]
        days = [self.day(i) for i in range(self.plan.days)]
        self.clinic_cumulative = _cumulative(g * clinic_factor(d) for g, d in zip(growth, days, strict=True))
        self.online_cumulative = _cumulative(g * online_factor(d) for g, d in zip(growth, days, strict=True))

    @property
    def days(self) -> int:
        return self.plan.days

    def day(self, index: int) -> date:
        return self.start + timedelta(days=index)

    def growth(self, index: int) -> float:
        return float((1 + GROWTH_PER_YEAR) ** (index / 365))

    def day_index(self, at: datetime) -> int:
        return (at - self.start_at).days

    def pick_day(self, rng: random.Random, cumulative: list[float], first: int, last: int) -> int | None:
        """A day in [first, last] drawn in proportion to demand; None when the window has no demand."""
        first = max(first, 0)
        last = min(last, self.days - 1)
        if first > last:
            return None
        low = cumulative[first - 1] if first else 0.0
        high = cumulative[last]
        if high <= low:
            return None
        return bisect.bisect_right(cumulative, low + rng.random() * (high - low))

    def local_time(self, index: int, timezone: str, minutes: int) -> datetime:
        """The UTC instant of `minutes` after local midnight on day `index` in `timezone`."""
        midnights = self._midnights.get(timezone)
        if midnights is None:
            midnights = self._midnights[timezone] = self._local_midnights(timezone)
        if -1 <= index < len(midnights) - 1:
            return midnights[index + 1] + timedelta(minutes=minutes)
        # Outside the precomputed range: that day's UTC midnight with the nearest known offset.
        offset = self._offset(ZoneInfo(timezone), min(max(index, -1), len(midnights) - 2))
        return self.start_at + timedelta(days=index) + timedelta(minutes=minutes) - offset

    def _offset(self, zone: ZoneInfo, index: int) -> timedelta:
        # One offset per day taken at noon: DST switches at night, when nothing is scheduled.
        return datetime.combine(self.day(index), time(12), zone).utcoffset() or timedelta()

    def _local_midnights(self, timezone: str) -> list[datetime]:
        """Local midnight as a UTC instant for days -1 .. days + 30."""
        zone = ZoneInfo(timezone)
        return [self.start_at + timedelta(days=i) - self._offset(zone, i) for i in range(-1, self.days + 31)]

    def signup_time(self, rng: random.Random, position: float) -> datetime:
        """When the customer at `position` (0..1 through the id range) joined: a base before the period
        plus accelerating acquisition during it, so ids rise with signup time."""
        existing_share = 0.55
        if position < existing_share:
            before = (1 - position / existing_share) * 730
            moment = self.start_at - timedelta(days=before, seconds=rng.randrange(3600))
            return moment.replace(microsecond=0)
        share = (position - existing_share) / (1 - existing_share)
        rate = math.log(1 + GROWTH_PER_YEAR) / 365
        # Up to now: on a partial last day the newest customers joined this morning, not tonight.
        span_days = (self.end_at - self.start_at) / timedelta(days=1)
        offset_days = math.log(1 + share * (math.exp(rate * span_days) - 1)) / rate
        moment = self.start_at + timedelta(days=offset_days)
        return min(moment, self.end_at - timedelta(hours=1)).replace(microsecond=0)


def _cumulative(weights: Iterable[float]) -> list[float]:
    total = 0.0
    out: list[float] = []
    for weight in weights:
        total += weight
        out.append(total)
    return out
