"""The video consultation pages over HTTP on both engines: the lists, one consultation, roles and CSRF."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update

from api.app import create_app
from api.auth import login_link
from domain.video.reminders import SKIPPED_EVENT
from storage.database import Database
from storage.models import (
    Appointment,
    AutomatedNotification,
    BusinessEvent,
    Customer,
    CustomerCommunication,
    StaffUser,
    VideoConsultation,
)
from storage.models.video import ClinicianTimeClaim
from switchboard.settings import Settings
from switchboard.wiring import build_container
from tests.integration.video_world import (
    AGENT,
    HOSTILE,
    MANAGER,
    VIEWER,
    VideoWorld,
    add_catalogue_rules,
    build_video_world,
    page_moment,
)
from tests.notices import said_after

Client = AsyncTestClient[Any]


@pytest.fixture
def moment() -> datetime:
    """The world's "now": the pages read a clock that started there and runs on in real time."""
    return page_moment(datetime.now(UTC))


@pytest.fixture
async def world(database: Database, moment: datetime) -> VideoWorld:
    return await build_video_world(database, now=moment)


@pytest.fixture
async def client(database_url: str, world: VideoWorld, moment: datetime) -> AsyncIterator[Client]:
    settings = Settings(database_url=database_url, sandbox=True, worker_in_process=False)  # type: ignore[arg-type]
    container = build_container(settings)
    shift = moment - datetime.now(UTC)
    container.clock = lambda: datetime.now(UTC) + shift
    async with AsyncTestClient(create_app(settings, container)) as test_client:
        test_client.app.state.test_settings = settings
        yield test_client
    await container.close()


async def sign_in(client: Client, world: VideoWorld, email: str) -> None:
    settings: Settings = client.app.state.settings
    link = login_link("", settings.session_secret, world.staff[email], 15, datetime.now(UTC))
    response = await client.get(link, follow_redirects=False)
    assert response.status_code == 303, response.text


def csrf_token(html: str) -> str:
    found = re.search(r'name="_csrf_token" value="([^"]+)"', html)
    assert found, "the page has a form with a CSRF token"
    return found.group(1)


async def status_of(database: Database, consultation_id: int) -> str:
    async with database.read_sessions() as session:
        return str(
            await session.scalar(
                select(VideoConsultation.status).where(VideoConsultation.id == consultation_id)
            )
        )


async def test_pages_need_a_session(client: Client, world: VideoWorld) -> None:
    for path in ("/communication/video", f"/communication/video/{world.today_confirmed}"):
        response = await client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=%2Fcommunication%2Fvideo"), path


async def test_today_lists_each_clinicians_consultations_with_status_reminders_and_joins(
    client: Client, world: VideoWorld, database: Database
) -> None:
    async with database.sessions() as session:  # a reminder skipped: its time had passed when it was booked
        session.add(
            BusinessEvent(
                event_type=SKIPPED_EVENT,
                idempotency_key=f"video-reminder:{world.today_no_show}:1:120",
                customer_id=world.customers["hostile"],
                payload={"consultation_id": world.today_no_show, "skipped": "booked too late for it"},
                occurred_at=datetime.now(UTC) - timedelta(days=1),
                processed_at=datetime.now(UTC) - timedelta(days=1),
            )
        )
        await session.commit()
    await sign_in(client, world, VIEWER)
    response = await client.get("/communication/video")
    assert response.status_code == 200
    html = response.text
    assert "times in Europe/Berlin" in html and "Time (Europe/Berlin)" in html
    anna, ben = html.index('clinician-1">Dr. Anna Vogel'), html.index('clinician-2">Dr. Ben Roth')
    assert anna < ben, "clinicians in name order, each with their own table"
    assert "Clara Klein" in html[anna:ben] and "&lt;script&gt;" in html[ben:]
    assert HOSTILE not in html, "a patient's name is escaped"
    assert ">confirmed<" in html and ">no-show<" in html
    assert "10:00" in html and "11:00" in html
    # Reminders: the 24-hour one went out by WhatsApp; the 2-hour one was held back by quiet hours.
    # Each is named by its time, so two on one channel are told apart.
    assert '1 day before (WhatsApp): <span class="status status-delivered">delivered</span>' in html
    assert re.search(
        r'2 hours before \(SMS\): <span class="status status-suppressed" title="[^"]*Quiet hours[^"]*">not sent</span>',
        html,
    )
    # A reminder never sent had no channel: named by its time, its reason on hovering.
    assert re.search(
        r'2 hours before: <span class="status status-skipped" title="Not sent: [^"]+">skipped</span>', html
    )
    assert "—: " not in html
    assert "patient 09:55" in html
    assert "Dan Doe" not in html, "another day of the week is not today"
    assert f'href="/communication/video/{world.next_week}"' not in html
    assert 'href="/communication/video"' in html, "the page is in the communication navigation"


async def test_the_no_show_rate_by_clinician_service_clinic_and_reminder_channel(
    client: Client, world: VideoWorld
) -> None:
    await sign_in(client, world, VIEWER)
    html = (await client.get("/communication/video")).text
    section = html[html.index('id="no-shows-title"') :]
    by_clinician = section[section.index('id="no-shows-staff"') : section.index('id="no-shows-service"')]
    # Each rate with the appointments it is out of (done or missed), so 100 % of one reads as one.
    assert '<td>Dr. Ben Roth</td><td class="num">100.0%</td><td class="num">1</td>' in by_clinician
    assert '<td>Dr. Anna Vogel</td><td class="num">0.0%</td><td class="num">1</td>' in by_clinician
    by_channel = section[section.index('id="no-shows-reminder_channel"') :]
    assert '<td>Telegram</td><td class="num">100.0%</td>' in by_channel
    assert '<td>WhatsApp</td><td class="num">0.0%</td>' in by_channel
    # Services and clinics by their names, as clinicians are (not SKIN-VIDEO, BER).
    assert '<td>Video skin consultation</td><td class="num">50.0%</td><td class="num">2</td>' in section
    assert '<td>Berlin Mitte</td><td class="num">50.0%</td><td class="num">2</td>' in section


async def test_this_week_and_the_clinician_filter(client: Client, world: VideoWorld) -> None:
    await sign_in(client, world, VIEWER)
    week = (await client.get("/communication/video?span=week")).text
    for consultation in (world.today_confirmed, world.today_no_show, world.later_this_week):
        assert f'href="/communication/video/{consultation}"' in week
    assert f'href="/communication/video/{world.next_week}"' not in week
    assert "Dan Doe" in week and "This week" in week
    only_ben = (await client.get(f"/communication/video?span=week&staff={world.ben}")).text
    assert "&lt;script&gt;" in only_ben and "Clara Klein" not in only_ben
    nonsense = await client.get("/communication/video?span=decade&staff=abc")
    assert nonsense.status_code == 200 and "Clara Klein" in nonsense.text, "bad filters fall back to today"


async def test_next_week_and_any_other_week_are_a_link_away(
    client: Client, world: VideoWorld, moment: datetime
) -> None:
    """A consultation booked a week ahead is on "Next week"; the pager walks week by week, and a week that
    is not a day is said so and this week shown."""
    await sign_in(client, world, VIEWER)
    week = (await client.get("/communication/video?span=week")).text
    found = re.search(r'<a href="([^"]+)" id="next-week"', week)
    assert found, "the tabs link to next week"
    next_week = (await client.get(found.group(1).replace("&amp;", "&"))).text
    assert f'href="/communication/video/{world.next_week}"' in next_week
    assert f'href="/communication/video/{world.today_confirmed}"' not in next_week
    assert "Next week, " in next_week and 'aria-current="page" id="next-week"' in next_week
    back = re.search(r'href="([^"]+)" id="week-before"', next_week)
    assert back and "This week" in next_week[back.end() : back.end() + 40]
    again = (await client.get(back.group(1).replace("&amp;", "&"))).text
    assert f'href="/communication/video/{world.later_this_week}"' in again and "This week, " in again
    today = moment.astimezone(ZoneInfo("Europe/Berlin")).date()
    far = today + timedelta(days=70)
    later = (await client.get(f"/communication/video?span=week&week={far.isoformat()}")).text
    assert (
        "No video consultations in the week of " in later
        and "The week of " in later
        and "Week, " not in later
    )
    next_year = today + timedelta(days=400)
    distant = (await client.get(f"/communication/video?span=week&week={next_year.isoformat()}")).text
    heading = distant.split('id="video-span">', 1)[1].split("</p>", 1)[0]
    assert str(next_year.year) in heading, "a week of another year says its year"
    bad = await client.get("/communication/video?span=week&week=%3Cscript%3E")
    assert bad.status_code == 200 and "is not a day (write it as YYYY-MM-DD" in bad.text
    assert "“&lt;script&gt;”" in bad.text
    for far_off in ("0001-01-01", "9999-12-31"):
        odd = await client.get(f"/communication/video?span=week&week={far_off}")
        assert odd.status_code == 200 and "more than five years from today" in odd.text, far_off
    assert f'href="/communication/video/{world.later_this_week}"' in bad.text


async def test_one_consultation_shows_its_reminder_log_joins_and_the_patients_time(
    client: Client, world: VideoWorld
) -> None:
    await sign_in(client, world, VIEWER)
    html = (await client.get(f"/communication/video/{world.today_confirmed}")).text
    assert "Video skin consultation with Clara Klein" in html
    assert "1 day before" in html and "2 hours before" in html
    assert "Quiet hours until 08:00 Europe/Berlin." in html
    assert "Patient joined" in html
    assert "Agents and managers can" in html and 'action="/communication/video/' not in html
    dan = (await client.get(f"/communication/video/{world.later_this_week}")).text
    assert "(America/New_York)" in dan, "the patient's own time is shown with their zone"
    assert "No reminder has gone out yet" in dan, "a consultation still to come: its reminders are to come"
    other = (await client.get(f"/communication/video/{world.today_no_show}")).text
    assert "2 hours before" not in other, "each consultation shows only its own reminders"
    assert "(marked automatically: the patient did not join)" in other
    missing = await client.get("/communication/video/999999")
    assert missing.status_code == 404 and "There is no video consultation 999999." in missing.text


async def test_a_viewer_cannot_act_and_a_form_without_csrf_is_refused(
    client: Client, world: VideoWorld, database: Database
) -> None:
    await sign_in(client, world, VIEWER)
    page = (await client.get("/communication/video")).text
    token = csrf_token(page)  # the sign-out form carries one
    refused = await client.post(
        f"/communication/video/{world.today_confirmed}/no-show",
        data={"_csrf_token": token},
        follow_redirects=False,
    )
    assert refused.status_code == 403
    client.cookies.clear()
    await sign_in(client, world, MANAGER)
    no_token = await client.post(
        f"/communication/video/{world.today_confirmed}/no-show", follow_redirects=False
    )
    assert no_token.status_code == 403
    assert await status_of(database, world.today_confirmed) == "confirmed"
    detail = (await client.get(f"/communication/video/{world.today_confirmed}")).text
    assert f'action="/communication/video/{world.today_confirmed}/no-show"' in detail


async def act(client: Client, consultation_id: int, action: str, **data: str) -> Any:
    """Posts like a browser: the form's CSRF token from the consultation's page."""
    token = csrf_token((await client.get(f"/communication/video/{consultation_id}")).text)
    return await client.post(
        f"/communication/video/{consultation_id}/{action}",
        data={**data, "_csrf_token": token},
        follow_redirects=False,
    )


async def test_staff_mark_no_shows_and_attended_and_offer_new_times(
    client: Client, world: VideoWorld, database: Database
) -> None:
    await sign_in(client, world, AGENT)
    missed = await act(client, world.past_done, "no-show")
    assert missed.status_code == 303, missed.text
    assert said_after(missed) == (f"/communication/video/{world.past_done}", {"done": "no-show-offered"})
    assert await status_of(database, world.past_done) == "no_show"
    page = (await client.get(missed.headers["location"])).text
    assert "Marked as a no-show; the patient is offered new times" in page
    assert "by Alex Agent" in page and "agent@clinic.example" not in page, "the change is audited, by name"
    again = await act(client, world.past_done, "no-show")
    assert again.status_code == 409 and "is already marked" in again.text
    came = await act(client, world.past_missed, "attended")
    assert came.status_code == 303 and await status_of(database, world.past_missed) == "completed"
    future = (await client.get(f"/communication/video/{world.future_booked}")).text
    assert "Cancel consultation" in future and "Mark no-show" not in future
    early = await act(client, world.future_booked, "no-show")  # a page opened before it was taken away
    assert early.status_code == 409 and f"Consultation {world.future_booked} has not begun yet" in early.text
    assert await status_of(database, world.future_booked) == "scheduled"
    offered = await act(client, world.today_no_show, "offer")
    assert offered.status_code == 303
    assert said_after(offered)[1] == {"done": "offered"}
    assert "New times offered" in (await client.get(f"/communication/video/{world.today_no_show}")).text
    unknown = await act(client, world.past_done, "delete")
    assert unknown.status_code == 404


async def test_managers_reschedule_and_cancel_and_bad_times_are_refused_in_words(
    client: Client, world: VideoWorld, database: Database
) -> None:
    await sign_in(client, world, MANAGER)
    for typed, words in (
        ("next tuesday", "Give the new time as a date and a time"),
        ("2020-01-06T10:00", "has already passed"),
        ("2031-03-30T02:30", "does not exist in Europe/Berlin"),
    ):
        refused = await act(client, world.future_booked, "reschedule", starts_at=typed)
        assert refused.status_code == 409, typed
        assert words in refused.text, typed
        # The time tried stays in its box (escaped), to be changed rather than typed again.
        assert re.search(rf'name="starts_at"[^>]*value="{re.escape(typed)}"', refused.text), typed
    async with database.read_sessions() as session:
        before = await session.scalar(
            select(VideoConsultation.scheduled_at).where(VideoConsultation.id == world.future_booked)
        )
    assert before is not None
    target = (before + timedelta(days=1)).astimezone(ZoneInfo("Europe/Berlin")).replace(hour=12, minute=0)
    moved = await act(client, world.future_booked, "reschedule", starts_at=target.strftime("%Y-%m-%dT%H:%M"))
    assert moved.status_code == 303, moved.text
    async with database.read_sessions() as session:
        row = await session.get(VideoConsultation, world.future_booked)
    assert row is not None and row.scheduled_at == target.astimezone(UTC) and row.version == 2
    cancelled = await act(client, world.future_booked, "cancel")
    assert cancelled.status_code == 303
    assert await status_of(database, world.future_booked) == "cancelled"
    page = (await client.get(cancelled.headers["location"])).text
    assert "The consultation was cancelled" in page
    assert "moved by Mia Manager" in page and "cancelled by Mia Manager" in page
    twice = await act(client, world.future_booked, "cancel")
    assert twice.status_code == 409 and "was cancelled" in twice.text


def booking_query(world: VideoWorld, patient: str, days_ahead: int = 3) -> str:
    day = (datetime.now(UTC).astimezone(ZoneInfo("Europe/Berlin")) + timedelta(days=days_ahead)).date()
    return (
        f"/communication/video/new?patient={patient}&service_id={world.service_id}"
        f"&staff_id={world.anna}&day={day.isoformat()}"
    )


def slot_at(html: str, clock: str) -> str:
    found = re.search(rf'name="starts_at" value="([^"]+)" required> {clock}</label>', html)
    assert found, f"the free times offer {clock}"
    return found.group(1)


async def count_consultations(database: Database) -> int:
    async with database.read_sessions() as session:
        return len(list(await session.scalars(select(VideoConsultation.id))))


async def book(client: Client, slots_page: str, **data: str) -> Any:
    """Posts the free-times form like a browser: its hidden fields, its CSRF token and the chosen time."""
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', slots_page))
    return await client.post(
        "/communication/video/new",
        data={**fields, **data, "_csrf_token": csrf_token(slots_page)},
        follow_redirects=False,
    )


async def test_an_agent_books_a_consultation_through_the_form(
    client: Client, world: VideoWorld, database: Database
) -> None:
    await add_catalogue_rules(database, "video.booked")
    await sign_in(client, world, AGENT)
    listing = (await client.get("/communication/video")).text
    assert 'href="/communication/video/new"' in listing and "Book a consultation" in listing
    empty = (await client.get("/communication/video/new")).text
    for label in (
        'for="booking-patient"',
        'for="booking-service"',
        'for="booking-staff"',
        'for="booking-day"',
    ):
        assert label in empty, label
    assert "Video skin consultation (30 min)" in empty and "Dr. Anna Vogel" in empty
    assert 'name="starts_at"' not in empty, "no times before a patient is found"
    nobody = (await client.get(booking_query(world, ""))).text
    assert "Say who the patient is" in nobody, "a form sent without its patient says so"
    gone = (await client.get(booking_query(world, "Clara", days_ahead=-2))).text
    assert "has passed in Dr. Anna Vogel&#39;s time; pick today or a later day" in gone
    assert 'name="starts_at"' not in gone and "No free start times" not in gone
    slots = (await client.get(booking_query(world, "Clara"))).text
    assert "Patient: <strong>Clara Klein (#" in slots
    assert "Free start times on" in slots and "Dr. Anna Vogel&#39;s time (" in slots
    chosen = slot_at(slots, "12:00")
    assert slot_at(slots, "08:00") and "> 17:35</label>" not in slots, "a 30-minute service ends by 18:00"
    before = await count_consultations(database)
    booked = await book(client, slots, starts_at=chosen)
    assert booked.status_code == 303, booked.text
    location = booked.headers["location"]
    assert re.fullmatch(r"/communication/video/\d+", location), location
    assert said_after(booked) == (location, {"done": "booked", "told": "whatsapp", "why": "default"})
    consultation_id = int(location.split("/")[-1])
    assert await count_consultations(database) == before + 1
    async with database.read_sessions() as session:
        row = await session.get(VideoConsultation, consultation_id)
        assert row is not None and row.customer_id == world.customers["clara"] and row.staff_id == world.anna
        assert row.scheduled_at == datetime.fromisoformat(chosen) and row.status == "scheduled"
        appointment = await session.get(Appointment, row.appointment_id)
        assert (
            appointment is not None
            and appointment.kind == "video"
            and appointment.service_id == world.service_id
        )
        claims = list(
            await session.scalars(
                select(ClinicianTimeClaim.starts_at).where(
                    ClinicianTimeClaim.appointment_id == row.appointment_id
                )
            )
        )
        assert len(claims) == 6, "thirty minutes claimed in five-minute steps"
        events = list(
            await session.scalars(
                select(BusinessEvent).where(
                    BusinessEvent.event_type == "video.booked",
                    BusinessEvent.customer_id == world.customers["clara"],
                )
            )
        )
        assert len(events) == 1 and events[0].payload["consultation_id"] == consultation_id
    shown = (await client.get(location)).text
    assert "Booked Clara Klein for Video skin consultation with Dr. Anna Vogel on" in shown
    # Clara has a phone number and said nothing: the booking's rule reaches her on WhatsApp first.
    assert "The patient is sent the link on WhatsApp, the first channel they can be reached on." in shown
    assert "booked by Alex Agent" in shown
    told = (
        await client.get(f"/communication/video/{consultation_id}?done=booked&told=sms&why=opted_in")
    ).text
    assert "The patient is sent the link on SMS, a channel they opted in on." in told
    nowhere = (await client.get(f"/communication/video/{consultation_id}?done=booked&told=none")).text
    assert "No message will carry the link to the patient: no channel reaches them" in nowhere
    assert "is sent the link" not in nowhere  # no promise the page does not keep
    forged = (await client.get(f"/communication/video/{consultation_id}?done=booked&told=%3Cb%3E&why=x")).text
    assert "The patient is sent the link." in forged and "<b>" not in forged
    again = (await client.get(booking_query(world, "Clara"))).text
    assert f'value="{chosen}"' not in again, "the booked time is no longer offered"
    # The lasting record of where the link went: the booking's message, once a rule has made it.
    assert 'id="patient-messages"' in shown and "Waiting for the notification rules." in shown
    assert 'id="patient-link"' in shown, "staff see the patient's link to pass on"


async def test_a_patient_no_message_reaches_is_warned_of_before_and_after_booking(
    client: Client, world: VideoWorld, database: Database
) -> None:
    """A patient with no address (or opted out everywhere) can be booked, but staff are told before they
    book, warned (not congratulated) after, and shown the link to give them themselves."""
    await sign_in(client, world, AGENT)
    # With the business's rule for bookings switched off, nothing would carry any patient's link: said so.
    async with database.sessions() as session:
        await session.execute(
            update(AutomatedNotification)
            .where(AutomatedNotification.event_type == "video.booked")
            .values(enabled=False)
        )
        await session.commit()
    no_rule = (await client.get(booking_query(world, "Clara"))).text
    assert "No message will carry Clara Klein's link: no notification rule sends it" in no_rule
    await add_catalogue_rules(database, "video.booked")
    async with database.sessions() as session:
        una = Customer(name="Una Unreachable", timezone="Europe/Berlin")
        session.add(una)
        await session.commit()
    await sign_in(client, world, AGENT)
    slots = (await client.get(booking_query(world, "Una%20Unreachable"))).text
    assert 'id="booking-unreachable"' in slots
    assert "No message will carry Una Unreachable's link: no channel reaches them" in slots
    booked = await book(client, slots, starts_at=slot_at(slots, "09:00"))
    assert booked.status_code == 303 and said_after(booked)[1]["told"] == "none", booked.headers
    shown = (await client.get(booked.headers["location"])).text
    assert 'class="notice warn"' in shown and 'class="notice ok"' not in shown
    assert "Give them the link shown below yourself." in shown
    async with database.read_sessions() as session:
        token = await session.scalar(
            select(VideoConsultation.link_token).where(VideoConsultation.customer_id == una.id)
        )
    assert token and f"/v/{token}</code>" in shown
    # Clara, who has a phone, is told beforehand where her link goes.
    clara = (await client.get(booking_query(world, "Clara"))).text
    assert "; the link goes on WhatsApp, the first channel they can be reached on" in clara
    assert 'id="booking-unreachable"' not in clara


async def test_the_booking_search_reads_a_local_phone_number_and_says_when_more_match(
    client: Client, world: VideoWorld, database: Database
) -> None:
    await sign_in(client, world, AGENT)
    local = (await client.get(booking_query(world, "0151%2000000011"))).text
    assert "Patient: <strong>Clara Klein (#" in local, (
        "a number as people say it, read in the business's country"
    )
    async with database.sessions() as session:
        session.add_all(Customer(name=f"Mia Many {i}", timezone="Europe/Berlin") for i in range(12))
        await session.commit()
    many = (await client.get(booking_query(world, "Mia%20Many"))).text
    assert "More than 8 customers match; pick one, or type more of the name" in many
    assert many.count("Mia Many ") == 8, "eight to choose from"


async def test_booking_refusals_are_shown_in_words_and_nothing_is_saved(
    client: Client, world: VideoWorld, database: Database
) -> None:
    await sign_in(client, world, MANAGER)
    several = (await client.get(booking_query(world, "a"))).text
    assert "3 customers match; pick one" in several and 'name="starts_at"' not in several
    assert HOSTILE not in several, "a patient's name is escaped in the choice"
    nobody = (await client.get(booking_query(world, "Nobody%20Here"))).text
    assert "No customer matches “Nobody Here”" in nobody and 'role="alert"' in nobody
    slots = (await client.get(booking_query(world, "Clara", days_ahead=2))).text
    before = await count_consultations(database)
    async with database.read_sessions() as session:
        taken_at = await session.scalar(
            select(VideoConsultation.scheduled_at).where(VideoConsultation.id == world.future_booked)
        )
    assert taken_at is not None
    assert f'value="{taken_at.isoformat()}"' not in slots
    taken = await book(client, slots, starts_at=taken_at.isoformat())
    assert taken.status_code == 409 and "Dr. Anna Vogel is already booked" in taken.text
    assert 'id="booking-error"' in taken.text and 'name="starts_at"' in taken.text, "the form stays"
    past = await book(client, slots, starts_at="2020-01-06T10:00:00+00:00")
    assert past.status_code == 409 and "has already passed" in past.text
    night = taken_at.replace(hour=2, minute=0)
    outside = await book(client, slots, starts_at=night.isoformat())
    assert outside.status_code == 409 and "outside Dr. Anna Vogel&#39;s working hours" in outside.text
    unknown = await book(client, slots, starts_at=taken_at.isoformat(), customer_id="999999", patient="")
    assert unknown.status_code == 409 and "There is no customer #999999." in unknown.text
    garbled = await book(client, slots, starts_at="soon")
    assert garbled.status_code == 409 and "Pick one of the free start times." in garbled.text
    assert await count_consultations(database) == before


async def test_a_viewer_cannot_book_and_a_booking_without_csrf_is_refused(
    client: Client, world: VideoWorld, database: Database
) -> None:
    await sign_in(client, world, VIEWER)
    listing = (await client.get("/communication/video")).text
    assert 'href="/communication/video/new"' not in listing
    form = (await client.get(booking_query(world, "Clara"))).text
    assert "Agents and managers can book" in form and 'name="starts_at"' not in form
    assert 'id="booking-search"' not in form
    later = (datetime.now(UTC) + timedelta(days=3)).replace(hour=11, minute=0, second=0, microsecond=0)
    fields = {
        "customer_id": str(world.customers["clara"]),
        "service_id": str(world.service_id),
        "staff_id": str(world.anna),
        "starts_at": later.isoformat(),
    }
    before = await count_consultations(database)
    refused = await client.post(
        "/communication/video/new", data={**fields, "_csrf_token": csrf_token(form)}, follow_redirects=False
    )
    assert refused.status_code == 403
    client.cookies.clear()
    await sign_in(client, world, AGENT)
    no_token = await client.post("/communication/video/new", data=fields, follow_redirects=False)
    assert no_token.status_code == 403
    assert await count_consultations(database) == before


async def test_a_consultation_the_clinician_never_joined_says_so_and_offers_only_new_times(
    client: Client, world: VideoWorld, database: Database
) -> None:
    async with database.sessions() as session:
        consultation = await session.get(VideoConsultation, world.past_done)
        assert consultation is not None
        consultation.status = "clinician_absent"
        await session.commit()
    await sign_in(client, world, AGENT)
    html = (await client.get(f"/communication/video/{world.past_done}")).text
    assert "clinician did not join" in html
    assert "Offer new times" in html and "Mark no-show" not in html
    listed = await client.get("/communication/video")
    assert listed.status_code == 200


async def test_the_list_reads_each_reminder_log_as_the_detail_page_does(
    database: Database, world: VideoWorld
) -> None:
    """The list reads every listed patient's logs at once (only messages sent since their reminders were
    recorded); the detail page reads one consultation's log: both give the same lines."""
    from storage.queries.video import consultations_between, reminder_log, reminder_logs

    now = datetime.now(UTC)
    lines = await consultations_between(database, now - timedelta(days=14), now + timedelta(days=14))
    together = await reminder_logs(database, lines)
    assert sum(len(log) for log in together.values()) >= 2, "the world has reminders with messages"
    for line in lines:
        assert together[line.id] == await reminder_log(database, line.id), line.id


async def test_the_clinic_systems_own_reminder_shows_beside_the_video_reminders(
    client: Client, world: VideoWorld, database: Database
) -> None:
    """A reminder the event feed sent for the appointment ("appointment.reminder:appointment:{id}") is on the
    list and the consultation's page, as the no-show rate's "by reminder channel" counts it; never "none"."""
    async with database.sessions() as session:
        consultation = await session.get(VideoConsultation, world.next_week)
        assert consultation is not None and consultation.appointment_id is not None
        message = CustomerCommunication(
            customer_id=consultation.customer_id,
            channel="email",
            provider="smtp",
            direction="outbound",
            source="notification",
            idempotency_key=f"appointment.reminder:appointment:{consultation.appointment_id}",
            to_address="clara@example.com",
            body="Reminder: your appointment",
            status="delivered",
            sent_at=consultation.scheduled_at - timedelta(days=1),
            created_at=consultation.scheduled_at - timedelta(days=1),
        )
        session.add(message)
        await session.commit()
        message_id = message.id
    await sign_in(client, world, VIEWER)
    week = (
        await client.get(
            f"/communication/video?span=week&week={consultation.scheduled_at.date().isoformat()}"
        )
    ).text
    row = week.split(f'data-consultation-id="{world.next_week}"', 1)[1].split("</tr>", 1)[0]
    assert "reminder (email): " in row and "delivered" in row and "none yet" not in row
    detail = (await client.get(f"/communication/video/{world.next_week}")).text
    assert (
        f'href="/communication/messages/{message_id}"' in detail
        and "the clinic system&#39;s reminder" in detail
    )

    # The same reminder as the clinic system really sends it: an "appointment.reminder" event posted under
    # the appointment's key, which a notification rule turned into a message ("{rule}:{event}").
    async with database.sessions() as session:
        later = await session.get(VideoConsultation, world.later_this_week)
        assert later is not None and later.appointment_id is not None
        event = BusinessEvent(
            event_type="appointment.reminder",
            idempotency_key=f"appointment.reminder:appointment:{later.appointment_id}",
            customer_id=later.customer_id,
            payload={},
            occurred_at=later.scheduled_at - timedelta(days=1),
        )
        session.add(event)
        await session.flush()
        ruled = CustomerCommunication(
            customer_id=later.customer_id, channel="sms", provider="twilio", direction="outbound",
            source="notification", source_ref=f"77:{event.id}", to_address="+15550100", body="Reminder",
            status="sent", sent_at=event.occurred_at, created_at=event.occurred_at,
        )  # fmt: skip
        session.add(ruled)
        await session.commit()
        ruled_id = ruled.id
    shown = (await client.get(f"/communication/video/{world.later_this_week}")).text
    assert f'href="/communication/messages/{ruled_id}"' in shown and shown.count("clinic system&#39;s") == 1


async def test_a_consultation_with_a_clinician_elsewhere_says_the_time_in_theirs_too(
    client: Client, world: VideoWorld, database: Database
) -> None:
    """Staff book in the clinician's own time ("10:00, Emma's time"); the page said only the business's."""
    async with database.sessions() as session, session.begin():
        await session.execute(
            update(StaffUser).where(StaffUser.id == world.anna).values(timezone="America/New_York")
        )
    await sign_in(client, world, AGENT)
    page = (await client.get(f"/communication/video/{world.future_booked}")).text
    async with database.read_sessions() as session:
        at = await session.scalar(
            select(VideoConsultation.scheduled_at).where(VideoConsultation.id == world.future_booked)
        )
    assert at is not None
    theirs = at.astimezone(ZoneInfo("America/New_York"))
    assert f"{theirs:%H:%M} in Dr. Anna Vogel&#39;s time, America/New_York" in page
