"""Consultation reminders on SQLite and PostgreSQL: each recorded once, sent through the rule, logged, and the
patient's "1"/"2"/"A" replies answered."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update
from twilio.request_validator import RequestValidator

from api.app import create_app
from domain.clock import utc_now
from domain.conversations.csat import SURVEY_REQUEST_PREFIX, SURVEY_TEXT
from domain.conversations.model import CustomerMessage
from domain.conversations.use_cases import InboundPolicy, handle_customer_message
from domain.delivery.ports import InboundMessage
from domain.notifications.model import NotificationRuleDraft
from domain.notifications.use_cases import create_notification_rule, process_pending_events
from domain.video.rebooking import RebookingPolicy
from domain.video.reminders import REMINDER_EVENT, RULE_OFFSET_MINUTES, SKIPPED_EVENT, send_due_reminders
from domain.video.replies import VideoReplies
from domain.vocabulary import Channel, MessageCategory
from providers.video.link import PlainLinkRooms
from storage.database import Database
from storage.models import (
    Appointment,
    BusinessEvent,
    ChatSession,
    CustomerCommunication,
    Location,
    MessageTemplate,
    Service,
    StaffUser,
    VideoConsultation,
)
from storage.models.video import ClinicianHours, VideoRebookOffer
from storage.notifications import SqlNotificationUnitOfWork
from storage.queries.video_reminders import reminder_log
from storage.units import UnitsOfWork
from storage.video_no_shows import inbound_rebooking_desk
from storage.video_reminders import SqlReminderUnitOfWork
from switchboard.background import BackgroundServices
from switchboard.settings import Settings
from switchboard.video_watch import VideoWatch
from switchboard.wiring import Container
from tests.integration.test_campaigns import add_customer

#: A Tuesday, 09:00 in Berlin.
NOW = datetime(2026, 12, 8, 8, 0, tzinfo=UTC)
PUBLIC = "https://switchboard.example"

REMINDER_TEXT = (
    "Hi {{ first_name }}, your {{ service }} with {{ clinician }} is on {{ appointment_time }}. "
    "Join: {{ link }} Reply 1 to confirm or 2 to choose another time."
)


async def add_video_templates(database: Database) -> None:
    """The reminder and rebooking templates, and the rule on video.reminder, as the seeder sets them up."""
    async with database.sessions() as session:
        for channel in ("sms", "whatsapp", "telegram"):
            session.add(
                MessageTemplate(
                    name="video_reminder",
                    channel=channel,
                    locale="en",
                    category="transactional",
                    body=REMINDER_TEXT,
                    variables=["first_name", "service", "clinician", "appointment_time", "link"],
                )
            )
        await session.commit()
    await create_notification_rule(
        SqlNotificationUnitOfWork(database),
        NotificationRuleDraft(
            "video_consultation_reminder",
            REMINDER_EVENT,
            "video_reminder",
            offset_minutes=RULE_OFFSET_MINUTES,
            category=MessageCategory.TRANSACTIONAL,
        ),
    )


async def add_clinician(database: Database, name: str = "Dr Mara Weiss") -> int:
    async with database.sessions() as session:
        staff = StaffUser(email=f"{name.split()[-1].lower()}@northwind.example", name=name, role="agent",
                          timezone="Europe/Berlin")  # fmt: skip
        session.add(staff)
        await session.flush()
        # Monday to Friday, 08:00 to 17:00 Berlin time.
        session.add_all(
            [ClinicianHours(staff_id=staff.id, weekday=d, starts=datetime.min.time().replace(hour=8),
                            ends=datetime.min.time().replace(hour=17)) for d in range(5)]
        )  # fmt: skip
        await session.commit()
        return staff.id


async def add_service(
    database: Database, reminder_minutes: list[int] | None = None, *, kind: str = "video"
) -> int:
    async with database.sessions() as session:
        code = f"S{kind[:2]}{reminder_minutes!r}"[:32]
        service = Service(code=code, name="Video skin consultation" if kind == "video" else "Skin check",
                           kind=kind, duration_minutes=30, price_minor=6900, currency="EUR",
                           reminder_minutes=reminder_minutes)  # fmt: skip
        session.add(service)
        await session.commit()
        return service.id


async def add_consultation(
    database: Database,
    customer_id: int,
    staff_id: int,
    service_id: int,
    starts_at: datetime,
    *,
    booked_at: datetime,
    status: str = "scheduled",
) -> tuple[int, int]:
    """(appointment id, consultation id) of a booked video consultation."""
    async with database.sessions() as session:
        appointment = Appointment(customer_id=customer_id, service_id=service_id, staff_id=staff_id,
                                  kind="video", status="booked", scheduled_at=starts_at, duration_minutes=30,
                                  price_minor=6900, currency="EUR", created_at=booked_at)  # fmt: skip
        session.add(appointment)
        await session.flush()
        consultation = VideoConsultation(
            appointment_id=appointment.id, customer_id=customer_id, staff_id=staff_id, status=status,
            room_url=f"https://meet.example/r{appointment.id}", scheduled_at=starts_at, created_at=booked_at,
            duration_minutes=30, room_name=f"r{appointment.id}", link_token=f"tok{appointment.id}x",
            clinician_token=f"clin{appointment.id}x",
        )  # fmt: skip
        session.add(consultation)
        await session.commit()
        return appointment.id, consultation.id


async def run_pass(database: Database, now: datetime) -> tuple[int, int]:
    done = await send_due_reminders(
        lambda: SqlReminderUnitOfWork(database),
        now,
        public_url=PUBLIC,
        process_events=lambda: process_pending_events(lambda: SqlNotificationUnitOfWork(database), now),
        read_uow=lambda: SqlReminderUnitOfWork(database, read_only=True),
    )
    return done.sent, done.skipped


async def reminder_events(database: Database) -> list[BusinessEvent]:
    async with database.sessions() as session:
        return list(await session.scalars(select(BusinessEvent).order_by(BusinessEvent.idempotency_key)))


async def outbox(database: Database) -> list[CustomerCommunication]:
    async with database.sessions() as session:
        return list(await session.scalars(select(CustomerCommunication).order_by(CustomerCommunication.id)))


async def world(database: Database) -> dict[str, int]:
    await add_video_templates(database)
    async with database.sessions() as session:
        session.add(Location(code="BER", name="Berlin Mitte", country="DE", timezone="Europe/Berlin"))
        await session.commit()
    return {
        "customer": await add_customer(database, "Alice Smith", phone="+4915100000001"),
        "staff": await add_clinician(database),
        "service": await add_service(database),
    }


async def test_each_reminder_is_recorded_once_and_sent_through_the_rule_with_the_link(
    database: Database,
) -> None:
    w = await world(database)
    starts = NOW + timedelta(days=2)
    _, consultation = await add_consultation(
        database, w["customer"], w["staff"], w["service"], starts, booked_at=NOW - timedelta(days=3)
    )

    assert await run_pass(database, NOW) == (0, 0)  # nothing due yet
    day_before = starts - timedelta(days=1) + timedelta(seconds=1)
    assert await run_pass(database, day_before) == (1, 0)
    assert await run_pass(database, day_before + timedelta(seconds=1)) == (0, 0)  # once
    [message] = await outbox(database)
    assert (message.channel, message.status, message.source) == ("sms", "planned", "notification")
    assert message.next_attempt_at == day_before
    assert f"{PUBLIC}/v/tok" in message.body and "Thu 10 Dec 09:00 CET" in message.body
    assert "Dr Mara Weiss" in message.body and "Reply 1 to confirm" in message.body

    two_hours = starts - timedelta(hours=2)
    assert await run_pass(database, two_hours) == (1, 0)
    keys = [e.idempotency_key for e in await reminder_events(database)]
    assert keys == [f"video-reminder:{consultation}:1:120", f"video-reminder:{consultation}:1:1440"]
    log = await reminder_log(database, consultation)
    assert [(line.minutes_before, line.channel, line.status) for line in log] == [
        (1440, "sms", "planned"),
        (120, "sms", "planned"),
    ]


async def test_a_late_booking_skips_reminders_whose_time_had_passed(database: Database) -> None:
    w = await world(database)
    starts = NOW + timedelta(hours=1)
    _, consultation = await add_consultation(
        database, w["customer"], w["staff"], w["service"], starts, booked_at=NOW
    )

    assert await run_pass(database, NOW) == (0, 2)
    assert await outbox(database) == []
    events = await reminder_events(database)
    assert {e.event_type for e in events} == {SKIPPED_EVENT}
    log = await reminder_log(database, consultation)
    assert [(line.minutes_before, line.status) for line in log] == [(1440, "skipped"), (120, "skipped")]
    assert all("booked" in (line.reason or "") for line in log)


async def test_a_reschedule_gets_fresh_reminders_and_the_old_time_none(database: Database) -> None:
    w = await world(database)
    starts = NOW + timedelta(hours=20)
    _, consultation = await add_consultation(
        database, w["customer"], w["staff"], w["service"], starts, booked_at=NOW - timedelta(days=3)
    )
    assert await run_pass(database, NOW) == (1, 0)  # the day-before one
    async with database.sessions() as session:
        await session.execute(
            update(VideoConsultation)
            .where(VideoConsultation.id == consultation)
            .values(version=2, scheduled_at=NOW + timedelta(days=3))
        )
        await session.commit()
    assert await run_pass(database, NOW + timedelta(hours=18)) == (0, 0)  # the old 2-hour time: nothing
    assert await run_pass(database, NOW + timedelta(days=2)) == (1, 0)
    keys = sorted(e.idempotency_key for e in await reminder_events(database))
    assert keys == [f"video-reminder:{consultation}:1:1440", f"video-reminder:{consultation}:2:1440"]


async def test_service_reminder_minutes_and_cancelled_consultations(database: Database) -> None:
    w = await world(database)
    hourly = await add_service(database, [60])
    silent = await add_service(database, [])
    starts = NOW + timedelta(hours=3)
    booked = NOW - timedelta(days=2)
    _, own = await add_consultation(database, w["customer"], w["staff"], hourly, starts, booked_at=booked)
    await add_consultation(database, w["customer"], w["staff"], silent, starts, booked_at=booked)
    await add_consultation(database, w["customer"], w["staff"], w["service"], starts, booked_at=booked,
                           status="cancelled")  # fmt: skip

    assert await run_pass(database, starts - timedelta(hours=2)) == (0, 0)
    assert await run_pass(database, starts - timedelta(minutes=60)) == (1, 0)
    [event] = await reminder_events(database)
    assert event.idempotency_key == f"video-reminder:{own}:1:60"


async def test_two_workers_at_once_record_each_reminder_once(database: Database) -> None:
    w = await world(database)
    starts = NOW + timedelta(hours=2)
    for offset in range(5):
        await add_consultation(database, w["customer"], w["staff"], w["service"], starts + timedelta(minutes=offset),
                               booked_at=NOW - timedelta(days=2))  # fmt: skip
    results = await asyncio.gather(*(run_pass(database, NOW + timedelta(minutes=5)) for _ in range(3)))
    assert sum(sent for sent, _ in results) == 5
    assert len(await reminder_events(database)) == 5 + 5  # each: the 2-hour one sent, the day-before skipped


# --- the patient's answers ------------------------------------------------------------------------------------

ROOMS = PlainLinkRooms("https://meet.example/{room}")
PHONE = "+4915100000001"


def inbound_policy() -> InboundPolicy:
    return InboundPolicy(
        "Northwind", video=VideoReplies(RebookingPolicy(ROOMS, PUBLIC), inbound_rebooking_desk)
    )


async def patient_writes(database: Database, body: str, at: datetime, *, ref: str) -> None:
    message = InboundMessage("twilio", Channel.SMS, ref, PHONE, "+15005550006", body, at)
    async with UnitsOfWork(database, "UTC").conversations() as uow:
        await handle_customer_message(uow, CustomerMessage(message), inbound_policy(), at)
        await uow.commit()


async def replies(database: Database) -> list[str]:
    return [m.body for m in await outbox(database) if m.source == "system"]


async def consultation_row(database: Database, consultation_id: int) -> VideoConsultation:
    async with database.sessions() as session:
        row = await session.get(VideoConsultation, consultation_id)
        assert row is not None
        return row


async def open_chats(database: Database) -> int:
    async with database.sessions() as session:
        return len(list(await session.scalars(select(ChatSession))))


async def test_a_1_confirms_the_reminded_consultation_and_opens_no_agent_work(database: Database) -> None:
    w = await world(database)
    starts = NOW + timedelta(hours=20)
    appointment, consultation = await add_consultation(
        database, w["customer"], w["staff"], w["service"], starts, booked_at=NOW - timedelta(days=3)
    )
    assert await run_pass(database, NOW) == (1, 0)

    await patient_writes(database, " 1 ", NOW + timedelta(minutes=3), ref="SM1")

    row = await consultation_row(database, consultation)
    assert (row.status, row.confirmed_at) == ("confirmed", NOW + timedelta(minutes=3))
    async with database.sessions() as session:
        booked = await session.get(Appointment, appointment)
        assert booked is not None and booked.status == "confirmed"
    [answer] = await replies(database)
    assert answer.startswith(
        "Thanks, you're confirmed for your Video skin consultation with Dr Mara Weiss on "
    )
    assert "CET" in answer and f"{PUBLIC}/v/tok{appointment}x" in answer
    assert await open_chats(database) == 0


async def test_a_2_offers_three_times_and_a_letter_moves_the_consultation(database: Database) -> None:
    w = await world(database)
    starts = NOW + timedelta(hours=20)
    appointment, consultation = await add_consultation(
        database, w["customer"], w["staff"], w["service"], starts, booked_at=NOW - timedelta(days=3)
    )
    await run_pass(database, NOW)

    await patient_writes(database, "2", NOW + timedelta(minutes=1), ref="SM2")
    [offer_text] = await replies(database)
    # 09:01 in Berlin: times from an hour on, an hour apart, within the clinician's hours.
    assert offer_text == (
        "No problem. New times with Dr Mara Weiss: A) Tue 8 Dec 10:05 CET; B) Tue 8 Dec 11:05 CET; "
        "C) Tue 8 Dec 12:05 CET. Reply A, B or C to book it. Your current time stays booked until you choose."
    )
    async with database.sessions() as session:
        [offer] = list(await session.scalars(select(VideoRebookOffer)))
    assert (offer.channel, len(offer.slots), offer.answered_at) == ("sms", 3, None)

    await patient_writes(database, "b", NOW + timedelta(minutes=2), ref="SM3")
    row = await consultation_row(database, consultation)
    assert row.scheduled_at == datetime(2026, 12, 8, 10, 5, tzinfo=UTC) and row.version == 2
    assert row.status == "scheduled"
    assert (await replies(database))[-1] == (
        "Done: your Video skin consultation with Dr Mara Weiss is now on Tue 8 Dec 11:05 CET. "
        f"Your link: {PUBLIC}/v/tok{appointment}x"
    )
    async with database.sessions() as session:
        answered = await session.get(VideoRebookOffer, offer.id)
        assert (
            answered is not None and answered.rebooked_id == consultation and answered.answered_at is not None
        )
    assert await open_chats(database) == 0

    # The same letter again: no offer is open any more, so it is an ordinary message for an agent.
    await patient_writes(database, "b", NOW + timedelta(minutes=4), ref="SM4")
    assert len(await replies(database)) == 2 and await open_chats(database) == 1


async def test_a_letter_that_moves_the_consultation_is_answered_at_once_and_the_rules_sms_is_not_sent_again(
    database: Database,
) -> None:
    """With a rule on video.rescheduled reaching the patient by SMS, the move's own message may be delayed,
    deferred or failing, so the letter is still answered at once, with the link (the review's finding: a
    patient left with no answer is worse than two messages), and the rule's SMS is not sent."""
    w = await world(database)
    async with database.sessions() as session:
        session.add(
            MessageTemplate(
                name="video_rescheduled",
                channel="sms",
                locale="en",
                category="transactional",
                body="Your {{ service }} is now on {{ appointment_time }}. Join: {{ link }}",
                variables=["service", "appointment_time", "link"],
            )
        )
        await session.commit()
    await create_notification_rule(
        SqlNotificationUnitOfWork(database),
        NotificationRuleDraft(
            "video_rescheduled",
            "video.rescheduled",
            "video_rescheduled",
            category=MessageCategory.TRANSACTIONAL,
        ),
    )
    _, consultation = await add_consultation(
        database,
        w["customer"],
        w["staff"],
        w["service"],
        NOW + timedelta(hours=20),
        booked_at=NOW - timedelta(days=3),
    )
    await run_pass(database, NOW)
    await patient_writes(database, "2", NOW + timedelta(minutes=1), ref="SM2")
    await patient_writes(database, "b", NOW + timedelta(minutes=2), ref="SM3")

    assert (await consultation_row(database, consultation)).version == 2  # moved
    offer, done = await replies(database)
    assert offer.startswith("No problem. New times with Dr Mara Weiss")
    assert done.startswith("Done: your Video skin consultation") and f"{PUBLIC}/v/tok" in done
    async with database.sessions() as session:
        moved = list(
            await session.scalars(
                select(BusinessEvent.idempotency_key).where(BusinessEvent.event_type == "video.rescheduled")
            )
        )
    assert moved == [f"video.rescheduled:{consultation}:2"]

    # The rule's own SMS about the move would say it again on the channel the patient was just answered on:
    # it is kept as not sent, with why (a rule reaching another channel still sends; see the domain test).
    await process_pending_events(lambda: SqlNotificationUnitOfWork(database), NOW + timedelta(minutes=3))
    async with database.sessions() as session:
        event_id = await session.scalar(
            select(BusinessEvent.id).where(BusinessEvent.event_type == "video.rescheduled")
        )
    [told] = [m for m in await outbox(database) if (m.source_ref or "").endswith(f":{event_id}")]
    assert (told.channel, told.status, told.status_reason) == (
        "sms",
        "suppressed",
        "answered_in_conversation",
    )
    assert told.payload["explanation"] == (
        "Not sent: the customer was answered about this video.rescheduled event on SMS already, in their "
        "conversation."
    )


async def test_a_time_taken_meanwhile_gets_fresh_times(database: Database) -> None:
    w = await world(database)
    other = await add_customer(database, "Bob Jones", phone="+4915100000002")
    starts = NOW + timedelta(hours=20)
    await add_consultation(
        database, w["customer"], w["staff"], w["service"], starts, booked_at=NOW - timedelta(days=3)
    )
    await run_pass(database, NOW)
    await patient_writes(database, "2", NOW + timedelta(minutes=1), ref="SM5")
    # Someone else books 10:05 before the patient answers.
    await add_consultation(database, other, w["staff"], w["service"], datetime(2026, 12, 8, 9, 5, tzinfo=UTC),
                           booked_at=NOW)  # fmt: skip
    async with database.sessions() as session:
        from storage.models.video import ClinicianTimeClaim

        taken = await session.scalar(select(Appointment.id).where(Appointment.customer_id == other))
        session.add_all(
            [ClinicianTimeClaim(staff_id=w["staff"], starts_at=datetime(2026, 12, 8, 9, m, tzinfo=UTC),
                                appointment_id=taken) for m in range(5, 35, 5)]
        )  # fmt: skip
        await session.commit()

    await patient_writes(database, "A", NOW + timedelta(minutes=2), ref="SM6")
    answer = (await replies(database))[-1]
    assert answer.startswith("Sorry, that time has just been taken. A) Tue 8 Dec 10:35 CET")
    async with database.sessions() as session:
        offers = list(await session.scalars(select(VideoRebookOffer).order_by(VideoRebookOffer.id)))
    assert [o.answered_at is not None for o in offers] == [True, False]


async def test_a_2_after_the_consultation_passed_is_offered_new_times(database: Database) -> None:
    w = await world(database)
    starts = NOW + timedelta(hours=2)
    _, consultation = await add_consultation(
        database, w["customer"], w["staff"], w["service"], starts, booked_at=NOW - timedelta(days=3)
    )
    await run_pass(database, NOW)
    later = starts + timedelta(hours=1)
    async with database.sessions() as session:
        await session.execute(update(VideoConsultation).values(status="no_show"))
        await session.commit()

    await patient_writes(database, "2", later, ref="SM7")
    answer = (await replies(database))[-1]
    assert answer.startswith(
        "That consultation has already passed. New times with Dr Mara Weiss: A) Tue 8 Dec 13:00 CET"
    )
    await patient_writes(database, "1", later + timedelta(minutes=1), ref="SM8")
    assert (await replies(database))[-1].startswith(
        "That consultation has already passed; reply to this message"
    )
    assert (await consultation_row(database, consultation)).status == "no_show"


async def test_a_1_without_a_recent_reminder_is_an_ordinary_message(database: Database) -> None:
    await world(database)
    await patient_writes(database, "1", NOW, ref="SM9")
    assert await replies(database) == [] and await open_chats(database) == 1


async def test_consent_is_kept_and_the_log_says_why_a_reminder_did_not_go(database: Database) -> None:
    await add_video_templates(database)
    opted_out = await add_customer(
        database, "Carl Opt", phone="+4915100000009", opted_out=("whatsapp", "sms")
    )
    staff = await add_clinician(database)
    service = await add_service(database)
    starts = NOW + timedelta(hours=2)
    _, consultation = await add_consultation(database, opted_out, staff, service, starts,
                                             booked_at=NOW - timedelta(days=2))  # fmt: skip

    assert await run_pass(database, NOW) == (1, 1)
    [message] = await outbox(database)
    assert (message.status, message.status_reason) == ("suppressed", "opted_out")
    log = await reminder_log(database, consultation)
    assert [(line.minutes_before, line.status) for line in log] == [(1440, "skipped"), (120, "suppressed")]
    assert log[1].reason is not None and "opted out of WhatsApp" in log[1].reason


async def test_a_reminder_at_night_still_goes_as_it_is_not_marketing(database: Database) -> None:
    w = await world(database)
    night = datetime(2026, 12, 8, 22, 30, tzinfo=UTC)  # 23:30 in Berlin, inside the default quiet hours
    await add_consultation(database, w["customer"], w["staff"], w["service"], night + timedelta(hours=2),
                           booked_at=NOW - timedelta(days=2))  # fmt: skip
    assert await run_pass(database, night) == (1, 1)
    [message] = await outbox(database)
    assert (message.status, message.next_attempt_at) == ("planned", night)


async def test_the_worker_runs_reminders_and_no_shows_from_its_job_table(
    database: Database, database_url: str
) -> None:
    w = await world(database)
    await add_consultation(database, w["customer"], w["staff"], w["service"], NOW + timedelta(hours=2),
                           booked_at=NOW - timedelta(days=2))  # fmt: skip
    settings = Settings(database_url=database_url, public_url=PUBLIC)
    watch = VideoWatch(database, settings)
    assert (await watch.reminders(NOW)).sent == 1
    assert len(await outbox(database)) == 1  # the events were processed in the same pass
    assert await watch.no_shows(NOW + timedelta(hours=2, minutes=settings.video_no_show_minutes + 1)) != []
    names = {job.name for job in BackgroundServices(Container(settings, database)).jobs()}
    assert {"video reminders", "video no-shows"} <= names


async def test_the_narrow_pass_sees_only_reminders_just_due_and_the_full_pass_the_rest(
    database: Database,
) -> None:
    w = await world(database)
    booked = NOW - timedelta(days=2)
    _, just_due = await add_consultation(database, w["customer"], w["staff"], w["service"],
                                         NOW + timedelta(hours=2) - timedelta(seconds=30), booked_at=booked)  # fmt: skip
    _, missed_by_narrow = await add_consultation(database, w["customer"], w["staff"], w["service"],
                                                 NOW + timedelta(hours=1, minutes=50), booked_at=booked)  # fmt: skip

    async def narrow() -> tuple[int, int]:
        done = await send_due_reminders(
            lambda: SqlReminderUnitOfWork(database), NOW, public_url=PUBLIC, since=NOW - timedelta(minutes=2)
        )
        return done.sent, done.skipped

    assert await narrow() == (1, 1)  # its 2-hour reminder, and its day-before one skipped as superseded
    assert {e.idempotency_key for e in await reminder_events(database)} == {
        f"video-reminder:{just_due}:1:120",
        f"video-reminder:{just_due}:1:1440",
    }
    assert await run_pass(database, NOW) == (1, 1)  # the full pass finds the other
    assert f"video-reminder:{missed_by_narrow}:1:120" in {
        e.idempotency_key for e in await reminder_events(database)
    }


async def test_a_1_by_a_signed_twilio_webhook_confirms_through_the_running_app(
    database: Database, database_url: str
) -> None:
    """The app's own wiring answers: the inbound policy carries the video replies (rooms from settings)."""
    w = await world(database)
    now = utc_now()
    _, consultation = await add_consultation(database, w["customer"], w["staff"], w["service"],
                                             now + timedelta(hours=20), booked_at=now - timedelta(days=3))  # fmt: skip
    assert await run_pass(database, now) == (1, 0)
    settings = Settings(database_url=database_url, public_url="http://testserver.local", environment="test")
    params = {"MessageSid": "SMvideo1", "From": PHONE, "To": "+15005550006", "Body": "1", "NumMedia": "0"}
    signature = RequestValidator(settings.twilio_auth_token.get_secret_value()).compute_signature(
        "http://testserver.local/webhooks/twilio/inbound", params
    )
    async with AsyncTestClient(create_app(settings)) as client:
        response = await client.post(
            "/webhooks/twilio/inbound",
            content=urlencode(params),
            headers={"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 200
    assert (await consultation_row(database, consultation)).status == "confirmed"
    [answer] = await replies(database)
    assert answer.startswith(
        "Thanks, you're confirmed for your Video skin consultation with Dr Mara Weiss on "
    )


@pytest.mark.parametrize(
    ("written", "status", "chats"),
    [
        # Staff asked something since: a bare "1" answers them, not the reminder.
        ({"channel": "sms", "provider": "twilio", "source_ref": None, "body": "Shall we call you? 1) yes 2) no"},
         "scheduled", 1),
        # The survey of another conversation went out since, as a one-off send, but no one wrote it: the "1"
        # still confirms (it went to an agent as an ordinary message).
        ({"channel": "telegram", "provider": "telegram", "source_ref": f"{SURVEY_REQUEST_PREFIX}9",
          "body": SURVEY_TEXT}, "confirmed", 0),
    ],
)  # fmt: skip
async def test_a_1_answers_staff_who_wrote_since_but_not_a_survey(
    database: Database, written: dict[str, Any], status: str, chats: int
) -> None:
    w = await world(database)
    _, consultation = await add_consultation(database, w["customer"], w["staff"], w["service"],
                                             NOW + timedelta(hours=20), booked_at=NOW - timedelta(days=3))  # fmt: skip
    await run_pass(database, NOW)
    async with database.sessions() as session:
        session.add(
            CustomerCommunication(customer_id=w["customer"], direction="outbound", source="manual",
                                  to_address=PHONE, status="sent", created_at=NOW + timedelta(minutes=1),
                                  **written)
        )  # fmt: skip
        await session.commit()
    await patient_writes(database, "1", NOW + timedelta(minutes=2), ref=f"SM{status}")
    assert (await consultation_row(database, consultation)).status == status
    assert await open_chats(database) == chats
