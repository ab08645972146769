"""The data model round-trips on SQLite and PostgreSQL, and its migrations run up, down and up again."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Boolean, bindparam, func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from storage import migrate
from storage.database import Database
from storage.message_feed import verify_feed
from storage.models import (
    PRODUCT_TABLES,
    Appointment,
    Base,
    BulkMessaging,
    ChatMessage,
    ChatSession,
    CommunicationAnalytics,
    CommunicationPreference,
    ConsentRecord,
    Customer,
    CustomerCommunication,
    CustomerConsent,
    Location,
    Order,
    Service,
    StaffUser,
)
from storage.models.base import UtcDateTime
from storage.seeding import SeedPlan, seed_database


async def table_names(database: Database) -> set[str]:
    async with database.engine.connect() as connection:
        return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))


async def test_migration_creates_every_product_table_and_the_supporting_ones(database: Database) -> None:
    names = await table_names(database)
    assert set(PRODUCT_TABLES) <= names
    assert set(Base.metadata.tables) <= names
    assert len(PRODUCT_TABLES) == 18


async def test_a_customer_journey_round_trips_with_utc_timestamps(database: Database) -> None:
    berlin_evening = datetime(2026, 3, 29, 21, 30, tzinfo=timezone(timedelta(hours=2)))
    async with database.sessions() as session:
        clinic = Location(code="BER", name="Berlin Mitte", country="DE", timezone="Europe/Berlin")
        service = Service(
            code="VID30",
            name="Video consult",
            kind="video",
            duration_minutes=30,
            price_minor=4900,
            currency="EUR",
        )
        staff = StaffUser(email="ana@northwind.example", name="Ana", role="agent", telegram_user_id=42)
        customer = Customer(
            name="Jonas Weber",
            phone_e164="+4915112345678",
            email="jonas@example.com",
            timezone="Europe/Berlin",
            locale="de-DE",
            created_at=berlin_evening,
        )
        session.add_all([clinic, service, staff, customer])
        await session.flush()
        session.add(
            CommunicationPreference(
                customer_id=customer.id,
                preferred_channel="whatsapp",
                quiet_hours_start=time(21),
                quiet_hours_end=time(8),
            )
        )
        record = ConsentRecord(
            customer_id=customer.id, channel="sms", status="opted_out", source="sms_keyword"
        )
        session.add(record)
        await session.flush()
        session.add(
            CustomerConsent(
                customer_id=customer.id,
                channel="sms",
                status="opted_out",
                source="sms_keyword",
                record_id=record.id,
            )
        )
        session.add(
            Order(
                order_number="NW-1",
                customer_id=customer.id,
                status="paid",
                source_channel="web",
                amount_minor=12_999,
                currency="EUR",
                created_at=berlin_evening,
            )
        )
        session.add(
            Appointment(
                customer_id=customer.id,
                service_id=service.id,
                staff_id=staff.id,
                location_id=clinic.id,
                kind="video",
                status="no_show",
                scheduled_at=berlin_evening,
                duration_minutes=30,
                price_minor=4900,
                currency="EUR",
            )
        )
        session.add(
            CustomerCommunication(
                customer_id=customer.id,
                channel="sms",
                provider="twilio",
                direction="outbound",
                source="manual",
                status="planned",
                idempotency_key="manual:1:sms",
                to_address="+4915112345678",
                body="Hi Jonas",
                segments=1,
                encoding="GSM-7",
            )
        )
        await session.commit()

    async with database.sessions() as session:
        stored = (await session.scalars(select(Customer))).one()
        assert stored.created_at == berlin_evening
        assert stored.created_at.tzinfo is not None and stored.created_at.utcoffset() == timedelta(0)
        order = (await session.scalars(select(Order))).one()
        assert (order.amount_minor, order.currency) == (12_999, "EUR")
        preference = (await session.scalars(select(CommunicationPreference))).one()
        assert (preference.quiet_hours_start, preference.quiet_hours_end) == (time(21), time(8))
        message = (await session.scalars(select(CustomerCommunication))).one()
        assert message.id > 0 and message.status == "planned"


async def test_constraints_refuse_bad_rows(database: Database) -> None:
    bad_rows = [
        Customer(name="No plus", phone_e164="4915112345678"),
        StaffUser(email="x@example.com", name="X", role="superuser"),
        BulkMessaging(slug="s", name="S", template_name="t", status="exploded"),
    ]
    for row in bad_rows:
        async with database.sessions() as session:
            session.add(row)
            with pytest.raises(IntegrityError):
                await session.commit()


async def test_duplicate_idempotency_keys_are_refused(database: Database) -> None:
    def message() -> CustomerCommunication:
        return CustomerCommunication(
            channel="sms",
            provider="twilio",
            direction="outbound",
            source="campaign",
            status="planned",
            idempotency_key="campaign:7:42:sms",
            to_address="+4915112345678",
            body="x",
        )

    async with database.sessions() as session:
        session.add(message())
        await session.commit()
    async with database.sessions() as session:
        session.add(message())
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_naive_timestamps_are_refused(database: Database) -> None:
    async with database.sessions() as session:
        session.add(Customer(name="Naive", created_at=datetime(2026, 1, 1, 12, 0)))
        with pytest.raises(Exception, match="naive datetime"):
            await session.commit()


async def test_migrations_run_down_and_up_again(database_url: str) -> None:
    database = Database.connect(database_url)
    try:
        await migrate.downgrade(database_url, "base")
        assert await table_names(database) <= {"alembic_version"}
        await migrate.upgrade(database_url)
        assert set(PRODUCT_TABLES) <= await table_names(database)
        assert await migrate.current_revision(database.engine) == migrate.head_revision()
    finally:
        await database.dispose()


def test_utc_now_is_aware() -> None:
    assert datetime.now(UTC).tzinfo is UTC


async def test_upgrading_a_database_with_conversations_keeps_every_row(database_url: str) -> None:
    """SQLite rebuilds a table to change it; rows that refer to it must survive (0007 rebuilds chat_sessions
    and staff_users, which chat_messages and much else refer to)."""
    await migrate.downgrade(database_url, "0006")
    database = Database.connect(database_url)
    try:
        async with database.sessions() as session:
            at = datetime(2026, 1, 1, tzinfo=UTC)
            for statement in (
                "INSERT INTO customers (id, name, timezone, locale, segment, created_at, updated_at) "
                "VALUES (1, 'Ada', 'UTC', 'en', 'standard', :at, :at)",
                "INSERT INTO staff_users (id, email, name, role, timezone, locale, active, created_at) "
                "VALUES (1, 'lena@x.example', 'Lena', 'agent', 'UTC', 'en', :yes, :at)",
                "INSERT INTO chat_sessions (id, customer_id, channel, status, assigned_staff_id, started_at) "
                "VALUES (1, 1, 'sms', 'open', 1, :at)",
                "INSERT INTO chat_messages (id, session_id, author, staff_id, body, created_at) "
                "VALUES (1, 1, 'staff', 1, 'Hello', :at)",
            ):
                await session.execute(
                    text(statement).bindparams(
                        bindparam("at", at, type_=UtcDateTime()), bindparam("yes", True, type_=Boolean())
                    )
                    if ":yes" in statement
                    else text(statement).bindparams(bindparam("at", at, type_=UtcDateTime()))
                )
            await session.commit()
        await migrate.upgrade(database_url)
        async with database.read_sessions() as session:
            assert await session.scalar(select(func.count()).select_from(ChatMessage)) == 1
            staff = await session.get(StaffUser, 1)
            chat = await session.get(ChatSession, 1)
        assert staff is not None and (staff.availability, staff.chat_capacity) == ("away", 8)
        assert chat is not None and chat.assigned_staff_id == 1 and chat.snoozed_until is None
    finally:
        await database.dispose()


async def test_upgrading_fills_the_sms_segment_figures_from_the_messages_already_sent(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """0013 adds sent SMS by encoding to the daily figures; a database that already has messages gets them
    filled in on the day each was sent, so `analytics verify` finds no drift after the upgrade."""
    monkeypatch.setenv("SWITCHBOARD_BUSINESS_TIMEZONE", "Europe/Berlin")
    database = Database.connect(database_url)
    try:
        await seed_database(database, SeedPlan(customers=40, days=20, seed=5, end_date=date(2026, 11, 20)))
        async with database.read_sessions() as session:
            seeded = (
                await session.execute(
                    select(
                        func.sum(CommunicationAnalytics.gsm7_segments),
                        func.sum(CommunicationAnalytics.ucs2_sent),
                    )
                )
            ).one()
            raw = await session.scalar(
                select(func.sum(CustomerCommunication.segments)).where(
                    CustomerCommunication.channel == "sms", CustomerCommunication.sent_at.is_not(None)
                )
            )
        assert raw and seeded[0]
        await migrate.downgrade(database_url, "0012")
        await migrate.upgrade(database_url)
        async with database.read_sessions() as session:
            after = (
                await session.execute(
                    select(
                        func.sum(CommunicationAnalytics.gsm7_segments + CommunicationAnalytics.ucs2_segments),
                        func.sum(CommunicationAnalytics.ucs2_sent),
                    )
                )
            ).one()
            assert after[0] == raw
            assert after[1] == seeded[1]
            assert (await verify_feed(session, ZoneInfo("Europe/Berlin"))).drift == []
    finally:
        await database.dispose()
