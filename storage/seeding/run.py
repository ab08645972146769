"""Fills an empty database with the Northwind Clinics demo history, streaming customers in chunks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import Table, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.database import Database
from storage.models import Base, BulkMessaging
from storage.seeding.campaigns import draft_campaign_row, plan_campaigns
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
from storage.seeding.story import customer_story
from storage.seeding.world import World
from storage.seeding.writer import IdSequence, RowSink

#: Customers per transaction; their whole history is generated and committed together.
CHUNK_CUSTOMERS = 5000

#: Tables the seeder fills. Message status events are skipped on purpose: a history row per
#: receipt would double the biggest table for no insight the message rows do not already carry.
#: analytics_data, kpi_metrics, custom_reports and report_schedules are left to the engines that own them.
SEEDED_TABLES: tuple[str, ...] = (
    "locations", "staff_users", "services", "communication_channels", "message_templates",
    "automated_notifications", "bulk_messaging", "customers", "customer_tags", "communication_preferences",
    "consent_records", "customer_consents", "orders", "payments", "refunds", "appointments",
    "video_consultations", "customer_communications", "chat_sessions", "chat_messages",
    "communication_analytics",
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
    }
    async with database.engine.begin() as connection:
        for table, rows in setup.items():
            for row in rows:
                sink.add(table, row)
        await sink.flush(connection)
    for first in range(1, plan.customers + 1, CHUNK_CUSTOMERS):
        last = min(first + CHUNK_CUSTOMERS, plan.customers + 1)
        async with database.engine.begin() as connection:
            for customer_id in range(first, last):
                customer_story(world, customer_id)
                if sink.full:
                    await sink.flush(connection)
            await sink.flush(connection)
        if progress is not None:
            progress(last - 1, plan.customers)
    async with database.engine.begin() as connection:
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
        if database.dialect == "postgresql":
            await _advance_sequences(connection)
    return SeedSummary(dict(sink.counts))


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
