"""Report schedules as the reports page lists them: each saved report's schedules and the latest deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select

from storage.database import Database
from storage.models import ReportDelivery, ReportSchedule
from storage.schedules import filters_in_words


@dataclass(frozen=True)
class ScheduleListing:
    id: int
    report_id: int
    cron: str
    timezone: str
    destination_kind: str
    destination: str
    enabled: bool
    #: The recipient's own filters in words ("location BER"), or "".
    only_for: str = ""
    #: When it next goes out (the scheduler keeps it); None before its first due time is worked out.
    next_due_at: datetime | None = None


@dataclass(frozen=True)
class DeliveryListing:
    id: int
    report_id: int
    due_at: datetime
    destination: str
    status: str
    late: bool
    delivered_at: datetime | None
    error: str | None
    attempts: int = 0
    #: Its schedule was removed: what it was ("every Monday at 08:00, Europe/Berlin").
    removed_schedule: str | None = None


async def schedules_of_reports(database: Database, report_ids: Sequence[int]) -> list[ScheduleListing]:
    """The reports' schedules, oldest first."""
    async with database.read_sessions() as session:
        rows = await session.scalars(
            select(ReportSchedule)
            .where(ReportSchedule.report_id.in_(list(report_ids)))
            .order_by(ReportSchedule.id)
        )
        return [
            ScheduleListing(
                s.id,
                s.report_id,
                s.cron,
                s.timezone,
                s.destination_kind,
                s.destination,
                s.enabled,
                filters_in_words(s.filters) if s.filters else "",
                s.next_due_at,
            )
            for s in rows
        ]


async def latest_deliveries(
    database: Database, report_ids: Sequence[int], limit: int = 30
) -> list[DeliveryListing]:
    """The reports' deliveries, the latest due first, with those of schedules since removed."""
    ids = list(report_ids)
    whose = func.coalesce(ReportSchedule.report_id, ReportDelivery.report_id)
    async with database.read_sessions() as session:
        rows = (
            await session.execute(
                select(ReportDelivery, whose)
                .outerjoin(ReportSchedule, ReportSchedule.id == ReportDelivery.schedule_id)
                .where(or_(ReportSchedule.report_id.in_(ids), ReportDelivery.report_id.in_(ids)))
                .order_by(ReportDelivery.due_at.desc(), ReportDelivery.id.desc())
                .limit(limit)
            )
        ).all()
    return [
        DeliveryListing(
            d.id,
            report_id,
            d.due_at,
            d.destination,
            d.status,
            d.late,
            d.delivered_at,
            d.error,
            d.attempts,
            removed_schedule=d.schedule_words if d.schedule_id is None else None,
        )
        for d, report_id in rows
    ]
