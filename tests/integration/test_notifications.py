"""Automated notifications on SQLite and PostgreSQL: events stored once, reminders scheduled, opt-outs kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from domain.notifications.model import NotificationRuleDraft
from domain.notifications.use_cases import create_notification_rule, process_pending_events, record_event
from domain.vocabulary import Channel, MessageCategory
from storage.database import Database
from storage.models import (
    BusinessEvent,
    CustomerCommunication,
    MessageTemplate,
)
from storage.notifications import SqlNotificationUnitOfWork
from tests.integration.test_campaigns import add_customer

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


async def setup_rules(database: Database) -> None:
    async with database.sessions() as session:
        session.add_all(
            [
                MessageTemplate(
                    name="order_confirmation",
                    channel="sms",
                    locale="en",
                    category="transactional",
                    body="Thanks {{ first_name }}, order {{ order_ref }} is confirmed.",
                    variables=["first_name", "order_ref"],
                ),
                MessageTemplate(
                    name="appointment_reminder",
                    channel="sms",
                    locale="en",
                    category="transactional",
                    body="Reminder: {{ service }} on {{ appointment_at }}.",
                    variables=["service", "appointment_at"],
                ),
            ]
        )
        await session.commit()
    uow = SqlNotificationUnitOfWork(database)
    await create_notification_rule(
        uow, NotificationRuleDraft("order confirmed", "order.created", "order_confirmation", (Channel.SMS,))
    )
    await create_notification_rule(
        uow,
        NotificationRuleDraft(
            "reminder 24h",
            "appointment.booked",
            "appointment_reminder",
            (Channel.SMS,),
            offset_minutes=-1440,
            category=MessageCategory.TRANSACTIONAL,
        ),
    )


async def messages(database: Database) -> list[CustomerCommunication]:
    async with database.sessions() as session:
        return list(await session.scalars(select(CustomerCommunication).order_by(CustomerCommunication.id)))


async def test_a_duplicate_event_key_yields_one_event_and_one_message(database: Database) -> None:
    await setup_rules(database)
    customer = await add_customer(database, "Alice Smith", phone="+4915100000001")
    uow = SqlNotificationUnitOfWork(database)

    first = await record_event(uow, "order.created", "order-77", customer, {"order_ref": "A-77"}, NOW)
    again = await record_event(uow, "order.created", "order-77", customer, {"order_ref": "A-77"}, NOW)
    report = await process_pending_events(lambda: SqlNotificationUnitOfWork(database), NOW)
    await record_event(uow, "order.created", "order-77", customer, {"order_ref": "A-77"}, NOW)
    later = await process_pending_events(lambda: SqlNotificationUnitOfWork(database), NOW)

    assert first.created and not again.created and again.event.id == first.event.id
    assert (report.events, report.planned, later.events) == (1, 1, 0)
    [message] = await messages(database)
    assert message.body == "Thanks Alice, order A-77 is confirmed."
    assert message.idempotency_key.endswith(f":{customer}:sms") if message.idempotency_key else False
    assert message.source == "notification"
    async with database.sessions() as session:
        event = await session.get(BusinessEvent, first.event.id)
        assert event is not None and event.processed_at == NOW


async def test_a_reminder_is_scheduled_a_day_before_the_appointment(database: Database) -> None:
    await setup_rules(database)
    customer = await add_customer(database, "Alice Smith", phone="+4915100000001")
    appointment_at = NOW + timedelta(days=3, hours=2)
    await record_event(
        SqlNotificationUnitOfWork(database),
        "appointment.booked",
        "appt-1",
        customer,
        {"appointment_at": appointment_at.isoformat(), "service": "Eye test"},
        NOW,
    )
    await process_pending_events(lambda: SqlNotificationUnitOfWork(database), NOW)

    [message] = await messages(database)
    assert message.status == "planned"
    assert message.next_attempt_at == appointment_at - timedelta(hours=24)
    assert message.source_ref is not None and message.source_ref.endswith(":1")


async def test_an_opted_out_customer_gets_a_suppressed_row_with_the_reason(database: Database) -> None:
    await setup_rules(database)
    customer = await add_customer(database, "Bob Jones", phone="+4915100000002", opted_out=("sms",))
    await record_event(
        SqlNotificationUnitOfWork(database), "order.created", "order-9", customer, {"order_ref": "B-9"}, NOW
    )
    report = await process_pending_events(lambda: SqlNotificationUnitOfWork(database), NOW)

    [message] = await messages(database)
    assert (message.status, message.status_reason) == ("suppressed", "opted_out")
    assert message.payload is not None and "opted out of SMS" in message.payload["explanation"]
    assert report.suppressed == 1 and report.by_reason == {"opted_out": 1}


async def test_transactional_messages_ignore_quiet_hours(database: Database) -> None:
    await setup_rules(database)
    customer = await add_customer(database, "Aiko Tanaka", phone="+8190000000001", timezone="Asia/Tokyo")
    await record_event(
        SqlNotificationUnitOfWork(database), "order.created", "order-10", customer, {"order_ref": "C-10"}, NOW
    )
    await process_pending_events(lambda: SqlNotificationUnitOfWork(database), NOW)

    [message] = await messages(database)
    assert (message.status, message.next_attempt_at) == ("planned", NOW)


async def test_a_rule_without_channels_reaches_a_patient_on_the_channel_they_opted_in_on(
    database: Database,
) -> None:
    """WhatsApp comes first in the default order and a phone number reaches it; a patient who said yes to
    SMS only and named no preferred channel still hears on SMS. One who said nothing gets WhatsApp."""
    async with database.sessions() as session:
        for channel, extra in (("sms", {}), ("whatsapp", {"whatsapp_name": "video_booked_v1"})):
            session.add(
                MessageTemplate(
                    name="video_booked",
                    channel=channel,
                    locale="en",
                    category="transactional",
                    body="Your consultation: {{ link }}",
                    variables=["link"],
                    **extra,
                )
            )
        await session.commit()
    uow = SqlNotificationUnitOfWork(database)
    await create_notification_rule(uow, NotificationRuleDraft("booked", "video.booked", "video_booked", ()))
    said_sms = await add_customer(database, "Sara Sms", phone="+4915100000011", opted_in=("sms",))
    said_nothing = await add_customer(database, "Nora None", phone="+4915100000012")
    for customer in (said_sms, said_nothing):
        await record_event(
            uow, "video.booked", f"v-{customer}", customer, {"link": "https://x.example/v/1"}, NOW
        )
    await process_pending_events(lambda: SqlNotificationUnitOfWork(database), NOW)

    channels = {m.customer_id: m.channel for m in await messages(database)}
    assert channels == {said_sms: "sms", said_nothing: "whatsapp"}


async def test_an_event_the_customer_was_answered_about_sends_no_rule_message_on_that_channel(
    database: Database,
) -> None:
    """A patient who picked a new time by letter on SMS got "Done: …" there; a rule's SMS about the same
    move would say it again. On another channel (the one the rule reaches) it is still sent."""
    await setup_rules(database)
    customer = await add_customer(database, "Alice Smith", phone="+4915100000001")
    uow = SqlNotificationUnitOfWork(database)
    await record_event(uow, "order.created", "o-1", customer, {"order_ref": "A-1", "answered_on": "sms"}, NOW)
    await record_event(
        uow, "order.created", "o-2", customer, {"order_ref": "A-2", "answered_on": "email"}, NOW
    )
    report = await process_pending_events(lambda: SqlNotificationUnitOfWork(database), NOW)

    answered, other = await messages(database)
    assert (answered.channel, answered.status, answered.status_reason) == (
        "sms",
        "suppressed",
        "answered_in_conversation",
    )
    assert answered.payload is not None and answered.payload["explanation"] == (
        "Not sent: the customer was answered about this order.created event on SMS already, in their "
        "conversation."
    )
    assert (other.channel, other.status, other.body) == (
        "sms",
        "planned",
        "Thanks Alice, order A-2 is confirmed.",
    )
    assert report.by_reason == {"answered_in_conversation": 1}
