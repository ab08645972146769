"""What `/v/TOKEN` does for a consultation at a moment: into the room, or a page that says why not yet."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_skeleton, get_timezone_name

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


_JOIN_LINK = re.compile(rf"(/v/)[A-Za-z0-9_-]{{8,{TOKEN_MAX_LENGTH}}}")


def hide_join_links(text: str) -> str:
    """A message's text with each patient's join link cut to "/v/•••": opening it counts as the patient
    joining, so only staff who act on consultations (agents and up) see it whole, on the consultation's page."""
    return _JOIN_LINK.sub(r"\1•••", text)


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
    #: The language the page speaks to them in ("de", "en_GB"); the patient's own, as their messages are.
    locale: str = "en"
    #: Who the reader meets there: the clinician for the patient, the patient for the clinician.
    with_whom: str = ""


@dataclass(frozen=True)
class LinkDecision:
    outcome: LinkOutcome
    headline: str
    detail: str = ""
    #: The page's language (its `lang`): "de" or "en".
    language: str = "en"
    #: Which consultation the page is about: "Your video consultation with Dr Lee".
    about: str = ""

    @property
    def enters(self) -> bool:
        return self.outcome is LinkOutcome.ENTER


#: What the link page says, per language the patient templates are written in; "{opens}" and "{starts}"
#: are filled with `when` and `clock_time` in that language.
PAGE_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "cancelled": "This consultation was cancelled",
        "cancelled_patient": "Reply to the message this link came in to book a new time.",
        "cancelled_clinician": "Nobody will join this room: the consultation was cancelled.",
        "ended": "This consultation has ended",
        "ended_patient": "Reply to the message this link came in to rebook.",
        "ended_clinician": "Its room is closed now.",
        "not_yet": "Your consultation opens at {opens}",
        "not_yet_detail": "It starts at {starts}. Open this link again then; the room lets you in from ten "
        "minutes before.",
        "enter": "Joining your consultation",
        "about": "Your video consultation with {whom}",
        "unknown": "This link is not one we know",
        "unknown_detail": "Check that the whole link from your message was opened. If it still does not "
        "work, reply to the message it came in and we will help.",
        "unavailable": "The video room cannot be opened just now",
        "unavailable_detail": "We have been told. Please reply to the message this link came in, and we will "
        "help you join.",
        "too_many": "Too many unknown links were opened from your network just now",
        "too_many_detail": "Please wait a minute, then open the link from your message again.",
    },
    "de": {
        "cancelled": "Dieser Videotermin wurde abgesagt",
        "cancelled_patient": "Antworten Sie auf die Nachricht mit diesem Link, um einen neuen Termin zu buchen.",
        "cancelled_clinician": "Niemand wird diesen Raum betreten: der Videotermin wurde abgesagt.",
        "ended": "Dieser Videotermin ist vorbei",
        "ended_patient": "Antworten Sie auf die Nachricht mit diesem Link, um einen neuen Termin zu buchen.",
        "ended_clinician": "Der Raum ist jetzt geschlossen.",
        "not_yet": "Der Raum für Ihren Videotermin öffnet um {opens}",
        "not_yet_detail": "Er beginnt um {starts}. Öffnen Sie diesen Link dann erneut; der Raum lässt Sie "
        "zehn Minuten vorher ein.",
        "enter": "Sie betreten Ihren Videotermin",
        "about": "Ihr Videotermin mit {whom}",
        "unknown": "Diesen Link kennen wir nicht",
        "unknown_detail": "Prüfen Sie, ob der ganze Link aus Ihrer Nachricht geöffnet wurde. Wenn er dann "
        "noch nicht geht, antworten Sie auf die Nachricht, und wir helfen Ihnen.",
        "unavailable": "Der Videoraum lässt sich gerade nicht öffnen",
        "unavailable_detail": "Wir wissen Bescheid. Bitte antworten Sie auf die Nachricht mit diesem Link, "
        "und wir helfen Ihnen beim Beitreten.",
        "too_many": "Aus Ihrem Netz wurden eben zu viele unbekannte Links geöffnet",
        "too_many_detail": "Bitte warten Sie eine Minute und öffnen Sie dann den Link aus Ihrer Nachricht "
        "erneut.",
    },
}


def page_language(locale: str) -> str:
    """The language the link page speaks for a locale ("de_AT" → "de"); English for any other."""
    language = (locale or "en").replace("-", "_").split("_")[0].lower()
    return language if language in PAGE_WORDS else "en"


UNKNOWN_LINK = LinkDecision(
    LinkOutcome.UNKNOWN, PAGE_WORDS["en"]["unknown"], PAGE_WORDS["en"]["unknown_detail"]
)


def unknown_link(language: str) -> LinkDecision:
    """The unknown link's page in `language` (the browser's, since no consultation says whose it is)."""
    return _page_without_consultation("unknown", language)


def rooms_unavailable(language: str) -> LinkDecision:
    """The page when the clinic's video provider is not set up: nobody can be let in."""
    return _page_without_consultation("unavailable", language)


def too_many_unknown_links(language: str) -> LinkDecision:
    """The page for a network that opened too many unknown links in a minute."""
    return _page_without_consultation("too_many", language)


def _page_without_consultation(kind: str, language: str) -> LinkDecision:
    spoken = page_language(language)
    words = PAGE_WORDS[spoken]
    return LinkDecision(LinkOutcome.UNKNOWN, words[kind], words[f"{kind}_detail"], spoken)


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
    language = page_language(consultation.locale)
    words = PAGE_WORDS[language]
    about = words["about"].format(whom=consultation.with_whom) if consultation.with_whom else ""
    if status is ConsultationStatus.CANCELLED:
        detail = words["cancelled_patient" if patient else "cancelled_clinician"]
        return LinkDecision(LinkOutcome.CANCELLED, words["cancelled"], detail, language, about)
    if status is ConsultationStatus.COMPLETED or now >= window.closes_at:
        detail = words["ended_patient" if patient else "ended_clinician"]
        return LinkDecision(LinkOutcome.ENDED, words["ended"], detail, language, about)
    if now < window.opens_at:
        return LinkDecision(
            LinkOutcome.NOT_YET,
            words["not_yet"].format(opens=when(window.opens_at, consultation.timezone, language)),
            words["not_yet_detail"].format(
                starts=patient_clock_time(window.starts_at, consultation.timezone, language)
            ),
            language,
            about,
        )
    return LinkDecision(LinkOutcome.ENTER, words["enter"], language=language, about=about)


def reader_zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def zone_said(local: datetime, language: str = "en") -> str:
    """The zone's short name at that moment as the reader's language has it: "CET", "MEZ" (German), "BST";
    where a language has no letters for it (German for London), Python's; "UTC+05" where none has."""
    if language == "de":
        german = get_timezone_name(local, "short", locale="de_DE")
        if german.isalpha():
            return str(german)
    name = local.tzname() or "UTC"
    return f"UTC{name}" if name[:1] in "+-" else name


def clock_time(moment: datetime, timezone: str, language: str = "en") -> str:
    """ "10:25 (Europe/Berlin time)", "10:25 Uhr (Zeitzone Europe/Berlin)": the wall clock in the reader's
    zone, the zone named, for staff (who may work across zones)."""
    zone = reader_zone(timezone)
    local = moment.astimezone(zone)
    if language == "de":
        return f"{local:%H:%M} Uhr (Zeitzone {zone.key})"
    return f"{local:%H:%M} ({zone.key} time)"


def patient_clock_time(moment: datetime, timezone: str, language: str = "en") -> str:
    """ "10:25 CET", "10:25 Uhr MEZ": the wall clock in the patient's zone, as their messages write it."""
    local = moment.astimezone(reader_zone(timezone))
    if language == "de":
        return f"{local:%H:%M} Uhr {zone_said(local, language)}"
    return f"{local:%H:%M} {zone_said(local, language)}"


def when(moment: datetime, timezone: str, language: str = "en") -> str:
    """ "10:25 CET on Tue 7 Jul", "10:25 Uhr MESZ am Di., 7. Juli": as the patient's messages write it."""
    local = moment.astimezone(reader_zone(timezone))
    day = format_skeleton("MMMEd", local, locale="de_DE" if language == "de" else "en_GB")
    if language == "de":
        return f"{patient_clock_time(moment, timezone, language)} am {day}"
    return f"{patient_clock_time(moment, timezone, language)} on {day}"
