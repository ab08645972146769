"""Live-chat SLAs without a database: business-hours arithmetic, due times, findings, wording, and the pass."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.conversations.sla import (
    BusinessHours,
    PolicyError,
    SlaAlert,
    SlaChat,
    SlaFinding,
    SlaKind,
    SlaMetric,
    SlaPolicy,
    alert_text,
    findings_at,
    policy_for,
    running_clocks,
)
from domain.conversations.sla_watch import SlaPassResult, watch_slas

BERLIN = ZoneInfo("Europe/Berlin")
SPLIT = {
    "mon": [["09:00", "13:00"], ["14:00", "18:00"]],
    "tue": [["09:00", "13:00"], ["14:00", "18:00"]],
    "wed": [["09:00", "13:00"], ["14:00", "18:00"]],
    "thu": [["09:00", "13:00"], ["14:00", "18:00"]],
    "fri": [["09:00", "13:00"], ["14:00", "18:00"]],
}
HOURS = BusinessHours.read("Europe/Berlin", SPLIT, ["2026-12-25"])


def berlin(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=BERLIN).astimezone(UTC)  # type: ignore[misc]


# --- business-hours arithmetic ----------------------------------------------------------------------


def test_minutes_run_only_inside_a_split_shift() -> None:
    # 2026-03-02 is a Monday: 10 minutes before lunch, the lunch hour off, 10 after it.
    assert HOURS.add_minutes(berlin(2026, 3, 2, 12, 50), 20) == berlin(2026, 3, 2, 14, 10)
    assert HOURS.minutes_between(berlin(2026, 3, 2, 12, 50), berlin(2026, 3, 2, 14, 10)) == 20
    # Exactly at the end of the morning shift is due at 13:00, not after lunch.
    assert HOURS.add_minutes(berlin(2026, 3, 2, 12, 50), 10) == berlin(2026, 3, 2, 13, 0)


def test_a_clock_started_outside_hours_starts_when_the_business_opens() -> None:
    assert HOURS.add_minutes(berlin(2026, 3, 2, 7, 0), 15) == berlin(2026, 3, 2, 9, 15)  # before opening
    assert HOURS.add_minutes(berlin(2026, 3, 2, 13, 30), 10) == berlin(2026, 3, 2, 14, 10)  # at lunch
    assert HOURS.add_minutes(berlin(2026, 3, 2, 20, 0), 10) == berlin(2026, 3, 3, 9, 10)  # overnight
    # Friday evening to Monday morning: the weekend has no hours.
    assert HOURS.add_minutes(berlin(2026, 3, 6, 17, 55), 15) == berlin(2026, 3, 9, 9, 10)
    assert HOURS.minutes_between(berlin(2026, 3, 6, 18, 0), berlin(2026, 3, 9, 9, 0)) == 0
    assert HOURS.next_open(berlin(2026, 3, 7, 11, 0)) == berlin(2026, 3, 9, 9, 0)


def test_holidays_have_no_business_hours() -> None:
    # Thursday 24 December 17:50; Friday the 25th is a holiday, then the weekend.
    assert HOURS.add_minutes(berlin(2026, 12, 24, 17, 50), 30) == berlin(2026, 12, 28, 9, 20)
    without = BusinessHours.read("Europe/Berlin", SPLIT)
    assert without.add_minutes(berlin(2026, 12, 24, 17, 50), 30) == berlin(2026, 12, 25, 9, 20)


def test_spring_forward_in_berlin_counts_real_minutes_and_keeps_wall_clock_hours() -> None:
    around_the_clock = BusinessHours.read("Europe/Berlin", {})
    # 29 March 2026, 01:30 CET: an hour later it is 03:30 CEST by the wall clock.
    start = berlin(2026, 3, 29, 1, 30)
    assert around_the_clock.add_minutes(start, 60) == berlin(2026, 3, 29, 3, 30)
    assert around_the_clock.minutes_between(berlin(2026, 3, 29, 0, 0), berlin(2026, 3, 30, 0, 0)) == 23 * 60
    # Friday 17:50 CET + 20 minutes: Monday 09:10 CEST, which is 07:10 UTC (not 08:10).
    due = HOURS.add_minutes(berlin(2026, 3, 27, 17, 50), 20)
    assert due == datetime(2026, 3, 30, 7, 10, tzinfo=UTC)
    # A span starting in the skipped hour starts when the clock jumps: 03:00 to 04:00 CEST is one hour.
    night = BusinessHours.read("Europe/Berlin", {"sun": [["02:00", "04:00"]]})
    assert night.minutes_between(berlin(2026, 3, 29, 0, 0), berlin(2026, 3, 29, 12, 0)) == 60


def test_fall_back_in_berlin_has_a_25_hour_day() -> None:
    around_the_clock = BusinessHours.read("Europe/Berlin", {"sun": [["00:00", "24:00"]]})
    assert around_the_clock.minutes_between(berlin(2026, 10, 25, 0, 0), berlin(2026, 10, 26, 0, 0)) == 25 * 60
    # 09:00 opening is 08:00 UTC after the change (07:00 UTC before it).
    assert HOURS.next_open(berlin(2026, 10, 25, 12, 0)) == datetime(2026, 10, 26, 8, 0, tzinfo=UTC)
    assert HOURS.next_open(berlin(2026, 10, 24, 12, 0)) == datetime(2026, 10, 26, 8, 0, tzinfo=UTC)
    assert HOURS.next_open(berlin(2026, 10, 22, 20, 0)) == datetime(2026, 10, 23, 7, 0, tzinfo=UTC)


def test_an_overnight_span_runs_past_midnight_and_24_00_closes_a_day() -> None:
    nights = BusinessHours.read("Europe/Berlin", {"fri": [["22:00", "06:00"]], "sat": [["18:00", "24:00"]]})
    assert nights.add_minutes(berlin(2026, 3, 6, 23, 0), 120) == berlin(2026, 3, 7, 1, 0)
    # Friday night's 8 hours, then Saturday from 18:00 until midnight.
    assert nights.add_minutes(berlin(2026, 3, 6, 22, 0), 8 * 60 + 30) == berlin(2026, 3, 7, 18, 30)
    assert nights.minutes_between(berlin(2026, 3, 7, 18, 0), berlin(2026, 3, 8, 12, 0)) == 6 * 60


def test_no_business_hours_at_all_never_comes_due_and_bad_policies_say_why() -> None:
    closed = BusinessHours.read("Europe/Berlin", {"mon": []})
    assert closed.add_minutes(berlin(2026, 3, 2, 9, 0), 10) is None
    with pytest.raises(PolicyError, match="not a weekday"):
        BusinessHours.read("Europe/Berlin", {"funday": [["09:00", "10:00"]]})
    with pytest.raises(PolicyError, match="not a time"):
        BusinessHours.read("Europe/Berlin", {"mon": [["9am", "10:00"]]})
    with pytest.raises(PolicyError, match="ISO dates"):
        BusinessHours.read("Europe/Berlin", {}, ["25.12.2026"])
    with pytest.raises(PolicyError, match="not a timezone"):
        BusinessHours.read("Europe/Nowhere", {})


@settings(max_examples=200, deadline=None)
@given(
    start=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)
    ),
    minutes=st.integers(min_value=1, max_value=5000),
)
def test_adding_business_minutes_and_counting_them_agree(start: datetime, minutes: int) -> None:
    due = HOURS.add_minutes(start, minutes)
    assert due is not None and due > start
    assert HOURS.minutes_between(start, due) == pytest.approx(minutes)
    # The due time is inside business hours (or at the end of a span): the moment just before it is business
    # time. (Not "the whole minute before": a start with microseconds can finish a hair after a span opens.)
    assert HOURS.minutes_between(due - timedelta(microseconds=1), due) > 0


# --- policies, due times and findings ---------------------------------------------------------------

DEFAULT = SlaPolicy(1, "Default", 15, 30, 480, 5, SPLIT, ["2026-12-25"])
MITTE = replace(DEFAULT, policy_id=2, name="Berlin Mitte", first_response_minutes=10, location_id=1)


def test_the_customers_location_has_its_own_policy_or_the_default_applies() -> None:
    assert policy_for([DEFAULT, MITTE], 1) == MITTE
    assert policy_for([DEFAULT, MITTE], 2) == DEFAULT
    assert policy_for([DEFAULT, MITTE], None) == DEFAULT
    assert policy_for([DEFAULT, replace(MITTE, enabled=False)], 1) == DEFAULT
    assert policy_for([MITTE], 2) is None
    assert policy_for([replace(DEFAULT, enabled=False)], None) is None


def chat(**changes: object) -> SlaChat:
    base = SlaChat(
        chat_id=42,
        started_at=berlin(2026, 3, 2, 10, 0),
        first_response_at=None,
        closed_at=None,
        waiting_since=berlin(2026, 3, 2, 10, 0),
        answered_before=False,
        location_id=None,
        timezone="Europe/Berlin",
        assigned_staff_id=7,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_an_unanswered_conversation_times_first_response_and_resolution() -> None:
    clocks = {c.metric: c for c in running_clocks(chat(), DEFAULT, HOURS)}
    assert set(clocks) == {SlaMetric.FIRST_RESPONSE, SlaMetric.RESOLUTION}
    assert clocks[SlaMetric.FIRST_RESPONSE].due_at == berlin(2026, 3, 2, 10, 15)
    assert clocks[SlaMetric.FIRST_RESPONSE].warn_at == berlin(2026, 3, 2, 10, 10)
    # 8 business hours from Monday 10:00: 3 before lunch, 4 after, 1 on Tuesday.
    assert clocks[SlaMetric.RESOLUTION].due_at == berlin(2026, 3, 3, 10, 0)


def test_a_customer_writing_again_after_an_answer_times_a_next_response() -> None:
    answered = chat(
        first_response_at=berlin(2026, 3, 2, 10, 5),
        waiting_since=berlin(2026, 3, 2, 12, 45),
        answered_before=True,
    )
    clocks = {c.metric: c for c in running_clocks(answered, DEFAULT, HOURS)}
    assert set(clocks) == {SlaMetric.NEXT_RESPONSE, SlaMetric.RESOLUTION}
    assert clocks[SlaMetric.NEXT_RESPONSE].due_at == berlin(2026, 3, 2, 14, 15)  # over lunch
    # Nothing waiting (staff answered last): only resolution runs.
    quiet = replace(answered, waiting_since=None)
    assert [c.metric for c in running_clocks(quiet, DEFAULT, HOURS)] == [SlaMetric.RESOLUTION]
    # A target the policy leaves empty is not timed.
    assert running_clocks(quiet, replace(DEFAULT, resolution_minutes=None), HOURS) == []


def test_a_conversation_staff_opened_times_a_first_response_only_once_the_customer_writes() -> None:
    opened = chat(waiting_since=None)
    assert [c.metric for c in running_clocks(opened, DEFAULT, HOURS)] == [SlaMetric.RESOLUTION]
    wrote = chat(waiting_since=berlin(2026, 3, 2, 10, 30))
    first = running_clocks(wrote, DEFAULT, HOURS)[0]
    assert (first.metric, first.due_at) == (SlaMetric.FIRST_RESPONSE, berlin(2026, 3, 2, 10, 45))


def test_a_reopened_conversation_times_its_resolution_from_the_reopening() -> None:
    # Resolved on Monday, reopened on Wednesday at 10:00: 8 business hours from then, not from Monday.
    reopened = chat(
        first_response_at=berlin(2026, 3, 2, 10, 5),
        waiting_since=berlin(2026, 3, 4, 10, 0),
        answered_before=True,
        reopened_at=berlin(2026, 3, 4, 10, 0),
    )
    clocks = {c.metric: c for c in running_clocks(reopened, DEFAULT, HOURS)}
    assert clocks[SlaMetric.RESOLUTION].started_at == berlin(2026, 3, 4, 10, 0)
    assert clocks[SlaMetric.RESOLUTION].due_at == berlin(2026, 3, 5, 10, 0)
    assert findings_at(reopened, DEFAULT, HOURS, berlin(2026, 3, 4, 10, 1)) == []


def test_a_warning_comes_before_the_due_time_and_a_breach_at_it() -> None:
    fresh = chat()
    assert findings_at(fresh, DEFAULT, HOURS, berlin(2026, 3, 2, 10, 9)) == []
    assert findings_at(fresh, DEFAULT, HOURS, berlin(2026, 3, 2, 10, 10)) == [
        SlaFinding(42, SlaMetric.FIRST_RESPONSE, SlaKind.WARNING, berlin(2026, 3, 2, 10, 15), 7, 1)
    ]
    late = findings_at(fresh, DEFAULT, HOURS, berlin(2026, 3, 2, 10, 15))
    assert [(f.metric, f.kind) for f in late] == [(SlaMetric.FIRST_RESPONSE, SlaKind.BREACH)]
    # The next morning: resolution is near too.
    morning = findings_at(fresh, DEFAULT, HOURS, berlin(2026, 3, 3, 9, 56))
    assert {(f.metric, f.kind) for f in morning} == {
        (SlaMetric.FIRST_RESPONSE, SlaKind.BREACH),
        (SlaMetric.RESOLUTION, SlaKind.WARNING),
    }


# --- wording -------------------------------------------------------------------------------------------

ALERT = SlaAlert(
    event_id=1,
    chat_id=42,
    metric=SlaMetric.FIRST_RESPONSE,
    kind=SlaKind.WARNING,
    due_at=berlin(2026, 3, 2, 10, 15),
    customer_name="Ana Ruiz",
    channel_words="WhatsApp",
    assigned_name="Lena",
    policy_id=1,
    timezone="Europe/Berlin",
)


def test_alerts_read_as_sentences_with_a_link_to_the_conversation() -> None:
    warning = alert_text(ALERT, HOURS, berlin(2026, 3, 2, 10, 5), "https://switchboard.example/")
    assert warning == (
        "⚠️ Conversation 42 with Ana Ruiz (WhatsApp) needs a first response within 10 minutes (by 10:15)"
        " — assigned to Lena. <https://switchboard.example/communication/chat/42|Open conversation 42>"
    )
    # Minutes left are business minutes: at 12:55 with a reply due at 14:05, 10 minutes are left.
    reply = replace(
        ALERT, metric=SlaMetric.NEXT_RESPONSE, due_at=berlin(2026, 3, 2, 14, 5), assigned_name=None
    )
    assert "needs a reply within 10 minutes (by 14:05) — nobody has it yet." in alert_text(
        reply, HOURS, berlin(2026, 3, 2, 12, 55), "http://x"
    )
    breach = replace(ALERT, kind=SlaKind.BREACH)
    assert alert_text(breach, HOURS, berlin(2026, 3, 2, 10, 16), "http://x").startswith(
        "🔴 Breached: Conversation 42 with Ana Ruiz (WhatsApp) had no first response by 2 Mar 10:15"
        " — assigned to Lena."
    )
    resolution = replace(breach, metric=SlaMetric.RESOLUTION)
    assert "was not resolved by 2 Mar 10:15" in alert_text(resolution, HOURS, berlin(2026, 3, 3, 9, 0), "x")


# --- the pass with fakes -------------------------------------------------------------------------------


@dataclass
class FakeSlaStore:
    policies_: list[SlaPolicy]
    chats: list[SlaChat]
    events: dict[tuple[int, str, datetime, str], int] = field(default_factory=dict)
    alerted: dict[int, datetime | None] = field(default_factory=dict)

    async def policies(self) -> list[SlaPolicy]:
        return self.policies_

    async def chats_on_the_clock(self, limit: int, after: int = 0) -> list[SlaChat]:
        return sorted((c for c in self.chats if c.chat_id > after), key=lambda c: c.chat_id)[:limit]

    async def record(self, findings: Sequence[SlaFinding], at: datetime) -> int:
        new = 0
        for f in findings:
            key = (f.chat_id, f.metric.value, f.due_at, f.kind.value)
            if key not in self.events:
                self.events[key] = len(self.events) + 1
                self.alerted[self.events[key]] = None
                new += 1
        return new

    async def alerts_to_send(self, now: datetime, breaches_since: datetime, limit: int) -> list[SlaAlert]:
        return [
            replace(
                ALERT,
                event_id=event_id,
                metric=SlaMetric(metric),
                kind=SlaKind(kind),
                due_at=due,
                customer_id=chat_id,
            )
            for (chat_id, metric, due, kind), event_id in self.events.items()
            if self.alerted[event_id] is None
        ]

    async def claim_alert(self, event_id: int, at: datetime) -> bool:
        if self.alerted[event_id] is not None:
            return False
        self.alerted[event_id] = at
        return True

    async def release_alert(self, event_id: int, claimed_at: datetime) -> None:
        if self.alerted[event_id] == claimed_at:
            self.alerted[event_id] = None


@dataclass
class FakeUnit:
    sla: FakeSlaStore
    commits: int = 0

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    async def commit(self) -> None:
        self.commits += 1


@dataclass
class FakeChannel:
    failing: bool = False
    posted: list[str] = field(default_factory=list)

    async def post(self, text: str, team: str | None) -> None:
        if self.failing:
            raise ConnectionError("Slack is unreachable")
        self.posted.append(text)


async def test_the_pass_stores_each_finding_once_and_posts_it_once() -> None:
    unit = FakeUnit(FakeSlaStore([DEFAULT], [chat()]))
    channel = FakeChannel()
    at = berlin(2026, 3, 2, 10, 11)
    assert await watch_slas(lambda: unit, channel, at, "http://x") == SlaPassResult(1, 1, 0)
    assert await watch_slas(lambda: unit, channel, at, "http://x") == SlaPassResult(0, 0, 0)
    assert len(channel.posted) == 1 and channel.posted[0].startswith("⚠️ Conversation 42")
    breach = await watch_slas(lambda: unit, channel, berlin(2026, 3, 2, 10, 20), "http://x")
    assert breach == SlaPassResult(1, 1, 0) and channel.posted[1].startswith("🔴 Breached")


async def test_a_failed_post_is_released_and_sent_on_the_next_pass() -> None:
    unit = FakeUnit(FakeSlaStore([DEFAULT], [chat()]))
    down = FakeChannel(failing=True)
    at = berlin(2026, 3, 2, 10, 16)
    assert await watch_slas(lambda: unit, down, at, "http://x") == SlaPassResult(1, 0, 1)
    assert list(unit.sla.alerted.values()) == [None]
    up = FakeChannel()
    assert await watch_slas(lambda: unit, up, at + timedelta(seconds=30), "http://x") == SlaPassResult(
        0, 1, 0
    )
    assert len(up.posted) == 1


async def test_the_pass_times_every_live_conversation_page_by_page() -> None:
    many = [chat(chat_id=n) for n in (9, 3, 7, 1, 5)]
    unit = FakeUnit(FakeSlaStore([DEFAULT], many))
    result = await watch_slas(lambda: unit, None, berlin(2026, 3, 2, 10, 20), "x", limit=2)
    breached = sorted(key[0] for key in unit.sla.events if key[1] == "first_response")
    assert result.recorded == 5 and breached == [1, 3, 5, 7, 9]


async def test_an_alert_names_the_customer_by_number_when_names_are_not_shown_in_slack() -> None:
    at = berlin(2026, 3, 2, 10, 20)
    masked, shown = FakeChannel(), FakeChannel()
    hidden_unit, shown_unit = (
        FakeUnit(FakeSlaStore([DEFAULT], [chat()])),
        FakeUnit(FakeSlaStore([DEFAULT], [chat()])),
    )
    await watch_slas(lambda: hidden_unit, masked, at, "x", show_customer_name=False)
    await watch_slas(lambda: shown_unit, shown, at, "x")
    assert len(masked.posted) == 1 and "Conversation 42 with Customer 42 (" in masked.posted[0]
    assert "Ana Ruiz" not in masked.posted[0]
    assert len(shown.posted) == 1 and "Conversation 42 with Ana Ruiz (" in shown.posted[0]


async def test_no_enabled_policy_or_no_channel_means_nothing_posted() -> None:
    unit = FakeUnit(FakeSlaStore([replace(DEFAULT, enabled=False)], [chat()]))
    assert await watch_slas(lambda: unit, FakeChannel(), berlin(2026, 3, 2, 11), "x") == SlaPassResult(
        0, 0, 0
    )
    stored_only = FakeUnit(FakeSlaStore([DEFAULT], [chat()]))
    assert await watch_slas(lambda: stored_only, None, berlin(2026, 3, 2, 11), "x") == SlaPassResult(1, 0, 0)
