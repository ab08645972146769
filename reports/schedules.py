"""Report schedules: setting one up, when it falls due (cron in the recipient's timezone), and what to do
about runs missed while down."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from domain.audit import AuditEntry, AuditTrail
from domain.report_schedule import ScheduleRequest, cron_weekdays_as_names
from domain.transaction import Transaction

MissedRunPolicy = Literal["skip", "deliver_late_once"]

#: A run this late is still "on time" (a scheduler tick interval plus slack).
ON_TIME_GRACE = timedelta(minutes=5)
#: Never look further back than this for missed runs (a schedule disabled for a year wakes up quietly).
MAX_CATCH_UP = timedelta(days=7)


class ScheduleError(ValueError):
    """A schedule that cannot work (bad cron expression or timezone); the message says which and why."""


class AlreadyScheduled(ScheduleError):
    """The report already goes to that destination at those times, with the same filters: nothing new is stored,
    so nobody gets each delivery twice."""

    def __init__(self, schedule_id: int, request: ScheduleRequest) -> None:
        super().__init__(
            f"this report already goes to {request.destination} at those times (schedule #{schedule_id})"
        )
        self.schedule_id = schedule_id
        self.request = request


def cron_trigger(cron: str, timezone: str) -> CronTrigger:
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"unknown timezone {timezone!r} (use an IANA name such as Europe/Berlin)"
        ) from None
    try:
        return CronTrigger.from_crontab(cron_weekdays_as_names(cron), timezone=zone)
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


class ReportScheduleBook(Protocol):
    async def add(
        self, *, report_id: int, owner_id: int | None, request: ScheduleRequest, next_due_at: datetime
    ) -> int:
        """Store a new schedule (with this recipient's own filter values, if any) and return its id."""

    async def same_as(self, *, report_id: int, request: ScheduleRequest) -> int | None:
        """The id of an enabled schedule of the report that `request` repeats (ScheduleRequest.repeats), or
        None; two saves of one report's schedules at once are taken one after the other from here."""

    async def definition_of(self, report_id: int) -> dict[str, Any] | None:
        """The report's definition as stored now (read after same_as has locked the report)."""

    async def withdraw(self, schedule_id: int) -> bool:
        """Remove a schedule made a moment ago that cannot deliver (nothing was delivered yet); False when
        it is already gone."""


class SchedulingUnitOfWork(Transaction, Protocol):
    """What scheduling a report needs: the schedules and the audit trail, in one transaction."""

    @property
    def schedules(self) -> ReportScheduleBook: ...

    @property
    def audit(self) -> AuditTrail: ...


@dataclass(frozen=True)
class ScheduledReport:
    id: int
    first_due: datetime


async def schedule_report(
    uow: SchedulingUnitOfWork,
    *,
    report_id: int,
    report_slug: str,
    owner_id: int | None,
    request: ScheduleRequest,
    actor: str,
    via: str,
    now: datetime,
) -> ScheduledReport:
    """Schedule a saved report's deliveries from `now` on, audited in the same commit.

    Raises ScheduleError (before anything is stored) when the cron expression or timezone cannot work, and
    AlreadyScheduled when the same schedule exists.
    """
    first = next_due(request.cron, request.timezone, now)
    async with uow:
        same = await uow.schedules.same_as(report_id=report_id, request=request)
        if same is not None:
            raise AlreadyScheduled(same, request)
        if request.filters:  # checked before, against the report as it was; an edit may have come between
            fits_report(await uow.schedules.definition_of(report_id), request.filters)
        schedule_id = await uow.schedules.add(
            report_id=report_id,
            owner_id=owner_id,
            request=request,
            next_due_at=first,
        )
        uow.audit.record(
            AuditEntry(
                actor=actor,
                via=via,
                action="report.schedule",
                target=f"report:{report_slug}",
                detail={
                    "schedule_id": schedule_id,
                    "cron": request.cron,
                    "destination": request.destination,
                    "filters": list(request.filters),
                },
            )
        )
        await uow.commit()
    return ScheduledReport(schedule_id, first)


def fits_report(definition: dict[str, Any] | None, filters: tuple[dict[str, Any], ...]) -> None:
    """ScheduleError when the report, as stored, cannot be narrowed by a schedule's own filters."""
    from reports.saved import ReportDefinitionError, narrowed, query_from_definition

    if definition is None:
        raise ScheduleError("the report was deleted meanwhile")
    try:
        query_from_definition(narrowed(definition, filters))
    except ReportDefinitionError as error:
        raise ScheduleError(f"the report has changed meanwhile: {error}") from None


async def withdraw_schedule(
    uow: SchedulingUnitOfWork, *, schedule_id: int, report_slug: str, reason: str, actor: str, via: str
) -> None:
    """Take back a schedule just made whose destination refused it (a Slack channel the bot is not in), with
    the reason in the audit trail beside its "report.schedule" entry."""
    async with uow:
        if await uow.schedules.withdraw(schedule_id):
            uow.audit.record(
                AuditEntry(
                    actor=actor,
                    via=via,
                    action="report.unschedule",
                    target=f"report_schedule:{schedule_id}",
                    detail={"report": report_slug, "reason": reason},
                )
            )
        await uow.commit()
