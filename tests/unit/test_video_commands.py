"""Reading `video` commands without a database: days and times as typed, and how the words split."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, time, timedelta

import pytest

from bot.commands import video
from bot.commands.parsing import ParseError
from bot.commands.registry import BY_NAME
from bot.commands.video_times import DaySpec, parse_clock, parse_day, parse_when
from domain.video.booking_ports import BookableService, Clinician
from domain.vocabulary import Role

TUESDAY = date(2026, 11, 24)


@pytest.mark.parametrize(
    ("typed", "day"),
    [
        ("today", TUESDAY),
        ("tomorrow", date(2026, 11, 25)),
        ("mon", date(2026, 11, 30)),
        ("next friday", date(2026, 11, 27)),
        ("tue", TUESDAY),  # today's weekday: today (a time already past moves a week on when booking)
        ("next tuesday", date(2026, 12, 1)),  # said on a Tuesday: a week on, never today
        ("freitag", date(2026, 11, 27)),  # German days, full and short
        ("Do", date(2026, 11, 26)),
        ("2026-12-07", date(2026, 12, 7)),
        ("7 dec", date(2026, 12, 7)),
        ("dec 7", date(2026, 12, 7)),
        ("7.12.", date(2026, 12, 7)),
        ("3 jan", date(2027, 1, 3)),  # passed this year: next year's
    ],
)
def test_days(typed: str, day: date) -> None:
    assert parse_day(typed.split(), TUESDAY, "usage").resolve(TUESDAY) == day


@pytest.mark.parametrize(
    ("typed", "at"),
    [("10:30", time(10, 30)), ("9", time(9)), ("2pm", time(14)), ("12am", time(0)), ("14.15", time(14, 15))],
)
def test_clock(typed: str, at: time) -> None:
    assert parse_clock(typed, "usage") == at


@pytest.mark.parametrize("typed", ["25:00", "10:61", "13pm", "noonish", ""])
def test_bad_clock(typed: str) -> None:
    with pytest.raises(ParseError, match="not a time of day"):
        parse_clock(typed, "usage")


def test_when_and_bad_days() -> None:
    when = parse_when(["on", "mon", "at", "9", "am"], TUESDAY, "usage")
    assert when.at == time(9) and when.day == DaySpec(weekday=0)
    assert parse_when(["10:30"], TUESDAY, "usage").day.resolve(TUESDAY) == TUESDAY
    for words in (["2026-02-30"], ["someday"], ["31", "feb"]):
        with pytest.raises(ParseError):
            parse_day(words, TUESDAY, "usage")


def test_book_splits_who_with_whom_and_when() -> None:
    command = video.parse_book("Anna Berg skin video with Dr Lee at tomorrow 10:30".split(), "", TUESDAY)
    assert command.customer_and_service == ("Anna", "Berg", "skin", "video")
    assert command.staff == "Dr Lee" and command.when.at == time(10, 30)
    for typed in ("Anna skin video at 10:30", "Anna skin with Dr Lee", "Anna with Dr Lee at 10:30"):
        with pytest.raises(ParseError):
            video.parse_book(typed.split(), "", TUESDAY)
    assert video.parse_list(["week", "mine"], "", TUESDAY) == video.ListVideo("week", "mine")
    assert video.parse_list([], "", TUESDAY) == video.ListVideo("today", None)
    assert video.parse_list(["next", "week", "Dr", "Lee"], "", TUESDAY) == video.ListVideo(
        "next_week", "Dr Lee"
    )
    assert video.parse_list(["this", "week"], "", TUESDAY) == video.ListVideo("week", None)
    assert video.parse_list(["Tomorrow", "mine"], "", TUESDAY) == video.ListVideo("tomorrow", "mine")
    assert video.parse_list(["this", "Dr", "Lee"], "", TUESDAY) == video.ListVideo("week", "Dr Lee")
    assert video.parse_list(["Lena", "next", "week"], "", TUESDAY) == video.ListVideo("next_week", "Lena")
    assert video.parse_list(["last", "week", "mine"], "", TUESDAY) == video.ListVideo("last_week", "mine")
    for typed in (["next"], ["next", "mine"], ["week", "next"], ["today", "tomorrow"], ["Lena", "next"]):
        with pytest.raises(ParseError, match="today, tomorrow, this week, next week or last week"):
            video.parse_list(typed, "", TUESDAY)


def test_the_days_each_list_covers() -> None:
    """From Tuesday: today and tomorrow are one day; this week and next week run Monday to Sunday."""
    one, monday = timedelta(days=1), TUESDAY - timedelta(days=1)
    assert video.list_days("today", TUESDAY) == (TUESDAY, TUESDAY + one)
    assert video.list_days("tomorrow", TUESDAY) == (TUESDAY + one, TUESDAY + 2 * one)
    assert video.list_days("week", TUESDAY) == (monday, monday + 7 * one)
    assert video.list_days("next_week", TUESDAY) == (monday + 7 * one, monday + 14 * one)
    sunday = monday + 6 * one
    assert video.list_days("next_week", sunday) == (monday + 7 * one, monday + 14 * one)
    assert video.list_days("last_week", TUESDAY) == (monday - 7 * one, monday)
    slots = video.parse_slots("Dr Lee nutrition on friday".split(), "", TUESDAY)
    assert slots.staff_and_service == ("Dr", "Lee", "nutrition") and slots.day == DaySpec(weekday=4)
    with pytest.raises(ParseError, match="by its number"):
        video.parse_reschedule(["abc", "to", "10:00"], "", TUESDAY)


def test_names_match_clinicians_and_services() -> None:
    people = [
        Clinician(1, "Lena Hoffmann", "lena@x.example", "Europe/Berlin"),
        Clinician(2, "Jonas Becker", "jonas@x.example", "Europe/Berlin"),
        Clinician(3, "Lena Meier", "meier@x.example", "Europe/Zurich"),
    ]
    assert [c.staff_id for c in video.matching_clinicians("Dr Hoffmann", people)] == [1]
    assert [c.staff_id for c in video.matching_clinicians("jonas@x.example", people)] == [2]
    assert [c.staff_id for c in video.matching_clinicians("Lena", people)] == [1, 3]  # ambiguous: asked
    assert video.matching_clinicians("Nobody", people) == []
    services = [
        BookableService(5, "SKIN-VIDEO", "Video skin consultation", "video", 30, 1, "EUR"),
        BookableService(6, "NUTRI-VIDEO", "Video nutrition check-in", "video", 20, 1, "EUR"),
    ]
    assert [s.service_id for s in video.matching_services("skin video", services)] == [5]
    assert [s.service_id for s in video.matching_services("nutri-video", services)] == [6]
    assert [s.service_id for s in video.matching_services("video", services)] == [5, 6]


def test_the_table_rows_and_roles() -> None:
    assert BY_NAME["video book"].role is Role.AGENT and BY_NAME["video book"].changes
    assert BY_NAME["video cancel"].role is Role.AGENT and BY_NAME["video reschedule"].changes
    assert BY_NAME["video list"].role is Role.VIEWER and not BY_NAME["video slots"].changes


def test_a_consultation_without_reminders_says_none_yet_only_while_it_is_still_to_come() -> None:
    from datetime import UTC, datetime

    from api.pages.common import Formats
    from api.pages.video import BusinessClock, line_view
    from storage.queries.video import ConsultationLine

    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    line = ConsultationLine(
        1, None, now + timedelta(days=1), 30, "scheduled", 1, 7, "Anna Berg", "Europe/Berlin", 3, "Dr Lee",
        "Skin video", 1, "BER", None, None, None, None, None, None, "https://room.example/1",
    )  # fmt: skip
    clock = BusinessClock(Formats("Europe/Berlin", "en_GB", "EUR"))
    assert line_view(line, [], clock, now)["no_reminders"] == "none yet"
    over = replace(line, scheduled_at=now - timedelta(hours=2), status="completed")
    assert line_view(over, [], clock, now)["no_reminders"] == "none sent"
    called_off = replace(line, status="cancelled")
    assert line_view(called_off, [], clock, now)["no_reminders"] == "none sent"
