"""Rebooking offers: the next three free times of the same clinician and service, offered as A, B and C.

An offer follows a no-show (the watcher, or staff marking one), a patient's "2" to a reminder, or staff
asking for one (`offer_rebooking`). It is stored in video_rebook_offers; the patient's "A", "B" or "C"
(domain/video/replies.py) books that time: a consultation still ahead is moved, a missed one is booked
anew. A time taken meanwhile gets a clear answer with fresh times.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from domain.audit import AuditEntry, AuditTrail
from domain.templates.selection import BY_LANGUAGE
from domain.transaction import Transaction
from domain.video.booking import (
    BookedConsultation,
    BookingRequest,
    book_consultation,
    clinician_in,
    find_free_slots,
    reschedule_consultation,
    said_by_language,
    time_in,
    with_unnamed_clinician,
)
from domain.video.booking_ports import VideoBookingUnitOfWork
from domain.video.model import ACTIVE_STATUSES, ConsultationNotFound, ConsultationStatus, VideoError
from domain.video.ports import VideoRooms

#: The business event whose notification rule sends an offer the patient did not ask for (after a no-show).
REBOOK_EVENT = "video.rebook_offer"
OFFER_LETTERS = "ABC"
#: Offered times start at least this far ahead, and are looked for this far.
MIN_NOTICE = timedelta(hours=1)
SEARCH_AHEAD = timedelta(days=14)
#: Offered times lie at least this far apart.
OFFER_GAP = timedelta(hours=1)
#: A patient's letter answers an offer made this recently.
OFFER_VALID = timedelta(days=7)
NO_TIMES = "Reply to this message and we will find a new time with you."
NO_TIMES_DE = "Antworten Sie auf diese Nachricht, dann finden wir einen neuen Termin mit Ihnen."

#: What the patient is told, in English and German (their locale); filled with str.format.
PATIENT_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "confirmed": "Thanks, you're confirmed for your {service} with {clinician} on {when}.",
        "link": " Your link: {link}",
        "passed": "That consultation has already passed; reply to this message and we will find a new time.",
        "other_times": "No problem. New times with {clinician}: {lines} Your current time stays booked until you choose.",
        "passed_times": "That consultation has already passed. New times with {clinician}: {lines}",
        "no_times": "We have no free time with {clinician} in the next two weeks. {lines}",
        "gone": "That consultation is no longer on record; reply to this message and we will help.",
        "letters": "Please answer with one of the letters offered: {letters}.",
        "taken": "Sorry, that time has just been taken. {lines}",
        "done": "Done: your {service} with {clinician} is now on {when}.",
    },
    "de": {
        "confirmed": "Danke, Ihr Termin ({service}) mit {clinician} am {when} ist bestätigt.",
        "link": " Ihr Link: {link}",
        "passed": "Dieser Termin ist bereits vorbei; antworten Sie auf diese Nachricht, dann finden wir einen neuen.",
        "other_times": "Kein Problem. Neue Termine mit {clinician}: {lines} Ihr bisheriger Termin bleibt gebucht, bis Sie wählen.",
        "passed_times": "Dieser Termin ist bereits vorbei. Neue Termine mit {clinician}: {lines}",
        "no_times": "Bei {clinician} ist in den nächsten zwei Wochen kein Termin frei. {lines}",
        "gone": "Dieser Termin ist nicht mehr vorhanden; antworten Sie auf diese Nachricht, wir helfen Ihnen.",
        "letters": "Bitte antworten Sie mit einem der angebotenen Buchstaben: {letters}.",
        "taken": "Leider ist dieser Termin gerade vergeben worden. {lines}",
        "done": "Erledigt: Ihr Termin ({service}) mit {clinician} ist jetzt am {when}.",
    },
}  # fmt: skip


def patient_says(locale: str, what: str, **values: object) -> str:
    """One of PATIENT_WORDS in the patient's language (German for "de...", else English)."""
    words = PATIENT_WORDS["de" if locale.lower().startswith("de") else "en"]
    if "clinician" in values:
        values["clinician"] = clinician_in(str(values["clinician"] or ""), locale)
    return words[what].format(**values)


@dataclass(frozen=True)
class RebookingPolicy:
    """What booking from an answer needs: the video rooms, and the public address links live under."""

    rooms: VideoRooms
    public_url: str


@dataclass(frozen=True)
class ConsultationFacts:
    """A consultation as offering and answering need it."""

    consultation_id: int
    appointment_id: int | None
    customer_id: int
    staff_id: int | None
    service_id: int | None
    scheduled_at: datetime
    status: ConsultationStatus
    customer_timezone: str
    customer_locale: str
    service: str
    clinician: str
    rebook_offered_at: datetime | None = None
    link_token: str | None = None
    #: The service's staff name (None: booked without one) and its names by language; `service` is the
    #: name in the patient's language.
    staff_service: str | None = None
    service_names: Mapping[str, str] | None = None


@dataclass(frozen=True)
class StoredOffer:
    offer_id: int
    consultation_id: int
    customer_id: int
    slots: tuple[datetime, ...]
    offered_at: datetime


class RebookingDesk(Protocol):
    """Offers and the consultations they are about, in the caller's transaction (nothing here commits)."""

    async def consultation(
        self, consultation_id: int, *, for_update: bool = False
    ) -> ConsultationFacts | None: ...

    def booking(self) -> VideoBookingUnitOfWork:
        """The booking use-cases' unit of work as a savepoint of this transaction: its commit keeps what
        it did, leaving it without commit undoes only that (a time taken meanwhile)."""

    async def add_offer(
        self, consultation_id: int, customer_id: int, channel: str, slots: Sequence[datetime], at: datetime
    ) -> int: ...

    async def open_offer(self, customer_id: int, since: datetime) -> StoredOffer | None:
        """The customer's latest unanswered offer made at or after `since`; None also when staff have written
        to the customer since it was made (a letter then answers them)."""

    async def close_offer(self, offer_id: int, at: datetime, rebooked_id: int | None) -> bool:
        """Mark the offer answered (once); False when it already was."""

    async def mark_offered(self, consultation_id: int, at: datetime) -> None: ...

    async def rebooked_as(self, consultation_id: int) -> int | None:
        """The consultation the patient booked from one of this one's offers, if they did."""

    async def latest_prompted(self, customer_id: int, since: datetime) -> int | None:
        """The consultation the customer was last reminded of, or told was booked or moved, at or after
        `since`; None when there is none, or when staff have written to the customer since (a "1" or "2"
        then answers them)."""

    async def confirm(self, consultation_id: int, at: datetime) -> bool:
        """The consultation (and its appointment) is confirmed; False when it already was or is not booked."""

    async def patient_channel(self, customer_id: int) -> str:
        """The channel the offer's message will take, as its rule chooses it (the rule's own order, else their
        preferred channel, those they opted in on, the default order; one they have an address on and did
        not opt out of)."""

    async def add_event(
        self, event_type: str, key: str, customer_id: int, payload: Mapping[str, Any], at: datetime
    ) -> None: ...


class RebookingUnitOfWork(Transaction, Protocol):
    @property
    def rebooking(self) -> RebookingDesk: ...

    @property
    def audit(self) -> AuditTrail: ...


# --- the words --------------------------------------------------------------------------------------------


def offer_lines(slots: Sequence[datetime], timezone: str, locale: str = "en") -> str:
    """ "A) Tue 8 Dec 10:30 CET; B) .... Reply A, B or C to book it." (in German for "de", whose times hold
    commas: "A) Di., 8. Dez., 10:30 Uhr MEZ; B) ..."), or the sentence for no times."""
    german = locale.lower().startswith("de")
    if not slots:
        return NO_TIMES_DE if german else NO_TIMES
    letters = OFFER_LETTERS[: len(slots)]
    listed = "; ".join(
        f"{letter}) {time_in(slot, timezone, locale)}" for letter, slot in zip(letters, slots, strict=False)
    )
    either = " oder " if german else " or "
    choice = letters[0] if len(letters) == 1 else ", ".join(letters[:-1]) + either + letters[-1]
    if german:
        return f"{listed}. Antworten Sie {choice}, um den Termin zu buchen."
    return f"{listed}. Reply {choice} to book it."


_PICK = re.compile(r"[\(\[]?([abc])[\)\].!]?")


def read_pick(text: str) -> int | None:
    """The offered time a bare answer picks ("A", "b", "C)", "(a)"), as an index; None otherwise."""
    folded = unicodedata.normalize("NFKC", text).strip().casefold()
    found = _PICK.fullmatch(folded)
    return OFFER_LETTERS.casefold().index(found.group(1)) if found else None


# --- offering ---------------------------------------------------------------------------------------------


async def next_times(desk: RebookingDesk, facts: ConsultationFacts, now: datetime) -> list[datetime]:
    """The next free times of the same clinician and service (none when either is unknown or unbookable)."""
    if facts.staff_id is None or facts.service_id is None:
        return []
    start = now + MIN_NOTICE
    try:
        free = await find_free_slots(
            desk.booking(), facts.staff_id, facts.service_id, start, start + SEARCH_AHEAD, now=now
        )
    except VideoError:
        return []
    return spread(free, len(OFFER_LETTERS))


def spread(free: Sequence[datetime], count: int) -> list[datetime]:
    """The first free time, then each next one at least OFFER_GAP after the one before: three choices five
    minutes apart are no choice."""
    chosen: list[datetime] = []
    for slot in free:
        if not chosen or slot >= chosen[-1] + OFFER_GAP:
            chosen.append(slot)
            if len(chosen) == count:
                break
    return chosen


async def make_offer(
    desk: RebookingDesk, facts: ConsultationFacts, channel: str, now: datetime
) -> tuple[int | None, list[datetime]]:
    """Store an offer of the next free times (none stored when there are none); (offer id, times)."""
    slots = await next_times(desk, facts, now)
    if not slots:
        return None, []
    offer_id = await desk.add_offer(facts.consultation_id, facts.customer_id, channel, slots, now)
    await desk.mark_offered(facts.consultation_id, now)
    return offer_id, slots


async def send_offer(
    desk: RebookingDesk, facts: ConsultationFacts, now: datetime, *, key: str
) -> list[datetime]:
    """Offer new times by a message the notification rules send (consent, quiet hours, channel order apply);
    `key` makes it once per occasion. The times offered (none: the message asks the patient to reply)."""
    channel = await desk.patient_channel(facts.customer_id)
    offer_id, slots = await make_offer(desk, facts, channel, now)
    if offer_id is None:
        await desk.mark_offered(facts.consultation_id, now)
    said = said_by_language(
        facts.staff_service,
        facts.service_names,
        facts.scheduled_at,
        facts.customer_timezone,
        facts.customer_locale,
    )
    for code, words in with_unnamed_clinician(said, facts.clinician).items():
        words["options"] = offer_lines(slots, facts.customer_timezone, code)
    payload = {
        "consultation_id": facts.consultation_id,
        "offer_id": offer_id,
        "service": facts.service,
        "clinician": clinician_in(facts.clinician, facts.customer_locale),
        "appointment_time": time_in(facts.scheduled_at, facts.customer_timezone, facts.customer_locale),
        "options": offer_lines(slots, facts.customer_timezone, facts.customer_locale),
        BY_LANGUAGE: said,
    }
    await desk.add_event(REBOOK_EVENT, key, facts.customer_id, payload, now)
    return slots


async def offer_rebooking(
    uow: RebookingUnitOfWork, consultation_id: int, *, actor: str, via: str, now: datetime
) -> list[datetime]:
    """Staff offer a patient new times for a consultation (a missed or cancelled one, or one still ahead);
    the patient answers with a letter. Audited; the times offered (none: they are asked to reply)."""
    async with uow:
        facts = await uow.rebooking.consultation(consultation_id, for_update=True)
        if facts is None:
            raise ConsultationNotFound(f"There is no video consultation {consultation_id}.")
        if (rebooked := await uow.rebooking.rebooked_as(consultation_id)) is not None:
            # A second offer could book the patient twice: the new consultation is where times change now.
            raise VideoError(
                f"The patient already rebooked consultation {consultation_id} as #{rebooked}; "
                f"reschedule #{rebooked} instead."
            )
        key = f"{REBOOK_EVENT}:{consultation_id}:{actor}:{now.astimezone(UTC):%Y%m%d%H%M%S}"
        slots = await send_offer(uow.rebooking, facts, now, key=key[:128])
        uow.audit.record(
            AuditEntry(actor, via, "video.rebook_offer", f"video_consultation:{consultation_id}",
                       {"slots": [s.isoformat() for s in slots]})
        )  # fmt: skip
        await uow.commit()
    return slots


# --- answering --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PickOutcome:
    """What a patient's letter did: `booked` (the consultation it booked or moved), or fresh times; `text`
    is the answer to send."""

    text: str
    booked_id: int | None = None
    slots: tuple[datetime, ...] = ()
    #: What happened, for staff (a note in an open conversation).
    note: str = ""


async def take_pick(
    desk: RebookingDesk,
    offer: StoredOffer,
    index: int,
    channel: str,
    policy: RebookingPolicy,
    now: datetime,
) -> PickOutcome:
    """Book the picked time: move the consultation when it is still ahead, else book a new one with the same
    clinician and service. A time gone (taken, or too soon now) is answered with fresh times."""
    facts = await desk.consultation(offer.consultation_id, for_update=True)
    if facts is None:
        return PickOutcome(
            patient_says("en", "gone"), note="The patient picked a time for a consultation that is gone."
        )
    if index >= len(offer.slots):
        letters = OFFER_LETTERS[: len(offer.slots)]
        return PickOutcome(
            patient_says(facts.customer_locale, "letters", letters=letters),
            slots=offer.slots,
            note="The patient answered with a letter that was not offered; asked again.",
        )
    slot = offer.slots[index]
    try:
        if slot < now + timedelta(minutes=5):
            raise VideoError("That time is too soon now.")
        booked = await _book(desk, facts, slot, channel, policy, now)
    except VideoError:
        await desk.close_offer(offer.offer_id, now, None)
        _, slots = await make_offer(desk, facts, channel, now)
        lines = offer_lines(slots, facts.customer_timezone, facts.customer_locale)
        return PickOutcome(
            patient_says(facts.customer_locale, "taken", lines=lines),
            slots=tuple(slots),
            note="The patient picked an offered time that was no longer free; new times were offered.",
        )
    booked_id = booked.consultation_id
    await desk.close_offer(offer.offer_id, now, booked_id)
    note = f"The patient picked a new time by replying; consultation {booked_id}."
    # Answered here, always: the move's own message (a rule's) may be delayed, deferred by quiet hours, off
    # or failing, and the patient who just wrote is owed an answer now, with the link. A rule's message on
    # this channel is therefore not sent (its event carries `answered_on`); on another channel it is.
    when = time_in(slot, facts.customer_timezone, facts.customer_locale)
    done = patient_says(
        facts.customer_locale, "done", service=facts.service, clinician=facts.clinician, when=when
    )
    link = patient_says(facts.customer_locale, "link", link=booked.link) if booked.link else ""
    return PickOutcome(done + link, booked_id, note=note)


async def _book(
    desk: RebookingDesk,
    facts: ConsultationFacts,
    slot: datetime,
    channel: str,
    policy: RebookingPolicy,
    now: datetime,
) -> BookedConsultation:
    if facts.status in ACTIVE_STATUSES and facts.scheduled_at > now:
        return await reschedule_consultation(
            desk.booking(), policy.rooms, facts.consultation_id, slot,
            actor=f"customer:{facts.customer_id}", via=channel, now=now, public_url=policy.public_url,
            answered_on=channel,
        )  # fmt: skip
    if facts.staff_id is None or facts.service_id is None:
        raise VideoError("The consultation has no clinician or service to book again.")
    return await book_consultation(
        desk.booking(), policy.rooms, BookingRequest(facts.customer_id, facts.service_id, facts.staff_id, slot),
        actor=f"customer:{facts.customer_id}", via=channel, now=now, public_url=policy.public_url,
        answered_on=channel,
    )  # fmt: skip
