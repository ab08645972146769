"""No-shows: the watcher marking consultations nobody joined, and staff marking (or correcting) any appointment.

The watcher (`mark_missed_consultations`, every half minute) claims each booked or confirmed consultation
whose start plus the no-show delay has passed without a patient join, with a conditional update, so several
workers mark it once. The consultation and its appointment become no-shows (audited as the system), and the
patient is offered new times on their channel (domain/video/rebooking.py).

Staff mark an appointment a no-show, or correct one back to attended, from the bot or the dashboard, for
video and in-person appointments alike; both refuse an appointment that has not begun, and both are audited.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from domain.audit import AuditEntry
from domain.video.booking import time_in
from domain.video.model import VideoError
from domain.video.rebooking import RebookingUnitOfWork, send_offer
from domain.vocabulary import AppointmentStatus

SYSTEM = "system"
PASS_LIMIT = 200
#: The watcher marks consultations that began within this long; older ones left booked (a worker down for
#: days, or data from before) are for staff to mark, rather than a burst of offers for last month.
MARK_WITHIN = timedelta(days=1)


class AppointmentNotFound(VideoError):
    pass


@dataclass(frozen=True)
class AppointmentFacts:
    """An appointment as marking it needs: when, its status, and its video consultation if it has one."""

    appointment_id: int
    customer_id: int
    customer: str
    kind: str
    status: AppointmentStatus
    scheduled_at: datetime
    duration_minutes: int
    consultation_id: int | None
    rebook_offered_at: datetime | None = None


@dataclass(frozen=True)
class Marked:
    """What marking did, for the reply: the appointment as it now is, and the times offered (if any)."""

    appointment: AppointmentFacts
    previous: AppointmentStatus
    offered: tuple[datetime, ...] = ()
    offer_sent: bool = False


class NoShowBook(Protocol):
    """Appointments and consultations as no-show marking needs them (nothing here commits)."""

    async def claim_missed(
        self, started_after: datetime, started_before: datetime, at: datetime, limit: int
    ) -> list[int]:
        """Mark booked or confirmed consultations that began between `started_after` and `started_before`
        with no patient join as no-shows (consultation and appointment), by the system, in one conditional
        update each; the ids this call marked (another worker's are not returned)."""

    async def finish_ended(self, at: datetime, limit: int) -> list[int]:
        """Consultations in progress whose window has closed become completed (and their appointments);
        the ids this call finished."""

    async def close_unattended(self, at: datetime, limit: int) -> list[int]:
        """Consultations whose patient waited and whose clinician never joined, once their window has closed,
        become CLINICIAN_ABSENT (their appointments cancelled); the ids this call closed (each once)."""

    async def appointment(
        self, appointment_id: int, *, for_update: bool = False
    ) -> AppointmentFacts | None: ...

    async def set_outcome(
        self, appointment: AppointmentFacts, status: AppointmentStatus, *, by: str, at: datetime
    ) -> None:
        """The appointment's status, and its consultation's to match (no-show: when and by whom; attended:
        completed, the no-show mark cleared)."""


class NoShowUnitOfWork(RebookingUnitOfWork, Protocol):
    @property
    def no_shows(self) -> NoShowBook: ...


async def mark_missed_consultations(
    open_uow: Callable[[], NoShowUnitOfWork],
    now: datetime,
    *,
    after: timedelta,
    process_events: Callable[[], Awaitable[object]] | None = None,
    limit: int = PASS_LIMIT,
) -> list[int]:
    """The watcher's pass: consultations nobody joined within `after` of their start become no-shows, each
    once, and their patients are offered new times; at the window's close, calls under way are done and a
    patient left waiting by an absent clinician is offered new times too. The ids marked no-show."""
    async with open_uow() as uow:
        marked = await uow.no_shows.claim_missed(now - MARK_WITHIN, now - after, now, limit)
        # The same pass closes consultations whose window has ended: nothing else says a call is over.
        for consultation_id in await uow.no_shows.finish_ended(now, limit):
            uow.audit.record(
                AuditEntry(SYSTEM, SYSTEM, "video.completed", f"video_consultation:{consultation_id}", {})
            )
        # A patient who waited for a clinician who never came did not miss anything: the clinic did. They
        # are offered new times all the same, and the audit trail says whose the miss was.
        absent = await uow.no_shows.close_unattended(now, limit)
        for consultation_id in absent:
            uow.audit.record(
                AuditEntry(
                    SYSTEM, SYSTEM, "video.clinician_absent", f"video_consultation:{consultation_id}", {}
                )
            )
            facts = await uow.rebooking.consultation(consultation_id)
            if facts is not None:
                await send_offer(uow.rebooking, facts, now, key=f"video.clinician_absent:{consultation_id}")
        for consultation_id in marked:
            uow.audit.record(
                AuditEntry(SYSTEM, SYSTEM, "video.no_show", f"video_consultation:{consultation_id}",
                           {"after_minutes": int(after.total_seconds() // 60)})
            )  # fmt: skip
            facts = await uow.rebooking.consultation(consultation_id)
            if facts is not None:
                await send_offer(uow.rebooking, facts, now, key=f"video.no_show:{consultation_id}")
        await uow.commit()
    if (marked or absent) and process_events is not None:
        await process_events()
    return marked


async def mark_no_show(
    uow: NoShowUnitOfWork, appointment_id: int, *, actor: str, via: str, now: datetime, timezone: str = "UTC"
) -> Marked:
    """Staff mark an appointment that has begun as a no-show (video or in person); a video patient is
    offered new times (once). Audited."""
    async with uow:
        appointment = await _set_outcome(
            uow, appointment_id, AppointmentStatus.NO_SHOW, actor, via, now, timezone
        )
        offered: list[datetime] = []
        sent = False
        if appointment.consultation_id is not None and appointment.rebook_offered_at is None:
            facts = await uow.rebooking.consultation(appointment.consultation_id)
            if facts is not None:
                key = f"video.no_show:{appointment.consultation_id}"
                offered = await send_offer(uow.rebooking, facts, now, key=key)
                sent = True
        marked = await _appointment(uow, appointment_id)
        await uow.commit()
    return Marked(marked, appointment.status, tuple(offered), sent)


async def mark_attended(
    uow: NoShowUnitOfWork, appointment_id: int, *, actor: str, via: str, now: datetime, timezone: str = "UTC"
) -> Marked:
    """Staff record that the patient came (correcting a wrong no-show, or closing a visit); audited."""
    async with uow:
        appointment = await _set_outcome(
            uow, appointment_id, AppointmentStatus.COMPLETED, actor, via, now, timezone
        )
        marked = await _appointment(uow, appointment_id)
        await uow.commit()
    return Marked(marked, appointment.status)


#: What staff marking calls each outcome, and the audit action it records.
OUTCOME_WORDS = {AppointmentStatus.NO_SHOW: "a no-show", AppointmentStatus.COMPLETED: "attended"}
OUTCOME_ACTIONS = {
    AppointmentStatus.NO_SHOW: "appointment.no_show",
    AppointmentStatus.COMPLETED: "appointment.attended",
}


async def _set_outcome(
    uow: NoShowUnitOfWork,
    appointment_id: int,
    outcome: AppointmentStatus,
    actor: str,
    via: str,
    now: datetime,
    timezone: str,
) -> AppointmentFacts:
    """The appointment as it was, once it is marked `outcome` (refused in words when it cannot be) and audited."""
    appointment = await _appointment(uow, appointment_id)
    words = OUTCOME_WORDS[outcome]
    _require_begun(appointment, now, words, timezone)
    if appointment.status is AppointmentStatus.CANCELLED:
        raise VideoError(f"Appointment {appointment_id} was cancelled; it cannot be marked {words}.")
    if appointment.status is outcome:
        raise VideoError(f"Appointment {appointment_id} is already marked {words}.")
    await uow.no_shows.set_outcome(appointment, outcome, by=actor, at=now)
    _audit(uow, actor, via, OUTCOME_ACTIONS[outcome], appointment)
    return appointment


async def _appointment(uow: NoShowUnitOfWork, appointment_id: int) -> AppointmentFacts:
    found = await uow.no_shows.appointment(appointment_id, for_update=True)
    if found is None:
        raise AppointmentNotFound(f"There is no appointment {appointment_id}.")
    return found


def _require_begun(appointment: AppointmentFacts, now: datetime, what: str, timezone: str) -> None:
    """`timezone`: the reader's, for the time in the refusal."""
    if appointment.scheduled_at > now:
        when = time_in(appointment.scheduled_at, timezone)
        # A video consultation is known to staff by its own number, not its appointment's.
        named = (
            f"Consultation {appointment.consultation_id}"
            if appointment.consultation_id is not None
            else f"Appointment {appointment.appointment_id}"
        )
        raise VideoError(
            f"{named} has not begun yet (it starts {when}); it can only be marked {what} once it has."
        )


def _audit(uow: NoShowUnitOfWork, actor: str, via: str, action: str, appointment: AppointmentFacts) -> None:
    detail: dict[str, object] = {"from": appointment.status.value, "kind": appointment.kind}
    if appointment.consultation_id is not None:
        detail["consultation_id"] = appointment.consultation_id
    uow.audit.record(AuditEntry(actor, via, action, f"appointment:{appointment.appointment_id}", detail))
