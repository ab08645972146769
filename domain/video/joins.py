"""Following a consultation's link: the decision, each join recorded, and the status that joining brings."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from domain.audit import AuditEntry, AuditTrail
from domain.transaction import Transaction
from domain.video.links import (
    UNKNOWN_LINK,
    Attendance,
    ConsultationAtLink,
    LinkDecision,
    decide_link,
    looks_like_token,
)
from domain.video.model import ConsultationStatus, Participant
from domain.video.ports import VideoRooms

#: Who corrects a no-show when the patient turns up after all (the audit trail's actor).
PATIENT_JOINED = "system: patient joined"
#: Statuses joining never changes: the consultation is over, one way or the other.
SETTLED = (ConsultationStatus.CANCELLED, ConsultationStatus.COMPLETED, ConsultationStatus.CLINICIAN_ABSENT)


class VideoLinkStore(Protocol):
    async def at_link(self, token: str) -> ConsultationAtLink | None:
        """The consultation whose patient or clinician token this is (held until commit), or None."""

    async def record_join(self, consultation_id: int, who: Participant, now: datetime) -> None:
        """One more join in the consultation's join log."""

    async def save_attendance(self, consultation_id: int, before: Attendance, after: Attendance) -> None:
        """Who has come now (`after`); a no-show taken back also books the appointment again."""


class VideoLinkUnitOfWork(Transaction, Protocol):
    @property
    def links(self) -> VideoLinkStore: ...

    @property
    def audit(self) -> AuditTrail: ...


@dataclass(frozen=True)
class JoinOutcome:
    decision: LinkDecision
    #: Where to send the reader: the room, with its token (None unless the decision lets them in).
    room_url: str | None = None
    who: Participant | None = None
    consultation_id: int | None = None
    #: The patient is in and the clinician not yet: the clinician is to be told.
    patient_waiting: bool = False
    #: The patient had been marked a no-show and came after all; the mark was taken back.
    no_show_corrected: bool = False


def attendance_after_join(before: Attendance, who: Participant, now: datetime) -> Attendance:
    """Who has come, after `who` joined at `now`. The first join of each is kept; the patient in alone is
    WAITING, both in is IN_PROGRESS (started then). A cancelled or finished consultation does not change.
    A no-show stays one when the clinician joins; when the patient joins (inside the window, so they were
    marked too early or came late) the mark is taken back and the status follows who is in."""
    if before.status in SETTLED:
        return before
    after = replace(
        before,
        patient_joined_at=before.patient_joined_at or (now if who is Participant.PATIENT else None),
        clinician_joined_at=before.clinician_joined_at or (now if who is Participant.CLINICIAN else None),
    )
    if before.status is ConsultationStatus.NO_SHOW:
        if who is not Participant.PATIENT:
            return after
        after = replace(after, no_show_at=None, no_show_by=None)
    if after.patient_joined_at is not None and after.clinician_joined_at is not None:
        return replace(after, status=ConsultationStatus.IN_PROGRESS, started_at=before.started_at or now)
    if after.patient_joined_at is not None:
        return replace(after, status=ConsultationStatus.WAITING)
    # The clinician alone: the consultation keeps its status (booked or confirmed) until the patient comes.
    return replace(after, status=before.status)


async def follow_link(uow: VideoLinkUnitOfWork, token: str, now: datetime, rooms: VideoRooms) -> JoinOutcome:
    """Where `/v/TOKEN` leads at `now`, read only: into the room (with its token) inside the window, else the
    decision's page. The web answers with this at once and records the join just after (`record_join`), so
    a patient is never kept from the room while the join waits for the database."""
    if not looks_like_token(token):
        return JoinOutcome(UNKNOWN_LINK)
    async with uow:
        consultation = await uow.links.at_link(token)
    decision = decide_link(consultation, now)
    if consultation is None or not decision.enters:
        return JoinOutcome(decision)
    return _let_in(decision, consultation, rooms)


def _let_in(
    decision: LinkDecision,
    consultation: ConsultationAtLink,
    rooms: VideoRooms,
    *,
    patient_waiting: bool = False,
    no_show_corrected: bool = False,
) -> JoinOutcome:
    """Into the room: its address with this person's token."""
    return JoinOutcome(
        decision,
        room_url=rooms.join_url(
            consultation.room_name, consultation.who, consultation.display_name, consultation.window
        ),
        who=consultation.who,
        consultation_id=consultation.consultation_id,
        patient_waiting=patient_waiting,
        no_show_corrected=no_show_corrected,
    )


async def record_join(uow: VideoLinkUnitOfWork, token: str, now: datetime, rooms: VideoRooms) -> JoinOutcome:
    """Someone followed `/v/TOKEN` at `now`: inside the window they are let into the room and the join is
    recorded; otherwise they get the decision's page and nothing is written."""
    if not looks_like_token(token):
        return JoinOutcome(UNKNOWN_LINK)
    async with uow:
        consultation = await uow.links.at_link(token)
        decision = decide_link(consultation, now)
        if consultation is None or not decision.enters:
            return JoinOutcome(decision)
        before = consultation.attendance
        after = attendance_after_join(before, consultation.who, now)
        await uow.links.record_join(consultation.consultation_id, consultation.who, now)
        if after != before:
            await uow.links.save_attendance(consultation.consultation_id, before, after)
        corrected = (
            before.status is ConsultationStatus.NO_SHOW and after.status is not ConsultationStatus.NO_SHOW
        )
        if corrected:
            uow.audit.record(
                AuditEntry(
                    actor=PATIENT_JOINED,
                    via="system",
                    action="video.no_show_corrected",
                    target=f"video_consultation:{consultation.consultation_id}",
                    detail={
                        "marked_by": before.no_show_by or "unknown",
                        "marked_at": before.no_show_at.isoformat() if before.no_show_at else None,
                        "joined_at": now.isoformat(),
                    },
                )
            )
        await uow.commit()
    return _let_in(
        decision,
        consultation,
        rooms,
        patient_waiting=after.status is ConsultationStatus.WAITING
        and consultation.who is Participant.PATIENT,
        no_show_corrected=corrected,
    )
