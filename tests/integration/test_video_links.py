"""Consultation links on SQLite and PostgreSQL: each join recorded and the status it brings, a no-show taken back
when the patient turns up, the waiting-room alert told exactly once with several workers, and /v/TOKEN over
HTTP (a redirect into the room inside the window, clear pages outside it, one 404 for unknown and forged links)."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from api.app import create_app
from domain.video.joins import PATIENT_JOINED, follow_link, record_join
from domain.video.links import LinkOutcome
from domain.video.model import ConsultationStatus, Participant
from domain.video.waiting_room import ALERT_REPEAT, WaitingPatient, alert_waiting_patients
from providers.video.jitsi import JitsiRooms
from storage.database import Database
from storage.models import (
    Appointment,
    AuditLog,
    Customer,
    Location,
    Service,
    StaffUser,
    VideoConsultation,
    VideoJoin,
)
from storage.units import UnitsOfWork
from switchboard.settings import Settings

SECRET = "integration-jitsi-secret-0123456789abcdef"
ROOMS = JitsiRooms("https://meet.example.org", "switchboard", SECRET, "meet.example.org")
#: A Tuesday, 10:30 in Berlin.
START = datetime(2026, 12, 8, 9, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Clinic:
    customer_id: int
    clinician_id: int
    service_id: int
    location_id: int


@pytest.fixture
async def clinic(database: Database) -> Clinic:
    return await open_clinic(database)


async def open_clinic(database: Database) -> Clinic:
    """A clinic, its patient Anna and her clinician Clara (Slack and Telegram linked), a video service."""
    async with database.sessions() as session:
        location = Location(code="BER", name="Berlin Mitte", country="DE", timezone="Europe/Berlin")
        session.add(location)
        await session.flush()
        customer = Customer(name="Anna Meyer", timezone="Europe/Berlin", phone_e164="+4915112345678")
        clinician = StaffUser(
            email="clara@clinic.example",
            name="Dr Clara Weiss",
            role="agent",
            timezone="Europe/Berlin",
            slack_user_id="U0ADMIN",
            telegram_user_id=7001,
        )
        service = Service(
            code="VID-SKIN",
            name="Skin check",
            kind="video",
            duration_minutes=30,
            price_minor=5000,
            currency="EUR",
        )
        session.add_all([customer, clinician, service])
        await session.commit()
        return Clinic(customer.id, clinician.id, service.id, location.id)


@dataclass(frozen=True)
class Booked:
    consultation_id: int
    appointment_id: int
    patient_token: str
    clinician_token: str


async def book(
    database: Database,
    clinic: Clinic,
    starts_at: datetime = START,
    status: ConsultationStatus = ConsultationStatus.SCHEDULED,
    **extra: Any,
) -> Booked:
    patient_token, clinician_token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    async with database.sessions() as session:
        appointment = Appointment(
            customer_id=clinic.customer_id,
            service_id=clinic.service_id,
            staff_id=clinic.clinician_id,
            location_id=clinic.location_id,
            kind="video",
            status="no_show" if status is ConsultationStatus.NO_SHOW else "booked",
            scheduled_at=starts_at,
            duration_minutes=30,
            price_minor=5000,
            currency="EUR",
        )
        session.add(appointment)
        await session.flush()
        room = f"nw-{secrets.token_hex(4)}"
        consultation = VideoConsultation(
            appointment_id=appointment.id,
            customer_id=clinic.customer_id,
            staff_id=clinic.clinician_id,
            status=status.value,
            room_url=ROOMS.room_url(room),
            room_name=room,
            scheduled_at=starts_at,
            duration_minutes=30,
            link_token=patient_token,
            clinician_token=clinician_token,
            **extra,
        )
        session.add(consultation)
        await session.commit()
        return Booked(consultation.id, appointment.id, patient_token, clinician_token)


async def consultation(database: Database, consultation_id: int) -> VideoConsultation:
    async with database.sessions() as session:
        found = await session.get(VideoConsultation, consultation_id)
        assert found is not None
        return found


async def joins(database: Database, consultation_id: int) -> list[tuple[str, datetime | None]]:
    async with database.sessions() as session:
        rows = await session.execute(
            select(VideoJoin.who, VideoJoin.alerted_at)
            .where(VideoJoin.consultation_id == consultation_id)
            .order_by(VideoJoin.id)
        )
        return [(who, alerted) for who, alerted in rows]


def units(database: Database) -> UnitsOfWork:
    return UnitsOfWork(database, "Europe/Berlin")


async def test_the_patient_waits_then_both_are_in_and_each_join_is_logged(
    database: Database, clinic: Clinic
) -> None:
    booked = await book(database, clinic)
    arrived = START - timedelta(minutes=4)
    patient = await record_join(units(database).video_links(), booked.patient_token, arrived, ROOMS)
    assert patient.decision.outcome is LinkOutcome.ENTER and patient.who is Participant.PATIENT
    assert patient.patient_waiting
    assert patient.room_url is not None
    claims = jwt.decode(
        patient.room_url.split("?jwt=")[1],
        SECRET,
        algorithms=["HS256"],
        audience="switchboard",
        options={"verify_nbf": False, "verify_exp": False},
    )
    assert claims["context"]["user"] == {"name": "Anna Meyer", "moderator": False}
    stored = await consultation(database, booked.consultation_id)
    assert (stored.status, stored.patient_joined_at, stored.started_at) == ("waiting", arrived, None)

    came = START + timedelta(minutes=1)
    clinician = await record_join(units(database).video_links(), booked.clinician_token, came, ROOMS)
    assert clinician.who is Participant.CLINICIAN and not clinician.patient_waiting
    assert clinician.room_url is not None and clinician.room_url.startswith(
        f"https://meet.example.org/{stored.room_name}?jwt="
    )
    stored = await consultation(database, booked.consultation_id)
    assert (stored.status, stored.clinician_joined_at, stored.started_at) == ("in_progress", came, came)

    await record_join(units(database).video_links(), booked.patient_token, came + timedelta(minutes=2), ROOMS)
    stored = await consultation(database, booked.consultation_id)
    assert (stored.status, stored.patient_joined_at, stored.started_at) == ("in_progress", arrived, came)
    assert [who for who, _ in await joins(database, booked.consultation_id)] == [
        "patient",
        "clinician",
        "patient",
    ]


async def test_following_a_link_reads_only_and_the_join_is_recorded_apart(
    database: Database, clinic: Clinic
) -> None:
    """The web answers with `follow_link` and records with `record_join` once the answer has gone."""
    booked = await book(database, clinic)
    arrived = START - timedelta(minutes=4)
    followed = await follow_link(
        units(database).video_links(read_only=True), booked.patient_token, arrived, ROOMS
    )
    assert (followed.decision.outcome, followed.who) == (LinkOutcome.ENTER, Participant.PATIENT)
    assert followed.room_url is not None and followed.room_url.startswith("https://meet.example.org/")
    assert await joins(database, booked.consultation_id) == []
    assert (await consultation(database, booked.consultation_id)).status == "scheduled"
    recorded = await record_join(units(database).video_links(), booked.patient_token, arrived, ROOMS)
    assert recorded.room_url == followed.room_url and recorded.patient_waiting
    for token, moment in ((booked.patient_token, START + timedelta(hours=2)), ("../../etc/passwd", START)):
        refused = await follow_link(units(database).video_links(read_only=True), token, moment, ROOMS)
        assert refused.room_url is None and refused.decision.outcome is not LinkOutcome.ENTER
    assert len(await joins(database, booked.consultation_id)) == 1


async def test_outside_the_window_nothing_is_written(database: Database, clinic: Clinic) -> None:
    booked = await book(database, clinic)
    cancelled = await book(database, clinic, START + timedelta(hours=2), ConsultationStatus.CANCELLED)
    for token, moment, outcome in (
        (booked.patient_token, START - timedelta(minutes=11), LinkOutcome.NOT_YET),
        (booked.clinician_token, START + timedelta(minutes=60), LinkOutcome.ENDED),
        (cancelled.patient_token, START + timedelta(hours=2), LinkOutcome.CANCELLED),
        (secrets.token_urlsafe(24), START, LinkOutcome.UNKNOWN),  # forged: the right shape, no such link
        (booked.patient_token[:-1], START, LinkOutcome.UNKNOWN),
        ("../../etc/passwd", START, LinkOutcome.UNKNOWN),
    ):
        answered = await record_join(units(database).video_links(), token, moment, ROOMS)
        assert (answered.decision.outcome, answered.room_url) == (outcome, None)
    assert await joins(database, booked.consultation_id) == []
    assert (await consultation(database, booked.consultation_id)).status == "scheduled"


async def test_a_patient_marked_no_show_who_turns_up_is_let_in_and_the_mark_taken_back(
    database: Database, clinic: Clinic
) -> None:
    marked_at = START + timedelta(minutes=10)
    booked = await book(
        database, clinic, status=ConsultationStatus.NO_SHOW, no_show_at=marked_at, no_show_by="system"
    )
    late = START + timedelta(minutes=14)
    answered = await record_join(units(database).video_links(), booked.patient_token, late, ROOMS)
    assert answered.decision.enters and answered.no_show_corrected
    stored = await consultation(database, booked.consultation_id)
    assert (stored.status, stored.no_show_at, stored.no_show_by) == ("waiting", None, None)
    async with database.sessions() as session:
        appointment = await session.get(Appointment, booked.appointment_id)
        assert appointment is not None and appointment.status == "booked"
        audit = (
            await session.scalars(select(AuditLog).where(AuditLog.action == "video.no_show_corrected"))
        ).one()
    assert (audit.actor, audit.via, audit.target) == (
        PATIENT_JOINED,
        "system",
        f"video_consultation:{booked.consultation_id}",
    )
    assert audit.detail["marked_by"] == "system"


async def test_the_clinician_joining_a_no_show_does_not_take_it_back(
    database: Database, clinic: Clinic
) -> None:
    booked = await book(
        database, clinic, status=ConsultationStatus.NO_SHOW, no_show_at=START, no_show_by="manager@x"
    )
    answered = await record_join(
        units(database).video_links(), booked.clinician_token, START + timedelta(minutes=12), ROOMS
    )
    assert answered.decision.enters and not answered.no_show_corrected
    stored = await consultation(database, booked.consultation_id)
    assert (stored.status, stored.no_show_by) == ("no_show", "manager@x")


async def test_patient_and_clinician_joining_at_once_end_in_progress(
    database: Database, clinic: Clinic
) -> None:
    for _ in range(3):
        booked = await book(database, clinic)
        await asyncio.gather(
            record_join(units(database).video_links(), booked.patient_token, START, ROOMS),
            record_join(units(database).video_links(), booked.clinician_token, START, ROOMS),
        )
        stored = await consultation(database, booked.consultation_id)
        assert (stored.status, stored.started_at) == ("in_progress", START)


@dataclass
class RecordingChats:
    told: list[tuple[WaitingPatient, str]]
    fail: bool = False

    async def tell(self, patient: WaitingPatient, join_link: str) -> str | None:
        await asyncio.sleep(0)
        if self.fail:
            raise ConnectionError("Slack is down")
        self.told.append((patient, join_link))
        return "slack"


def link(token: str) -> str:
    return f"https://switchboard.example/v/{token}"


async def test_a_waiting_patient_is_told_exactly_once_with_several_workers(
    database: Database, clinic: Clinic
) -> None:
    booked = await book(database, clinic)
    arrived = START - timedelta(minutes=2)
    await record_join(units(database).video_links(), booked.patient_token, arrived, ROOMS)
    chats = RecordingChats([])
    workers = [Database.connect(database.url) for _ in range(3)]
    try:
        passes = await asyncio.gather(
            *(alert_waiting_patients(units(w).waiting_room, chats, arrived, link) for w in workers)
        )
    finally:
        for worker in workers:
            await worker.dispose()
    assert len(chats.told) == 1
    patient, join_link = chats.told[0]
    assert join_link == link(booked.clinician_token)
    assert (patient.patient_name, patient.clinician_name, patient.service_name) == (
        "Anna Meyer",
        "Dr Clara Weiss",
        "Skin check",
    )
    assert (patient.slack_user_id, patient.telegram_user_id) == ("U0ADMIN", 7001)
    assert sum(len(p.told) for p in passes) == 1
    again = await alert_waiting_patients(
        units(database).waiting_room, chats, arrived + timedelta(seconds=1), link
    )
    assert again.told == [] and len(chats.told) == 1
    assert [alerted for _, alerted in await joins(database, booked.consultation_id)] == [arrived]


async def test_a_rejoin_soon_after_is_not_told_again_and_the_clinician_in_is_never_told(
    database: Database, clinic: Clinic
) -> None:
    booked = await book(database, clinic)
    first = START - timedelta(minutes=5)
    chats = RecordingChats([])
    await record_join(units(database).video_links(), booked.patient_token, first, ROOMS)
    await alert_waiting_patients(units(database).waiting_room, chats, first, link)
    rejoined = first + ALERT_REPEAT - timedelta(seconds=30)
    await record_join(units(database).video_links(), booked.patient_token, rejoined, ROOMS)
    skipped = await alert_waiting_patients(units(database).waiting_room, chats, rejoined, link)
    assert (len(chats.told), skipped.skipped) == (1, 1)
    still_waiting = rejoined + ALERT_REPEAT + timedelta(seconds=1)
    await record_join(units(database).video_links(), booked.patient_token, still_waiting, ROOMS)
    await alert_waiting_patients(units(database).waiting_room, chats, still_waiting, link)
    assert len(chats.told) == 2  # still alone after five minutes: told again

    both = await book(database, clinic, START + timedelta(hours=1))
    await record_join(
        units(database).video_links(), both.clinician_token, START + timedelta(minutes=55), ROOMS
    )
    await record_join(units(database).video_links(), both.patient_token, START + timedelta(minutes=56), ROOMS)
    done = await alert_waiting_patients(
        units(database).waiting_room, chats, START + timedelta(minutes=56), link
    )
    assert (len(chats.told), done.skipped) == (2, 1)


async def test_an_alert_that_cannot_be_sent_is_tried_again(database: Database, clinic: Clinic) -> None:
    booked = await book(database, clinic)
    arrived = START - timedelta(minutes=1)
    await record_join(units(database).video_links(), booked.patient_token, arrived, ROOMS)
    down = RecordingChats([], fail=True)
    failed = await alert_waiting_patients(units(database).waiting_room, down, arrived, link)
    assert (failed.failed, failed.told) == (1, [])
    assert [alerted for _, alerted in await joins(database, booked.consultation_id)] == [None]
    up = RecordingChats([])
    await alert_waiting_patients(units(database).waiting_room, up, arrived + timedelta(seconds=1), link)
    assert len(up.told) == 1


# --- /v/TOKEN over HTTP ------------------------------------------------------------------------------

Client = AsyncTestClient[Any]


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[Client]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=database_url,
        sandbox=True,
        worker_in_process=False,
        jitsi_url="https://meet.example.org",
        jitsi_app_secret=SECRET,
    )
    async with AsyncTestClient(create_app(settings)) as test_client:
        yield test_client


async def test_the_link_redirects_into_the_room_inside_the_window(
    client: Client, database: Database, clinic: Clinic
) -> None:
    now = datetime.now(UTC)
    booked = await book(database, clinic, now + timedelta(minutes=5))
    answer = await client.get(f"/v/{booked.patient_token}", follow_redirects=False)
    assert answer.status_code == 302
    assert answer.headers["cache-control"] == "no-store"
    room = urlsplit(answer.headers["location"])
    assert (room.scheme, room.netloc) == ("https", "meet.example.org")
    stored = await consultation(database, booked.consultation_id)
    assert room.path == f"/{stored.room_name}" and stored.status == "waiting"
    token = room.query.removeprefix("jwt=")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="switchboard")  # valid right now
    assert claims["room"] == stored.room_name
    assert client.app.state.container.patient_waiting.is_set()  # the alert job is woken
    assert [who for who, _ in await joins(database, booked.consultation_id)] == ["patient"]


async def test_the_link_outside_its_window_says_why_in_a_page(
    client: Client, database: Database, clinic: Clinic
) -> None:
    now = datetime.now(UTC)
    early = await book(database, clinic, now + timedelta(days=1))
    page = await client.get(f"/v/{early.patient_token}", follow_redirects=False)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "Your consultation opens at" in page.text and re.search(r"\d\d:\d\d CES?T on ", page.text), (
        page.text
    )
    assert "<script" not in page.text
    ended = await book(database, clinic, now - timedelta(hours=3))
    page = await client.get(f"/v/{ended.patient_token}", follow_redirects=False)
    assert page.status_code == 410 and "This consultation has ended" in page.text and "rebook" in page.text
    cancelled = await book(database, clinic, now, ConsultationStatus.CANCELLED)
    page = await client.get(f"/v/{cancelled.patient_token}", follow_redirects=False)
    assert page.status_code == 410 and "This consultation was cancelled" in page.text
    assert await joins(database, early.consultation_id) == await joins(database, ended.consultation_id) == []
    async with database.sessions() as session:  # the same page for a German patient, in German
        patient = await session.get(
            Customer, (await consultation(database, early.consultation_id)).customer_id
        )
        assert patient is not None
        patient.locale = "de_DE"
        await session.commit()
    german = await client.get(f"/v/{early.patient_token}", follow_redirects=False)
    assert (
        '<html lang="de">' in german.text
        and "Der Raum für Ihren Videotermin öffnet um" in german.text
        and "Zum Inhalt springen" in german.text
    )
    assert "Your consultation" not in german.text
    # The page is the clinic's, not ours, and says whose consultation it is.
    assert '<span class="brand">' in german.text and "Switchboard" not in german.text
    assert 'id="link-about">Ihr Videotermin mit ' in german.text


async def test_unknown_and_forged_links_get_the_same_404(
    client: Client, database: Database, clinic: Clinic
) -> None:
    booked = await book(database, clinic, datetime.now(UTC))
    unknown = await client.get("/v/nothing-here", follow_redirects=False)
    forged = await client.get(f"/v/{secrets.token_urlsafe(24)}", follow_redirects=False)
    near = await client.get(f"/v/{booked.patient_token[:-2]}xx", follow_redirects=False)
    overlong = await client.get(f"/v/{'a' * 300}", follow_redirects=False)
    for answer in (unknown, forged, near, overlong):
        assert answer.status_code == 404
        assert "This link is not one we know" in answer.text
        assert answer.text == unknown.text
    german = await client.get("/v/nothing-here", headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"})
    assert german.status_code == 404 and "Diesen Link kennen wir nicht" in german.text
    assert await joins(database, booked.consultation_id) == []


async def test_without_a_jitsi_address_the_link_says_so_and_records_nothing(
    database_url: str, database: Database, clinic: Clinic
) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=database_url, sandbox=False, worker_in_process=False, jitsi_url=""
    )
    booked = await book(database, clinic, datetime.now(UTC))
    async with AsyncTestClient(create_app(settings)) as unset:
        answer = await unset.get(f"/v/{booked.patient_token}", follow_redirects=False)
        german = await unset.get(
            f"/v/{booked.patient_token}", headers={"Accept-Language": "de-AT,de;q=0.9,en;q=0.5"}
        )
    assert answer.status_code == 503 and "The video room cannot be opened just now" in answer.text
    assert german.status_code == 503 and 'lang="de"' in german.text
    assert "Der Videoraum lässt sich gerade nicht öffnen" in german.text
    assert await joins(database, booked.consultation_id) == []


async def test_an_address_opening_many_unknown_links_is_slowed_down(
    client: Client, database: Database, clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api import video_links

    monkeypatch.setattr(video_links, "MISSES", video_links.MissPace(per_minute=3))
    booked = await book(database, clinic, datetime.now(UTC))
    assert (await client.get(f"/v/{booked.patient_token}", follow_redirects=False)).status_code == 302
    for _ in range(3):
        assert (await client.get(f"/v/{secrets.token_urlsafe(24)}")).status_code == 404
    slowed = await client.get(f"/v/{secrets.token_urlsafe(24)}")
    assert slowed.status_code == 429 and "Please wait a minute" in slowed.text
    german = await client.get(f"/v/{secrets.token_urlsafe(24)}", headers={"Accept-Language": "de"})
    assert german.status_code == 429 and "Bitte warten Sie eine Minute" in german.text
    assert (await client.get(f"/v/{booked.patient_token}", follow_redirects=False)).status_code == 429
