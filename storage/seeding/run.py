"""Fills an empty database with the Northwind Clinics demo history, streaming customers in chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

from sqlalchemy import Index, Table, delete, func, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.schema import CreateIndex, DropIndex

from storage.analytics.rollup_store import ROLLUP_WATERMARK
from storage.database import Database
from storage.models import Base, BulkMessaging, CustomerActivityDay, PerformanceMetric
from storage.seeding.campaigns import draft_campaign_row, plan_campaigns
from storage.seeding.canned_replies import canned_reply_rows
from storage.seeding.catalogue import (
    channel_rows,
    location_rows,
    notification_rows,
    service_rows,
    staff_rows,
    template_rows,
)
from storage.seeding.messages import Messenger
from storage.seeding.people import PhoneBook
from storage.seeding.plan import Calendar, DatabaseNotEmpty, SeedPlan, SeedSummary, derive_rng
from storage.seeding.sla import seed_sla_history, sla_policy_rows
from storage.seeding.story import customer_story
from storage.seeding.video import clinician_hours_rows, seed_time_claims
from storage.seeding.widget import widget_key_rows
from storage.seeding.world import World
from storage.seeding.writer import IdSequence, RowSink

#: Customers per transaction; their whole history is generated and committed together.
CHUNK_CUSTOMERS = 5000
#: SQLite page cache during the load (KiB): holds the unique indexes that stay in place while rows stream in.
SQLITE_CACHE_KIB = 131_072

#: Tables the seeder fills. Message status events are skipped on purpose: a history row per
#: receipt would double the biggest table for no insight the message rows do not already carry.
#: analytics_data, kpi_metrics, custom_reports and report_schedules are left to the engines that own them.
SEEDED_TABLES: tuple[str, ...] = (
    "locations", "staff_users", "services", "communication_channels", "message_templates",
    "automated_notifications", "bulk_messaging", "customers", "customer_tags", "communication_preferences",
    "consent_records", "customer_consents", "orders", "payments", "refunds", "appointments",
    "video_consultations", "customer_communications", "chat_sessions", "chat_messages",
    "communication_analytics", "canned_replies", "chat_widget_keys", "chat_widget_visitors",
    "sla_policies", "chat_sla_events", "clinician_hours", "clinician_time_claims",
)  # fmt: skip


async def seed_database(
    database: Database,
    plan: SeedPlan,
    progress: Callable[[int, int], None] | None = None,
    *,
    force: bool = False,
) -> SeedSummary:
    """Write the demo history for `plan`; refuses a database that already has seeded rows unless `force`."""
    await _make_room(database, force)
    calendar = Calendar(plan)
    ids, sink = IdSequence(), RowSink()
    set_up_at = calendar.start_at - timedelta(days=400)
    templates, lookup = template_rows(set_up_at)
    staff, members = staff_rows(set_up_at)
    campaigns = plan_campaigns(calendar, derive_rng(plan.seed, "campaigns"))
    agents: dict[int, list[int]] = {}
    for member in members:
        if member.role == "agent" and member.location_id is not None:
            agents.setdefault(member.location_id, []).append(member.id)
    world = World(
        seed=plan.seed, customer_total=plan.customers, calendar=calendar, ids=ids, sink=sink,
        messenger=Messenger(calendar, ids, sink, lookup), campaigns=campaigns, agents_by_clinic=agents,
        agent_clinic={m.id: m.location_id or 1 for m in members}, phones=PhoneBook(),
    )  # fmt: skip
    setup = {
        "locations": location_rows(set_up_at),
        "staff_users": staff,
        "services": service_rows(),
        "communication_channels": channel_rows(set_up_at),
        "message_templates": templates,
        "automated_notifications": notification_rows(set_up_at, created_by=1),
        "bulk_messaging": [c.row(plan.customers) for c in campaigns]
        + [draft_campaign_row(len(campaigns) + 1, calendar)],
        "sla_policies": sla_policy_rows(set_up_at),
        "canned_replies": canned_reply_rows(set_up_at, created_by=1),
        "chat_widget_keys": widget_key_rows(set_up_at),
        "clinician_hours": clinician_hours_rows(members),
    }
    async with database.engine.connect() as connection, _bulk_load(connection):
        async with connection.begin():
            for table, rows in setup.items():
                for row in rows:
                    sink.add(table, row)
            await sink.flush(connection)
        for first in range(1, plan.customers + 1, CHUNK_CUSTOMERS):
            last = min(first + CHUNK_CUSTOMERS, plan.customers + 1)
            async with connection.begin():
                for customer_id in range(first, last):
                    customer_story(world, customer_id)
                    if sink.full:
                        await sink.flush(connection)
                await sink.flush(connection)
            if progress is not None:
                progress(last - 1, plan.customers)
        async with connection.begin():
            for campaign in campaigns:
                await connection.execute(
                    update(BulkMessaging)
                    .where(BulkMessaging.id == campaign.id)
                    .values(planned_count=campaign.planned, excluded_count=campaign.excluded)
                )
            for row in world.messenger.analytics_rows():
                sink.add("communication_analytics", row)
                if sink.full:
                    await sink.flush(connection)
            await sink.flush(connection)
            await seed_sla_history(connection, sink, ids, setup["sla_policies"], calendar.end_at)
            await sink.flush(connection)
            await seed_time_claims(connection, sink)
            if database.dialect == "postgresql":
                await _advance_sequences(connection)
    return SeedSummary(dict(sink.counts))


def _secondary_indexes() -> list[Index]:
    """The plain indexes of the seeded tables: rebuilt once after the load instead of row by row."""
    return [
        index
        for name in SEEDED_TABLES
        for index in sorted(Base.metadata.tables[name].indexes, key=lambda i: str(i.name))
        if not index.unique
    ]


@asynccontextmanager
async def _bulk_load(connection: AsyncConnection) -> AsyncIterator[None]:
    """Drop the secondary indexes for the load and build them again afterwards, even when it fails.

    On SQLite the connection also gets a large page cache, skips the per-commit sync and the per-row
    foreign-key lookups while loading (a crash mid-seed leaves demo data to re-seed with --force, never
    a corrupt file: WAL stays on); the settings are restored before the connection goes back to the pool.
    Dropping and creating check first, so a run that died before rebuilding is repaired by the next.
    """
    sqlite = connection.dialect.name == "sqlite"
    indexes = _secondary_indexes()

    # IF [NOT] EXISTS rather than checkfirst: reflection cannot see an expression index, so checkfirst
    # would create ix_customer_communications_failures twice.
    def drop(sync: Connection) -> None:
        for index in indexes:
            sync.execute(DropIndex(index, if_exists=True))

    def create(sync: Connection) -> None:
        for index in indexes:
            sync.execute(CreateIndex(index, if_not_exists=True))

    if sqlite:
        await _pragmas(
            connection,
            f"cache_size=-{SQLITE_CACHE_KIB}",
            "temp_store=MEMORY",
            "synchronous=OFF",
            # Rows arrive parents first (RowSink flushes in foreign-key order); PostgreSQL still checks.
            "foreign_keys=OFF",
        )
    async with connection.begin():
        await connection.run_sync(drop)
    try:
        yield
    finally:
        if connection.in_transaction():
            await connection.rollback()
        async with connection.begin():
            await connection.run_sync(create)
        if sqlite:
            await _pragmas(
                connection, "foreign_keys=ON", "synchronous=NORMAL", "temp_store=DEFAULT", "cache_size=-2000"
            )


async def _pragmas(connection: AsyncConnection, *settings: str) -> None:
    """Set connection pragmas on the driver, outside any transaction (constant settings only)."""
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    for setting in settings:
        await driver.execute(f"PRAGMA {setting}")


def _tables_to_clear() -> list[Table]:
    """The seeded tables plus every table that points at them, children first."""
    names = set(SEEDED_TABLES)
    changed = True
    while changed:
        changed = False
        for table in Base.metadata.sorted_tables:
            if table.name not in names and any(fk.column.table.name in names for fk in table.foreign_keys):
                names.add(table.name)
                changed = True
    return [t for t in reversed(Base.metadata.sorted_tables) if t.name in names]


async def _make_room(database: Database, force: bool) -> None:
    tables = _tables_to_clear()
    async with database.engine.begin() as connection:
        if not force:
            for table in tables:
                if table.name in SEEDED_TABLES and (await connection.execute(select(table).limit(1))).first():
                    raise DatabaseNotEmpty(
                        f"{table.name} already has rows; seed an empty database or pass force=True"
                    )
            return
        if database.dialect == "postgresql":
            # TRUNCATE is instant on tens of millions of rows; the list holds every referencing table.
            await connection.execute(text("TRUNCATE " + ", ".join(f'"{t.name}"' for t in tables)))
        else:
            for table in tables:
                await connection.execute(table.delete())
        # The kept customer days and the rollups' watermark described the replaced orders: without them the
        # answers read the new facts until the rollup job (or `rollups rebuild`) builds them again.
        await connection.execute(delete(CustomerActivityDay))
        await connection.execute(delete(PerformanceMetric).where(PerformanceMetric.name == ROLLUP_WATERMARK))


async def _advance_sequences(connection: AsyncConnection) -> None:
    """Explicit ids leave PostgreSQL's sequences at 1; move them past the seeded ids so inserts work."""
    for name in SEEDED_TABLES:
        table = Base.metadata.tables[name]
        if [c.name for c in table.primary_key.columns] != ["id"]:
            continue
        highest = (await connection.execute(select(func.max(table.c.id)))).scalar()
        if highest is not None:
            await connection.execute(
                text("SELECT setval(pg_get_serial_sequence(:table, 'id'), :highest)"),
                {"table": name, "highest": highest},
            )
