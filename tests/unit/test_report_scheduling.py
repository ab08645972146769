"""Scheduling a saved report: stored with its first due time and audited in one commit; a bad cron stores nothing."""

from __future__ import annotations

from dataclasses import astuple, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from domain.audit import AuditEntry
from domain.report_schedule import ScheduleRequest
from reports.schedule_words import already_scheduled_words
from reports.schedules import AlreadyScheduled, ScheduleError, schedule_report
from tests.fakes.transaction import FakeTransaction

NOW = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)  # Tue 1 Dec 2026, 15:00 in Berlin


class FakeSchedules:
    def __init__(self) -> None:
        self.added: list[dict[str, Any] | None] = []
        self.definitions: dict[int, dict[str, Any] | None] = {}

    async def add(self, **schedule: Any) -> int:
        self.added.append(schedule)
        return 40 + len(self.added)

    async def same_as(self, *, report_id: int, request: ScheduleRequest) -> int | None:
        return next(
            (
                40 + n
                for n, held in enumerate(self.added, start=1)
                if held is not None
                and held["report_id"] == report_id
                and request.repeats(*astuple(held["request"])[:4], held["request"].filters)
            ),
            None,
        )

    async def definition_of(self, report_id: int) -> dict[str, Any] | None:
        return self.definitions.get(report_id, {"query": {"metrics": ["revenue"]}})

    async def withdraw(self, schedule_id: int) -> bool:
        gone = self.added[schedule_id - 41] is not None
        self.added[schedule_id - 41] = None
        return gone


class FakeUnitOfWork(FakeTransaction):
    def __init__(self) -> None:
        super().__init__()
        self.schedules = FakeSchedules()


async def test_a_schedule_is_stored_with_its_first_due_time_and_audited_in_one_commit() -> None:
    uow = FakeUnitOfWork()
    request = ScheduleRequest("0 8 * * 1", "Europe/Berlin", "email", "boss@example.com")
    scheduled = await schedule_report(
        uow, report_id=7, report_slug="weekly", owner_id=3, request=request, actor="a@x", via="slack", now=NOW
    )
    assert scheduled.id == 41
    assert scheduled.first_due == datetime(2026, 12, 7, 7, 0, tzinfo=UTC)  # Monday 08:00 in Berlin
    assert uow.schedules.added == [
        {"report_id": 7, "owner_id": 3, "request": request, "next_due_at": scheduled.first_due}
    ]
    assert uow.audit.entries == [
        AuditEntry(
            actor="a@x",
            via="slack",
            action="report.schedule",
            target="report:weekly",
            detail={"schedule_id": 41, "cron": "0 8 * * 1", "destination": "boss@example.com", "filters": []},
        )
    ]
    assert uow.commits == 1


async def test_a_cron_expression_that_cannot_work_stores_nothing() -> None:
    uow = FakeUnitOfWork()
    request = ScheduleRequest("0 25 * * *", "Europe/Berlin", "slack", "#ops")
    with pytest.raises(ScheduleError):
        await schedule_report(
            uow, report_id=7, report_slug="weekly", owner_id=3, request=request, actor="a", via="cli", now=NOW
        )
    assert uow.schedules.added == [] and uow.audit.entries == [] and uow.commits == 0


async def test_the_same_schedule_twice_is_refused_and_a_different_one_is_kept() -> None:
    uow = FakeUnitOfWork()
    monday = ScheduleRequest("0 8 * * 1", "Europe/Berlin", "slack", "#ops")
    first = await schedule_report(
        uow, report_id=7, report_slug="weekly", owner_id=3, request=monday, actor="a", via="web", now=NOW
    )
    with pytest.raises(AlreadyScheduled) as refused:
        await schedule_report(
            uow, report_id=7, report_slug="weekly", owner_id=3, request=monday, actor="a", via="web", now=NOW
        )
    assert refused.value.schedule_id == first.id
    # Said another way, it is still the same: weekday names or numbers, a Sunday as 0 or 7, spaces.
    for same in ("0 8 * * mon", "0  8 * * MON", "0 8 * * 1-1"):
        with pytest.raises(AlreadyScheduled):
            await schedule_report(
                uow,
                report_id=7,
                report_slug="weekly",
                owner_id=3,
                request=replace(monday, cron=same),
                actor="a",
                via="web",
                now=NOW,
            )
    assert already_scheduled_words(refused.value) == (
        "This report already goes to #ops every Monday at 08:00 (Europe/Berlin), as schedule #41; "
        "nothing new was scheduled."
    )
    # Another day, another channel, another report, or the same with a recipient's own filter: all new.
    for report_id, request in (
        (7, replace(monday, cron="0 8 * * 2")),
        (7, replace(monday, destination="#clinic-leads")),
        (8, monday),
        (7, replace(monday, filters=({"dimension": "location", "operator": "eq", "value": "BER"},))),
    ):
        await schedule_report(
            uow,
            report_id=report_id,
            report_slug="r",
            owner_id=3,
            request=request,
            actor="a",
            via="web",
            now=NOW,
        )
    assert len(uow.schedules.added) == 5 and uow.commits == 5


def test_a_schedules_announcement_shows_names_as_text_never_as_slack_markup() -> None:
    from datetime import UTC, datetime

    from reports.schedule_check import schedule_announcement

    said = schedule_announcement(
        "Ann <B>",
        "<!channel> & co",
        ScheduleRequest("0 8 * * 1", "Europe/Berlin", "slack", "#ops"),
        datetime(2026, 12, 7, 9, tzinfo=UTC),
    )
    assert said.startswith(
        "Ann &lt;B&gt; scheduled the report “&lt;!channel&gt; &amp; co” here, every Monday"
    )
    assert "<!channel>" not in said and said.endswith("the first comes 14 Dec 08:00.")


async def test_a_schedule_its_channel_refuses_is_taken_back_and_the_reason_audited(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from reports.destinations import ChannelCheck
    from reports.library import SavedReport
    from reports.schedule_check import schedule_and_announce

    uow = FakeUnitOfWork()
    report = SavedReport(id=7, slug="weekly", name="Weekly", shared=True, owner_id=3, definition={})
    told: list[str] = []

    async def refusing(token: str, base_url: str, channel: str, text: str) -> ChannelCheck:
        told.append(channel)
        return ChannelCheck(refused="the bot is not in #ops")

    import reports.schedule_check as schedule_check

    monkeypatch.setattr(schedule_check, "announce_in_slack", refusing)
    saved = await schedule_and_announce(
        lambda: uow,
        report,
        ScheduleRequest("0 8 * * 1", "Europe/Berlin", "slack", "#ops"),
        owner_id=3,
        owner_name="Ann",
        actor="a@x",
        via="web",
        now=NOW,
        slack_token="xoxb-1",
        slack_base_url="http://slack",
    )
    assert saved.scheduled is None and saved.check.refused == "the bot is not in #ops"
    assert told == ["#ops"] and uow.schedules.added == [None]
    assert [e.action for e in uow.audit.entries] == ["report.schedule", "report.unschedule"]
    assert uow.audit.entries[1].target == "report_schedule:41"
    assert uow.audit.entries[1].detail == {"report": "weekly", "reason": "the bot is not in #ops"}
    # Taken back, the same schedule can be made again once the bot is in the channel.
    assert (
        await uow.schedules.same_as(
            report_id=7, request=ScheduleRequest("0 8 * * 1", "Europe/Berlin", "slack", "#ops")
        )
        is None
    )


async def test_a_schedule_s_own_filter_is_checked_again_against_the_report_as_stored() -> None:
    """Checked before the save against the report as read then, an edit could come between and the schedule
    would fail at every run."""
    uow = FakeUnitOfWork()
    uow.schedules.definitions[7] = {"query": {"metrics": ["messages_sent"], "dimensions": ["channel"]}}
    only_berlin = ScheduleRequest(
        "0 8 * * 1",
        "Europe/Berlin",
        "email",
        "finance@example.com",
        ({"dimension": "location", "operator": "in", "value": ["BER"]},),
    )
    with pytest.raises(ScheduleError) as refused:
        await schedule_report(
            uow, report_id=7, report_slug="w", owner_id=3, request=only_berlin, actor="a", via="web", now=NOW
        )
    assert str(refused.value).startswith("the report has changed meanwhile: ")
    assert uow.schedules.added == [] and uow.commits == 0
