"""An owner opens a new clinic and sets a clinician's hours from the command line; the front desk asks the bot
who is on duty there, in German, and books a video consultation inside those hours (one outside is refused).

Everything goes through public entry points: `switchboard clinic add`, `staff add --clinic`, `staff hours`,
`staff list` and the bot's language (`demo.ask`, the layer Slack, Telegram and the console share). The
roster is recounted from the database's rows.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from storage.models import ClinicianHours, Customer, Location, StaffUser, VideoConsultation
from tests.journeys.conftest import Demo

FRONT_DESK = "lena.hoffmann@northwind.example"
NORA = "nora.weiss@northwind.example"


def test_the_owner_sets_hours_and_the_front_desk_finds_who_is_on_duty_and_books_inside_them(
    demo: Demo,
) -> None:
    opened = demo.cli(
        "clinic", "add", "HAM", "--name", "Northwind Hamburg Altona", "--timezone", "Europe/Berlin"
    )
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout.startswith("added clinic HAM, Northwind Hamburg Altona (Europe/Berlin, DE)")
    hired = demo.cli("staff", "add", NORA, "--name", "Nora Weiss", "--clinic", "Hamburg Altona")
    assert hired.returncode == 2 and "there is no clinic 'Hamburg Altona'" in hired.stdout + hired.stderr
    hired = demo.cli("staff", "add", NORA, "--name", "Nora Weiss", "--clinic", "ham")
    assert hired.returncode == 0, hired.stderr
    assert "as agent at Northwind Hamburg Altona in Europe/Berlin" in hired.stdout
    hours = demo.cli("staff", "hours", NORA, "täglich 9-12, 13-17")
    assert hours.returncode == 0, hours.stderr
    assert "Nora Weiss <nora.weiss@northwind.example> works Mon-Sun 09:00-12:00 13:00-17:00" in hours.stdout
    listed = demo.cli("staff", "list").stdout
    assert f"{NORA}  Nora Weiss  agent  Northwind Hamburg Altona  no bot linked" in listed
    assert (
        "HAM  Northwind Hamburg Altona  Europe/Berlin  DE  1 staff member"
        in demo.cli("clinic", "list").stdout
    )

    # The front desk asks in German who works in Hamburg the day after tomorrow: the rows, no one else.
    berlin = ZoneInfo("Europe/Berlin")
    day = datetime.now(berlin).date() + timedelta(days=2)
    reply = demo.ask("wer hat übermorgen in Hamburg Altona Dienst?", as_email=FRONT_DESK)
    assert reply.kind == "answer" and reply.table is not None, reply.text
    on_duty = demo.rows(
        select(StaffUser.name, ClinicianHours.starts, ClinicianHours.ends)
        .join(ClinicianHours, ClinicianHours.staff_id == StaffUser.id)
        .join(Location, Location.id == StaffUser.location_id)
        .where(Location.code == "HAM", ClinicianHours.weekday == day.weekday(), StaffUser.active.is_(True))
        .order_by(ClinicianHours.starts)
    )
    assert [name for name, _a, _b in on_duty] == ["Nora Weiss", "Nora Weiss"]
    assert reply.table.rows == (
        ("Northwind Hamburg Altona", "Nora Weiss", ", ".join(f"{a:%H:%M}–{b:%H:%M}" for _n, a, b in on_duty)),
    )
    assert reply.text.startswith(f"1 person works at Northwind Hamburg Altona on {day:%A}."), reply.text

    # Her free times that day start when her hours do; a booking inside them goes, one after them does not.
    slots = demo.ask(f"video slots Nora Weiss on {day:%Y-%m-%d}", as_email=FRONT_DESK)
    assert slots.kind == "answer" and f"The first is {day:%a} {day.day} {day:%b} 09:00" in slots.text, (
        slots.text
    )
    [(customer_id,)] = demo.rows(
        select(Customer.id).where(Customer.phone_e164.is_not(None)).order_by(Customer.id).limit(1)
    )
    late = demo.ask(
        f"video book #{customer_id} SKIN-VIDEO with Nora Weiss at {day:%Y-%m-%d} 18:00", as_email=FRONT_DESK
    )
    assert late.kind == "error", late.text
    booked = demo.ask(
        f"video book #{customer_id} SKIN-VIDEO with Nora Weiss at {day:%Y-%m-%d} 10:00", as_email=FRONT_DESK
    )
    assert booked.title == "Video consultation booked", booked.text
    [(scheduled, staff_email)] = demo.rows(
        select(VideoConsultation.scheduled_at, StaffUser.email)
        .join(StaffUser, StaffUser.id == VideoConsultation.staff_id)
        .where(VideoConsultation.customer_id == customer_id, StaffUser.email == NORA)
    )
    at = scheduled if scheduled.tzinfo else scheduled.replace(tzinfo=ZoneInfo("UTC"))
    assert (staff_email, at.astimezone(berlin).date(), f"{at.astimezone(berlin):%H:%M}") == (
        NORA,
        day,
        "10:00",
    )
