"""Video consultations' own tables: clinicians' working hours, booked time, joins and rebooking offers."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, SmallInteger, String, Time
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, BigId, Json, utcnow


class ClinicianHours(Base):
    """One span a clinician works on a weekday, in their own timezone; several spans make a split shift."""

    __tablename__ = "clinician_hours"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_known"),
        CheckConstraint("starts < ends", name="span_forward"),
        Index("ix_clinician_hours_staff", "staff_id", "weekday"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"))
    #: Monday is 0, as Python's `date.weekday()`.
    weekday: Mapped[int] = mapped_column(SmallInteger)
    starts: Mapped[time] = mapped_column(Time)
    ends: Mapped[time] = mapped_column(Time)


class ClinicianTimeClaim(Base):
    """Five minutes of a clinician's time held by one appointment.

    A booking claims every five-minute step it covers; the primary key makes two overlapping bookings
    collide in the database on whichever step they share, on SQLite and PostgreSQL alike, so two staff
    booking the same slot at once cannot both win.
    """

    __tablename__ = "clinician_time_claims"
    __table_args__ = (Index("ix_clinician_time_claims_appointment", "appointment_id"),)

    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"), primary_key=True)
    starts_at: Mapped[datetime] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointments.id", ondelete="CASCADE"))


class VideoJoin(Base):
    """Someone followed a consultation's link into its room (each join, not only the first)."""

    __tablename__ = "video_joins"
    __table_args__ = (
        CheckConstraint("who IN ('patient', 'clinician')", name="who_known"),
        Index("ix_video_joins_consultation", "consultation_id", "joined_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("video_consultations.id", ondelete="CASCADE"))
    who: Mapped[str] = mapped_column(String(16))
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Whether the clinician has been told the patient is waiting (patient joins only).
    alerted_at: Mapped[datetime | None] = mapped_column(default=None)


class VideoRebookOffer(Base):
    """New times offered to a patient (after a "2" reply or a no-show), answered by picking one."""

    __tablename__ = "video_rebook_offers"
    __table_args__ = (Index("ix_video_rebook_offers_customer", "customer_id", "offered_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("video_consultations.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    channel: Mapped[str] = mapped_column(String(16))
    #: The offered start times as ISO strings (UTC), in the order they were listed.
    slots: Mapped[list[Any]] = mapped_column(Json)
    offered_at: Mapped[datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(default=None)
    #: The consultation the patient's answer booked.
    rebooked_id: Mapped[int | None] = mapped_column(ForeignKey("video_consultations.id"), default=None)
