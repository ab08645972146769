"""Services named in the patient's language, on both engines: the Services page (roles, CSRF, bad input,
the audit) and the messages a German-speaking patient's consultation makes (booking, reminder, rebooking)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, update

from api.app import create_app
from domain.templates.selection import BY_LANGUAGE
from domain.video.reminders import ReminderStep, reminder_payload, reminder_times
from storage.database import Database
from storage.models import AuditLog, BusinessEvent, Customer, MessageTemplate, Service, VideoConsultation
from storage.video_no_shows import SqlRebookingDesk
from storage.video_reminders import SqlReminderBook
from switchboard.settings import Settings
from tests.integration import test_video_pages as video_pages
from tests.integration.test_video_pages import Client, act, book, booking_query, csrf_token, sign_in, slot_at
from tests.integration.video_world import AGENT, HOSTILE, MANAGER, VideoWorld, add_catalogue_rules
from tests.notices import said_after

PAGE = "/communication/video/services"

# The video pages' fixtures: a world of clinicians, patients and consultations, and a client of the app.
moment = video_pages.moment
world = video_pages.world
client = video_pages.client


async def add_a_french_welcome(database: Database) -> None:
    """A template in French that no video message uses."""
    async with database.sessions() as session:
        session.add(MessageTemplate(name="welcome", channel="sms", locale="fr-FR", body="Bonjour"))
        await session.commit()


async def names_of(database: Database, service_id: int) -> tuple[str, dict[str, Any] | None]:
    async with database.read_sessions() as session:
        row = (
            await session.execute(select(Service.name, Service.names).where(Service.id == service_id))
        ).one()
    return row[0], row[1]


async def test_a_manager_names_a_service_in_german_and_it_is_audited(
    client: Client, world: VideoWorld, database: Database
) -> None:
    await sign_in(client, world, MANAGER)
    listing = (await client.get("/communication/video")).text
    assert f'href="{PAGE}"' in listing, "the video page links to the services"
    await add_a_french_welcome(database)
    one_language = (await client.get(f"{PAGE}/{world.service_id}")).text
    assert "The video consultations' messages are all written in the business's own language" in one_language
    assert 'name="name_fr"' not in one_language, "French is no video message's language"
    await add_catalogue_rules(database, "video.booked")  # the booking's message, in English and German
    form = (await client.get(f"{PAGE}/{world.service_id}")).text
    assert 'name="name_de"' in form and "German" in form, "a business writing its video messages in German"
    assert 'name="name_en"' not in form and 'name="name_fr"' not in form, "not its own language, nor French"
    saved = await client.post(
        f"{PAGE}/{world.service_id}",
        data={
            "name": " Video skin  consultation ",
            "name_de": "  Hautsprechstunde   per Video ",
            "_csrf_token": csrf_token(form),
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303 and said_after(saved) == (PAGE, {"saved": str(world.service_id)})
    assert await names_of(database, world.service_id) == (
        "Video skin consultation",
        {"de": "Hautsprechstunde per Video"},
    )
    shown = (await client.get(saved.headers["location"])).text
    assert "Video skin consultation is saved." in shown
    assert "<td>Hautsprechstunde per Video</td>" in shown
    async with database.read_sessions() as session:
        [entry] = (await session.scalars(select(AuditLog).where(AuditLog.action == "service.named"))).all()
    assert entry.actor == MANAGER and entry.target == f"service:{world.service_id}"
    assert entry.detail["names"] == {"de": "Hautsprechstunde per Video"}
    assert entry.detail["before"] == {"name": "Video skin consultation", "names": {}}
    # Emptying the German name takes it away: German patients read the staff name again.
    cleared = await client.post(
        f"{PAGE}/{world.service_id}",
        data={"name": "Video skin consultation", "name_de": " ", "_csrf_token": csrf_token(form)},
        follow_redirects=False,
    )
    assert cleared.status_code == 303
    assert await names_of(database, world.service_id) == ("Video skin consultation", None)
    async with (
        database.read_sessions() as session
    ):  # SQL NULL, not a JSON null a query would not see as empty
        unnamed = await session.scalar(
            select(func.count()).where(Service.id == world.service_id, Service.names.is_(None))
        )
    assert unnamed == 1
    assert "— (reads “Video skin consultation”)" in (await client.get(PAGE)).text


async def test_bad_names_are_refused_in_words_and_change_nothing(
    client: Client, world: VideoWorld, database: Database
) -> None:
    await add_catalogue_rules(database, "video.booked")
    await sign_in(client, world, MANAGER)
    form = (await client.get(f"{PAGE}/{world.service_id}")).text
    token = csrf_token(form)
    before = await names_of(database, world.service_id)
    for data, words in (
        ({"name": "   ", "name_de": "Hautsprechstunde"}, "A service needs a name."),
        ({"name": "Video", "name_de": "x" * 121}, "The German name is 121 characters long; at most 120 fit."),
        ({"name": "y" * 130}, "The name is 130 characters long; at most 120 fit."),
    ):
        refused = await client.post(f"{PAGE}/{world.service_id}", data={**data, "_csrf_token": token})
        assert refused.status_code == 422 and words in refused.text, (data, refused.text[-1500:])
        assert await names_of(database, world.service_id) == before
    # A hostile name is stored as text and shown escaped.
    hostile = await client.post(
        f"{PAGE}/{world.service_id}",
        data={"name": "Video skin consultation", "name_de": HOSTILE, "_csrf_token": token},
        follow_redirects=False,
    )
    assert hostile.status_code == 303
    page = (await client.get(PAGE)).text
    assert HOSTILE not in page and "&lt;" in page
    unknown = await client.get(f"{PAGE}/999999")
    assert unknown.status_code == 404 and "There is no service 999999." in unknown.text
    too_big = await client.post(f"{PAGE}/99999999999999999999", data={"name": "x", "_csrf_token": token})
    assert too_big.status_code in (400, 404)
    # A clinic visit is named by the clinic system: its page is not there, and a post to it changes nothing.
    async with database.sessions() as session:
        visit = Service(
            code="SKIN-VISIT",
            name="Skin check at the clinic",
            duration_minutes=20,
            kind="in_person",
            price_minor=4900,
            currency="EUR",
        )
        session.add(visit)
        await session.commit()
        visit_id = visit.id
    shown = await client.get(f"{PAGE}/{visit_id}")
    assert (
        shown.status_code == 404
        and "is a clinic visit: its messages come from the clinic system" in shown.text
    )
    posted = await client.post(f"{PAGE}/{visit_id}", data={"name": "Renamed", "_csrf_token": token})
    assert posted.status_code == 404 and (await names_of(database, visit_id))[0] == "Skin check at the clinic"


async def test_agents_cannot_name_services_and_a_form_without_csrf_is_refused(
    client: Client, world: VideoWorld, database: Database
) -> None:
    await sign_in(client, world, AGENT)
    assert f'href="{PAGE}"' not in (await client.get("/communication/video")).text
    assert (await client.get(PAGE)).status_code == 403
    await sign_in(client, world, MANAGER)
    forged = await client.post(f"{PAGE}/{world.service_id}", data={"name": "Hacked"})
    assert forged.status_code == 403
    assert (await names_of(database, world.service_id))[0] == "Video skin consultation"


async def test_a_german_patient_reads_the_german_name_in_every_message_an_english_one_the_staff_name(
    client: Client, world: VideoWorld, database: Database
) -> None:
    """The booking's event, the reminders and the rebooking facts name the service in the patient's language;
    staff pages keep the staff name."""
    await add_catalogue_rules(database, "video.booked")
    async with database.sessions() as session:
        await session.execute(
            update(Service)
            .where(Service.id == world.service_id)
            .values(names={"de": "Hautsprechstunde per Video"})
        )
        await session.execute(
            update(Customer).where(Customer.id == world.customers["clara"]).values(locale="de-DE")
        )
        await session.commit()
    await sign_in(client, world, AGENT)
    slots = (await client.get(booking_query(world, "Clara"))).text
    booked = await book(client, slots, starts_at=slot_at(slots, "12:00"))
    assert booked.status_code == 303, booked.text
    consultation_id = int(booked.headers["location"].split("/")[-1].split("?")[0])
    shown = (await client.get(booked.headers["location"])).text
    assert "Booked Clara Klein for Video skin consultation with" in shown, "staff read the staff name"
    async with database.read_sessions() as session:
        [payload] = (
            await session.scalars(
                select(BusinessEvent.payload).where(
                    BusinessEvent.event_type == "video.booked",
                    BusinessEvent.customer_id == world.customers["clara"],
                )
            )
        ).all()
        starts_at = await session.scalar(
            select(VideoConsultation.scheduled_at).where(VideoConsultation.id == consultation_id)
        )
        assert starts_at is not None
        first_lead = timedelta(minutes=max(reminder_times(None)))
        candidates = await SqlReminderBook(session).due_candidates(
            starts_at - first_lead + timedelta(minutes=1), 50
        )
        facts = {
            who: await SqlRebookingDesk(session).consultation(consultation)
            for who, consultation in (("clara", consultation_id), ("dan", world.later_this_week))
        }
    assert payload["service"] == "Hautsprechstunde per Video", payload
    said = payload[BY_LANGUAGE]  # a template in another language reads the staff name, never a mix
    assert (said["de"]["service"], said["*"]["service"]) == (
        "Hautsprechstunde per Video",
        "Video skin consultation",
    )
    by_id = {c.consultation_id: c for c in candidates}
    reminded = reminder_payload(by_id[consultation_id], ReminderStep(1440, True), "https://clinic.example")
    assert reminded["service"] == "Hautsprechstunde per Video", reminded
    assert facts["clara"] is not None and facts["clara"].service == "Hautsprechstunde per Video"
    assert facts["dan"] is not None and facts["dan"].service == "Video skin consultation"
    # Moved, then cancelled: each message names it in German too.
    await sign_in(client, world, MANAGER)
    later = (starts_at + timedelta(days=1)).astimezone(ZoneInfo("Europe/Berlin")).replace(hour=12, minute=0)
    moved = await act(client, consultation_id, "reschedule", starts_at=later.strftime("%Y-%m-%dT%H:%M"))
    assert moved.status_code == 303, moved.text
    assert (await act(client, consultation_id, "cancel")).status_code == 303
    async with database.read_sessions() as session:
        told = dict(
            (
                await session.execute(
                    select(BusinessEvent.event_type, BusinessEvent.payload).where(
                        BusinessEvent.customer_id == world.customers["clara"],
                        BusinessEvent.event_type.in_(["video.rescheduled", "video.cancelled"]),
                    )
                )
            ).all()
        )
    assert {event: payload["service"] for event, payload in told.items()} == {
        "video.rescheduled": "Hautsprechstunde per Video",
        "video.cancelled": "Hautsprechstunde per Video",
    }


TOKEN = "services-api-token"
API_AUTH = {"Authorization": f"Bearer {TOKEN}", "X-Switchboard-Actor": "practice-system"}


async def test_the_api_lists_services_and_sets_their_names_with_bad_input_refused(
    database_url: str, world: VideoWorld, database: Database
) -> None:
    settings = Settings(database_url=database_url, api_token=TOKEN)  # type: ignore[arg-type]
    async with AsyncTestClient(create_app(settings)) as api:
        assert (await api.get("/api/services", headers={"Authorization": "Bearer wrong"})).status_code == 401
        listed = await api.get("/api/services", headers=API_AUTH)
        assert listed.status_code == 200, listed.text
        [skin] = [s for s in listed.json()["services"] if s["id"] == world.service_id]
        assert skin == {
            "id": world.service_id,
            "code": "SKIN-VIDEO",
            "name": "Video skin consultation",
            "names": {},
            "kind": "video",
            "duration_minutes": 30,
        }
        path = f"/api/services/{world.service_id}"
        body = {"name": "Video skin consultation", "names": {"de-DE": " Hautsprechstunde per Video "}}
        named = await api.put(path, headers=API_AUTH, json=body)
        assert named.status_code == 200, named.text
        assert named.json()["names"] == {"de": "Hautsprechstunde per Video"}
        assert await names_of(database, world.service_id) == (
            "Video skin consultation",
            {"de": "Hautsprechstunde per Video"},
        )
        for refused, status, words in (
            ({"name": "X", "names": {"xx": "?"}}, 422, "'xx' is not a language a service can be named in"),
            ({"name": "  "}, 422, "A service needs a name."),
            ({"name": "X", "colour": "red"}, 422, "unknown field `colour`"),
            ({"names": {"de": "Haut"}}, 422, "name"),
        ):
            answer = await api.put(path, headers=API_AUTH, json=refused)
            assert answer.status_code == status and words in answer.text, (refused, answer.text)
        missing = await api.put("/api/services/999999", headers=API_AUTH, json={"name": "X"})
        assert missing.status_code == 404 and "There is no service 999999." in missing.text
        assert (await names_of(database, world.service_id))[1] == {"de": "Hautsprechstunde per Video"}
        async with database.read_sessions() as session:
            actors = (
                await session.scalars(select(AuditLog.via).where(AuditLog.action == "service.named"))
            ).all()
        assert actors == ["api"]
        assert "/api/services/{service_id}" in (await api.get("/api/schema/openapi.json")).json()["paths"]
