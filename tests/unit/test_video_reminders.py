"""Reminder rules without storage: which reminder is due, which are skipped, keys, times and the watcher's pass."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

from hypothesis import given
from hypothesis import strategies as st

from domain.notifications.model import BusinessEvent, NotificationRule
from domain.notifications.rules import due_at
from domain.video.booking import UNNAMED_CLINICIAN
from domain.video.rebooking import patient_says
from domain.video.reminders import (
    REMINDER_EVENT,
    RULE_OFFSET_MINUTES,
    SKIP_BOOKED_LATE,
    SKIP_SUPERSEDED,
    SKIPPED_EVENT,
    ReminderCandidate,
    ReminderEvent,
    lead_time_words,
    read_reminder_key,
    reminder_key,
    reminder_payload,
    reminder_steps,
    reminder_times,
    send_due_reminders,
)

START = datetime(2026, 12, 10, 8, 0, tzinfo=UTC)  # Thu 09:00 in Berlin
CANDIDATE = ReminderCandidate(
    consultation_id=7,
    version=1,
    customer_id=3,
    scheduled_at=START,
    booked_at=START - timedelta(days=5),
    reminder_minutes=(1440, 120),
    link_token="tok",
    service="Video skin consultation",
    clinician="Dr Mara Weiss",
    customer_timezone="Europe/Berlin",
    customer_locale="en",
)


def steps_at(now: datetime, candidate: ReminderCandidate = CANDIDATE) -> list[tuple[int, bool, str | None]]:
    return [(s.minutes, s.send, s.reason) for s in reminder_steps(candidate, now)]


def test_nothing_is_due_before_the_first_reminder_time() -> None:
    assert steps_at(START - timedelta(days=1, seconds=1)) == []


def test_the_day_before_reminder_is_sent_at_its_time() -> None:
    assert steps_at(START - timedelta(days=1)) == [(1440, True, None)]


def test_at_two_hours_the_day_before_one_is_superseded_and_the_two_hour_one_sent() -> None:
    # (The day-before one was recorded a day earlier; the store keeps a repeat from being stored twice.)
    assert steps_at(START - timedelta(hours=2)) == [(1440, False, SKIP_SUPERSEDED), (120, True, None)]


def test_a_booking_made_an_hour_ahead_skips_both() -> None:
    late = replace(CANDIDATE, booked_at=START - timedelta(hours=1))
    assert steps_at(START - timedelta(minutes=59), late) == [
        (1440, False, SKIP_BOOKED_LATE),
        (120, False, SKIP_BOOKED_LATE),
    ]


def test_a_booking_made_three_hours_ahead_gets_only_the_two_hour_reminder() -> None:
    booked = replace(CANDIDATE, booked_at=START - timedelta(hours=3))
    assert steps_at(START - timedelta(hours=3), booked) == [(1440, False, SKIP_BOOKED_LATE)]
    assert steps_at(START - timedelta(hours=2), booked) == [
        (1440, False, SKIP_BOOKED_LATE),
        (120, True, None),
    ]


def test_a_consultation_that_has_begun_gets_nothing() -> None:
    assert steps_at(START) == [] and steps_at(START + timedelta(minutes=5)) == []


@given(st.integers(min_value=-3 * 24 * 60, max_value=0), st.integers(min_value=0, max_value=4 * 24 * 60))
def test_at_most_one_reminder_is_ever_sent_per_pass(minutes_to_start: int, booked_ahead: int) -> None:
    now = START + timedelta(minutes=minutes_to_start)
    candidate = replace(CANDIDATE, booked_at=START - timedelta(minutes=booked_ahead))
    sent = [s for s in reminder_steps(candidate, now) if s.send]
    assert len(sent) <= 1
    for step in sent:
        assert START - timedelta(minutes=step.minutes) >= candidate.booked_at


def test_reminder_times_keep_whole_positive_minutes_up_to_a_week() -> None:
    assert reminder_times(None) == (1440, 120)
    assert reminder_times([120, 1440, 120]) == (1440, 120)
    assert reminder_times([60, -5, 0, "x", 2.5, True, 20000]) == (60,)
    assert reminder_times([]) == ()


def test_keys_name_the_consultation_version_and_minutes() -> None:
    assert reminder_key(7, 2, 120) == "video-reminder:7:2:120"
    assert read_reminder_key("video-reminder:7:2:120") == (7, 2, 120)
    assert read_reminder_key("video-reminder:7:x:120") is None
    assert read_reminder_key("order-7") is None


def test_the_payload_gives_the_patients_time_the_link_and_an_anchor() -> None:
    [step] = reminder_steps(CANDIDATE, START - timedelta(days=1))
    payload = reminder_payload(CANDIDATE, step, "https://sb.example/")
    assert payload["starts_at"] == START.isoformat() and "appointment_at" not in payload
    assert payload["appointment_time"] == "Thu 10 Dec 09:00 CET"
    assert payload["link"] == "https://sb.example/v/tok"
    assert (payload["minutes_before"], payload["lead_time"]) == (1440, "1 day")
    assert "skipped" not in payload
    german = reminder_payload(replace(CANDIDATE, customer_locale="de"), step, "https://sb.example")
    assert german["appointment_time"].startswith("Do.")


def test_a_consultation_naming_no_clinician_is_with_the_care_team_in_the_patients_language() -> None:
    [step] = reminder_steps(CANDIDATE, START - timedelta(days=1))
    unnamed = replace(CANDIDATE, clinician=None, customer_locale="de")
    payload = reminder_payload(unnamed, step, "https://sb.example")
    assert payload["clinician"] == "Ihrem Behandlungsteam"  # "mit Ihrem Behandlungsteam"
    table = payload["by_language"]
    assert table["de"]["clinician"] == "Ihrem Behandlungsteam" and table["*"]["clinician"] == "your clinician"
    named = reminder_payload(replace(CANDIDATE, customer_locale="de"), step, "https://sb.example")
    assert named["clinician"] == CANDIDATE.clinician and "clinician" not in named["by_language"]["de"]
    assert patient_says("de", "no_times", clinician=UNNAMED_CLINICIAN["en"], lines="").startswith(
        "Bei Ihrem Behandlungsteam ist"
    )


def test_the_seeded_rule_offset_sends_each_reminder_as_soon_as_it_is_recorded() -> None:
    rule = NotificationRule(
        1, "video reminder", REMINDER_EVENT, "video_reminder", offset_minutes=RULE_OFFSET_MINUTES
    )
    now = START - timedelta(hours=2)
    [_, step] = reminder_steps(CANDIDATE, now)
    event = BusinessEvent(1, REMINDER_EVENT, "k", 3, reminder_payload(CANDIDATE, step, ""), now)
    assert due_at(rule, event, now) == now
    later = now + timedelta(seconds=3)
    assert due_at(rule, event, later) == later  # processed a little late: still at once, not at the start


def test_lead_time_words() -> None:
    assert [lead_time_words(m) for m in (1440, 2880, 120, 60, 90)] == [
        "1 day",
        "2 days",
        "2 hours",
        "1 hour",
        "90 minutes",
    ]


# --- the watcher's pass with fakes ------------------------------------------------------------------------------


class FakeBook:
    def __init__(self, candidates: list[ReminderCandidate]) -> None:
        self.candidates = candidates
        self.stored: dict[str, ReminderEvent] = {}

    async def due_candidates(
        self, now: datetime, limit: int, *, since: datetime | None = None
    ) -> list[ReminderCandidate]:
        return self.candidates[:limit]

    async def record(self, events: Sequence[ReminderEvent], at: datetime) -> set[str]:
        fresh = {e.idempotency_key: e for e in events if e.idempotency_key not in self.stored}
        self.stored.update(fresh)
        return set(fresh)


class FakeUnit:
    def __init__(self, book: FakeBook) -> None:
        self.reminders = book
        self.committed = 0

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    async def commit(self) -> None:
        self.committed += 1


async def test_the_pass_records_once_and_processes_events_only_when_it_stored_some() -> None:
    book = FakeBook(
        [CANDIDATE, replace(CANDIDATE, consultation_id=8, booked_at=START - timedelta(minutes=30))]
    )
    unit = FakeUnit(book)
    processed: list[int] = []

    async def process() -> None:
        processed.append(1)

    now = START - timedelta(hours=2)
    first = await send_due_reminders(
        lambda: unit, now, public_url="https://sb.example", process_events=process
    )
    again = await send_due_reminders(
        lambda: unit, now, public_url="https://sb.example", process_events=process
    )

    assert (first.sent, first.skipped) == (1, 3)
    assert (again.sent, again.skipped) == (0, 0)
    assert processed == [1] and unit.committed == 2
    kinds = {key: e.event_type for key, e in book.stored.items()}
    assert kinds == {
        "video-reminder:7:1:1440": SKIPPED_EVENT,
        "video-reminder:7:1:120": REMINDER_EVENT,
        "video-reminder:8:1:1440": SKIPPED_EVENT,
        "video-reminder:8:1:120": SKIPPED_EVENT,
    }


async def test_a_pass_with_nothing_due_opens_no_write() -> None:
    unit = FakeUnit(FakeBook([]))
    done = await send_due_reminders(lambda: unit, START, public_url="")
    assert (done.sent, done.skipped, unit.committed) == (0, 0, 0)
