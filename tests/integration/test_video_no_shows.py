"""No-shows on SQLite and PostgreSQL: the watcher marks each once and offers new times; staff mark and correct
any appointment, video or in person, audited; the patient's letter after a no-show books a new consultation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import insert, select, update

from bot.commands.context import CommandContext
from bot.console import ask, render_reply
from domain.notifications.use_cases import process_pending_events
from domain.video.joins import attendance_after_join
from domain.video.links import Attendance
from domain.video.model import STATUS_WORDS, ConsultationStatus, Participant, VideoError, Window
from domain.video.no_shows import AppointmentNotFound, mark_attended, mark_missed_consultations, mark_no_show
from domain.video.rebooking import REBOOK_EVENT, offer_rebooking
from storage.database import Database
from storage.models import (
    Appointment,
    AuditLog,
    AutomatedNotification,
    BusinessEvent,
    Customer,
    MessageTemplate,
    Service,
    StaffUser,
    VideoConsultation,
)
from storage.models.video import ClinicianHours, VideoRebookOffer
from storage.notifications import SqlNotificationUnitOfWork
from storage.seeding.catalogue import notification_rows, template_rows
from storage.video_no_shows import SqlNoShowUnitOfWork
from switchboard.settings import Settings
from tests.integration.test_video_reminders import (
    NOW,
    PUBLIC,
    add_consultation,
    add_service,
    consultation_row,
    outbox,
    patient_writes,
    replies,
    run_pass,
    world,
)
from tests.integration.video_world import add_catalogue_rules

AFTER = timedelta(minutes=10)


async def watcher_pass(database: Database, now: datetime) -> list[int]:
    return await mark_missed_consultations(
        lambda: SqlNoShowUnitOfWork(database),
        now,
        after=AFTER,
        process_events=lambda: process_pending_events(lambda: SqlNotificationUnitOfWork(database), now),
    )


async def audit_rows(database: Database) -> list[AuditLog]:
    async with database.sessions() as session:
        rows = await session.scalars(select(AuditLog).order_by(AuditLog.id))
        return [row for row in rows if not row.action.startswith("notification_rule.")]


async def appointment_status(database: Database, appointment_id: int) -> str:
    async with database.sessions() as session:
        row = await session.get(Appointment, appointment_id)
        assert row is not None
        return row.status


async def test_the_watcher_marks_a_missed_consultation_once_and_offers_new_times(database: Database) -> None:
    w = await world(database)
    starts = NOW - timedelta(minutes=15)
    booked = NOW - timedelta(days=2)
    appointment, missed = await add_consultation(database, w["customer"], w["staff"], w["service"], starts,
                                                 booked_at=booked)  # fmt: skip
    _, joined = await add_consultation(
        database, w["customer"], w["staff"], w["service"], starts, booked_at=booked
    )
    _, last_week = await add_consultation(
        database,
        w["customer"],
        w["staff"],
        w["service"],
        NOW - timedelta(days=7),
        booked_at=booked - timedelta(days=7),
    )
    _, recent = await add_consultation(database, w["customer"], w["staff"], w["service"], NOW - timedelta(minutes=5),
                                       booked_at=booked)  # fmt: skip
    async with database.sessions() as session:
        await session.execute(update(VideoConsultation).where(VideoConsultation.id == joined).values(
            patient_joined_at=starts + timedelta(minutes=2), status="waiting"))  # fmt: skip
        await session.commit()

    results = await asyncio.gather(*(watcher_pass(database, NOW) for _ in range(3)))
    assert sorted(i for marked in results for i in marked) == [missed]
    assert await watcher_pass(database, NOW + timedelta(seconds=30)) == []

    row = await consultation_row(database, missed)
    assert (row.status, row.no_show_at, row.no_show_by, row.rebook_offered_at) == (
        "no_show",
        NOW,
        "system",
        NOW,
    )
    assert await appointment_status(database, appointment) == "no_show"
    assert (await consultation_row(database, joined)).status == "waiting"
    assert (await consultation_row(database, recent)).status == "scheduled"
    assert (await consultation_row(database, last_week)).status == "scheduled"  # too old for the watcher
    audit = [(a.actor, a.action, a.target) for a in await audit_rows(database)]
    assert audit == [("system", "video.no_show", f"video_consultation:{missed}")]
    async with database.sessions() as session:
        [offer] = list(await session.scalars(select(VideoRebookOffer)))
        events = list(
            await session.scalars(select(BusinessEvent).where(BusinessEvent.event_type == REBOOK_EVENT))
        )
    assert offer.consultation_id == missed and len(offer.slots) == 3
    [event] = events
    assert event.payload["options"].startswith("A) Tue 8 Dec 10:00 CET; B) Tue 8 Dec 11:00 CET")

    # The patient picks B: a new consultation is booked with the same clinician and service.
    await patient_writes(database, "B", NOW + timedelta(minutes=3), ref="SMb")
    async with database.sessions() as session:
        answered = await session.get(VideoRebookOffer, offer.id)
        assert answered is not None and answered.rebooked_id not in (None, missed)
        new = await session.get(VideoConsultation, answered.rebooked_id)
        assert new is not None and new.scheduled_at == datetime(2026, 12, 8, 10, 0, tzinfo=UTC)
        assert (new.staff_id, new.customer_id, new.status) == (w["staff"], w["customer"], "scheduled")
    said = (await replies(database))[-1]
    assert "is now on Tue 8 Dec 11:00 CET. Your link: " in said and "/v/" in said, said
    # Once they have rebooked, staff cannot offer the missed one's times again (a second booking).
    with pytest.raises(
        VideoError, match=rf"already rebooked consultation {missed} as #{answered.rebooked_id}"
    ):
        await offer_rebooking(
            SqlNoShowUnitOfWork(database), missed, actor="ana@x", via="web", now=NOW + timedelta(minutes=5)
        )


async def test_staff_mark_an_in_person_no_show_and_correct_it_audited(database: Database) -> None:
    w = await world(database)
    in_person = await add_service(database, kind="in_person")
    async with database.sessions() as session:
        visit = Appointment(customer_id=w["customer"], service_id=in_person, staff_id=w["staff"], kind="in_person",
                            status="booked", scheduled_at=NOW - timedelta(hours=1), duration_minutes=30,
                            price_minor=5000, currency="EUR")  # fmt: skip
        session.add(visit)
        await session.commit()
        visit_id = visit.id

    marked = await mark_no_show(SqlNoShowUnitOfWork(database), visit_id, actor="ana@northwind.example", via="slack",
                                now=NOW)  # fmt: skip
    assert (marked.previous.value, marked.appointment.status.value, marked.offer_sent) == (
        "booked",
        "no_show",
        False,
    )
    with pytest.raises(VideoError, match="already marked a no-show"):
        await mark_no_show(
            SqlNoShowUnitOfWork(database), visit_id, actor="ana@northwind.example", via="slack", now=NOW
        )
    corrected = await mark_attended(SqlNoShowUnitOfWork(database), visit_id, actor="ben@northwind.example",
                                    via="telegram", now=NOW)  # fmt: skip
    assert corrected.appointment.status.value == "completed"
    assert await appointment_status(database, visit_id) == "completed"
    audit = [(a.actor, a.via, a.action, a.target, a.detail["from"]) for a in await audit_rows(database)]
    assert audit == [
        ("ana@northwind.example", "slack", "appointment.no_show", f"appointment:{visit_id}", "booked"),
        ("ben@northwind.example", "telegram", "appointment.attended", f"appointment:{visit_id}", "no_show"),
    ]


async def test_marking_refuses_future_unknown_and_cancelled_appointments(database: Database) -> None:
    w = await world(database)
    future, _ = await add_consultation(database, w["customer"], w["staff"], w["service"], NOW + timedelta(hours=3),
                                       booked_at=NOW)  # fmt: skip
    with pytest.raises(VideoError, match=r"has not begun yet \(it starts Tue 8 Dec 12:00 CET\)"):
        await mark_no_show(SqlNoShowUnitOfWork(database), future, actor="a@x", via="slack", now=NOW,
                           timezone="Europe/Berlin")  # fmt: skip
    with pytest.raises(AppointmentNotFound, match="There is no appointment 99999"):
        await mark_attended(SqlNoShowUnitOfWork(database), 99999, actor="a@x", via="slack", now=NOW)
    async with database.sessions() as session:
        await session.execute(update(Appointment).values(status="cancelled"))
        await session.commit()
    with pytest.raises(VideoError, match="was cancelled"):
        await mark_no_show(SqlNoShowUnitOfWork(database), future, actor="a@x", via="slack",
                           now=NOW + timedelta(hours=4))  # fmt: skip
    assert await audit_rows(database) == []


async def test_a_manual_video_no_show_offers_times_and_a_correction_clears_the_mark(
    database: Database,
) -> None:
    w = await world(database)
    appointment, consultation = await add_consultation(
        database,
        w["customer"],
        w["staff"],
        w["service"],
        NOW - timedelta(minutes=40),
        booked_at=NOW - timedelta(days=1),
    )
    marked = await mark_no_show(SqlNoShowUnitOfWork(database), appointment, actor="ana@northwind.example",
                                via="web", now=NOW)  # fmt: skip
    assert marked.offer_sent and len(marked.offered) == 3
    row = await consultation_row(database, consultation)
    assert (row.status, row.no_show_by) == ("no_show", "ana@northwind.example")
    # The watcher does not mark it again, nor offer twice.
    assert await watcher_pass(database, NOW + timedelta(minutes=1)) == []

    await mark_attended(
        SqlNoShowUnitOfWork(database), appointment, actor="ana@northwind.example", via="web", now=NOW
    )
    row = await consultation_row(database, consultation)
    assert (row.status, row.no_show_at, row.no_show_by) == ("completed", None, None)


async def test_staff_offer_rebooking_and_the_rule_less_event_sends_nothing_twice(database: Database) -> None:
    w = await world(database)
    _, consultation = await add_consultation(
        database,
        w["customer"],
        w["staff"],
        w["service"],
        NOW - timedelta(hours=2),
        booked_at=NOW - timedelta(days=1),
    )
    slots = await offer_rebooking(
        SqlNoShowUnitOfWork(database), consultation, actor="ana@x", via="slack", now=NOW
    )
    assert len(slots) == 3
    [audit] = await audit_rows(database)
    assert (audit.action, audit.target) == ("video.rebook_offer", f"video_consultation:{consultation}")
    with pytest.raises(VideoError, match="no video consultation 424242"):
        await offer_rebooking(SqlNoShowUnitOfWork(database), 424242, actor="ana@x", via="slack", now=NOW)
    assert await outbox(database) == []  # no rule for the offer event in this set-up: nothing is sent


async def test_staff_commands_mark_correct_offer_and_show_the_reminder_log(
    database: Database, database_url: str
) -> None:
    w = await world(database)
    appointment, consultation = await add_consultation(
        database,
        w["customer"],
        w["staff"],
        w["service"],
        NOW - timedelta(minutes=40),
        booked_at=NOW - timedelta(days=2),
    )
    ctx = CommandContext(Settings(database_url=database_url, business_timezone="Europe/Berlin"), database,
                         clock=lambda: NOW)  # fmt: skip

    async def say(text: str) -> tuple[str, str]:
        reply = await ask(ctx, text, as_email="weiss@northwind.example")
        shown = render_reply(reply)
        assert "Traceback" not in shown
        return reply.kind, shown

    kind, shown = await say(f"noshow {appointment}")
    assert kind == "answer"
    assert (
        f"Appointment {appointment} (Alice Smith, Tue 8 Dec 08:20 CET) is now a no-show (it was booked)."
        in shown
    )
    assert "offered new times on their channel: A) Tue 8 Dec 10:00 CET" in shown
    kind, shown = await say(f"noshow {appointment}")
    assert kind == "error" and "already marked a no-show" in shown
    kind, shown = await say(f"attended #{appointment}")
    assert "is now marked attended (it was a no-show)" in shown
    kind, shown = await say("noshow soon")
    assert kind == "error" and "not an appointment number" in shown
    kind, shown = await say(f"video rebook {consultation}")
    assert "offered new times" in shown and "Their answer books it." in shown
    kind, shown = await say(f"video reminders {consultation}")
    assert "has no reminders yet" in shown


async def test_the_default_catalogue_renders_the_reminder_and_the_offer(database: Database) -> None:
    """The seeded templates and rules (storage/seeding/catalogue.py), not the tests' own: both messages go out
    with the link, the times and the answer in words."""
    async with database.sessions() as session:
        staff = StaffUser(
            email="lee@northwind.example", name="Dr Lee", role="agent", timezone="Europe/Berlin"
        )
        customer = Customer(
            name="Anna Berg", phone_e164="+4915100000077", timezone="Europe/Berlin", locale="de"
        )
        service = Service(code="SKIN-V", name="Video skin consultation", kind="video", duration_minutes=30,
                          price_minor=6900, currency="EUR")  # fmt: skip
        session.add_all([staff, customer, service])
        await session.flush()
        session.add_all(
            [ClinicianHours(staff_id=staff.id, weekday=d, starts=time(8), ends=time(17)) for d in range(5)]
        )
        rows, _ = template_rows(NOW)
        for row in rows:
            if row["name"] in ("video_reminder", "video_rebook_offer"):
                await session.execute(
                    insert(MessageTemplate).values({k: v for k, v in row.items() if k != "id"})
                )
        for row in notification_rows(NOW, created_by=staff.id):
            if row["event_type"] in ("video.reminder", "video.rebook_offer"):
                await session.execute(
                    insert(AutomatedNotification).values({k: v for k, v in row.items() if k != "id"})
                )
        await session.commit()
        ids = (staff.id, customer.id, service.id)
    await add_consultation(
        database, ids[1], ids[0], ids[2], NOW + timedelta(hours=2), booked_at=NOW - timedelta(days=2)
    )
    await run_pass(database, NOW)
    await watcher_pass(database, NOW + timedelta(hours=2, minutes=11))

    reminder, offer = [m for m in await outbox(database) if m.status == "planned"]
    assert reminder.body.startswith(
        "Hallo Anna, wir erinnern an Ihren Termin (Video skin consultation) mit Dr Lee am Di., 8. Dez., 11:00 Uhr MEZ. "
        f"Hier teilnehmen: {PUBLIC}/v/tok"
    )
    assert "Antworten Sie 1 zum Bestätigen" in reminder.body and f"{PUBLIC}/v/tok" in reminder.body
    assert offer.body.startswith(
        "Hallo Anna, hier sind neue Termine für Ihren Termin (Video skin consultation, gebucht für Di., 8. Dez., 11:00 Uhr MEZ) "
        "mit Dr Lee: A) Di., 8. Dez., 12:15 Uhr MEZ"
    )
    assert offer.body.endswith("um den Termin zu buchen.")


async def test_a_consultation_in_progress_is_completed_when_its_window_closes(database: Database) -> None:
    w = await world(database)
    starts = NOW - timedelta(hours=1)
    appointment, ended = await add_consultation(database, w["customer"], w["staff"], w["service"], starts,
                                                booked_at=NOW - timedelta(days=2))  # fmt: skip
    _, still_on = await add_consultation(database, w["customer"], w["staff"], w["service"],
                                         NOW - timedelta(minutes=20), booked_at=NOW - timedelta(days=2))  # fmt: skip
    async with database.sessions() as session:
        for consultation_id, began in ((ended, starts), (still_on, NOW - timedelta(minutes=20))):
            await session.execute(update(VideoConsultation).where(VideoConsultation.id == consultation_id).values(
                status="in_progress", patient_joined_at=began, clinician_joined_at=began, started_at=began))  # fmt: skip
        await session.commit()

    await asyncio.gather(*(watcher_pass(database, NOW) for _ in range(2)))

    async with database.read_sessions() as session:
        rows = {c.id: c for c in await session.scalars(select(VideoConsultation))}
    finished = rows[ended]
    assert finished.status == "completed"
    assert finished.ended_at == Window.of(starts, finished.duration_minutes).closes_at
    assert rows[still_on].status == "in_progress" and rows[still_on].ended_at is None
    assert await appointment_status(database, appointment) == "completed"
    completed = [a for a in await audit_rows(database) if a.action == "video.completed"]
    assert [a.target for a in completed] == [f"video_consultation:{ended}"]  # once, with two workers


async def test_a_patient_left_waiting_by_an_absent_clinician_is_offered_new_times_once(
    database: Database,
) -> None:
    w = await world(database)
    starts = NOW - timedelta(hours=1)
    appointment, waited = await add_consultation(database, w["customer"], w["staff"], w["service"], starts,
                                                 booked_at=NOW - timedelta(days=2))  # fmt: skip
    _, still_open = await add_consultation(database, w["customer"], w["staff"], w["service"],
                                           NOW - timedelta(minutes=20), booked_at=NOW - timedelta(days=2))  # fmt: skip
    async with database.sessions() as session:
        for consultation_id, came in (
            (waited, starts - timedelta(minutes=3)),
            (still_open, NOW - timedelta(minutes=19)),
        ):
            await session.execute(update(VideoConsultation).where(VideoConsultation.id == consultation_id).values(
                status="waiting", patient_joined_at=came))  # fmt: skip
        await session.commit()

    results = await asyncio.gather(*(watcher_pass(database, NOW) for _ in range(2)))
    assert [i for marked in results for i in marked] == []  # not the patient's no-show
    async with database.read_sessions() as session:
        rows = {c.id: c for c in await session.scalars(select(VideoConsultation))}
        offers = list(await session.scalars(select(VideoRebookOffer)))
        events = list(
            await session.scalars(select(BusinessEvent).where(BusinessEvent.event_type == REBOOK_EVENT))
        )
    closed = rows[waited]
    assert (closed.status, closed.no_show_at) == ("clinician_absent", None)
    assert closed.ended_at == Window.of(starts, closed.duration_minutes).closes_at
    assert rows[still_open].status == "waiting"  # its link is still open: the clinician may yet come
    assert await appointment_status(database, appointment) == "cancelled"
    absent = [a for a in await audit_rows(database) if a.action == "video.clinician_absent"]
    assert [a.target for a in absent] == [f"video_consultation:{waited}"]  # once, with two workers
    assert [o.consultation_id for o in offers] == [waited] and len(events) == 1
    # A late click on the link changes nothing now, and staff see it in words.
    before = Attendance(status=ConsultationStatus.CLINICIAN_ABSENT, patient_joined_at=starts)
    assert attendance_after_join(before, Participant.CLINICIAN, NOW) == before
    assert STATUS_WORDS[ConsultationStatus.CLINICIAN_ABSENT] == "clinician did not join"


async def test_the_offer_names_the_channel_its_message_will_take(database: Database) -> None:
    """The channel an offer is stored with (and the consultation page shows) is the one the message goes by,
    chosen as the rule chooses: their preferred channel, then one they opted in on, then the default order,
    each only if they have an address on it and did not opt out; a rule's own order comes first."""
    from storage.models import (
        AutomatedNotification,
        CommunicationPreference,
        ConsentRecord,
        CustomerCommunication,
        CustomerConsent,
    )
    from storage.video_no_shows import SqlRebookingDesk

    await add_catalogue_rules(database, REBOOK_EVENT)  # the offer's rule and template, as installed
    async with database.sessions() as session:
        said_sms, wrote, chose, no_address, said_no = (
            Customer(name=name, phone_e164=f"+49151000009{i}", timezone="Europe/Berlin")
            for i, name in enumerate(("Sara Sms", "Walter Whatsapp", "Emil Email", "Petra Phone", "Nora No"))
        )
        chose.email = "emil@example.org"
        session.add_all([said_sms, wrote, chose, no_address, said_no])
        await session.flush()
        for customer, channel, status in ((said_sms, "sms", "opted_in"), (said_no, "whatsapp", "opted_out")):
            record = ConsentRecord(
                customer_id=customer.id, channel=channel, status=status, source="front desk", recorded_at=NOW
            )
            session.add(record)
            await session.flush()
            session.add(
                CustomerConsent(
                    customer_id=customer.id, channel=channel, status=status, source="front desk",
                    record_id=record.id, changed_at=NOW,
                )
            )  # fmt: skip
        for customer in (said_sms, wrote):
            session.add(
                CustomerCommunication(
                    customer_id=customer.id, channel="whatsapp", provider="whatsapp_cloud", direction="inbound",
                    source="chat", to_address="", body="hi", status="received",
                )
            )  # fmt: skip
        session.add(CommunicationPreference(customer_id=chose.id, preferred_channel="email"))
        session.add(CommunicationPreference(customer_id=no_address.id, preferred_channel="email"))
        await session.commit()
        desk = SqlRebookingDesk(session)
        assert await desk.patient_channel(said_sms.id) == "sms"  # opted in beats the default order
        assert await desk.patient_channel(wrote.id) == "whatsapp"  # nothing said: the default order
        assert await desk.patient_channel(chose.id) == "email"  # their own choice first
        # Preferred email with no address: the message goes on, and the offer says so.
        assert await desk.patient_channel(no_address.id) == "whatsapp"
        assert await desk.patient_channel(said_no.id) == "sms"  # never a channel they opted out of
        # The business's rule with its own order decides before any of that.
        await session.execute(
            update(AutomatedNotification)
            .where(AutomatedNotification.event_type == REBOOK_EVENT)
            .values(channel_order=["sms", "email"])
        )
        await session.commit()
        assert await desk.patient_channel(chose.id) == "sms"
        assert await desk.patient_channel(wrote.id) == "sms"
        # With the rule switched off no message goes, and the offer says so rather than name a channel.
        await session.execute(
            update(AutomatedNotification)
            .where(AutomatedNotification.event_type == REBOOK_EVENT)
            .values(enabled=False)
        )
        await session.commit()
        assert await desk.patient_channel(chose.id) == "none"
