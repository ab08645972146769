"""A clinic runs a video consultation end to end on a freshly seeded demo (issue 14's "Done when").

Everything goes through the product's public entry points: the bot's command language, the patient's phone
in the sandbox (WhatsApp, and SMS for a patient who said yes to SMS only), the clinic's patient list
through `switchboard import customers`, the `/v/` link over HTTP, the sandbox's Jitsi room and Slack, and the browser.
Two things are test setup, written straight into the demo's database:

- the clinician works every day 00:00-23:55, so the booking and the rebooking offer find free times whatever
  hour CI runs at (the demo seeds Mon-Fri office hours);
- "time passes" by moving a consultation's stored times (its start, the appointment's start and when it was
  booked, all by the same amount), since the reminders are 24 h and 2 h before and real time runs: the
  worker's own jobs then find the reminder due, the link's window open, the patient missing.
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, insert, select, update

from bot.console import render_reply
from domain.video.model import STATUS_WORDS, ConsultationStatus
from storage.database import Database
from storage.models import (
    Appointment,
    ClinicianHours,
    CommunicationPreference,
    Customer,
    StaffUser,
    VideoConsultation,
    VideoJoin,
    VideoRebookOffer,
)
from tests.conftest import FreshDatabases
from tests.journeys.conftest import (
    MANAGER,
    Demo,
    demo_on_engine,
    http_json,
    run_async,
    screenshot,
    sign_in,
    wait_for,
)

CLINICIAN = "lena.hoffmann@northwind.example"  # an agent of clinic 1: a clinician with a Slack id


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, fresh_databases: FreshDatabases
) -> Iterator[Demo]:
    """The whole video journey on SQLite and on PostgreSQL (the scale-out engine)."""
    yield from demo_on_engine(request, tmp_path_factory, fresh_databases, "demo-video", rebuild_rollups=False)


def write(demo: Demo, *statements: Any) -> None:
    """Test setup only (see the module): statements in one transaction on the demo's database."""

    async def run() -> None:
        database = Database.connect(demo.database_url)
        try:
            async with database.sessions() as session, session.begin():
                for statement in statements:
                    await session.execute(statement)
        finally:
            await database.dispose()

    run_async(run())


def as_stored(moment: datetime, like: datetime) -> datetime:
    return moment.replace(tzinfo=None) if like.tzinfo is None else moment


def utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def move_start(demo: Demo, consultation_id: int, starts_at: datetime) -> None:
    """Time passes: the consultation (and its appointment, and when it was booked) move by the same amount."""
    [(scheduled, created, appointment_id)] = demo.rows(
        select(
            VideoConsultation.scheduled_at, VideoConsultation.created_at, VideoConsultation.appointment_id
        ).where(VideoConsultation.id == consultation_id)
    )
    shift = starts_at - utc(scheduled)
    statements: list[Any] = [
        update(VideoConsultation)
        .where(VideoConsultation.id == consultation_id)
        .values(
            scheduled_at=as_stored(utc(scheduled) + shift, scheduled),
            created_at=as_stored(utc(created) + shift, created),
        )
    ]
    if appointment_id is not None:
        [(appointment_at, appointment_created)] = demo.rows(
            select(Appointment.scheduled_at, Appointment.created_at).where(Appointment.id == appointment_id)
        )
        statements.append(
            update(Appointment)
            .where(Appointment.id == appointment_id)
            .values(
                scheduled_at=as_stored(utc(appointment_at) + shift, appointment_at),
                created_at=as_stored(utc(appointment_created) + shift, appointment_created),
            )
        )
    write(demo, *statements)


def consultation(demo: Demo, consultation_id: int) -> Any:
    [row] = demo.rows(
        select(
            VideoConsultation.status,
            VideoConsultation.scheduled_at,
            VideoConsultation.link_token,
            VideoConsultation.confirmed_at,
            VideoConsultation.no_show_by,
            VideoConsultation.customer_id,
        ).where(VideoConsultation.id == consultation_id)
    )
    return row


def phone(demo: Demo, wa_id: str) -> list[str]:
    return [
        m["body"]
        for m in demo.sandbox_messages("whatsapp_cloud")
        if m.get("to") == wa_id and m["direction"] == "outbound"
    ]


def new_on_phone(demo: Demo, wa_id: str, before: int, what: str, limit: float = 60) -> str:
    """The first message the patient's phone received after the `before` it had; fails naming `what`."""

    def received() -> str | None:
        arrived = phone(demo, wa_id)[before:]
        return arrived[0] if arrived else None

    return wait_for(received, limit, what)


def patients(demo: Demo) -> list[tuple[int, str, str, str]]:
    """English-speaking demo customers who prefer WhatsApp: (id, name, WhatsApp id, timezone)."""
    found = demo.rows(
        select(Customer.id, Customer.name, Customer.whatsapp_id, Customer.timezone)
        .join(CommunicationPreference, CommunicationPreference.customer_id == Customer.id)
        .where(
            CommunicationPreference.preferred_channel == "whatsapp",
            Customer.whatsapp_id.is_not(None),
            Customer.locale.like("en%"),
        )
        .order_by(Customer.id)
    )
    assert len(found) >= 2, "the demo seeds at least two English customers who prefer WhatsApp"
    # Patients in another zone than the clinic's first, so the times stated back differ from the clinician's.
    return sorted((tuple(row) for row in found), key=lambda row: row[3] == "Europe/Berlin")


def no_redirect_get(url: str) -> tuple[int, str]:
    """The status and where it points (a browser's first hop)."""

    class Stay(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(Stay)
    try:
        with opener.open(url, timeout=30) as answer:
            return answer.status, answer.headers.get("Location", "")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Location", "")


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


class Clinic:
    """What the journey learned so far, shared between its steps (one demo for the module)."""

    clinician_id: int
    clinician_name: str
    clinician_tz: str
    first: int
    second: int
    rebooked: int


CLINIC = Clinic()


def test_a_staff_member_books_and_the_patient_is_told_on_whatsapp(demo: Demo) -> None:
    [(staff_id, staff_name, staff_tz, slack_id)] = demo.rows(
        select(StaffUser.id, StaffUser.name, StaffUser.timezone, StaffUser.slack_user_id).where(
            StaffUser.email == CLINICIAN
        )
    )
    assert slack_id, "the clinician is alerted on Slack"
    CLINIC.clinician_id, CLINIC.clinician_name, CLINIC.clinician_tz = staff_id, staff_name, staff_tz
    write(
        demo,
        delete(ClinicianHours).where(ClinicianHours.staff_id == staff_id),
        *[
            insert(ClinicianHours).values(
                staff_id=staff_id, weekday=day, starts=clock_time(0, 0), ends=clock_time(23, 55)
            )
            for day in range(7)
        ],
    )
    customer_id, name, wa_id, patient_tz = patients(demo)[0]
    zone = ZoneInfo(staff_tz)
    at = (datetime.now(zone) + timedelta(days=3)).replace(hour=11, minute=0, second=0, microsecond=0)
    before = len(phone(demo, wa_id))

    reply = demo.ask(
        f"video book #{customer_id} SKIN-VIDEO with {staff_name} at {at:%Y-%m-%d %H:%M}", as_email=MANAGER
    )

    [(consultation_id, scheduled)] = demo.rows(
        select(VideoConsultation.id, VideoConsultation.scheduled_at)
        .where(VideoConsultation.customer_id == customer_id, VideoConsultation.status == "scheduled")
        .order_by(VideoConsultation.id.desc())
        .limit(1)
    )
    CLINIC.first = consultation_id
    assert utc(scheduled) == at.astimezone(UTC)
    fields = {f.label: f.value for f in reply.fields}
    assert reply.title == "Video consultation booked", reply
    assert fields["Consultation"] == str(consultation_id)
    assert f"{at:%H:%M}" in fields["Clinician's time"]
    patient_at = at.astimezone(ZoneInfo(patient_tz))
    assert f"{patient_at:%H:%M}" in fields[f"{name}'s time"] and patient_tz in fields[f"{name}'s time"]
    assert "on WhatsApp, their preferred channel" in reply.text

    booked = new_on_phone(demo, wa_id, before, "the booking message on the patient's phone")
    token = consultation(demo, consultation_id).link_token
    assert f"{demo.app_url}/v/{token}" in booked, booked
    assert f"{patient_at:%a} {patient_at.day} {patient_at:%b %H:%M}" in booked, booked


def test_both_reminders_arrive_once_and_the_patient_confirms(demo: Demo) -> None:
    row = consultation(demo, CLINIC.first)
    [(wa_id,)] = demo.rows(select(Customer.whatsapp_id).where(Customer.id == row.customer_id))
    link = f"{demo.app_url}/v/{row.link_token}"
    for lead, words in ((timedelta(hours=24), "the 24 h reminder"), (timedelta(hours=2), "the 2 h reminder")):
        before = len(phone(demo, wa_id))
        move_start(demo, CLINIC.first, datetime.now(UTC) + lead - timedelta(seconds=30))
        reminder = new_on_phone(demo, wa_id, before, words, limit=90)
        assert "a reminder of your" in reminder and link in reminder and "Reply 1 to confirm" in reminder
        time.sleep(5)  # a second send of the same reminder would show up by now (the job runs every second)
        assert len(phone(demo, wa_id)) == before + 1, phone(demo, wa_id)[before:]

    before = len(phone(demo, wa_id))
    demo.sandbox("POST", "/_sandbox/customer/whatsapp", {"from": wa_id, "body": "1"})
    answer = new_on_phone(demo, wa_id, before, "the confirmation on the patient's phone")
    assert answer.startswith("Thanks, you're confirmed for your Video skin consultation"), answer
    stored = consultation(demo, CLINIC.first)
    assert stored.status == "confirmed" and stored.confirmed_at is not None


def test_the_patient_joins_and_the_clinician_is_told(demo: Demo) -> None:
    row = consultation(demo, CLINIC.first)
    link = f"{demo.app_url}/v/{row.link_token}"
    status, page = get(link)
    assert status == 200 and "opens at" in page, page[:2000]

    move_start(demo, CLINIC.first, datetime.now(UTC) + timedelta(minutes=5))
    status, room = no_redirect_get(link)
    assert status == 302, status
    assert room.startswith(f"{demo.sandbox_url}/video/"), room
    status, page = get(room)
    assert status == 200 and "(moderator)" not in page, page[:2000]
    [(patient_name,)] = demo.rows(select(Customer.name).where(Customer.id == row.customer_id))
    assert f"as {patient_name}</h1>" in page, page[:2000]
    # The join is recorded just after the redirect has answered.
    wait_for(lambda: consultation(demo, CLINIC.first).status == "waiting", 10, "the patient's join recorded")
    starts = utc(consultation(demo, CLINIC.first).scheduled_at).astimezone(ZoneInfo(CLINIC.clinician_tz))
    if starts.date() == datetime.now(starts.tzinfo).date():  # not when it falls past the clinic's midnight
        shown = render_reply(demo.ask("video list today", as_email=MANAGER))
        assert re.search(rf"{CLINIC.first}\b.*{starts:%H:%M}.*{patient_name}.*waiting", shown), shown
    listed = demo.api("GET", "/api/video/consultations")["consultations"]
    assert [c["status_words"] for c in listed if c["id"] == CLINIC.first] == ["waiting"]

    def the_dm() -> dict[str, Any] | None:
        # The DM channel exists once the product has opened it (404 until then).
        status, found = http_json("GET", f"{demo.sandbox_url}/_sandbox/slack/channels/D0AGENT01/messages")
        for message in found["messages"] if status == 200 else []:
            if "waiting room" in message["text"] or "waiting room" in str(message.get("blocks")):
                return dict(message)
        return None

    dm = wait_for(the_dm, 60, "the clinician's 'patient is in the waiting room' DM in Slack")
    join_now = re.search(r"<([^|>]+)\|Join now>", str(dm.get("blocks")) + dm["text"])
    assert join_now is not None, dm
    status, room = no_redirect_get(join_now[1])
    assert status == 302, status
    status, page = get(room)
    assert status == 200 and f"as {CLINIC.clinician_name} (moderator)" in page, page[:2000]
    wait_for(
        lambda: consultation(demo, CLINIC.first).status == "in_progress", 10, "the clinician's join recorded"
    )
    whos = demo.rows(
        select(VideoJoin.who).where(VideoJoin.consultation_id == CLINIC.first).order_by(VideoJoin.id)
    )
    assert [w for (w,) in whos] == ["patient", "clinician"]


def test_a_missed_consultation_is_marked_and_rebooked_by_the_patient(demo: Demo) -> None:
    customer_id, _name, wa_id, patient_tz = patients(demo)[1]
    at = (datetime.now(ZoneInfo(CLINIC.clinician_tz)) + timedelta(days=4)).replace(
        hour=15, minute=0, second=0, microsecond=0
    )
    reply = demo.ask(
        f"video book #{customer_id} SKIN-VIDEO with {CLINIC.clinician_name} at {at:%Y-%m-%d %H:%M}",
        as_email=MANAGER,
    )
    CLINIC.second = int({f.label: f.value for f in reply.fields}["Consultation"])
    new_on_phone(demo, wa_id, 0, "the second booking's message")
    before = len(phone(demo, wa_id))
    move_start(demo, CLINIC.second, datetime.now(UTC) - timedelta(minutes=15))

    offer = new_on_phone(demo, wa_id, before, "the rebooking offer after the no-show", limit=120)
    stored = consultation(demo, CLINIC.second)
    assert stored.status == "no_show" and stored.no_show_by == "system"
    assert all(f"{letter}) " in offer for letter in "ABC"), offer
    [(slots,)] = demo.rows(
        select(VideoRebookOffer.slots).where(VideoRebookOffer.consultation_id == CLINIC.second)
    )
    first_offered = datetime.fromisoformat(slots[0]).astimezone(ZoneInfo(patient_tz))
    assert f"{first_offered:%H:%M}" in offer.split("B) ")[0], offer

    before = len(phone(demo, wa_id))
    demo.sandbox("POST", "/_sandbox/customer/whatsapp", {"from": wa_id, "body": "A"})
    told = new_on_phone(demo, wa_id, before, "the new booking on the patient's phone")
    # Answered at once, with the new time and the link (the booking's own message may follow).
    assert told.startswith("Done: your Video skin consultation") and f"{first_offered:%H:%M}" in told, told
    assert "/v/" in told, told
    [(rebooked_id,)] = demo.rows(
        select(VideoRebookOffer.rebooked_id).where(VideoRebookOffer.consultation_id == CLINIC.second)
    )
    assert rebooked_id is not None
    new = consultation(demo, rebooked_id)
    assert new.status == "scheduled" and utc(new.scheduled_at) == datetime.fromisoformat(slots[0]).astimezone(
        UTC
    )
    CLINIC.rebooked = rebooked_id
    # Over 30 s have passed since the 2 h reminder (the reminder job's full scan has run): still one of each.
    [(first_wa,)] = demo.rows(
        select(Customer.whatsapp_id)
        .join(VideoConsultation, VideoConsultation.customer_id == Customer.id)
        .where(VideoConsultation.id == CLINIC.first)
    )
    assert sum("a reminder of your" in text for text in phone(demo, first_wa)) == 2
    # The JSON API lists it (the bot's "video list week" ends on Sunday; an offer can fall in the next week).
    listed = demo.api("GET", f"/api/video/consultations?staff_id={CLINIC.clinician_id}")["consultations"]
    [shown] = [c for c in listed if c["id"] == rebooked_id]
    assert shown["status_words"] == "booked" and shown["customer"]["id"] == customer_id
    assert datetime.fromisoformat(shown["starts_at"]) == datetime.fromisoformat(slots[0])


def test_a_patient_left_waiting_by_an_absent_clinician_is_offered_new_times(demo: Demo) -> None:
    customer_id, _name, wa_id, _tz = patients(demo)[0]
    at = (datetime.now(ZoneInfo(CLINIC.clinician_tz)) + timedelta(days=5)).replace(
        hour=16, minute=0, second=0, microsecond=0
    )
    reply = demo.ask(
        f"video book #{customer_id} SKIN-VIDEO with {CLINIC.clinician_name} at {at:%Y-%m-%d %H:%M}",
        as_email=MANAGER,
    )
    absent = int({f.label: f.value for f in reply.fields}["Consultation"])
    token = consultation(demo, absent).link_token
    wait_for(lambda: any(token in text for text in phone(demo, wa_id)), 60, "the third booking's message")
    # The patient joins when the room opens; the clinician never comes.
    move_start(demo, absent, datetime.now(UTC) + timedelta(minutes=5))
    link = f"{demo.app_url}/v/{consultation(demo, absent).link_token}"
    assert no_redirect_get(link)[0] == 302
    wait_for(lambda: consultation(demo, absent).status == "waiting", 10, "the patient's join recorded")
    before = len(phone(demo, wa_id))
    # Time passes: the link has closed (30 minutes after the booked end) with nobody from the clinic in.
    move_start(demo, absent, datetime.now(UTC) - timedelta(hours=3))

    def offers() -> list[str]:
        return [t for t in phone(demo, wa_id)[before:] if all(f"{letter}) " in t for letter in "ABC")]

    # (A reminder made due by moving the start may arrive too: the offer is the message with A), B), C).)
    wait_for(offers, 120, "the rebooking offer after the clinician's absence")
    stored = consultation(demo, absent)
    assert stored.status == "clinician_absent" and stored.no_show_by is None
    assert STATUS_WORDS[ConsultationStatus.CLINICIAN_ABSENT] == "clinician did not join"
    [(appointment_status,)] = demo.rows(
        select(Appointment.status)
        .join(VideoConsultation, VideoConsultation.appointment_id == Appointment.id)
        .where(VideoConsultation.id == absent)
    )
    assert appointment_status == "cancelled"  # not the patient's no-show: it counts in no no-show rate
    # A late click changes nothing, and the offer went once.
    no_redirect_get(link)
    time.sleep(3)
    assert consultation(demo, absent).status == "clinician_absent"
    assert len(offers()) == 1, offers()


def test_the_dashboard_shows_the_statuses(demo: Demo, browser_page: Any) -> None:
    sign_in(browser_page, demo, MANAGER)
    zone = ZoneInfo(demo.settings().business_timezone)
    shown = 0
    # Each consultation on the page of its span: today's, or this week's when near midnight it fell on
    # another day (one near Sunday midnight may fall in next week: in neither).
    for span in ("today", "week"):
        browser_page.goto(f"{demo.app_url}/communication/video?span={span}")
        browser_page.wait_for_load_state()
        today = datetime.now(zone).date()
        monday = today - timedelta(days=today.weekday())
        for consultation_id in (CLINIC.first, CLINIC.second, CLINIC.rebooked):
            stored = consultation(demo, consultation_id)
            day = utc(stored.scheduled_at).astimezone(zone).date()
            if (day != today) if span == "today" else not (monday <= day < monday + timedelta(days=7)):
                continue
            row = browser_page.locator(f"tr:has(a[href$='/communication/video/{consultation_id}'])")
            assert STATUS_WORDS[ConsultationStatus(stored.status)] in row.inner_text(), row.inner_text()
            shown += 1
    assert shown >= 2, "the journey's consultations are on the today and week pages"
    # The patient's own rebooking (their letter) is recorded as theirs, by name, in words.
    browser_page.goto(f"{demo.app_url}/communication/video/{CLINIC.rebooked}")
    browser_page.wait_for_load_state()
    [(patient_name,)] = demo.rows(
        select(Customer.name)
        .join(VideoConsultation, VideoConsultation.customer_id == Customer.id)
        .where(VideoConsultation.id == CLINIC.rebooked)
    )
    assert f"booked by {patient_name} (the patient, by their reply)" in browser_page.inner_text("main")
    # The missed one they rebooked from points there and offers no more times.
    browser_page.goto(f"{demo.app_url}/communication/video/{CLINIC.second}")
    browser_page.wait_for_load_state()
    assert (
        browser_page.locator("#rebooked-as a").get_attribute("href")
        == f"/communication/video/{CLINIC.rebooked}"
    )
    assert browser_page.get_by_role("button", name="Offer new times").count() == 0
    path = screenshot(browser_page, "video-consultations")
    assert path.stat().st_size > 10_000


def test_an_sms_only_patient_booked_for_next_week_is_told_by_sms_in_german(
    demo: Demo, browser_page: Any
) -> None:
    """A German-speaking patient who said yes to SMS only, imported from the clinic's list, is booked for
    next week: staff are told the link goes by SMS and why, the patient's phone gets it by SMS (not on
    WhatsApp, though the number reaches it) in German, naming the service by the German name the manager
    gave it on the Services page, the link's page speaks German, and next week's list
    shows the consultation in chat and in the browser while this week's does not."""
    path = demo.folder / "german-patient.csv"
    path.write_text(
        "Patient No;Name;Mobile;Language;Time zone;SMS consent;Consent source\n"
        "VID-DE-1;Greta Gruber;0151 55509001;de;Europe/Berlin;ja;Anmeldebogen\n",
        encoding="utf-8",
    )
    done = demo.cli("import", "customers", str(path), "--region", "DE")
    assert done.returncode == 0, done.stderr
    [(customer_id, phone_number, locale)] = demo.rows(
        select(Customer.id, Customer.phone_e164, Customer.locale).where(Customer.external_ref == "VID-DE-1")
    )
    assert phone_number == "+4915155509001" and locale.startswith("de")
    [(staff_id, staff_name, staff_tz)] = demo.rows(
        select(StaffUser.id, StaffUser.name, StaffUser.timezone).where(StaffUser.email == CLINICIAN)
    )
    write(  # test setup, as in the first step: the clinician works all day, whatever hour CI runs at
        demo,
        delete(ClinicianHours).where(ClinicianHours.staff_id == staff_id),
        *[
            insert(ClinicianHours).values(
                staff_id=staff_id, weekday=day, starts=clock_time(0, 0), ends=clock_time(23, 55)
            )
            for day in range(7)
        ],
    )
    # The manager gives the service the German name German-speaking patients read.
    sign_in(browser_page, demo, MANAGER)
    browser_page.goto(f"{demo.app_url}/communication/video")
    browser_page.get_by_role("link", name="Services and the names patients read").click()
    browser_page.get_by_role("link", name="Video skin consultation").click()
    browser_page.get_by_label("German").fill("  Hautsprechstunde   online ")
    browser_page.get_by_role("button", name="Save names").click()
    browser_page.wait_for_load_state()
    assert "Video skin consultation is saved." in browser_page.inner_text("[role=status]")
    row = browser_page.locator("#services tr", has_text="SKIN-VIDEO").inner_text()
    assert "Hautsprechstunde online" in row, row
    screenshot(browser_page, "video-services")

    zone = ZoneInfo(staff_tz)
    today = datetime.now(zone).date()
    next_monday = today + timedelta(days=7 - today.weekday())
    at = datetime.combine(next_monday + timedelta(days=1), clock_time(18, 20), tzinfo=zone)  # next Tuesday
    sms_before = len(demo.sandbox_messages("twilio"))

    reply = demo.ask(
        f"video book #{customer_id} SKIN-VIDEO with {staff_name} at {at:%Y-%m-%d %H:%M}", as_email=MANAGER
    )
    assert reply.title == "Video consultation booked", reply
    consultation_id = int({f.label: f.value for f in reply.fields}["Consultation"])
    assert "Greta Gruber is sent the link on SMS, a channel they opted in on." in reply.text, reply.text

    def texts() -> list[dict[str, Any]]:
        return [
            m
            for m in demo.sandbox_messages("twilio")[sms_before:]
            if m["direction"] == "outbound" and m["to"] == phone_number
        ]

    [sms] = wait_for(texts, 60, "the booking's SMS on the patient's phone")
    token = consultation(demo, consultation_id).link_token
    link = f"{demo.app_url}/v/{token}"
    local = at.astimezone(ZoneInfo("Europe/Berlin"))
    assert sms["body"].startswith("Hallo Greta, Ihr Termin (Hautsprechstunde online) mit"), sms["body"]
    assert link in sms["body"], sms["body"]
    assert f"{local:%H:%M}" in sms["body"] and "gebucht" in sms["body"], sms["body"]
    on_whatsapp = [
        m for m in demo.sandbox_messages("whatsapp_cloud") if m.get("to") == phone_number.lstrip("+")
    ]
    assert not on_whatsapp, "she said yes to SMS; her number reaching WhatsApp does not make it hers"

    status, page = get(link)
    assert status == 200 and '<html lang="de"' in page, page[:500]
    opens = f"{local - timedelta(minutes=10):%H:%M}"
    assert f"Der Raum für Ihren Videotermin öffnet um {opens}" in page, page[:3000]
    assert f"Ihr Videotermin mit {staff_name}" in page and "Switchboard" not in page, page[:3000]

    listed = render_reply(demo.ask("video list next week", as_email=MANAGER))
    assert re.search(rf"{consultation_id}\b.*Greta Gruber", listed), listed
    this_week = render_reply(demo.ask("video list this week", as_email=MANAGER))
    assert not re.search(rf"\b{consultation_id}\b.*Greta Gruber", this_week), this_week

    sign_in(browser_page, demo, MANAGER)
    browser_page.goto(f"{demo.app_url}/communication/video?span=week")
    browser_page.wait_for_load_state()
    row = f"tr:has(a[href$='/communication/video/{consultation_id}'])"
    assert browser_page.locator(row).count() == 0, "this week's page does not list next week's consultation"
    browser_page.click("#next-week")
    browser_page.wait_for_load_state()
    assert f"week={next_monday.isoformat()}" in browser_page.url, browser_page.url
    assert browser_page.locator("#next-week").get_attribute("aria-current") == "page"
    shown = browser_page.locator(row).inner_text()
    assert "Greta Gruber" in shown and "booked" in shown, shown
    screenshot(browser_page, "video-next-week")
    # The consultation's page keeps the record of where the link went.
    browser_page.click(f"a[href$='/communication/video/{consultation_id}']")
    browser_page.wait_for_load_state()
    told = browser_page.locator("#patient-messages tbody tr").first.inner_text()
    assert "booked" in told and "SMS" in told, told
    assert browser_page.inner_text("#patient-link") == link
    screenshot(browser_page, "video-consultation-told")
    browser_page.goto(link)  # what the patient sees, a week early
    browser_page.wait_for_load_state()
    assert browser_page.inner_text("h1").startswith("Der Raum für Ihren Videotermin öffnet um")
    screenshot(browser_page, "video-link-german")


def test_a_patient_no_channel_reaches_is_booked_with_a_warning_and_staff_pass_the_link_on(
    demo: Demo, browser_page: Any
) -> None:
    """A patient whose only address is an email she opted out of: the booking form warns before booking that
    no message will carry her link, the booking still goes through, the sandbox's mail server gets nothing
    for her, and the consultation's page shows her link (which works) for staff to pass on."""
    path = demo.folder / "unreachable-patient.csv"
    path.write_text(
        "Patient No,Name,Email,Email consent\nVID-NO-1,Ulla Unerreichbar,ulla@example.de,no\n",
        encoding="utf-8",
    )
    done = demo.cli("import", "customers", str(path), "--region", "DE")
    assert done.returncode == 0, done.stderr
    [(staff_id, staff_tz)] = demo.rows(
        select(StaffUser.id, StaffUser.timezone).where(StaffUser.email == CLINICIAN)
    )
    write(  # test setup: the clinician works all day, whatever hour CI runs at
        demo,
        delete(ClinicianHours).where(ClinicianHours.staff_id == staff_id),
        *[
            insert(ClinicianHours).values(
                staff_id=staff_id, weekday=day, starts=clock_time(0, 0), ends=clock_time(23, 55)
            )
            for day in range(7)
        ],
    )
    day = datetime.now(ZoneInfo(staff_tz)).date() + timedelta(days=9)
    emails_before = len(demo.sandbox_emails())

    page = browser_page
    sign_in(page, demo, MANAGER)
    page.goto(f"{demo.app_url}/communication/video")
    page.get_by_role("link", name="Book a consultation").click()
    page.get_by_label("Patient (number, name, phone or email)").fill("Ulla Unerreichbar")
    page.get_by_label("Video service").select_option(label="Video skin consultation (30 min)")
    page.get_by_label("Clinician").select_option(value=str(staff_id))
    page.get_by_label("Day").fill(day.isoformat())
    page.get_by_label("Day").press("Enter")
    page.wait_for_selector("#booking-patient-found")
    warning = page.inner_text("#booking-unreachable")
    assert "No message will carry Ulla Unerreichbar's link" in warning and "opted out" in warning, warning
    screenshot(page, "video-booking-unreachable")
    page.locator("fieldset.slots input[type=radio]").first.check()
    page.get_by_role("button", name="Book the consultation").click()
    page.wait_for_selector(".notice.warn")
    notice = page.inner_text(".notice.warn")
    assert "Booked Ulla Unerreichbar" in notice and "opted out" in notice, notice
    link = page.inner_text("#patient-link")
    assert f"{demo.app_url}/v/" in link, link
    screenshot(page, "video-consultation-unreachable")

    time.sleep(3)  # the worker's pass that would have mailed her
    mailed = [e for e in demo.sandbox_emails()[emails_before:] if "ulla@example.de" in e["rcpt_tos"]]
    assert mailed == [], "she opted out of email, the only channel she has"
    status, shown = get(link.strip())
    # Imported without a language, she reads the business country's: the page speaks German.
    assert status == 200 and "Der Raum für Ihren Videotermin öffnet um" in shown, shown[:2000]
