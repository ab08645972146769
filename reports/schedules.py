"""When scheduled reports fall due: cron in the recipient's timezone, and what to do about runs missed while down."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

MissedRunPolicy = Literal["skip", "deliver_late_once"]

#: A run this late is still "on time" (a scheduler tick interval plus slack).
ON_TIME_GRACE = timedelta(minutes=5)
#: Never look further back than this for missed runs (a schedule disabled for a year wakes up quietly).
MAX_CATCH_UP = timedelta(days=7)


class ScheduleError(ValueError):
    """A schedule that cannot work (bad cron expression or timezone); the message says which and why."""


def cron_trigger(cron: str, timezone: str) -> CronTrigger:
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"unknown timezone {timezone!r} (use an IANA name such as Europe/Berlin)"
        ) from None
    try:
        return CronTrigger.from_crontab(cron, timezone=zone)
    except ValueError as error:
        raise ScheduleError(
            f"invalid cron expression {cron!r}: {error} (five fields: minute hour day month weekday, "
            "e.g. '0 8 * * mon' for Mondays at 08:00)"
        ) from None


def next_due(cron: str, timezone: str, after: datetime) -> datetime:
    """The first due time strictly after `after`, as an aware UTC datetime."""
    trigger = cron_trigger(cron, timezone)
    moment = after + timedelta(microseconds=1)
    fire: datetime | None = trigger.get_next_fire_time(None, moment)
    if fire is None:
        raise ScheduleError(f"cron expression {cron!r} never fires again")
    return fire.astimezone(ZoneInfo("UTC"))


@dataclass(frozen=True)
class RunPlan:
    """What one scheduler tick should do for a schedule: runs to deliver (with lateness), runs to skip, and the next due time."""

    deliver: list[tuple[datetime, bool]] = field(default_factory=list)
    skip: list[datetime] = field(default_factory=list)
    next_due_at: datetime | None = None


def plan_runs(
    cron: str, timezone: str, next_due_at: datetime, now: datetime, policy: MissedRunPolicy
) -> RunPlan:
    """Decides the due runs up to `now`.

    On-time runs are delivered. Runs missed while no scheduler was up are, by policy, either all
    skipped, or collapsed into one late delivery of the most recent missed run (its due time stated),
    the older ones skipped — nobody wants seven copies of a daily report after a week of downtime.
    """
    due: list[datetime] = []
    moment = max(next_due_at, now - MAX_CATCH_UP)
    if moment != next_due_at:
        moment = next_due(cron, timezone, moment - timedelta(microseconds=1))
    while moment <= now:
        due.append(moment)
        moment = next_due(cron, timezone, moment)
    on_time = [d for d in due if now - d <= ON_TIME_GRACE]
    missed = [d for d in due if now - d > ON_TIME_GRACE]
    deliver = [(d, False) for d in on_time]
    skip: list[datetime] = []
    if missed:
        if policy == "deliver_late_once" and not on_time:
            deliver.insert(0, (missed[-1], True))
            skip = missed[:-1]
        else:
            skip = missed
    return RunPlan(deliver=deliver, skip=skip, next_due_at=moment)
