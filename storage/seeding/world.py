"""What every part of a customer's story needs: the calendar, id sequences, the row sink and the staff."""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from storage.seeding.campaigns import CampaignPlan
from storage.seeding.messages import Messenger
from storage.seeding.people import Customer, PhoneBook
from storage.seeding.plan import Calendar
from storage.seeding.writer import IdSequence, RowSink

#: Relative online activity per local hour; Sunday evenings are busier still (see `online_minute`).
_ONLINE_HOURS = (0.15, 0.08, 0.05, 0.04, 0.04, 0.08, 0.2, 0.45, 0.7, 0.9, 1.0, 1.05,
                 1.15, 1.05, 1.0, 1.0, 1.05, 1.15, 1.3, 1.45, 1.5, 1.3, 0.9, 0.45)  # fmt: skip
_SUNDAY_EVENING = tuple(w * (1.9 if 17 <= h <= 22 else 1.0) for h, w in enumerate(_ONLINE_HOURS))


def _running(weights: tuple[float, ...]) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


_WEEKDAY_CUMULATIVE = _running(_ONLINE_HOURS)
_SUNDAY_CUMULATIVE = _running(_SUNDAY_EVENING)


@dataclass
class World:
    seed: int
    customer_total: int
    calendar: Calendar
    ids: IdSequence
    sink: RowSink
    messenger: Messenger
    campaigns: list[CampaignPlan]
    agents_by_clinic: dict[int, list[int]]
    agent_clinic: dict[int, int]
    phones: PhoneBook

    def online_moment(self, rng: random.Random, customer: Customer, day_index: int) -> datetime:
        """A local time of day people shop or write to us, as a UTC instant."""
        sunday = self.calendar.day(day_index).weekday() == 6
        cumulative = _SUNDAY_CUMULATIVE if sunday else _WEEKDAY_CUMULATIVE
        hour = bisect.bisect_right(cumulative, rng.random() * cumulative[-1])
        return self.calendar.local_time(day_index, customer.timezone, hour * 60 + rng.randrange(60)).replace(
            second=rng.randrange(60)
        )

    def clinic_moment(self, rng: random.Random, customer: Customer, day_index: int) -> datetime:
        """A slot during opening hours (09:00-18:00, half-hourly) at the customer's clinic."""
        return self.calendar.local_time(day_index, customer.timezone, 9 * 60 + 30 * rng.randrange(18))

    def after_signup(self, customer: Customer, at: datetime, rng: random.Random) -> datetime | None:
        """`at`, moved just after signup if it fell before it; None if that pushes it past the seeded end."""
        if at <= customer.created_at:
            at = customer.created_at + timedelta(minutes=rng.randint(3, 180))
        return at if at < self.calendar.end_at - timedelta(minutes=2) else None

    def expected(self, rate_per_30_days: float, customer: Customer, cumulative: list[float]) -> float:
        """Expected events in the customer's active window, following the demand curve."""
        first, last = customer.active_from, customer.active_until
        if first > last:
            return 0.0
        low = cumulative[first - 1] if first else 0.0
        return rate_per_30_days / 30 * (cumulative[last] - low)


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth for small means, a rounded normal for large ones)."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count
