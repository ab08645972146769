"""Cron weekdays mean what cron says: 1 is Monday, 0 and 7 are Sunday (APScheduler 3 alone counts 0 as Monday)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from domain.report_schedule import cron_weekdays_as_names
from reports.schedules import ScheduleError, next_due

TUESDAY_AFTERNOON = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)  # Tue 1 Dec 2026, 15:00 in Berlin


@pytest.mark.parametrize(
    ("cron", "weekday_names"),
    [
        ("0 8 * * 1", "mon"),
        ("0 8 * * 0", "sun"),
        ("0 8 * * 7", "sun"),
        ("0 8 * * 1-5", "mon,tue,wed,thu,fri"),
        ("0 8 * * mon-fri", "mon,tue,wed,thu,fri"),
        ("0 8 * * 5-7", "sun,fri,sat"),
        ("0 8 * * */2", "sun,tue,thu,sat"),
        ("0 8 * * 1-5/2", "mon,wed,fri"),
        ("0 8 * * 1,3", "mon,wed"),
    ],
)
def test_weekday_numbers_become_cron_names(cron: str, weekday_names: str) -> None:
    assert cron_weekdays_as_names(cron).split()[4] == weekday_names


@pytest.mark.parametrize(
    ("cron", "expected_local_day"),
    [
        ("0 8 * * 1", "Mon 07 Dec"),
        ("0 8 * * 0", "Sun 06 Dec"),
        ("0 8 * * 3", "Wed 02 Dec"),
        ("0 8 * * *", "Wed 02 Dec"),
    ],
)
def test_the_first_run_falls_on_the_weekday_cron_means(cron: str, expected_local_day: str) -> None:
    due = next_due(cron, "Europe/Berlin", TUESDAY_AFTERNOON)
    local = due.astimezone(ZoneInfo("Europe/Berlin"))
    assert f"{local:%a %d %b}" == expected_local_day and local.hour == 8


@pytest.mark.parametrize("cron", ["0 8 * * 8", "0 8 * * 5-1", "0 8 * * funday", "0 8 * * */0"])
def test_impossible_weekdays_are_refused_in_words(cron: str) -> None:
    with pytest.raises(ScheduleError, match="invalid cron expression"):
        next_due(cron, "Europe/Berlin", TUESDAY_AFTERNOON)
