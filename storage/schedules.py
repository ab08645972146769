"""Report schedules and their delivery log; the claim row, a lease, is what makes each run delivered once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.report_schedule import ScheduleRequest
from storage.models import CustomReport, ReportDelivery, ReportSchedule, StaffUser
from storage.sql import insert_for, table_of
from storage.unit_of_work import SqlUnitOfWork

DELIVERIES = table_of(ReportDelivery)


@dataclass(frozen=True)
class DueSchedule:
    id: int
    report_id: int
    report_slug: str
    report_name: str
    definition: dict[str, Any]
    cron: str
    timezone: str
    destination_kind: str
    destination: str
    attach_csv: bool
    missed_run_policy: str
    next_due_at: datetime
    owner_email: str | None
    #: The recipient's own filters (already in `definition`), e.g. location = BER.
    recipient_filters: tuple[dict[str, Any], ...] = ()


#: A holder is working on the run: rendering it (claimed) or handing it to the destination (sending).
HELD = ("claimed", "sending")
#: Runs another process may take once `claimed_until` has passed: expired claims and due retries.
OPEN = (*HELD, "retrying")


@dataclass(frozen=True)
class ClaimedRun:
    """A run this process holds as attempt `attempt`; its outcome is recorded under the same holder and attempt."""

    delivery_id: int
    schedule_id: int
    due_at: datetime
    late: bool
    attempt: int
    holder: str
    takeover_note: str | None = None
    #: How many times staff sent the run again: part of a report email's Message-ID.
    sent_again: int = 0


@dataclass(frozen=True)
class OpenRun:
    """A run whose lease ran out (its holder stopped) or whose retry is due, as it was read."""

    delivery_id: int
    schedule_id: int
    due_at: datetime
    late: bool
    status: str
    holder: str
    attempts: int
    takeover_note: str | None
    sent_again: int = 0


@dataclass(frozen=True)
class BouncedRun:
    """A run recorded delivered whose email bounced afterwards (storage.bounced_mail), for its owner to hear."""

    delivery_id: int
    schedule_id: int
    due_at: datetime
    error: str


class SqlScheduleStore:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def due(self, now: datetime) -> list[DueSchedule]:
        rows = await self.session.execute(
            select(ReportSchedule, CustomReport, StaffUser.email)
            .join(CustomReport, CustomReport.id == ReportSchedule.report_id)
            .outerjoin(StaffUser, StaffUser.id == ReportSchedule.owner_id)
            .where(ReportSchedule.enabled.is_(True), ReportSchedule.next_due_at <= now)
            .order_by(ReportSchedule.next_due_at)
        )
        return [_due(schedule, report, email) for schedule, report, email in rows.all()]

    async def get(self, schedule_id: int) -> DueSchedule | None:
        row = (
            await self.session.execute(
                select(ReportSchedule, CustomReport, StaffUser.email)
                .join(CustomReport, CustomReport.id == ReportSchedule.report_id)
                .outerjoin(StaffUser, StaffUser.id == ReportSchedule.owner_id)
                .where(ReportSchedule.id == schedule_id)
            )
        ).first()
        return _due(*row) if row else None

    async def advance(self, schedule_id: int, seen_due_at: datetime, next_due_at: datetime) -> bool:
        """Moves the schedule on, but only if nobody else already did (compare-and-set on the old due time)."""
        result = await self.session.execute(
            update(ReportSchedule)
            .where(ReportSchedule.id == schedule_id, ReportSchedule.next_due_at == seen_due_at)
            .values(next_due_at=next_due_at)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def claim(
        self,
        schedule_id: int,
        due_at: datetime,
        destination: str,
        worker_id: str,
        now: datetime,
        *,
        until: datetime | None,
        late: bool,
        status: str = "claimed",
    ) -> ClaimedRun | None:
        """Claims one (schedule, due time, destination) until `until`, as its first attempt; None if another
        process has it. A skipped run is recorded the same way, without an attempt or a lease."""
        claimed = status == "claimed"
        statement = (
            insert_for(self.session, DELIVERIES)
            .values(
                schedule_id=schedule_id,
                due_at=due_at,
                destination=destination,
                status=status,
                claimed_by=worker_id,
                attempts=1 if claimed else 0,
                late=late,
                claimed_at=now,
                claimed_until=until if claimed else None,
            )
            .on_conflict_do_nothing(index_elements=["schedule_id", "due_at", "destination"])
            .returning(DELIVERIES.c.id)
        )
        delivery_id = (await self.session.execute(statement)).scalar_one_or_none()
        if delivery_id is None or not claimed:
            return None
        return ClaimedRun(delivery_id, schedule_id, due_at, late, attempt=1, holder=worker_id)

    async def next_open_run(self, now: datetime) -> OpenRun | None:
        """The run whose lease ran out or whose retry is due longest ago, locked against other takers.

        On PostgreSQL a run another process is taking right now is skipped (SKIP LOCKED), not waited for;
        SQLite serialises writers, and `take` compares and sets, so a run is taken once either way."""
        row = (
            await self.session.execute(
                select(
                    ReportDelivery.id,
                    ReportDelivery.schedule_id,
                    ReportDelivery.due_at,
                    ReportDelivery.late,
                    ReportDelivery.status,
                    ReportDelivery.claimed_by,
                    ReportDelivery.attempts,
                    ReportDelivery.takeover_note,
                    ReportDelivery.sent_again,
                )
                .where(ReportDelivery.status.in_(OPEN), ReportDelivery.claimed_until <= now)
                .order_by(ReportDelivery.claimed_until, ReportDelivery.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
        ).first()
        if row is None:
            return None
        return OpenRun(
            row.id,
            row.schedule_id,
            row.due_at,
            row.late,
            row.status,
            row.claimed_by,
            row.attempts,
            row.takeover_note,
            row.sent_again,
        )

    async def take(
        self,
        run: OpenRun,
        worker_id: str,
        now: datetime,
        *,
        until: datetime,
        takeover_note: str | None,
    ) -> ClaimedRun | None:
        """Takes an open run as its next attempt, only if nobody changed it since it was read and its lease or
        retry wait is still over (one atomic compare-and-set): exactly one process gets it."""
        result = await self.session.execute(
            update(ReportDelivery)
            .where(*_unchanged(run, now))
            .values(
                status="claimed",
                claimed_by=worker_id,
                attempts=run.attempts + 1,
                claimed_at=now,
                claimed_until=until,
                takeover_note=takeover_note,
            )
            .execution_options(synchronize_session=False)
        )
        if not getattr(result, "rowcount", 0):
            return None
        return ClaimedRun(
            run.delivery_id,
            run.schedule_id,
            run.due_at,
            run.late,
            attempt=run.attempts + 1,
            holder=worker_id,
            takeover_note=takeover_note,
            sent_again=run.sent_again,
        )

    async def give_up(self, run: OpenRun, now: datetime, *, error: str, takeover_note: str | None) -> bool:
        """Marks an open run failed without another attempt (its holder died during the last one allowed)."""
        result = await self.session.execute(
            update(ReportDelivery)
            .where(*_unchanged(run, now))
            .values(status="failed", error=error[:500], claimed_until=None, takeover_note=takeover_note)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def start_sending(self, run: ClaimedRun, until: datetime) -> bool:
        """Says the destination is about to get the report, renewing the lease; False if the claim was lost
        (it ran out while rendering and another process took the run), in which case nothing may be sent."""
        result = await self.session.execute(
            update(ReportDelivery)
            .where(*_held(run), ReportDelivery.status == "claimed")
            .values(status="sending", claimed_until=until)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def finish(
        self,
        run: ClaimedRun,
        status: str,
        *,
        error: str | None = None,
        delivered_at: datetime | None = None,
        retry_at: datetime | None = None,
    ) -> bool:
        """Records how this attempt ended (delivered, retrying at `retry_at`, or failed); only the holder of the
        attempt can, so a process whose claim was taken over cannot overwrite the newer attempt's outcome."""
        result = await self.session.execute(
            update(ReportDelivery)
            .where(*_held(run), ReportDelivery.status.in_(HELD))
            .values(
                status=status,
                error=error and error[:500],
                delivered_at=delivered_at,
                claimed_until=retry_at,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def next_bounce_to_tell(self) -> BouncedRun | None:
        """A delivered run whose email bounced and whose owner has not heard of it yet, taken: the flag is
        cleared here (compare-and-set), so of several processes exactly one tells the owner."""
        row = (
            await self.session.execute(
                select(
                    ReportDelivery.id, ReportDelivery.schedule_id, ReportDelivery.due_at, ReportDelivery.error
                )
                .where(ReportDelivery.owner_to_hear.is_(True))
                .order_by(ReportDelivery.id)
                .limit(1)
            )
        ).first()
        if row is None:
            return None
        taken = await self.session.execute(
            update(ReportDelivery)
            .where(ReportDelivery.id == row.id, ReportDelivery.owner_to_hear.is_(True))
            .values(owner_to_hear=False)
            .execution_options(synchronize_session=False)
        )
        if not getattr(taken, "rowcount", 0):
            return None
        return BouncedRun(row.id, row.schedule_id, row.due_at, row.error or "The email did not arrive.")


def _unchanged(run: OpenRun, now: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        ReportDelivery.id == run.delivery_id,
        ReportDelivery.status == run.status,
        ReportDelivery.attempts == run.attempts,
        ReportDelivery.claimed_until <= now,
    )


def _held(run: ClaimedRun) -> tuple[ColumnElement[bool], ...]:
    """The attempt number is the fencing token: a takeover raises it, so a late holder matches nothing."""
    return (
        ReportDelivery.id == run.delivery_id,
        ReportDelivery.claimed_by == run.holder,
        ReportDelivery.attempts == run.attempt,
    )


def _due(schedule: ReportSchedule, report: CustomReport, owner_email: str | None) -> DueSchedule:
    assert schedule.next_due_at is not None
    definition, name = dict(report.definition), report.name
    if schedule.filters:
        # This recipient's own filter values narrow the report (each clinic manager gets their clinic).
        query = dict(definition.get("query", {}))
        query["filters"] = [*query.get("filters", []), *schedule.filters]
        definition["query"] = query
        name = f"{report.name} ({filters_in_words(schedule.filters)})"
    return DueSchedule(
        id=schedule.id,
        report_id=report.id,
        report_slug=report.slug,
        report_name=name,
        definition=definition,
        cron=schedule.cron,
        timezone=schedule.timezone,
        destination_kind=schedule.destination_kind,
        destination=schedule.destination,
        attach_csv=schedule.attach_csv,
        missed_run_policy=schedule.missed_run_policy,
        next_due_at=schedule.next_due_at,
        owner_email=owner_email,
        recipient_filters=tuple(schedule.filters or ()),
    )


def filters_in_words(filters: list[Any]) -> str:
    """ "location BER", "location BER or HAM": how a schedule's own filters read beside the report's name."""
    parts = []
    for item in filters:
        values = item.get("value")
        listed = " or ".join(values) if isinstance(values, list) else str(values)
        negation = "not " if item.get("operator") in ("ne", "not_in") else ""
        parts.append(f"{str(item.get('dimension', '')).replace('_', ' ')} {negation}{listed}")
    return ", ".join(parts)


class SqlReportSchedules:
    """New report schedules (reports.schedules.ReportScheduleBook); the runner's claims are SqlScheduleStore's."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(
        self, *, report_id: int, owner_id: int | None, request: ScheduleRequest, next_due_at: datetime
    ) -> int:
        schedule = ReportSchedule(
            filters=list(request.filters) or None,
            report_id=report_id,
            owner_id=owner_id,
            cron=request.cron,
            timezone=request.timezone,
            destination_kind=request.destination_kind,
            destination=request.destination,
            next_due_at=next_due_at,
        )
        self._session.add(schedule)
        await self._session.flush()
        return schedule.id

    async def same_as(self, *, report_id: int, request: ScheduleRequest) -> int | None:
        # Two saves of one schedule at once: the second waits for the first's commit here (on SQLite, every
        # writer's BEGIN IMMEDIATE already has), then finds it.
        await self._session.execute(
            select(CustomReport.id).where(CustomReport.id == report_id).with_for_update()
        )
        found = await self._session.execute(
            select(
                ReportSchedule.id,
                ReportSchedule.cron,
                ReportSchedule.timezone,
                ReportSchedule.destination_kind,
                ReportSchedule.destination,
                ReportSchedule.filters,
            )
            .where(
                ReportSchedule.report_id == report_id,
                ReportSchedule.enabled.is_(True),
                ReportSchedule.destination == request.destination,
            )
            .order_by(ReportSchedule.id)
        )
        return next((row.id for row in found if request.repeats(*row[1:])), None)

    async def definition_of(self, report_id: int) -> dict[str, Any] | None:
        definition = await self._session.scalar(
            select(CustomReport.definition).where(CustomReport.id == report_id)
        )
        return dict(definition) if definition is not None else None

    async def withdraw(self, schedule_id: int) -> bool:
        # A run the scheduler claimed meanwhile (a schedule due a moment after it was saved) goes with it, as
        # when a schedule is removed: nothing is sent, and no run is left without a report.
        await self._session.execute(delete(ReportDelivery).where(ReportDelivery.schedule_id == schedule_id))
        gone = await self._session.execute(
            delete(ReportSchedule).where(ReportSchedule.id == schedule_id).returning(ReportSchedule.id)
        )
        return gone.first() is not None


class ReportSchedulingUnitOfWork(SqlUnitOfWork):
    """The unit of work scheduling a report takes (reports.schedules.SchedulingUnitOfWork)."""

    schedules: SqlReportSchedules

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.schedules = SqlReportSchedules(self.session)
        return self
