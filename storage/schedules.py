"""Report schedules and their delivery log; the claim row is what makes each delivery happen exactly once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import CustomReport, ReportDelivery, ReportSchedule, StaffUser
from storage.sql import insert_for, table_of

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


@dataclass(frozen=True)
class PendingRetry:
    delivery_id: int
    schedule_id: int
    due_at: datetime
    attempts: int
    late: bool


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
        late: bool,
        status: str = "claimed",
    ) -> int | None:
        """Claims one (schedule, due time, destination); returns the delivery id, or None if another process has it."""
        statement = (
            insert_for(self.session, DELIVERIES)
            .values(
                schedule_id=schedule_id,
                due_at=due_at,
                destination=destination,
                status=status,
                claimed_by=worker_id,
                attempts=0,
                late=late,
                claimed_at=now,
            )
            .on_conflict_do_nothing(index_elements=["schedule_id", "due_at", "destination"])
            .returning(DELIVERIES.c.id)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def mark(
        self,
        delivery_id: int,
        status: str,
        *,
        attempts: int,
        error: str | None = None,
        delivered_at: datetime | None = None,
        retry_at: datetime | None = None,
    ) -> None:
        values: dict[str, Any] = {"status": status, "attempts": attempts, "error": error and error[:500]}
        if delivered_at is not None:
            values["delivered_at"] = delivered_at
        if retry_at is not None:
            values["claimed_at"] = retry_at
        await self.session.execute(
            update(ReportDelivery).where(ReportDelivery.id == delivery_id).values(**values)
        )

    async def retries_due(self, now: datetime) -> list[PendingRetry]:
        rows = await self.session.execute(
            select(
                ReportDelivery.id,
                ReportDelivery.schedule_id,
                ReportDelivery.due_at,
                ReportDelivery.attempts,
                ReportDelivery.late,
            ).where(ReportDelivery.status == "retrying", ReportDelivery.claimed_at <= now)
        )
        return [PendingRetry(r.id, r.schedule_id, r.due_at, r.attempts, r.late) for r in rows.all()]

    async def take_retry(self, delivery_id: int, worker_id: str, now: datetime) -> bool:
        """Takes a retry for this process; a retry is also claimed exactly once."""
        result = await self.session.execute(
            update(ReportDelivery)
            .where(ReportDelivery.id == delivery_id, ReportDelivery.status == "retrying")
            .values(status="claimed", claimed_by=worker_id, claimed_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))


def _due(schedule: ReportSchedule, report: CustomReport, owner_email: str | None) -> DueSchedule:
    assert schedule.next_due_at is not None
    return DueSchedule(
        id=schedule.id,
        report_id=report.id,
        report_slug=report.slug,
        report_name=report.name,
        definition=dict(report.definition),
        cron=schedule.cron,
        timezone=schedule.timezone,
        destination_kind=schedule.destination_kind,
        destination=schedule.destination,
        attach_csv=schedule.attach_csv,
        missed_run_policy=schedule.missed_run_policy,
        next_due_at=schedule.next_due_at,
        owner_email=owner_email,
    )
