"""Working hours as people write them, and the front desk's who-is-on-duty questions."""

from __future__ import annotations

from datetime import date, time

import pytest

from bot.commands.team import on_duty_question
from domain.video.slots import WorkingSpan
from domain.video.working_hours import WorkingHoursRefused, read_working_hours, working_hours_words

MONDAY = date(2026, 12, 7)


@pytest.mark.parametrize(
    ("written", "said", "spans"),
    [
        ("mon-fri 09:00-12:30 13:30-17:00", "Mon-Fri 09:00-12:30 13:30-17:00", 10),
        ("Mo-Do 8-12, 13-17; Fr 8-13", "Mon-Thu 08:00-12:00 13:00-17:00; Fri 08:00-13:00", 9),
        ("mon,wed,fri 8.30-12", "Mon 08:30-12:00; Wed 08:30-12:00; Fri 08:30-12:00", 3),
        ("Samstag 9:00 – 13:00", "Sat 09:00-13:00", 1),
        # As people write them: days apart by commas, a group after another without ";", words for many days.
        ("Mo, Mi, Fr 9-17", "Mon 09:00-17:00; Wed 09:00-17:00; Fri 09:00-17:00", 3),
        ("Mo-Fr 8-12, Sa 9-13", "Mon-Fri 08:00-12:00; Sat 09:00-13:00", 6),
        ("werktags 9-17", "Mon-Fri 09:00-17:00", 5),
        ("täglich 9-12", "Mon-Sun 09:00-12:00", 7),
        ("off", "none", 0),
        ("", "none", 0),
    ],
)
def test_hours_are_read_as_written_and_said_back_grouped(written: str, said: str, spans: int) -> None:
    read = read_working_hours(written)
    assert len(read) == spans and working_hours_words(read) == said
    assert read_working_hours(said if said != "none" else "off") == read, "what is said back reads the same"


def test_a_split_shift_is_two_spans_of_one_day() -> None:
    assert read_working_hours("tue 8-12 14-18") == [
        WorkingSpan(1, time(8), time(12)),
        WorkingSpan(1, time(14), time(18)),
    ]


@pytest.mark.parametrize(
    ("written", "why"),
    [
        ("mon 9-12 11-13", "on Mon, 09:00-12:00 and 11:00-13:00 overlap"),
        ("mon-fri 9-17; wed 16-18", "on Wed, 09:00-17:00 and 16:00-18:00 overlap"),
        ("mon 17-9", "ends before it starts"),
        ("mon 22-24", "end a day's hours by 23:55"),
        ("mon 9:03-10", "steps of five minutes"),
        ("mon 25-26", "hours 0–23"),
        ("fri-mon 9-10", "runs backwards"),
        ("someday 9-10", "“someday” is not a day"),
        ("mon-fri", "gives days but no hours"),
        ("mon 9", "“9” is not a span of hours"),
        ("9-17", "say the days first"),
    ],
)
def test_hours_that_do_not_make_sense_are_refused_in_words(written: str, why: str) -> None:
    with pytest.raises(WorkingHoursRefused, match=why):
        read_working_hours(written)


@pytest.mark.parametrize(
    ("asked", "day"),
    [
        ("who is on duty today?", MONDAY),
        ("who's working tomorrow", date(2026, 12, 8)),
        ("which doctors work on friday", date(2026, 12, 11)),
        ("Wer hat heute Dienst?", MONDAY),
        ("wer ist morgen da", date(2026, 12, 8)),
        ("welche Ärzte arbeiten am Freitag?", date(2026, 12, 11)),
        ("who is in", MONDAY),
        ("wer hat übermorgen Dienst?", date(2026, 12, 9)),
        ("who works the day after tomorrow?", date(2026, 12, 9)),
        ("who is working next monday?", date(2026, 12, 14)),
        ("welche Ärzte arbeiten nächsten Freitag?", date(2026, 12, 11)),
        ("wer arbeitet am 24.12.?", date(2026, 12, 24)),
        ("who is on duty on 7 jan", date(2027, 1, 7)),
    ],
)
def test_front_desk_questions_ask_who_is_on_duty_on_a_day(asked: str, day: date) -> None:
    found = on_duty_question(asked, MONDAY)
    assert found is not None and found.clinic is None
    assert (found.day.resolve(MONDAY) if found.day else MONDAY) == day


#: The clinics' names as people say them (bot/commands/everyday_names.py), to their codes.
CLINICS = {"berlin": "BER", "mitte": "BER", "berlin mitte": "BER", "wien": "VIE", "vienna": "VIE"}


@pytest.mark.parametrize(
    ("asked", "day", "clinic"),
    [
        ("who is on duty tomorrow in Berlin?", date(2026, 12, 8), "berlin"),
        ("wer arbeitet am 24.12. in Wien?", date(2026, 12, 24), "wien"),
        ("who is on duty today at the Berlin Mitte clinic?", MONDAY, "berlin mitte"),
        ("wer ist heute in Wien da?", MONDAY, "wien"),
        ("who works in Berlin", MONDAY, "berlin"),
    ],
)
def test_a_duty_question_may_name_a_clinic(asked: str, day: date, clinic: str) -> None:
    found = on_duty_question(asked, MONDAY, CLINICS)
    assert found is not None and found.clinic == clinic
    assert (found.day.resolve(MONDAY) if found.day else MONDAY) == day


@pytest.mark.parametrize(
    "asked",
    [
        "who is our best customer",
        "who opted out last week",
        "which clinics had the most no-shows",
        "wer hat am meisten Umsatz gemacht",
        "who is on duty today and tomorrow",
        "who works in Berlin",  # no clinic is called so here
        "who works the most chats",
        "wer arbeitet am 24.12. in Hamburg",
    ],
)
def test_other_questions_are_not_taken_for_a_duty_roster(asked: str) -> None:
    assert on_duty_question(asked, MONDAY, {} if "Berlin" in asked else CLINICS) is None


def test_a_clinic_named_with_small_words_keeps_them() -> None:
    """ "Praxis am Markt" lost its "am" and was no clinic; "team friday." read "friday." as a clinic."""
    from bot.commands.team import parse_team

    typed = parse_team("tomorrow Praxis am Markt".split(), "", MONDAY)
    assert typed.clinic == "praxis am markt" and typed.day is not None
    assert typed.day.resolve(MONDAY) == date(2026, 12, 8)
    friday = parse_team(["friday."], "", MONDAY)
    assert (
        friday.clinic is None and friday.day is not None and friday.day.resolve(MONDAY) == date(2026, 12, 11)
    )
    assert parse_team("on friday in Berlin".split(), "", MONDAY).clinic == "berlin"
    asked = on_duty_question(
        "who is on duty at Praxis am Markt tomorrow?", MONDAY, {"praxis am markt": "PAM"}
    )
    assert asked is not None and asked.clinic == "praxis am markt"
