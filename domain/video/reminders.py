"""Consultation reminders: which one is due, which are skipped, and the business event that sends each once.

A reminder is planned when its time comes, not at booking: the watcher (`send_due_reminders`, every second)
finds active consultations whose reminder time (start minus each of the service's reminder minutes, a day
and two hours by default) has come, and records one business event per (consultation, version, minutes).
The event's key is unique, so several workers record it once, and a reschedule (which grows `version`)
gets fresh reminders while the old time's are never planned. A notification rule on "video.reminder"
turns the event into the message (consent, quiet hours and channel order as for any transactional
notification), and the events are processed straight away so the message leaves within the second.

Only the latest reminder whose time has come is sent, and only if its time came after the booking was
made: a consultation booked an hour ahead gets neither the day-before nor the two-hours reminder (the
booking message told the patient), and a worker that was down does not send a burst of stale ones. Those
are recorded as "video.reminder_skipped" with the reason, so the send log says what happened to each.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from domain.notifications.rules import MAX_OFFSET_MINUTES
from domain.services import consultation_name_in
from domain.templates.selection import BY_LANGUAGE
from domain.transaction import Transaction
from domain.video.booking import clinician_in, patient_link, said_by_language, time_in, with_unnamed_clinician
from domain.video.model import DEFAULT_REMINDER_MINUTES

REMINDER_EVENT = "video.reminder"
SKIPPED_EVENT = "video.reminder_skipped"
#: Every reminder event's key starts so: "video-reminder:{consultation}:{version}:{minutes}".
REMINDER_KEY_PREFIX = "video-reminder:"
#: The seeded rule's offset: none. A reminder event is recorded when the reminder is due, and its payload
#: has no `appointment_at` (rules would count the offset from it), so the rule sends it the moment it is
#: recorded; the rules page then says "at once" rather than an offset nobody chose.
RULE_OFFSET_MINUTES = 0
#: How many consultations one pass looks at; the next pass (a second later) takes the rest.
PASS_LIMIT = 500

SKIP_BOOKED_LATE = "its time had passed when the consultation was booked"
SKIP_SUPERSEDED = "a later reminder was due by the time it was planned"


def reminder_key(consultation_id: int, version: int, minutes: int) -> str:
    return f"{REMINDER_KEY_PREFIX}{consultation_id}:{version}:{minutes}"


def read_reminder_key(key: str) -> tuple[int, int, int] | None:
    """(consultation, version, minutes) from a reminder event's key; None when it is not one."""
    parts = key.removeprefix(REMINDER_KEY_PREFIX).split(":") if key.startswith(REMINDER_KEY_PREFIX) else []
    if len(parts) != 3 or not all(p.isdigit() and len(p) < 19 for p in parts):
        return None
    return int(parts[0]), int(parts[1]), int(parts[2])


def reminder_times(configured: Iterable[Any] | None) -> tuple[int, ...]:
    """A service's reminder minutes, earliest reminder first; the default (a day, two hours) when it sets
    none. Values that are not whole positive minutes, or more than a week, are left out."""
    if configured is None:
        return DEFAULT_REMINDER_MINUTES
    kept = {
        int(m)
        for m in configured
        if isinstance(m, int) and not isinstance(m, bool) and 0 < m <= MAX_OFFSET_MINUTES
    }
    return tuple(sorted(kept, reverse=True))


@dataclass(frozen=True)
class ReminderCandidate:
    """An active consultation with a reminder whose time has come and that is not yet recorded."""

    consultation_id: int
    version: int
    customer_id: int
    scheduled_at: datetime
    booked_at: datetime
    reminder_minutes: tuple[int, ...]
    link_token: str | None
    #: The service's staff name (None: booked without one) and its names by language.
    service: str | None
    clinician: str | None
    customer_timezone: str
    customer_locale: str
    service_names: Mapping[str, str] | None = None


@dataclass(frozen=True)
class ReminderStep:
    """What happens to one reminder of a consultation: sent, or skipped with the reason."""

    minutes: int
    send: bool
    reason: str | None = None


def reminder_steps(candidate: ReminderCandidate, now: datetime) -> list[ReminderStep]:
    """Each reminder whose time has come: the latest is sent when its time came after the booking; the
    rest are skipped. Nothing for a consultation that has begun."""
    if candidate.scheduled_at <= now:
        return []
    due = [m for m in candidate.reminder_minutes if candidate.scheduled_at - timedelta(minutes=m) <= now]
    if not due:
        return []
    latest = min(due)
    steps = []
    for minutes in sorted(due, reverse=True):
        if candidate.scheduled_at - timedelta(minutes=minutes) < candidate.booked_at:
            steps.append(ReminderStep(minutes, False, SKIP_BOOKED_LATE))
        elif minutes != latest:
            steps.append(ReminderStep(minutes, False, SKIP_SUPERSEDED))
        else:
            steps.append(ReminderStep(minutes, True))
    return steps


def lead_time_words(minutes: int) -> str:
    """How far ahead a reminder goes, in words: "1 day", "2 hours", "90 minutes"."""
    if minutes % (24 * 60) == 0:
        days = minutes // (24 * 60)
        return f"{days} day{'s' if days != 1 else ''}"
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minutes"


def reminder_payload(candidate: ReminderCandidate, step: ReminderStep, public_url: str) -> dict[str, Any]:
    """What the reminder template sees (plain JSON values); `starts_at`, not `appointment_at`, so the rule
    sends it now rather than counting from the start."""
    payload: dict[str, Any] = {
        "starts_at": candidate.scheduled_at.isoformat(),
        "consultation_id": candidate.consultation_id,
        "version": candidate.version,
        "minutes_before": step.minutes,
        "lead_time": lead_time_words(step.minutes),
        "appointment_time": time_in(
            candidate.scheduled_at, candidate.customer_timezone, candidate.customer_locale
        ),
        "service": consultation_name_in(
            candidate.service, candidate.service_names, candidate.customer_locale
        ),
        "clinician": clinician_in(candidate.clinician, candidate.customer_locale),
        "link": patient_link(public_url, candidate.link_token),
        BY_LANGUAGE: with_unnamed_clinician(
            said_by_language(
                candidate.service,
                candidate.service_names,
                candidate.scheduled_at,
                candidate.customer_timezone,
                candidate.customer_locale,
            ),
            candidate.clinician,
        ),
    }
    if not step.send and step.reason:
        payload["skipped"] = step.reason
    return payload


# --- the ports --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReminderEvent:
    event_type: str
    idempotency_key: str
    customer_id: int
    payload: dict[str, Any]


class ReminderBook(Protocol):
    async def due_candidates(
        self, now: datetime, limit: int, *, since: datetime | None = None
    ) -> list[ReminderCandidate]:
        """Active (booked or confirmed) consultations not yet begun with at least one reminder whose time has
        come (after `since`, when given) and that is not yet recorded for their current version, soonest
        first."""

    async def record(self, events: Sequence[ReminderEvent], at: datetime) -> set[str]:
        """Store each event unless its key exists (another worker's); the keys this call stored."""


class ReminderUnitOfWork(Transaction, Protocol):
    @property
    def reminders(self) -> ReminderBook: ...


@dataclass(frozen=True)
class ReminderPass:
    """What one pass of the watcher did."""

    sent: int = 0
    skipped: int = 0


async def send_due_reminders(
    open_uow: Callable[[], ReminderUnitOfWork],
    now: datetime,
    *,
    public_url: str,
    process_events: Callable[[], Awaitable[object]] | None = None,
    read_uow: Callable[[], ReminderUnitOfWork] | None = None,
    limit: int = PASS_LIMIT,
    since: datetime | None = None,
) -> ReminderPass:
    """Records each reminder that has come due once, then has the notification rules turn them into messages
    at once (`process_events`). The look for due reminders runs on `read_uow` (no write turn when there is
    nothing to do, which is nearly every second). `since`: look only at reminders whose time came after it
    (the frequent narrow pass); None looks at all (the occasional full pass, which also finds reschedules
    and late bookings)."""
    async with (read_uow or open_uow)() as uow:
        candidates = await uow.reminders.due_candidates(now, limit, since=since)
    events: list[ReminderEvent] = []
    for candidate in candidates:
        for step in reminder_steps(candidate, now):
            events.append(
                ReminderEvent(
                    REMINDER_EVENT if step.send else SKIPPED_EVENT,
                    reminder_key(candidate.consultation_id, candidate.version, step.minutes),
                    candidate.customer_id,
                    reminder_payload(candidate, step, public_url),
                )
            )
    if not events:
        return ReminderPass()
    async with open_uow() as uow:
        stored = await uow.reminders.record(events, now)
        await uow.commit()
    if stored and process_events is not None:
        await process_events()
    ours = [e for e in events if e.idempotency_key in stored]
    sent = sum(1 for e in ours if e.event_type == REMINDER_EVENT)
    return ReminderPass(sent=sent, skipped=len(ours) - sent)
