"""The demo seeder: plausible Northwind history, identical on every run and engine, safe to re-run."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from datetime import UTC, date
from pathlib import Path
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from sqlalchemy import func, insert, select

from storage.database import Database
from storage.message_feed import verify_feed
from storage.models import (
    Appointment,
    BulkMessaging,
    CommunicationAnalytics,
    ConsentRecord,
    CustomerCommunication,
    CustomerConsent,
    Location,
)
from storage.models import Customer as CustomerModel
from storage.seeding import SEEDED_TABLES, DatabaseNotEmpty, SeedPlan, content_checksums, seed_database

SMALL = SeedPlan(customers=300, days=60, seed=11, end_date=date(2025, 6, 30))


async def _count(database: Database, model: type, *where: object) -> int:
    async with database.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)  # type: ignore[arg-type]


async def test_small_plan_fills_every_seeded_table_plausibly(database: Database) -> None:
    summary = await seed_database(database, SMALL)

    assert all(summary.counts.get(table, 0) > 0 for table in SEEDED_TABLES), summary.counts
    checksums = await content_checksums(database)
    assert {t: checksums[t][0] for t in SEEDED_TABLES} == {t: summary.counts[t] for t in SEEDED_TABLES}

    appointments = await _count(database, Appointment)
    no_shows = await _count(database, Appointment, Appointment.status == "no_show")
    assert 0.05 <= no_shows / appointments <= 0.15

    sms_consents = await _count(database, CustomerConsent, CustomerConsent.channel == "sms")
    sms_out = await _count(
        database, CustomerConsent, CustomerConsent.channel == "sms", CustomerConsent.status == "opted_out"
    )
    assert 0.005 <= sms_out / sms_consents <= 0.15


async def test_current_consent_is_the_latest_ledger_entry(database: Database) -> None:
    await seed_database(database, SMALL)
    async with database.sessions() as session:
        records = (await session.scalars(select(ConsentRecord))).all()
        current = (await session.scalars(select(CustomerConsent))).all()
    latest: dict[tuple[int, str], ConsentRecord] = {}
    for record in sorted(records, key=lambda r: (r.recorded_at, r.id)):
        latest[(record.customer_id, record.channel)] = record
    assert len(current) == len(latest)
    for row in current:
        record = latest[(row.customer_id, row.channel)]
        assert (row.record_id, row.status, row.source, row.changed_at) == (
            record.id, record.status, record.source, record.recorded_at,
        )  # fmt: skip


async def test_daily_figures_match_the_messages(database: Database) -> None:
    await seed_database(database, SMALL)
    async with database.sessions() as session:
        sent_at = (
            await session.scalars(
                select(CustomerCommunication.sent_at).where(
                    CustomerCommunication.direction == "outbound", CustomerCommunication.sent_at.is_not(None)
                )
            )
        ).all()
        figures = (
            await session.execute(select(CommunicationAnalytics.day, CommunicationAnalytics.sent))
        ).all()
        campaigns = (await session.scalars(select(BulkMessaging))).all()
        per_campaign = dict(
            (
                await session.execute(
                    select(CustomerCommunication.campaign_id, func.count())
                    .where(CustomerCommunication.source == "campaign")
                    .group_by(CustomerCommunication.campaign_id)
                )
            ).all()
        )
    by_day: Counter[date] = Counter()
    for day, sent in figures:
        by_day[day] += sent
    # Figures are cut on the business's days, as the running app cuts them (storage.message_feed).
    berlin = ZoneInfo(SMALL.business_tz)
    assert +by_day == Counter(moment.astimezone(berlin).date() for moment in sent_at if moment is not None)
    async with database.sessions() as session:
        assert (await verify_feed(session, berlin)).drift == []
    for campaign in campaigns:
        assert campaign.planned_count == per_campaign.get(campaign.id, 0)
    assert any(c.status == "completed" and c.excluded_count > 0 for c in campaigns)


async def test_contact_details_are_valid_and_new_rows_get_fresh_ids(database: Database) -> None:
    await seed_database(database, SMALL)
    async with database.sessions() as session:
        phones = (await session.scalars(select(CustomerModel.phone_e164))).all()
        assert all(phonenumbers.is_valid_number(phonenumbers.parse(p)) for p in phones if p)
        # After explicit ids, PostgreSQL's sequences must have been moved past them.
        await session.execute(
            insert(Location).values(
                code="HAM", name="Northwind Hamburg", country="DE", timezone="Europe/Berlin"
            )
        )
        await session.commit()
        assert await session.scalar(select(func.max(Location.id))) == 7


async def test_refuses_a_database_with_data_unless_forced(database: Database) -> None:
    await seed_database(database, SMALL)
    with pytest.raises(DatabaseNotEmpty):
        await seed_database(database, SMALL)
    first = await content_checksums(database)
    await seed_database(database, SMALL, force=True)
    assert await content_checksums(database) == first


async def test_same_plan_gives_the_same_content_and_another_seed_does_not(
    database: Database, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    progress: list[tuple[int, int]] = []
    await seed_database(database, SMALL, progress=lambda done, total: progress.append((done, total)))
    first = await content_checksums(database)
    assert progress[-1] == (300, 300)
    if database.dialect == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        shutil.copy(template, tmp_path / "second.db")
        other = Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'second.db'}")
    else:
        other = database
    try:
        await seed_database(other, SMALL, force=other is database)
        assert await content_checksums(other) == first
        await seed_database(other, SeedPlan(300, 60, 12, SMALL.end_date), force=True)
        changed = await content_checksums(other)
        assert changed["customer_communications"] != first["customer_communications"]
    finally:
        if other is not database:
            await other.dispose()


@pytest.mark.postgres
async def test_sqlite_and_postgresql_get_identical_content(
    sqlite_template: Path, postgres_url: str, tmp_path: Path
) -> None:
    shutil.copy(sqlite_template, tmp_path / "engine.db")
    sums = []
    for url in (f"sqlite+aiosqlite:///{tmp_path / 'engine.db'}", postgres_url):
        database = Database.connect(url)
        try:
            await seed_database(database, SMALL, force=True)
            sums.append(await content_checksums(database))
        finally:
            await database.dispose()
    assert sums[0] == sums[1]


@pytest.mark.slow
async def test_throughput_smoke_on_sqlite(database: Database) -> None:
    if database.dialect != "sqlite":
        pytest.skip("the throughput smoke measures the embedded engine")
    started = time.perf_counter()
    summary = await seed_database(database, SeedPlan(2000, 365, 3, date(2025, 6, 30)))
    elapsed = time.perf_counter() - started
    rows = sum(summary.counts.values())
    print(f"seeded {rows} rows in {elapsed:.1f}s: {rows / elapsed:.0f} rows/s; {summary.counts}")
    assert summary.counts["customer_communications"] > 2000 * 30


def test_bulk_writer_binds_timestamps_exactly_as_sqlalchemy_does() -> None:
    from datetime import datetime, timedelta, timezone

    from sqlalchemy.dialects import sqlite

    from storage.models.base import UtcDateTime, sqlite_timestamp

    dialect = sqlite.dialect()
    process = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    for moment in (
        datetime(2025, 6, 30, 12, 0, tzinfo=UTC),
        datetime(2025, 1, 2, 3, 4, 5, 60, tzinfo=UTC),
        datetime(2025, 3, 30, 2, 30, tzinfo=timezone(timedelta(hours=2))),
    ):
        assert sqlite_timestamp(moment) == process(moment)
    with pytest.raises(ValueError):
        sqlite_timestamp(datetime(2025, 1, 1))
