"""What `/v/TOKEN` does for a consultation at a moment: into the room, or a page that says why not yet."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.video.model import ConsultationStatus, Participant, Window


@dataclass(frozen=True)
class Attendance:
    """Who has come to a consultation so far, and the status that follows from it."""

    status: ConsultationStatus
    patient_joined_at: datetime | None = None
    clinician_joined_at: datetime | None = None
    started_at: datetime | None = None
    no_show_at: datetime | None = None
    no_show_by: str | None = None


#: A link token is what `secrets.token_urlsafe` makes; anything longer or with other characters is no token.
TOKEN_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
TOKEN_MAX_LENGTH = 64


class LinkOutcome(StrEnum):
    ENTER = "enter"
    NOT_YET = "not_yet"
    ENDED = "ended"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ConsultationAtLink:
    """The consultation a link token names, as the link needs it: who follows it and in which timezone."""

    consultation_id: int
    who: Participant
    window: Window
    room_name: str
    #: The name the room shows for the person following the link.
    display_name: str
    #: That person's timezone (the patient's, or the clinician's), for "opens at 10:25".
    timezone: str
    attendance: Attendance


@dataclass(frozen=True)
class LinkDecision:
    outcome: LinkOutcome
    headline: str
    detail: str = ""

    @property
    def enters(self) -> bool:
        return self.outcome is LinkOutcome.ENTER


UNKNOWN_LINK = LinkDecision(
    LinkOutcome.UNKNOWN,
    "This link is not one we know",
    "Check that the whole link from your message was opened. If it still does not work, reply to the "
    "message it came in and we will help.",
)


def looks_like_token(token: str) -> bool:
    """Cheap refusal of what cannot be a link token, before the database is asked."""
    return 0 < len(token) <= TOKEN_MAX_LENGTH and all(char in TOKEN_ALPHABET for char in token)


def decide_link(consultation: ConsultationAtLink | None, now: datetime) -> LinkDecision:
    """Where the link takes its reader now. Inside the window it lets them in, also a patient marked a
    no-show too early (their joining corrects it); a cancelled or finished consultation never opens."""
    if consultation is None:
        return UNKNOWN_LINK
    window = consultation.window
    patient = consultation.who is Participant.PATIENT
    status = consultation.attendance.status
    if status is ConsultationStatus.CANCELLED:
        return LinkDecision(
            LinkOutcome.CANCELLED,
            "This consultation was cancelled",
            "Reply to the message this link came in to book a new time."
            if patient
            else "Nobody will join this room: the consultation was cancelled.",
        )
    if status is ConsultationStatus.COMPLETED or now >= window.closes_at:
        return LinkDecision(
            LinkOutcome.ENDED,
            "This consultation has ended",
            "Reply to the message this link came in to rebook." if patient else "Its room is closed now.",
        )
    if now < window.opens_at:
        return LinkDecision(
            LinkOutcome.NOT_YET,
            f"Your consultation opens at {when(window.opens_at, consultation.timezone)}",
            f"It starts at {clock_time(window.starts_at, consultation.timezone)}. Open this link again "
            "then; the room lets you in from ten minutes before.",
        )
    return LinkDecision(LinkOutcome.ENTER, "Joining your consultation")


def reader_zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def clock_time(moment: datetime, timezone: str) -> str:
    """ "10:25 (Europe/Berlin time)": the wall clock in the reader's zone, the zone named."""
    zone = reader_zone(timezone)
    return f"{moment.astimezone(zone):%H:%M} ({zone.key} time)"


def when(moment: datetime, timezone: str) -> str:
    """ "10:25 on Tue 07 Jul (Europe/Berlin time)"."""
    zone = reader_zone(timezone)
    local = moment.astimezone(zone)
    return f"{local:%H:%M} on {local:%a %d %b} ({zone.key} time)"
