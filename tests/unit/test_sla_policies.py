"""What an admin types for an SLA policy, read into the shape the SLA clock reads, or refused in words."""

from __future__ import annotations

import pytest

from domain.conversations.sla import PolicyError, read_holidays, read_week
from domain.conversations.sla_policies import SlaPolicyDraft, check_policy, draft_of

WEEKDAY_HOURS = {d: "08:00-12:30, 13:30-18:00" for d in ("mon", "tue", "wed", "thu", "fri")}


def test_split_shifts_holidays_and_targets_are_read_into_the_stored_shape() -> None:
    draft = SlaPolicyDraft(
        name="  Berlin   Mitte ",
        location="BER",
        first_response="10",
        next_response="",
        resolution="360 min",
        warn_before="5",
        hours={**WEEKDAY_HOURS, "sat": "9:00 – 13:00", "sun": ""},
        holidays="2026-12-25, 2026-12-24\n2026-12-25",
    )
    checked = check_policy(draft)
    assert (checked.name, checked.location) == ("Berlin Mitte", "BER")
    assert (checked.first_response_minutes, checked.next_response_minutes, checked.resolution_minutes) == (
        10,
        None,
        360,
    )
    assert checked.warn_before_minutes == 5
    assert checked.business_hours["mon"] == [["08:00", "12:30"], ["13:30", "18:00"]]
    assert checked.business_hours["sat"] == [["09:00", "13:00"]] and "sun" not in checked.business_hours
    assert checked.holidays == ["2026-12-24", "2026-12-25"]
    # The clock reads exactly what is stored.
    assert len(read_week(checked.business_hours)) == 6 and len(read_holidays(checked.holidays)) == 2
    # And the form shows it back as it was meant.
    again = draft_of(checked.as_values(), "BER")
    assert check_policy(again) == checked


def test_no_hours_on_any_day_is_around_the_clock() -> None:
    assert check_policy(SlaPolicyDraft(name="Always", first_response="5")).business_hours == {}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"name": "  "}, "Give the policy a name."),
        ({"first_response": "", "resolution": ""}, "Set at least one target"),
        ({"first_response": "ten"}, "The first-response target is a whole number of minutes"),
        ({"resolution": "-5"}, "The resolution target is a whole number of minutes"),
        ({"first_response": "99999999"}, "from 0 to 86,400"),
        ({"warn_before": ""}, "Give the warning in minutes."),
        ({"hours": {"mon": "8-12"}}, "Monday: “8-12” is not a span like 08:00-12:30."),
        ({"hours": {"tue": "25:00-26:00"}}, "Tuesday: “25:00” is not a time like 09:00."),
        ({"hours": {"wed": "24:00-08:00"}}, "a span cannot start at 24:00"),
        ({"holidays": "2026-12-25\nChristmas"}, "Holidays: “Christmas” is not a date like 2026-12-25."),
        ({"holidays": "2026-13-01"}, "Holidays: “2026-13-01” is not a date like 2026-12-25."),
        ({"first_response": "²"}, "is a whole number of minutes"),
    ],
)
def test_what_cannot_be_read_is_refused_naming_the_field(change: dict[str, object], words: str) -> None:
    base = {"name": "Standard", "first_response": "15", "resolution": "480"}
    with pytest.raises(PolicyError) as refused:
        check_policy(SlaPolicyDraft(**{**base, **change}))  # type: ignore[arg-type]
    assert words in str(refused.value)


def test_stored_hours_spelled_another_way_show_in_the_form_and_survive_a_save() -> None:
    stored = {"name": "Old", "first_response_minutes": 15, "business_hours": {"Monday": [["09:00", "17:00"]]}}
    draft = draft_of(stored, None)
    assert draft.hours["mon"] == "09:00-17:00"
    assert check_policy(draft).business_hours == {"mon": [["09:00", "17:00"]]}
