"""Acting on a report's schedules and delivery log from the dashboard or chat: sending a failed delivery
again, and taking a schedule away. Each change is audited in the same commit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update

from domain.audit import AuditEntry
from reports.schedule_words import cron_in_words
from storage.database import Database
from storage.models import ReportDelivery, ReportSchedule
from storage.unit_of_work import SqlUnitOfWork

#: Runs that are over: they stay in the log when their schedule is removed.
FINISHED = ("delivered", "failed", "skipped")


class DeliveryActionError(ValueError):
    """Why the asked change cannot happen, in words."""


@dataclass(frozen=True)
class Actor:
    email: str
    via: str


async def retry_delivery(
    database: Database, actor: Actor, report_id: int, delivery_id: int, now: datetime
) -> str:
    """Send a failed delivery again: it reopens as due now with its attempts counted afresh, and the
    scheduler's next tick takes it (once, whichever process gets it). Counted in `sent_again`, so an email
    sent again has a Message-ID of its own. Returns where it goes."""
    async with SqlUnitOfWork(database) as uow:
        row = (
            await uow.session.execute(
                select(ReportDelivery.status, ReportDelivery.destination)
                .join(ReportSchedule, ReportSchedule.id == ReportDelivery.schedule_id)
                .where(ReportDelivery.id == delivery_id, ReportSchedule.report_id == report_id)
            )
        ).first()
        if row is None:
            kept = await uow.session.scalar(
                select(ReportDelivery.id).where(
                    ReportDelivery.id == delivery_id, ReportDelivery.report_id == report_id
                )
            )
            if kept is not None:
                raise DeliveryActionError(
                    "Its schedule was removed, so it cannot be sent again; schedule the report again instead."
                )
            raise DeliveryActionError("There is no such delivery of this report.")
        if row.status != "failed":
            raise DeliveryActionError(f"Only a failed delivery can be sent again; this one is {row.status}.")
        changed = await uow.session.execute(
            update(ReportDelivery)
            .where(ReportDelivery.id == delivery_id, ReportDelivery.status == "failed")
            .values(
                status="retrying",
                attempts=0,
                claimed_until=now,
                takeover_note=None,
                sent_again=ReportDelivery.sent_again + 1,
                owner_to_hear=False,
            )
            .execution_options(synchronize_session=False)
        )
        if not getattr(changed, "rowcount", 0):
            raise DeliveryActionError("Someone else is sending it again already.")
        uow.audit.record(
            AuditEntry(
                actor=actor.email,
                via=actor.via,
                action="report.delivery_retry",
                target=f"report_delivery:{delivery_id}",
                detail={"destination": row.destination},
            )
        )
        await uow.commit()
    return str(row.destination)


async def remove_schedule(database: Database, actor: Actor, report_id: int, schedule_id: int) -> str:
    """Take a schedule away; returns where it used to deliver. Its finished runs stay in the report's delivery
    log, saying what the schedule was; runs not finished (due, retrying, being sent) go with it, so nothing
    is sent for a schedule that no longer exists."""
    async with SqlUnitOfWork(database) as uow:
        schedule = await uow.session.get(ReportSchedule, schedule_id)
        if schedule is None or schedule.report_id != report_id:
            raise DeliveryActionError("There is no such schedule on this report.")
        destination, cron = schedule.destination, schedule.cron
        await uow.session.execute(
            delete(ReportDelivery).where(
                ReportDelivery.schedule_id == schedule_id, ReportDelivery.status.not_in(FINISHED)
            )
        )
        await uow.session.execute(
            update(ReportDelivery)
            .where(ReportDelivery.schedule_id == schedule_id)
            .values(
                schedule_id=None,
                report_id=report_id,
                schedule_words=f"{cron_in_words(cron)}, {schedule.timezone}"[:300],
                # Its owner is not told of a late bounce of a schedule that is gone.
                owner_to_hear=False,
            )
            .execution_options(synchronize_session=False)
        )
        await uow.session.execute(delete(ReportSchedule).where(ReportSchedule.id == schedule_id))
        uow.audit.record(
            AuditEntry(
                actor=actor.email,
                via=actor.via,
                action="report.unschedule",
                target=f"report_schedule:{schedule_id}",
                detail={"report_id": report_id, "cron": cron, "destination": destination},
            )
        )
        await uow.commit()
    return destination
