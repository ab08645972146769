"""Scheduling a saved report: stored with its first due time and audited in one commit; a bad cron stores nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from domain.audit import AuditEntry
from reports.schedules import ScheduleError, ScheduleRequest, schedule_report
from tests.fakes.transaction import FakeTransaction

NOW = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)  # Tue 1 Dec 2026, 15:00 in Berlin


class FakeSchedules:
    def __init__(self) -> None:
        self.added: list[dict[str, Any]] = []

    async def add(self, **schedule: Any) -> int:
        self.added.append(schedule)
        return 40 + len(self.added)


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
        {
            "report_id": 7,
            "owner_id": 3,
            "cron": "0 8 * * 1",
            "timezone": "Europe/Berlin",
            "destination_kind": "email",
            "destination": "boss@example.com",
            "next_due_at": scheduled.first_due,
            "filters": [],
        }
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


def test_a_schedules_announcement_shows_names_as_text_never_as_slack_markup() -> None:
    from datetime import UTC, datetime

    from reports.schedule_check import schedule_announcement
    from reports.schedules import ScheduleRequest

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
