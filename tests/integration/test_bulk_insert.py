"""`storage.sql.insert_rows` on both engines: rows bound below SQLAlchemy read back exactly as rows SQLAlchemy
inserted, columns left out get their defaults, and the upsert changes only the columns it names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text

from storage.database import Database
from storage.models import AuditLog, ConsentRecord, Customer, CustomerConsent
from storage.sql import insert_rows, table_of

BERLIN_SUMMER = timezone(timedelta(hours=2))


async def test_rows_read_back_as_sqlalchemy_writes_them_with_defaults_filled(database: Database) -> None:
    customers = table_of(Customer)
    moment = datetime(2026, 3, 29, 3, 30, 15, 60, tzinfo=BERLIN_SUMMER)
    row = {"name": "Anna Schmidt", "phone_e164": "+4915112345678", "email": None, "created_at": moment}
    before = datetime.now(UTC)
    async with database.engine.begin() as connection:
        await connection.execute(customers.insert(), [{**row, "id": 1}])
        await insert_rows(connection, customers, [{**row, "id": 2}, {**row, "id": 3, "name": "Ben"}])
    async with database.engine.connect() as connection:
        found = (await connection.execute(select(customers).order_by(customers.c.id))).mappings().all()
        stored = (
            await connection.execute(text("SELECT CAST(created_at AS TEXT) FROM customers ORDER BY id"))
        ).scalars()
        assert len(set(stored)) == 1  # the same text (or timestamptz) whichever way it went in
    by_sqlalchemy, by_driver, ben = found
    assert by_driver["created_at"] == moment and by_driver["created_at"].tzinfo is UTC
    # Every column is what SQLAlchemy made of the same row: given, or its default.
    for column in ("name", "phone_e164", "email", "created_at", "timezone", "locale", "segment", "erased_at"):
        assert by_driver[column] == by_sqlalchemy[column], column
    assert (by_driver["timezone"], by_driver["locale"], by_driver["segment"]) == ("UTC", "en", "standard")
    assert before <= by_driver["updated_at"] <= datetime.now(UTC)
    assert ben["name"] == "Ben" and before <= ben["updated_at"] <= datetime.now(UTC)


async def test_json_and_the_upsert(database: Database) -> None:
    async with database.engine.begin() as connection:
        await insert_rows(connection, table_of(Customer), [{"id": 7, "name": "Cara Meyer"}])
        await insert_rows(
            connection,
            table_of(AuditLog),
            [{"actor": "cli", "via": "cli", "action": "t", "target": None, "detail": {"ä": [1, None]}}],
        )
        # A JSON None is JSON null, as SQLAlchemy binds it, whichever way it goes in.
        blank = {"actor": "cli", "via": "cli", "target": None, "detail": None}
        await connection.execute(table_of(AuditLog).insert(), [{**blank, "action": "by sqlalchemy"}])
        await insert_rows(connection, table_of(AuditLog), [{**blank, "action": "by driver"}])
        records = [
            {"id": n, "customer_id": 7, "channel": "sms", "status": status, "source": "import"}
            for n, status in ((1, "opted_in"), (2, "opted_out"))
        ]
        await insert_rows(connection, table_of(ConsentRecord), records)
        for record_id, status in ((1, "opted_in"), (2, "opted_out")):
            await insert_rows(
                connection,
                table_of(CustomerConsent),
                [
                    {
                        "customer_id": 7,
                        "channel": "sms",
                        "status": status,
                        "source": f"file {record_id}",
                        "record_id": record_id,
                    }
                ],
                update_on_conflict=(("customer_id", "channel"), ("status", "record_id")),
            )
    async with database.read_sessions() as session:
        assert await session.scalar(select(AuditLog.detail).where(AuditLog.action == "t")) == {"ä": [1, None]}
        nulls = await session.execute(
            select(AuditLog.action, AuditLog.detail.is_(None)).where(AuditLog.action.like("by %"))
        )
        assert sorted(nulls.all()) == [("by driver", False), ("by sqlalchemy", False)]
        consent = (await session.execute(select(CustomerConsent))).scalar_one()
        # The named columns changed; the source kept the first row's word.
        assert (consent.status, consent.record_id, consent.source) == ("opted_out", 2, "file 1")
        assert len((await session.scalars(select(ConsentRecord))).all()) == 2


async def test_a_column_whose_default_is_sql_must_be_given(database: Database) -> None:
    from sqlalchemy import Column, Integer, MetaData, Table, func

    table = Table(
        "stamped",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("made", Integer, default=func.abs(-1)),
    )
    async with database.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            return  # SQLAlchemy's own executemany there evaluates the SQL default
        with pytest.raises(ValueError, match=r"stamped\.made: its default is SQL"):
            await insert_rows(connection, table, [{"id": 1}])
