"""Consultations' links in SQL: the consultation a `/v/` token names, its join log and who has come."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from datetime import datetime
from typing import Self

from sqlalchemy import bindparam, case, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from domain.video.links import Attendance, ConsultationAtLink
from domain.video.model import OPENS_BEFORE, ConsultationStatus, Participant, Window
from domain.video.waiting_room import WaitingPatient
from domain.vocabulary import AppointmentStatus
from storage.models import Appointment, Customer, Service, StaffUser, VideoConsultation, VideoJoin
from storage.unit_of_work import SqlUnitOfWork

_clinician = aliased(StaffUser)
#: Built once: the /v/ lookup is the hot path (one indexed lookup by either token, the row held until commit).
_AT_LINK = (
    select(
        VideoConsultation.id,
        VideoConsultation.link_token,
        VideoConsultation.status,
        VideoConsultation.scheduled_at,
        VideoConsultation.duration_minutes,
        VideoConsultation.room_name,
        VideoConsultation.patient_joined_at,
        VideoConsultation.clinician_joined_at,
        VideoConsultation.started_at,
        VideoConsultation.no_show_at,
        VideoConsultation.no_show_by,
        Customer.name,
        Customer.timezone,
        Customer.locale,
        _clinician.name,
        _clinician.timezone,
    )
    .join(Customer, Customer.id == VideoConsultation.customer_id)
    .outerjoin(_clinician, _clinician.id == VideoConsultation.staff_id)
    .where(
        (VideoConsultation.link_token == bindparam("token"))
        | (VideoConsultation.clinician_token == bindparam("token"))
    )
)
_AT_LINK_HELD = _AT_LINK.with_for_update(of=VideoConsultation)


class SqlVideoLinks:
    """domain.video.joins.VideoLinkStore."""

    def __init__(self, session: AsyncSession, *, hold: bool = True) -> None:
        self._session = session
        self._hold = hold

    async def at_link(self, token: str) -> ConsultationAtLink | None:
        """One indexed lookup (each token column is unique). Unless read only, the row is held until commit on
        PostgreSQL, so two joins at once (patient and clinician) each see the other's."""
        statement = _AT_LINK_HELD if self._hold else _AT_LINK
        row = (await self._session.execute(statement, {"token": token})).one_or_none()
        if row is None:
            return None
        (
            consultation_id,
            link_token,
            status,
            starts_at,
            duration,
            room_name,
            patient_joined_at,
            clinician_joined_at,
            started_at,
            no_show_at,
            no_show_by,
            patient_name,
            patient_tz,
            patient_locale,
            clinician_name,
            clinician_tz,
        ) = row
        # Which of the two tokens it was, compared in constant time (the row itself came by an index lookup).
        patient = hmac.compare_digest((link_token or "").encode(), token.encode())
        who = Participant.PATIENT if patient else Participant.CLINICIAN
        return ConsultationAtLink(
            consultation_id=consultation_id,
            who=who,
            window=Window.of(starts_at, duration),
            room_name=room_name or f"consultation-{consultation_id}",
            display_name=patient_name if patient else (clinician_name or "Clinician"),
            timezone=patient_tz if patient else (clinician_tz or patient_tz),
            # The patient reads the page in their language (as their messages are); staff in English.
            locale=(patient_locale or "en") if patient else "en",
            with_whom=(clinician_name or "") if patient else patient_name,
            attendance=Attendance(
                status=ConsultationStatus(status),
                patient_joined_at=patient_joined_at,
                clinician_joined_at=clinician_joined_at,
                started_at=started_at,
                no_show_at=no_show_at,
                no_show_by=no_show_by,
            ),
        )

    async def record_join(self, consultation_id: int, who: Participant, now: datetime) -> None:
        await self._session.execute(
            insert(VideoJoin).values(consultation_id=consultation_id, who=who.value, joined_at=now)
        )

    async def save_attendance(self, consultation_id: int, before: Attendance, after: Attendance) -> None:
        await self._session.execute(
            update(VideoConsultation)
            .where(VideoConsultation.id == consultation_id)
            .values(
                status=after.status.value,
                patient_joined_at=after.patient_joined_at,
                clinician_joined_at=after.clinician_joined_at,
                started_at=after.started_at,
                no_show_at=after.no_show_at,
                no_show_by=after.no_show_by,
            )
        )
        if before.status is ConsultationStatus.NO_SHOW and after.status is not ConsultationStatus.NO_SHOW:
            await self._appointment_not_missed(consultation_id)

    async def _appointment_not_missed(self, consultation_id: int) -> None:
        """The appointment behind a corrected no-show is booked (or confirmed) again."""
        confirmed = select(VideoConsultation.confirmed_at.is_not(None)).where(
            VideoConsultation.id == consultation_id
        )
        appointment = select(VideoConsultation.appointment_id).where(VideoConsultation.id == consultation_id)
        await self._session.execute(
            update(Appointment)
            .where(
                Appointment.id == appointment.scalar_subquery(),
                Appointment.status == AppointmentStatus.NO_SHOW.value,
            )
            .values(
                status=case(
                    (confirmed.scalar_subquery(), AppointmentStatus.CONFIRMED.value),
                    else_=AppointmentStatus.BOOKED.value,
                )
            )
        )


class SqlVideoLinkUnitOfWork(SqlUnitOfWork):
    """domain.video.joins.VideoLinkUnitOfWork."""

    links: SqlVideoLinks

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.links = SqlVideoLinks(self.session, hold=not self._read_only)
        return self


class SqlWaitingRoom:
    """domain.video.waiting_room.WaitingRoomStore."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def claim_patient_joins(self, now: datetime, since: datetime, limit: int) -> list[int]:
        # Found through the consultations' start index (a narrow range), not by scanning every join ever made.
        untold = (
            select(VideoJoin.id)
            .join(VideoConsultation, VideoConsultation.id == VideoJoin.consultation_id)
            .where(
                VideoConsultation.scheduled_at >= since,
                VideoConsultation.scheduled_at <= now + OPENS_BEFORE,
                VideoJoin.who == Participant.PATIENT.value,
                VideoJoin.alerted_at.is_(None),
            )
            .order_by(VideoJoin.id)
            .limit(limit)
        )
        candidates = list(await self._session.scalars(untold))
        if not candidates:
            return []
        claimed = await self._session.scalars(
            update(VideoJoin)
            .where(VideoJoin.id.in_(candidates), VideoJoin.alerted_at.is_(None))
            .values(alerted_at=now)
            .returning(VideoJoin.id)
        )
        return sorted(claimed)

    async def waiting_patients(self, join_ids: Sequence[int]) -> list[WaitingPatient]:
        clinician = aliased(StaffUser)
        rows = await self._session.execute(
            select(VideoJoin, VideoConsultation, Customer.name, clinician, Service.name)
            .join(VideoConsultation, VideoConsultation.id == VideoJoin.consultation_id)
            .join(Customer, Customer.id == VideoConsultation.customer_id)
            .outerjoin(clinician, clinician.id == VideoConsultation.staff_id)
            .outerjoin(Appointment, Appointment.id == VideoConsultation.appointment_id)
            .outerjoin(Service, Service.id == Appointment.service_id)
            .where(VideoJoin.id.in_(join_ids))
        )
        return [
            WaitingPatient(
                join_id=join.id,
                consultation_id=consultation.id,
                joined_at=join.joined_at,
                status=ConsultationStatus(consultation.status),
                window=Window.of(consultation.scheduled_at, consultation.duration_minutes),
                patient_name=patient_name,
                clinician_name=staff.name if staff else "",
                clinician_timezone=staff.timezone if staff else "UTC",
                clinician_token=consultation.clinician_token,
                slack_user_id=staff.slack_user_id if staff and staff.active else None,
                telegram_user_id=staff.telegram_user_id if staff and staff.active else None,
                service_name=service_name,
            )
            for join, consultation, patient_name, staff, service_name in rows
        ]

    async def alerted_since(
        self, consultation_ids: Sequence[int], since: datetime, claimed: Sequence[int]
    ) -> set[int]:
        told = await self._session.scalars(
            select(VideoJoin.consultation_id)
            .where(
                VideoJoin.consultation_id.in_(consultation_ids),
                VideoJoin.who == Participant.PATIENT.value,
                VideoJoin.alerted_at >= since,
                VideoJoin.id.not_in(claimed),
            )
            .distinct()
        )
        return set(told)

    async def release(self, join_ids: Sequence[int], claimed_at: datetime) -> None:
        await self._session.execute(
            update(VideoJoin)
            .where(VideoJoin.id.in_(join_ids), VideoJoin.alerted_at == claimed_at)
            .values(alerted_at=None)
        )


class SqlWaitingRoomUnitOfWork(SqlUnitOfWork):
    """domain.video.waiting_room.WaitingRoomUnitOfWork."""

    waiting_room: SqlWaitingRoom

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.waiting_room = SqlWaitingRoom(self.session)
        return self
