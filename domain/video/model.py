"""The values video consultations are made of: status, who joins, the window a link opens in, the errors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

#: Booked time is claimed in steps of this size; a booking starts on a step.
SLOT_STEP = timedelta(minutes=5)
#: The link opens this long before the start, so a patient can test their camera in the waiting room.
OPENS_BEFORE = timedelta(minutes=10)
#: ... and stays open this long after the booked end, for consultations that overrun.
CLOSES_AFTER = timedelta(minutes=30)
#: The room's token is valid a little around the window so clocks that drift do not strand anyone.
TOKEN_MARGIN = timedelta(minutes=5)
#: Reminder times before the start when a service sets none: a day and two hours.
DEFAULT_REMINDER_MINUTES: tuple[int, ...] = (24 * 60, 2 * 60)
#: A consultation whose patient has not joined this long after the start is a no-show (setting overrides).
DEFAULT_NO_SHOW_AFTER = timedelta(minutes=10)


class ConsultationStatus(StrEnum):
    """Where a consultation stands. SCHEDULED is shown to people as "booked"."""

    SCHEDULED = "scheduled"
    CONFIRMED = "confirmed"
    WAITING = "waiting"  # the patient is in, the clinician not yet
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"
    #: The patient came and waited; the clinician never joined before the link closed.
    CLINICIAN_ABSENT = "clinician_absent"


#: Statuses of a consultation still to happen (or happening): it holds its time and gets reminders.
ACTIVE_STATUSES: tuple[ConsultationStatus, ...] = (
    ConsultationStatus.SCHEDULED,
    ConsultationStatus.CONFIRMED,
    ConsultationStatus.WAITING,
    ConsultationStatus.IN_PROGRESS,
)

STATUS_WORDS: dict[ConsultationStatus, str] = {
    ConsultationStatus.SCHEDULED: "booked",
    ConsultationStatus.CONFIRMED: "confirmed",
    ConsultationStatus.WAITING: "waiting",
    ConsultationStatus.IN_PROGRESS: "in progress",
    ConsultationStatus.COMPLETED: "done",
    ConsultationStatus.NO_SHOW: "no-show",
    ConsultationStatus.CANCELLED: "cancelled",
    ConsultationStatus.CLINICIAN_ABSENT: "clinician did not join",
}


class Participant(StrEnum):
    PATIENT = "patient"
    CLINICIAN = "clinician"


class VideoError(Exception):
    """A request about a consultation that cannot be done; the message says why in the user's words."""


class SlotTaken(VideoError):
    """Someone else holds (part of) the time asked for."""


class ConsultationNotFound(VideoError):
    pass


@dataclass(frozen=True)
class Window:
    """When a consultation's link lets people into the room."""

    starts_at: datetime
    ends_at: datetime

    @property
    def opens_at(self) -> datetime:
        return self.starts_at - OPENS_BEFORE

    @property
    def closes_at(self) -> datetime:
        return self.ends_at + CLOSES_AFTER

    def is_open(self, now: datetime) -> bool:
        return self.opens_at <= now < self.closes_at

    @classmethod
    def of(cls, starts_at: datetime, duration_minutes: int) -> Window:
        return cls(starts_at, starts_at + timedelta(minutes=duration_minutes))
