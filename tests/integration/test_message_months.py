"""Messages by month (migration 0020, storage/partitions.py), on both engines: the send-once keys hold
across months, and old months go with their history and keys while chat turns and daily figures stay.
On PostgreSQL: each month's rows sit in its own partition, rows outside the made months wait in the
default partition until the worker's pass moves them, and a query bounded in time reads only its months."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from domain.conversations.model import CustomerMessage
from domain.conversations.use_cases import InboundPolicy, handle_customer_message
from domain.delivery.dispatch import Dispatcher
from domain.delivery.outbox import OutboxEntry
from domain.delivery.pacing import TokenBucket
from domain.delivery.ports import DeliveryReceipt, InboundMessage, OutboundMessage, ProviderAcceptance
from domain.vocabulary import Channel, MessageCategory, MessageSource, MessageStatus
from reports.periods import PeriodSpec
from reports.query import MetricQuery, run_query
from reports.rollups import TouchedFacts, rebuild_rollups, update_rollups_for
from storage import migrate, partitions
from storage.analytics.rollup_store import ROLLUPS_LOCK_KEY
from storage.conversations import SqlConversations
from storage.database import Database
from storage.message_feed import check_message_feed, dropped_figures, recorded_feed, recount
from storage.message_months import DETACHED_MARK, month_of, months_detached
from storage.models import (
    ChatMessage,
    ChatSession,
    CommunicationAnalytics,
    Customer,
    CustomerCommunication,
    DroppedMessageFigures,
    MessageStatusEvent,
)
from storage.outbox import SqlOutbox
from storage.outbox_insert import insert_outbox_entries
from storage.partitions import (
    PARTITIONS_LOCK_KEY,
    drop_old_messages,
    keep_month_partitions,
    retention_boundary,
)
from storage.queries.messages import (
    MessageLogFilters,
    message_detail,
    message_log,
    message_page,
    message_with_history,
)
from storage.seeding import SeedPlan, seed_database
from storage.unit_of_work import SqlUnitOfWork
from storage.units import UnitsOfWork
from switchboard.cli import main as cli
from tests.conftest import FreshDatabases

NOW = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
OLD = datetime(2025, 6, 10, 8, 0, tzinfo=UTC)  # more than 12 months before NOW
RECENT = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def entry(n: int) -> OutboxEntry:
    return OutboxEntry(
        customer_id=None,
        channel=Channel.SMS,
        source=MessageSource.CAMPAIGN,
        source_ref="months",
        category=MessageCategory.MARKETING,
        to_address=f"+49151000000{n:02d}",
        body=f"Hello {n}",
    )


async def plan(database: Database, entries: list[OutboxEntry], at: datetime) -> int:
    async with database.sessions() as session:
        inserted = await insert_outbox_entries(session, entries, at)
        await session.commit()
    return sum(inserted.values())


async def messages(database: Database) -> list[tuple[int, str | None, datetime]]:
    cc = CustomerCommunication
    async with database.sessions() as session:
        rows = await session.execute(select(cc.id, cc.idempotency_key, cc.created_at).order_by(cc.id))
        return [(row.id, row.idempotency_key, row.created_at) for row in rows]


async def test_a_campaign_message_is_planned_once_whichever_month_plans_it_again(database: Database) -> None:
    assert await plan(database, [entry(1), entry(2)], NOW) == 2
    # Next month (its own partition), a month long past (the default partition on PostgreSQL), and now.
    assert await plan(database, [entry(1)], NOW + timedelta(days=40)) == 0
    assert await plan(database, [entry(2), entry(3)], OLD) == 1
    assert await plan(database, [entry(1), entry(2), entry(3)], NOW) == 0
    held = await messages(database)
    assert sorted(key for _, key, _ in held if key) == sorted({entry(n).idempotency_key for n in (1, 2, 3)})
    assert [created for _, key, created in held if key == entry(3).idempotency_key] == [OLD]


async def test_an_inbound_message_delivered_again_a_month_later_is_recorded_once(database: Database) -> None:
    def whatsapp(at: datetime) -> InboundMessage:
        return InboundMessage(
            provider="whatsapp_cloud",
            channel=Channel.WHATSAPP,
            provider_message_id="wamid.months-1",
            from_address="+4915100000001",
            to_address="+4930123456",
            body="Is the clinic open on Saturday?",
            received_at=at,
        )

    async with database.sessions() as session:
        first = await SqlConversations(session).record_inbound(whatsapp(RECENT), None, None)
        await session.commit()
    async with database.sessions() as session:
        again = await SqlConversations(session).record_inbound(whatsapp(NOW + timedelta(days=35)), None, None)
        await session.commit()
    assert first is not None and again is None
    assert len(await messages(database)) == 1


async def add_history(database: Database, message_id: int, created_at: datetime) -> None:
    async with database.sessions() as session:
        session.add(
            MessageStatusEvent(
                communication_id=message_id,
                message_created_at=created_at,
                status="sent",
                source="outbox",
                occurred_at=created_at,
            )
        )
        await session.commit()


async def test_old_months_of_messages_go_with_their_history_and_keys_and_nothing_else(
    database: Database,
) -> None:
    assert await plan(database, [entry(1), entry(2), entry(3)], OLD) == 3
    assert await plan(database, [entry(4), entry(5)], RECENT) == 2
    async with database.sessions() as session:  # sent: a message still to be sent holds its month back
        await session.execute(update(CustomerCommunication).values(status="delivered"))
        await session.commit()
    held = await messages(database)
    for message_id, _, created_at in held:
        await add_history(database, message_id, created_at)
    old_ids = [m for m, _, created in held if created == OLD]
    async with database.sessions() as session:
        customer = Customer(name="Ana Lima")
        session.add(customer)
        await session.flush()
        chat = ChatSession(customer_id=customer.id, channel="sms")
        session.add(chat)
        await session.flush()
        session.add_all(
            [
                ChatMessage(
                    session_id=chat.id, author="customer", body="old turn", communication_id=old_ids[0]
                ),
                ChatMessage(
                    session_id=chat.id, author="customer", body="new turn", communication_id=held[-1][0]
                ),
            ]
        )
        session.add(
            CommunicationAnalytics(
                day=date(2025, 6, 10), channel="sms", provider="twilio", campaign_id=0, template_id=0, sent=3
            )
        )
        await session.commit()

    kept_forever = await drop_old_messages(database, 0, NOW, business_tz="Europe/Berlin")
    assert (kept_forever.boundary, kept_forever.messages) == (None, 0)
    assert retention_boundary(NOW, 12) == datetime(2025, 12, 1, tzinfo=UTC)
    dropped = await drop_old_messages(database, 12, NOW, business_tz="Europe/Berlin")

    # Recounted from the rows: the three old messages went, the two recent ones stay.
    assert dropped.messages == len(old_ids) == 3
    if database.engine.dialect.name == "postgresql":
        assert dropped.months == ["2025-06"]
    kept = await messages(database)
    assert [created for _, _, created in kept] == [RECENT, RECENT]
    async with database.sessions() as session:
        history = (await session.execute(select(MessageStatusEvent.communication_id))).scalars().all()
        turns = dict((await session.execute(select(ChatMessage.body, ChatMessage.communication_id))).all())
        figures = (await session.execute(select(func.sum(CommunicationAnalytics.sent)))).scalar()
    assert sorted(history) == sorted(m for m, _, _ in kept)
    assert turns == {"old turn": None, "new turn": held[-1][0]}
    assert figures == 3
    # The old messages' keys went with them; the recent ones' stay.
    assert await plan(database, [entry(1), entry(4)], NOW) == 1
    again = await drop_old_messages(database, 12, NOW, business_tz="Europe/Berlin")
    assert (again.messages, again.finished) == (0, True)


@pytest.fixture
async def postgresql(database: Database) -> AsyncIterator[Database]:
    """The shared PostgreSQL test database with only the month partitions an installation made at `NOW`
    has (tests before this one may have made others, for old months, and the migration made the real
    clock's months; emptying the tables does not drop them). Afterwards the real clock's months are back."""
    if database.engine.dialect.name != "postgresql":
        pytest.skip("month partitions are PostgreSQL's")
    current = {month_of(NOW, ahead) for ahead in range(4)}
    async with database.engine.begin() as connection:
        for table in ("customer_communications", "message_status_events"):
            names = await connection.execute(
                text(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = CAST(:table AS regclass)"
                ),
                {"table": table},
            )
            for name in names.scalars().all():
                suffix = name.removeprefix(f"{table}_")
                if (
                    suffix != "default"
                    and datetime(*map(int, suffix.split("_")), 1, tzinfo=UTC) not in current
                ):
                    await connection.execute(text(f"DROP TABLE {name}"))
            # And a month a removal detached and did not finish, or whose emptied table it left (tests that
            # stop one on purpose).
            for month in await months_detached(connection, table):
                await connection.execute(text(f"DROP TABLE {table}_{month:%Y_%m}"))
        left = await connection.execute(
            text(
                "SELECT relname FROM pg_class WHERE relkind = 'r' AND relname LIKE 'customer\\_communications\\_%\\_removed\\_%'"
            )
        )
        for name in left.scalars().all():
            await connection.execute(text(f"DROP TABLE {name}"))
    await keep_month_partitions(database, NOW)  # the months from NOW on (the tables are empty)
    yield database
    await keep_month_partitions(database, datetime.now(UTC))


async def where_rows_are(database: Database, table: str) -> dict[str, int]:
    async with database.engine.connect() as connection:
        rows = await connection.execute(
            text(f"SELECT tableoid::regclass::text, count(*) FROM {table} GROUP BY 1")
        )
        return {name: count for name, count in rows.all()}


async def test_each_month_sits_in_its_partition_and_the_default_one_empties_into_new_months(
    postgresql: Database,
) -> None:
    database = postgresql
    assert await plan(database, [entry(1), entry(2)], NOW) == 2
    assert await plan(database, [entry(3)], OLD) == 1
    for message_id, _, created_at in await messages(database):
        await add_history(database, message_id, created_at)
    assert await where_rows_are(database, "customer_communications") == {
        "customer_communications_2026_12": 2,
        "customer_communications_default": 1,
    }

    done = await keep_month_partitions(database, NOW)
    assert done.moved == 2  # the old message and its history
    assert (
        "customer_communications_2025_06" in done.created and "message_status_events_2025_06" in done.created
    )
    assert f"customer_communications_{month_of(NOW, 3):%Y_%m}" not in done.created  # made by the migration
    assert await where_rows_are(database, "customer_communications") == {
        "customer_communications_2026_12": 2,
        "customer_communications_2025_06": 1,
    }
    assert await where_rows_are(database, "message_status_events") == {
        "message_status_events_2026_12": 2,
        "message_status_events_2025_06": 1,
    }
    # The moved message kept its key.
    assert await plan(database, [entry(3)], NOW) == 0
    # A later pass has nothing to do; one that comes a month later makes the next month ahead.
    assert (await keep_month_partitions(database, NOW)).created == []
    later = await keep_month_partitions(database, NOW + timedelta(days=31))
    assert later.created == [
        f"customer_communications_{month_of(NOW, 4):%Y_%m}",
        f"message_status_events_{month_of(NOW, 4):%Y_%m}",
    ]


async def test_a_query_bounded_in_time_reads_only_its_months(postgresql: Database) -> None:
    await plan(postgresql, [entry(1)], NOW)
    async with postgresql.engine.connect() as connection:
        plan_text = "\n".join(
            (
                await connection.execute(
                    text(
                        "EXPLAIN SELECT count(*) FROM customer_communications "
                        "WHERE created_at >= :start AND created_at < :end"
                    ),
                    {"start": NOW - timedelta(days=2), "end": NOW},
                )
            ).scalars()
        )
    assert "customer_communications_2026_12" in plan_text
    assert "customer_communications_2027_01" not in plan_text and "_default" not in plan_text


async def test_a_second_process_changing_partitions_waits_its_turn(postgresql: Database) -> None:
    await plan(postgresql, [entry(1)], OLD)
    async with postgresql.sessions() as session:
        await session.execute(update(CustomerCommunication).values(status="sent"))
        await session.commit()
    async with postgresql.engine.connect() as holder:
        await holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": PARTITIONS_LOCK_KEY})
        busy = await keep_month_partitions(postgresql, NOW)
        dropped = await drop_old_messages(postgresql, 12, NOW, business_tz="Europe/Berlin")
        await holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": PARTITIONS_LOCK_KEY})
    assert (busy.created, busy.skipped) == ([], "another process is changing the partitions")
    assert (dropped.messages, dropped.skipped) == (0, "another process is changing the partitions")
    assert (await drop_old_messages(postgresql, 12, NOW, business_tz="Europe/Berlin")).messages == 1


async def test_removing_a_month_waits_for_a_rollup_pass_and_for_a_write_to_the_month(
    postgresql: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Neither a rollup pass nor a receipt may fall between the month's detaching and a rollup pass or a
    receipt under way: the removal waits for both (up to its lock timeout, then tries again on the next
    pass), changing nothing."""
    monkeypatch.setattr(partitions, "LOCK_TIMEOUT", "200ms")
    monkeypatch.setattr(partitions, "DETACH_LOCK_TIMEOUT", "200ms")
    await plan(postgresql, [entry(1)], OLD)
    async with postgresql.sessions() as session:
        await session.execute(update(CustomerCommunication).values(status="sent", sent_at=OLD))
        await session.commit()
    await keep_month_partitions(postgresql, NOW)
    busy = "another transaction kept a table busy; the next pass tries again"
    async with postgresql.engine.connect() as rollups:  # a rollup update under way
        await rollups.execute(select(func.pg_advisory_xact_lock(ROLLUPS_LOCK_KEY)))
        waited = await drop_old_messages(postgresql, 12, NOW, business_tz="Europe/Berlin")
        await rollups.rollback()
    assert (waited.messages, waited.skipped) == (0, busy)
    async with postgresql.engine.connect() as receipt:  # a receipt for the month's message, not committed yet
        await receipt.execute(update(CustomerCommunication).values(status="delivered", delivered_at=OLD))
        waited = await drop_old_messages(postgresql, 12, NOW, business_tz="Europe/Berlin")
        await receipt.rollback()
    assert (waited.messages, waited.skipped) == (0, busy)
    async with postgresql.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(DroppedMessageFigures)) == 0
    assert len(await messages(postgresql)) == 1

    dropped = await drop_old_messages(postgresql, 12, NOW, business_tz="Europe/Berlin")
    assert (dropped.messages, dropped.skipped) == (1, None)
    async with postgresql.sessions() as session:
        assert (await dropped_figures(session))[(OLD.date(), ("sms", "twilio", 0, 0))]["sent"] == 1


async def tables_of_june(database: Database) -> list[str]:
    """Every table named for June 2025 (its partitions, a detached month, a removed month's emptied table)."""
    async with database.sessions() as session:
        names = await session.execute(
            text(
                "SELECT relname FROM pg_class WHERE relkind = 'r' AND relname LIKE '%\\_2025\\_06%' ORDER BY 1"
            )
        )
        return list(names.scalars())


async def old_and_recent(database: Database) -> None:
    """Two SMS sent in an old month (with their keys and provider ids) and one planned this month."""
    async with database.sessions() as session:
        sent = [
            sent_message(1, OLD, sent_at=OLD, provider_message_id="SM-old-1"),
            sent_message(2, OLD, sent_at=OLD, provider_message_id="SM-old-2"),
        ]
        session.add_all(sent)
        await session.flush()
        session.add_all(
            MessageStatusEvent(communication_id=m.id, message_created_at=OLD, status="sent", occurred_at=OLD)
            for m in sent
        )
        await session.commit()
    await plan(database, [entry(3)], RECENT)
    await keep_month_partitions(database, NOW)


async def test_a_worker_claims_and_a_page_reads_while_a_month_is_being_removed(
    postgresql: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The month is detached first, in a moment; its figures are summed and it is dropped after, with nothing
    waiting for it. A worker's claim (which reads every month) and a lookup by id go on meanwhile. Before,
    the month stayed locked while it was summed: claims waited for it, and a claim that came in then
    deadlocked with the drop (bench/month_removal.py found it, in every run)."""
    await old_and_recent(postgresql)
    summing, resume = asyncio.Event(), asyncio.Event()
    set_aside = partitions.set_aside_figures

    async def slow_sum(*args: Any, **kwargs: Any) -> int:
        summing.set()
        await resume.wait()
        return await set_aside(*args, **kwargs)

    monkeypatch.setattr(partitions, "set_aside_figures", slow_sum)
    monkeypatch.setattr(partitions, "KEYS_BATCH", 1)  # the keys go a message's worth per transaction
    removal = asyncio.create_task(drop_old_messages(postgresql, 12, NOW, business_tz="Europe/Berlin"))
    try:
        await asyncio.wait_for(summing.wait(), 10)
        async with postgresql.sessions() as session:
            await session.execute(text("SET LOCAL lock_timeout = '1s'"))
            claimed = await SqlOutbox(session).claim_due("worker-1", NOW, 10, timedelta(minutes=2))
            recent = await session.scalar(
                select(func.count()).where(CustomerCommunication.id == claimed[0].id)
            )
            await session.commit()
    finally:
        resume.set()
        dropped = await removal
    assert [message.to_address for message in claimed] == [entry(3).to_address]
    assert recent == 1
    assert (dropped.messages, dropped.months, dropped.skipped) == (2, ["2025-06"], None)
    async with postgresql.sessions() as session:
        assert (await dropped_figures(session))[(OLD.date(), ("sms", "twilio", 0, 0))]["sent"] == 2
        keys = await session.execute(text("SELECT idempotency_key FROM communication_idempotency_keys"))
        assert keys.scalars().all() == [claimed[0].idempotency_key]
        assert await session.scalar(text("SELECT count(*) FROM communication_provider_ids")) == 0


async def test_a_month_left_detached_by_a_stopped_removal_is_finished_by_the_next_pass(
    postgresql: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A removal that stopped after detaching the month (the process killed, the database gone) leaves it
    apart from the messages (its keys freed, in batches before) with its figures not yet set aside. The
    next pass finishes it first: the figures are set aside once, the tables gone."""
    await old_and_recent(postgresql)
    # The daily figures as the product keeps them (a repair writes exactly the recount).
    assert (await check_message_feed(postgresql, ZoneInfo("Europe/Berlin"), repair=True)).repaired

    async def stopped(*args: Any, **kwargs: Any) -> int:
        raise ConnectionResetError("the database went away")

    monkeypatch.setattr(partitions, "set_aside_figures", stopped)
    with pytest.raises(ConnectionResetError):
        await drop_old_messages(postgresql, 12, NOW, business_tz="Europe/Berlin")
    monkeypatch.undo()

    async def state() -> tuple[int, int, list[str], int]:
        async with postgresql.sessions() as session:
            return (
                len(await messages(postgresql)),
                int(await session.scalar(text("SELECT count(*) FROM communication_provider_ids")) or 0),
                await tables_of_june(postgresql),
                len(await dropped_figures(session)),
            )

    # Apart: no worker sees it, its keys are free, nothing is set aside yet.
    assert await state() == (1, 0, ["customer_communications_2025_06", "message_status_events_2025_06"], 0)
    async with postgresql.sessions() as session:
        gone_before = await partitions.messages_gone_before(session)
    assert gone_before == datetime(2025, 7, 1, tzinfo=UTC)  # rollups keep what they counted of it

    # Its days read short until it is set aside: the check says why, and a repair is refused meanwhile.
    check = await check_message_feed(postgresql, ZoneInfo("Europe/Berlin"), repair=True)
    assert (check.repaired, check.being_removed, bool(check.drift)) == (False, ("2025-06",), True)
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", postgresql.url)
    said = await asyncio.to_thread(CliRunner().invoke, cli, ["analytics", "verify", "--repair"])
    assert said.exit_code == 1, said.output
    assert (
        "retention is removing the messages of 2025-06: their days read short until its next pass sets their "
        "figures aside; nothing was repaired, run it again after that pass"
    ) in said.output
    # The next pass finishes it, even with retention turned off meanwhile.
    dropped = await drop_old_messages(postgresql, 0, NOW, business_tz="Europe/Berlin")
    assert (dropped.messages, dropped.months, dropped.skipped) == (2, ["2025-06"], None)
    assert await state() == (1, 0, [], 1)
    async with postgresql.sessions() as session:
        assert (await dropped_figures(session))[(OLD.date(), ("sms", "twilio", 0, 0))]["sent"] == 2
    again = await drop_old_messages(postgresql, 12, NOW, business_tz="Europe/Berlin")
    assert (again.messages, again.months) == (0, [])
    assert (await check_message_feed(postgresql, ZoneInfo("Europe/Berlin"))).drift == []


async def test_a_removal_caught_in_a_deadlock_gives_way_and_the_next_pass_removes_the_month(
    postgresql: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader that holds the status history and then asks for the messages, while the removal holds the
    messages and waits for the history: PostgreSQL ends one of the two. The removal gives way (it has changed
    nothing yet) and says so; the next pass removes the month."""
    await old_and_recent(postgresql)
    monkeypatch.setattr(partitions, "DETACH_LOCK_TIMEOUT", "5s")  # PostgreSQL finds the deadlock first (1 s)
    async with postgresql.engine.connect() as reader:
        await reader.execute(text("SET deadlock_timeout = '10s'"))  # the removal's side finds the deadlock
        await reader.execute(select(func.count()).select_from(MessageStatusEvent))
        removal = asyncio.create_task(drop_old_messages(postgresql, 12, NOW, business_tz="Europe/Berlin"))
        for _ in range(200):  # until the removal holds the messages and waits for their history
            waiting = await reader.scalar(
                text(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted AND mode = 'AccessExclusiveLock' "
                    "AND relation = 'message_status_events'::regclass"
                )
            )
            if waiting:
                break
            await asyncio.sleep(0.05)
        assert waiting == 1
        await reader.execute(select(func.count()).select_from(CustomerCommunication))
        await reader.rollback()
    gave_way = await removal
    assert (gave_way.messages, gave_way.skipped) == (
        0,
        "another transaction was waiting for a table this pass held; the next pass tries again",
    )
    assert len(await messages(postgresql)) == 3
    dropped = await drop_old_messages(postgresql, 12, NOW, business_tz="Europe/Berlin")
    assert (dropped.messages, dropped.skipped) == (2, None)


async def waiting_for(connection: Any, mode: str, table: str) -> int:
    """How many lock requests of `mode` on `table` wait, once one does (or after 10 s)."""
    for _ in range(200):
        found = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND mode = :mode AND relation = to_regclass(:table)"
            ),
            {"mode": mode, "table": table},
        )
        if found:
            return int(found)
        await asyncio.sleep(0.05)
    return 0


async def test_a_transaction_that_wrote_a_customer_and_then_reads_messages_goes_on_during_a_removal(
    postgresql: Database,
) -> None:
    """Detaching a month gives it foreign keys of its own, which lock the customers against writes. So the
    removal takes that lock before the messages': a new customer's first message (the customer written,
    then the messages read) finishes first, and neither waits for the other to time out."""
    await old_and_recent(postgresql)
    async with postgresql.engine.connect() as newcomer:
        await newcomer.execute(text("SET lock_timeout = '1s'"))
        await newcomer.execute(insert(Customer).values(name="Ada Neu", phone_e164="+4915199990000"))
        removal = asyncio.create_task(drop_old_messages(postgresql, 12, NOW, business_tz="Europe/Berlin"))
        assert await waiting_for(newcomer, "ShareRowExclusiveLock", "customers") == 1
        latest = await newcomer.scalar(select(func.count()).select_from(CustomerCommunication))
        await newcomer.commit()
    dropped = await removal
    assert latest == 3
    assert (dropped.messages, dropped.skipped) == (2, None)


async def test_in_a_deadlock_with_a_transaction_of_the_app_the_removal_is_the_one_that_gives_way(
    postgresql: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An erasure or a campaign batch reads or writes the messages, then writes a customer or a campaign. If
    the removal took the customers meanwhile (it waited for another writer) and now waits for the messages,
    the two wait for each other. The removal's waits end before PostgreSQL looks for a deadlock, so it is the
    one that gives way, and the app's transaction goes on. (Here every wait is stretched, in the same
    proportion, so that the cycle surely forms on a busy machine.)"""
    assert 4 * int(partitions.DETACH_LOCK_TIMEOUT.removesuffix("ms")) < 1000  # PostgreSQL's deadlock_timeout
    monkeypatch.setattr(partitions, "DETACH_LOCK_TIMEOUT", "3s")
    lock = partitions._lock

    async def patient(connection: Any, *args: Any) -> bool:
        await connection.execute(text("SET LOCAL deadlock_timeout = '20s'"))
        return await lock(connection, *args)

    monkeypatch.setattr(partitions, "_lock", patient)
    await old_and_recent(postgresql)
    engine = postgresql.engine
    async with engine.connect() as writer, engine.connect() as app, engine.connect() as monitor:
        for connection in (writer, app):
            await connection.execute(text("SET deadlock_timeout = '20s'"))
        await writer.execute(insert(Customer).values(name="Writer", phone_e164="+4915199990001"))
        removal = asyncio.create_task(drop_old_messages(postgresql, 12, NOW, business_tz="Europe/Berlin"))
        assert await waiting_for(monitor, "ShareRowExclusiveLock", "customers") == 1
        await app.execute(select(func.count()).select_from(CustomerCommunication))  # holds the messages
        inserting = asyncio.create_task(
            app.execute(insert(Customer).values(name="App", phone_e164="+4915199990002"))
        )
        assert await waiting_for(monitor, "RowExclusiveLock", "customers") == 1  # queued behind the removal
        await writer.commit()
        # The cycle: the removal holds the customers and waits for the messages the app holds.
        assert await waiting_for(monitor, "AccessExclusiveLock", "customer_communications") == 1
        await inserting  # not the one that gives way
        await app.commit()
    gave_way = await removal
    assert (gave_way.messages, gave_way.skipped) == (
        0,
        "another transaction kept a table busy; the next pass tries again",
    )
    assert (await drop_old_messages(postgresql, 12, NOW, business_tz="Europe/Berlin")).messages == 2


async def test_a_removed_month_waits_for_a_long_reader_of_the_customers_only_to_be_dropped(
    postgresql: Database,
) -> None:
    """Dropping a table with foreign keys locks the tables they refer to against readers too. The month is
    set aside, emptied and out of sight before that; the drop of its empty table waits only briefly, three
    times, and is left to the next pass while a long transaction (a report, a backup) reads the customers."""
    await old_and_recent(postgresql)
    async with postgresql.engine.connect() as report:
        await report.execute(select(func.count()).select_from(Customer))
        dropped = await drop_old_messages(postgresql, 12, NOW, business_tz="Europe/Berlin")
        await report.rollback()
    (waiting,) = dropped.left_to_drop
    assert waiting.startswith("customer_communications_2025_06_removed_")
    assert (dropped.messages, dropped.months, dropped.skipped) == (2, ["2025-06"], None)
    assert dropped.in_words() == (
        "dropped 2 created before 2025-12-01 with their status history (months 2025-06); removed months' emptied "
        "tables "
        f"({waiting}) wait to be dropped: the customers, templates or campaigns were busy; the next pass drops them"
    )
    assert await tables_of_june(postgresql) == [waiting]
    async with postgresql.sessions() as session:
        assert await session.scalar(text(f"SELECT count(*) FROM {waiting}")) == 0  # its rows gone already
        assert (await dropped_figures(session))[(OLD.date(), ("sms", "twilio", 0, 0))]["sent"] == 2
    assert len(await messages(postgresql)) == 1

    later = await drop_old_messages(postgresql, 12, NOW, business_tz="Europe/Berlin")
    assert (later.messages, later.skipped, later.left_to_drop) == (0, None, [])
    assert await tables_of_june(postgresql) == []
    async with postgresql.sessions() as session:
        assert len(await dropped_figures(session)) == 1


async def test_the_key_trigger_refuses_what_a_unique_key_refused_and_frees_what_goes(
    postgresql: Database,
) -> None:
    database = postgresql
    await plan(database, [entry(1), entry(2)], NOW)
    first, second = [message_id for message_id, _, _ in await messages(database)]
    cc = CustomerCommunication

    async def set_provider_id(message_id: int, provider_id: str) -> None:
        async with database.sessions() as session:
            await session.execute(
                update(cc).where(cc.id == message_id).values(provider_message_id=provider_id)
            )
            await session.commit()

    await set_provider_id(first, "SM-1")
    with pytest.raises(IntegrityError, match="uq_customer_communications_provider_provider_message_id"):
        await set_provider_id(second, "SM-1")
    await set_provider_id(first, "SM-2")  # the old id is let go
    await set_provider_id(second, "SM-1")
    async with database.sessions() as session:
        await session.execute(delete(cc).where(cc.id == first))
        await session.commit()
    assert await plan(database, [entry(1)], NOW) == 1  # its key went with it
    async with database.engine.begin() as connection:
        keys = (
            await connection.execute(text("SELECT count(*) FROM communication_idempotency_keys"))
        ).scalar()
        ids = (
            await connection.execute(text("SELECT provider_message_id FROM communication_provider_ids"))
        ).scalars()
        assert (keys, list(ids)) == (2, ["SM-1"])
        await connection.execute(text("TRUNCATE customer_communications CASCADE"))
        emptied = await connection.execute(
            text(
                "SELECT (SELECT count(*) FROM communication_idempotency_keys) "
                "+ (SELECT count(*) FROM communication_provider_ids)"
            )
        )
        assert emptied.scalar() == 0


async def test_the_skip_mode_ends_with_its_block_even_when_the_block_fails_in_python(
    postgresql: Database,
) -> None:
    """An error that is not the database's leaves the transaction usable: a later duplicate in it is refused
    as a unique key refuses it, not skipped."""
    database = postgresql
    await plan(database, [entry(1), entry(2)], NOW)
    first, second = [message_id for message_id, _, _ in await messages(database)]
    cc = CustomerCommunication
    async with database.sessions() as session:
        await session.execute(update(cc).where(cc.id == first).values(provider_message_id="SM-1"))
        with pytest.raises(ValueError, match="a bug"):
            async with partitions.skipping_duplicate_messages(session):
                raise ValueError("a bug between two statements")
        mode = await session.scalar(text("SELECT current_setting('switchboard.message_keys', true)"))
        assert mode == ""
        with pytest.raises(IntegrityError, match="uq_customer_communications_provider_provider_message_id"):
            await session.execute(update(cc).where(cc.id == second).values(provider_message_id="SM-1"))


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_upgrading_to_0020_keeps_every_message_and_its_history_and_going_back_restores_the_keys(
    engine: str, fresh_databases: FreshDatabases
) -> None:
    url = fresh_databases.url(engine)
    asyncio.run(migrate.downgrade(url, "0019"))
    months = [OLD, RECENT, NOW]

    async def fill() -> None:
        database = Database.connect(url)
        try:
            async with database.engine.begin() as connection:
                for n, created in enumerate(months, start=1):
                    await connection.execute(
                        text(
                            "INSERT INTO customer_communications (channel, provider, direction, source, "
                            "category, idempotency_key, to_address, body, status, provider_message_id, attempts, "
                            "counted, created_at) VALUES ('sms', 'twilio', 'outbound', 'campaign', "
                            "'marketing', :key, '+4915100000001', 'Hello', 'delivered', :pid, 1, 0, :created)"
                        ),
                        {"key": f"k{n}", "pid": f"SM{n}", "created": created},
                    )
                    for status in ("sent", "delivered"):
                        await connection.execute(
                            text(
                                "INSERT INTO message_status_events (communication_id, status, source, occurred_at) "
                                "SELECT id, :status, 'twilio', :at FROM customer_communications "
                                "WHERE idempotency_key = :key"
                            ),
                            {"key": f"k{n}", "status": status, "at": created + timedelta(minutes=1)},
                        )
        finally:
            await database.dispose()

    async def read() -> tuple[list[Any], list[Any]]:
        database = Database.connect(url)
        try:
            async with database.sessions() as session:
                cc, events = CustomerCommunication, MessageStatusEvent
                held = (
                    await session.execute(
                        select(cc.id, cc.idempotency_key, cc.provider_message_id, cc.created_at)
                    )
                ).all()
                history = (
                    await session.execute(
                        select(events.communication_id, events.status, events.message_created_at).order_by(
                            events.communication_id, events.status
                        )
                    )
                ).all()
                return sorted(held), list(history)
        finally:
            await database.dispose()

    asyncio.run(fill())
    asyncio.run(migrate.upgrade(url))
    held, history = asyncio.run(read())
    assert held == [(n, f"k{n}", f"SM{n}", created) for n, created in enumerate(months, start=1)]
    assert history == [
        (n, status, created) for n, created in enumerate(months, start=1) for status in ("delivered", "sent")
    ]

    async def keys_hold() -> None:
        database = Database.connect(url)
        try:
            # A new campaign message is planned after the upgrade (its key is new)...
            assert await plan(database, [entry(1)], NOW) == 1
            # ... and the key planned before the upgrade is still taken, wherever its month's rows went.
            async with database.sessions() as session:
                session.add(
                    CustomerCommunication(
                        channel="sms",
                        provider="twilio",
                        direction="outbound",
                        source="campaign",
                        status="planned",
                        idempotency_key="k1",
                        to_address="+4915100000001",
                        body="x",
                    )
                )
                with pytest.raises(IntegrityError):
                    await session.commit()
            if engine == "postgresql":
                # The migration made a month for each month its rows were of: none waits in the default one.
                assert await where_rows_are(database, "customer_communications") == {
                    "customer_communications_2025_06": 1,
                    "customer_communications_2026_11": 1,
                    "customer_communications_2026_12": 2,
                }
                assert (await keep_month_partitions(database, NOW)).moved == 0
        finally:
            await database.dispose()

    asyncio.run(keys_hold())
    asyncio.run(migrate.downgrade(url, "0019"))
    asyncio.run(migrate.upgrade(url))
    assert asyncio.run(read())[0][:3] == held


@pytest.mark.postgres
def test_going_back_to_0019_waits_for_a_month_being_removed_and_drops_the_emptied_tables(
    fresh_databases: FreshDatabases,
) -> None:
    """A month retention detached and has not emptied yet would be neither kept nor removed by going back:
    the downgrade refuses, changing nothing, and says to let `switchboard retention` finish it. A month's
    emptied table left for dropping goes with the partitioned tables."""
    url = fresh_databases.url("postgresql")

    async def run(step: Callable[[Database], Awaitable[Any]]) -> Any:
        database = Database.connect(url)
        try:
            return await step(database)
        finally:
            await database.dispose()

    async def stopped_after_detaching_june(database: Database) -> None:
        assert await plan(database, [entry(99)], OLD) == 1
        await keep_month_partitions(database, NOW)
        # Step 1 of a removal, as storage/partitions.py does it, and the pass stopped there.
        async with database.engine.begin() as connection:
            await connection.execute(
                text("ALTER TABLE customer_communications DETACH PARTITION customer_communications_2025_06")
            )
            await connection.execute(
                text(f"COMMENT ON TABLE customer_communications_2025_06 IS '{DETACHED_MARK}'")
            )

    async def may_emptied_and_not_dropped(database: Database) -> None:
        async with database.engine.begin() as connection:  # step 4 of a removal still to come
            await connection.execute(
                text("CREATE TABLE customer_communications_2025_05_removed_1 (LIKE customer_communications)")
            )
            await connection.execute(
                text(f"COMMENT ON TABLE customer_communications_2025_05_removed_1 IS '{DETACHED_MARK}'")
            )

    async def revision_and_tables(database: Database) -> tuple[str | None, list[str]]:
        async with database.engine.connect() as connection:
            names = await connection.execute(
                text(
                    "SELECT relname FROM pg_class WHERE relkind IN ('r', 'p') AND relname LIKE '%2025\\_0%' ORDER BY 1"
                )
            )
            tables = list(names.scalars())
        return await migrate.current_revision(database.engine), tables

    asyncio.run(run(stopped_after_detaching_june))
    head, before = asyncio.run(run(revision_and_tables))
    assert before == ["customer_communications_2025_06"]
    with pytest.raises(
        RuntimeError, match=r"still removing months of messages \(customer_communications_2025_06\)"
    ):
        asyncio.run(migrate.downgrade(url, "0019"))
    assert asyncio.run(run(revision_and_tables)) == (head, before)  # nothing changed

    async def retention_off(database: Database) -> list[str]:
        return (await drop_old_messages(database, 0, NOW, business_tz="UTC")).months

    assert asyncio.run(run(retention_off)) == ["2025-06"]  # the next pass finishes it
    asyncio.run(run(may_emptied_and_not_dropped))
    assert asyncio.run(run(revision_and_tables)) == (head, ["customer_communications_2025_05_removed_1"])
    asyncio.run(migrate.downgrade(url, "0019"))
    assert asyncio.run(run(revision_and_tables)) == ("0019", [])


async def test_a_message_still_to_be_sent_holds_back_its_month_and_every_later_one(
    database: Database,
) -> None:
    """A reminder planned in an old month for an appointment far ahead is not dropped before it is sent:
    its month and the later ones stay, the months before it go, the same on both engines."""
    older = datetime(2025, 3, 10, 8, 0, tzinfo=UTC)
    assert await plan(database, [entry(1)], older) == 1
    assert await plan(database, [entry(2)], OLD) == 1
    assert await plan(database, [entry(3)], RECENT) == 1
    async with database.sessions() as session:
        # entry(1) and entry(3) were sent; entry(2), from June 2025, is still planned.
        await session.execute(
            update(CustomerCommunication)
            .where(CustomerCommunication.created_at != OLD)
            .values(status="delivered")
        )
        await session.commit()
    if database.engine.dialect.name == "postgresql":
        await keep_month_partitions(database, NOW)

    dropped = await drop_old_messages(database, 12, NOW, business_tz="Europe/Berlin")
    assert dropped.held_back_from == datetime(2025, 6, 1, tzinfo=UTC)
    assert dropped.messages == 1
    assert [created for _, _, created in await messages(database)] == [OLD, RECENT]
    if database.engine.dialect.name == "postgresql":
        assert dropped.months == ["2025-03"]


class AcceptingDriver:
    """A provider that accepts every message at once, naming it by our id."""

    channel = Channel.SMS
    provider = "twilio"
    receipts_name_our_id = True
    timeout_seconds = 5.0

    async def send(self, message: OutboundMessage) -> ProviderAcceptance:
        return ProviderAcceptance(f"SM{message.message_id}")

    async def close(self) -> None:
        return None


async def send_what_is_due(url: str) -> int:
    """One worker's batch over its own connections, closed afterwards (a backend reports what it read when
    it ends); how many messages it claimed."""
    database = Database.connect(url)
    try:
        dispatcher = Dispatcher(
            open_uow=lambda: SqlUnitOfWork(database),
            drivers={Channel.SMS: AcceptingDriver()},
            pacing={Channel.SMS: TokenBucket(5000.0)},
            worker_id="months",
            concurrency=16,
            batch_size=200,
        )
        return await dispatcher.deliver_batch()
    finally:
        await database.dispose()


async def reads_of(database: Database, partition: str) -> int:
    """How often a partition has been read, by its indexes or whole (a small one is read whole)."""
    async with database.engine.connect() as connection:
        await connection.execute(text("SELECT pg_stat_clear_snapshot()"))
        found = await connection.scalar(
            text(
                "SELECT seq_scan + coalesce(idx_scan, 0) FROM pg_stat_user_tables WHERE relname = :partition"
            ),
            {"partition": partition},
        )
    return int(found or 0)


async def settled_reads_of(database: Database, partition: str) -> int:
    """`reads_of` once it stops changing: a backend that just ended may report its reads a moment later."""
    last = await reads_of(database, partition)
    for _ in range(40):
        await asyncio.sleep(0.05)
        now = await reads_of(database, partition)
        if now == last:
            return now
        last = now
    return last


async def an_old_month(database: Database, now: datetime) -> str:
    """One message planned in OLD's month, moved into that month's own partition: its name."""
    assert await plan(database, [entry(99)], OLD) == 1
    await keep_month_partitions(database, now)
    return f"customer_communications_{OLD:%Y_%m}"


async def test_a_worker_sending_this_months_messages_reads_no_other_month_by_id(postgresql: Database) -> None:
    """The worker names each claimed message by id and creation time, so recording its send reads only that
    month's partition: with a year of months kept, each would otherwise be searched for every message."""
    database, now = postgresql, datetime.now(UTC)
    url = database.engine.url.render_as_string(hide_password=False)
    old_month = await an_old_month(database, now)
    assert await where_rows_are(database, "customer_communications") == {old_month: 1}
    assert await plan(database, [entry(n) for n in range(60)], now) == 60

    assert await send_what_is_due(url) == 60 + 1  # the old message was due as well: it goes in this batch
    # ... so this one batch spans both months, and each of its messages is found in its own.
    sent = await messages_sent(database)
    assert sent == 61
    assert await daily_sent(database) == 61

    assert await plan(database, [entry(n) for n in range(100, 160)], now) == 60
    await database.engine.dispose()  # so this test's own reads are reported before counting starts
    before = await reads_of(database, old_month)
    assert await send_what_is_due(url) == 60
    assert await messages_sent(database) == 121 and await daily_sent(database) == 121
    # The claim's two statements (retries first, then the rest) read every month, since due messages may be
    # in any: 4 reads here. Recording the 60 sends reads none of the old month: before it did, 67 times (each
    # acceptance, and each group's count, history and provider-id check).
    assert await reads_of(database, old_month) - before <= 6


async def apply_delivered(url: str, receipts: list[tuple[int | None, str]]) -> list[bool]:
    """Receipts saying "delivered", by our id or (None) only by the provider's, applied as the webhook
    worker applies a batch, over connections of their own (closed after, so their reads are reported)."""
    database = Database.connect(url)
    try:
        async with SqlUnitOfWork(database) as uow:
            results = await uow.outbox.apply_receipts(
                [
                    DeliveryReceipt(
                        "twilio", pid, MessageStatus.DELIVERED, datetime.now(UTC), our_message_id=ours
                    )
                    for ours, pid in receipts
                ]
            )
            await uow.commit()
        return [result.applied for result in results]
    finally:
        await database.dispose()


async def test_receipts_for_recent_messages_read_no_old_month_and_an_old_messages_receipt_still_lands(
    postgresql: Database,
) -> None:
    """A receipt names its message by id (ours or the provider's), not by month: the recent months are read
    first, and every month only for a receipt not found there, so with a year of months kept a batch of
    receipts for this week's sends does not search each month's index."""
    database, now = postgresql, datetime.now(UTC)
    url = database.engine.url.render_as_string(hide_password=False)
    old_month = await an_old_month(database, now)
    assert await plan(database, [entry(n) for n in range(20)], now) == 20
    assert await send_what_is_due(url) == 21
    [old_id] = [i for i, _, created in await messages(database) if created == OLD]
    recent = [i for i, _, created in await messages(database) if created != OLD]
    await database.engine.dispose()

    before = await settled_reads_of(database, old_month)
    by_ours = [(i, f"SM{i}") for i in recent[:10]]  # the provider ids AcceptingDriver gave
    by_theirs = [(None, f"SM{i}") for i in recent[10:]]
    assert await apply_delivered(url, by_ours + by_theirs) == [True] * 20
    assert await settled_reads_of(database, old_month) == before  # it read this month's partitions only

    # A receipt for the message of an old month is found by the second look, among every month; in the
    # same batch, a repeat of it by the provider's id and a repeat for a recent message change nothing.
    again = [(old_id, f"SM{old_id}"), (None, f"SM{old_id}"), (recent[0], f"SM{recent[0]}")]
    assert await apply_delivered(url, again) == [True, False, False]
    assert await settled_reads_of(database, old_month) > before
    async with database.sessions() as session:
        delivered = await session.scalar(
            select(func.count())
            .select_from(CustomerCommunication)
            .where(CustomerCommunication.status == "delivered")
        )
        counted = await session.scalar(select(func.sum(CommunicationAnalytics.delivered)))
    assert delivered == counted == 21


async def test_a_messages_page_shows_its_whole_history_read_from_its_month(database: Database) -> None:
    """The message's page names its history by the message's creation time as well (one month's partition on
    PostgreSQL): on both engines it is all there, an old month's message's as much as this month's."""
    url = database.engine.url.render_as_string(hide_password=False)
    now = datetime.now(UTC)
    assert await plan(database, [entry(98)], OLD) == 1
    assert await plan(database, [entry(97)], now) == 1
    await keep_month_partitions(database, now)
    assert await send_what_is_due(url) == 2
    ids = [i for i, _, _ in await messages(database)]
    assert await apply_delivered(url, [(i, f"SM{i}") for i in ids]) == [True, True]
    for message_id in ids:
        found = await message_with_history(database, message_id)
        detail = await message_detail(database, message_id)
        assert found is not None and detail is not None
        record, history = found
        assert record.id == message_id and record.status == "delivered"
        assert [change.status for change in history] == [change.status for change in detail.history]
        assert [change.status for change in history][-1] == "delivered" and len(history) >= 2


async def test_a_recent_messages_page_reads_no_old_month_and_an_old_ones_page_and_the_pages_after_still_do(
    postgresql: Database,
) -> None:
    """A message's page is asked for by id alone: the recent months are read first, so opening this week's
    message reads none of the old months; a message of an old month is still found, and the message log's
    next pages (which start after a message named by id) go on into the old months."""
    database, now = postgresql, datetime.now(UTC)
    old_month = await an_old_month(database, now)
    assert await plan(database, [entry(n) for n in range(3)], now) == 3
    held = await messages(database)
    [old_id] = [i for i, _, created in held if created == OLD]
    recent = [i for i, _, created in held if created != OLD]
    await database.engine.dispose()

    before = await settled_reads_of(database, old_month)
    detail = await message_detail(database, recent[0])
    found = await message_with_history(database, recent[1])
    assert detail is not None and detail.message.id == recent[0]
    assert found is not None and found[0].id == recent[1]
    await database.engine.dispose()
    assert await settled_reads_of(database, old_month) == before

    old = await message_detail(database, old_id)
    assert old is not None and old.message.id == old_id and old.message.created_at == OLD
    # Newest first: the three of now share their moment, so by id; the old one last.
    after_newest = [m.id for m, _ in await message_log(database, MessageLogFilters(before=recent[2]), 10)]
    assert after_newest == [recent[1], recent[0], old_id]
    assert [m.id for m in await message_page(database, before_id=recent[0])] == [old_id]
    assert await message_log(database, MessageLogFilters(before=10**9), 10) == []


async def test_a_full_page_of_the_log_reads_no_old_month_and_a_short_one_goes_on_into_them(
    postgresql: Database,
) -> None:
    """The log and the API list newest first: a page the recent months fill (the usual first page, and
    the pages after it) reads none of the old months; a page they leave short (a filter few recent messages
    meet, or the last of the recent ones) goes on into the old months, in order."""
    database, now = postgresql, datetime.now(UTC)
    old_month = await an_old_month(database, now)
    assert await plan(database, [entry(n) for n in range(5)], now) == 5
    held = await messages(database)
    [old_id] = [i for i, _, created in held if created == OLD]
    recent = sorted((i for i, _, created in held if created != OLD), reverse=True)  # one moment: by id
    await database.engine.dispose()

    before = await settled_reads_of(database, old_month)
    first = [m.id for m, _ in await message_log(database, MessageLogFilters(), 3)]
    second = [m.id for m, _ in await message_log(database, MessageLogFilters(before=first[-1]), 2)]
    api = [m.id for m in await message_page(database, channel=Channel.SMS, limit=4)]
    await database.engine.dispose()
    assert (first, second, api) == (recent[:3], recent[3:5], recent[:4])
    assert await settled_reads_of(database, old_month) == before

    # Short pages: the rest of the recent messages, then the old month's.
    last = [m.id for m, _ in await message_log(database, MessageLogFilters(before=recent[2]), 10)]
    whole = [m.id for m in await message_page(database, limit=50)]
    assert last == [*recent[3:], old_id]
    assert whole == [*recent, old_id]
    assert [m.id for m in await message_page(database, before_id=recent[-1], limit=1)] == [old_id]
    await database.engine.dispose()
    assert await settled_reads_of(database, old_month) > before


async def messages_sent(database: Database) -> int:
    async with database.sessions() as session:
        found = await session.scalar(
            select(func.count())
            .select_from(CustomerCommunication)
            .where(CustomerCommunication.sent_at.is_not(None), CustomerCommunication.counted.op("&")(1) == 1)
        )
    return int(found or 0)


async def daily_sent(database: Database) -> int:
    async with database.sessions() as session:
        found = await session.scalar(select(func.sum(CommunicationAnalytics.sent)))
    return int(found or 0)


def sent_message(n: int, created_at: datetime, **moments: Any) -> CustomerCommunication:
    return CustomerCommunication(
        channel="sms",
        provider="twilio",
        direction="outbound",
        source="campaign",
        source_ref="figures",
        category="marketing",
        idempotency_key=f"campaign:figures:{n}:sms",
        to_address=f"+4915100001{n:03d}",
        body="Spring offer",
        status="delivered"
        if moments.get("delivered_at")
        else "failed"
        if moments.get("failed_at")
        else "sent",
        created_at=created_at,
        **moments,
    )


async def test_the_figures_of_dropped_months_are_set_aside_so_the_check_still_adds_up(
    database: Database,
) -> None:
    """`switchboard analytics verify` recounts the messages and compares with the daily figures: after a
    month of messages is dropped, their figures (set aside as they went) make up for the missing rows, so no
    day reads as drift and a repair changes nothing."""
    zone = ZoneInfo("Europe/Berlin")
    june = datetime(2025, 6, 10, 8, 0, tzinfo=UTC)
    late_november = datetime(2025, 11, 30, 22, 30, tzinfo=UTC)  # already 1 December in Berlin
    kept_at = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    async with database.sessions() as session:
        session.add_all(
            [
                # Sent late in the evening (UTC): the next day in Berlin. SMS segments and a cost.
                sent_message(
                    1,
                    june,
                    sent_at=june.replace(hour=22, minute=30),
                    delivered_at=june.replace(hour=22, minute=31),
                    read_at=june.replace(hour=23),
                    cost_micros=7_500,
                    segments=2,
                    encoding="GSM-7",
                ),
                sent_message(2, june, sent_at=june, segments=1, encoding="UCS-2", cost_micros=9_000),
                sent_message(3, june, failed_at=june + timedelta(minutes=1), error_code="30003"),
                sent_message(4, june, sent_at=june, replied_at=june + timedelta(hours=2), campaign_id=None),
                # Created before the boundary, sent after it: dropped with its month, counted on its send day.
                sent_message(5, late_november, sent_at=datetime(2025, 12, 2, 9, 0, tzinfo=UTC)),
                sent_message(6, kept_at, sent_at=kept_at, delivered_at=kept_at, cost_micros=7_500),
            ]
        )
        session.add(
            CustomerCommunication(
                channel="sms",
                provider="twilio",
                direction="inbound",
                source="reply",
                source_ref="figures",
                category="transactional",
                to_address="+4930123456",
                body="Thanks!",
                status="received",
                provider_message_id="SM-inbound-figures",
                created_at=june,
            )
        )
        await session.commit()
    # The daily figures as the product keeps them, for these messages (a repair writes exactly the recount).
    assert (await check_message_feed(database, zone, repair=True)).repaired
    async with database.sessions() as session:
        before = await recorded_feed(session)
        to_go = await recount(
            session, zone, CustomerCommunication.created_at < datetime(2025, 12, 1, tzinfo=UTC)
        )

    dropped = await drop_old_messages(database, 12, NOW, business_tz="Europe/Berlin")
    assert dropped.messages == 6  # five outbound, one inbound

    check = await check_message_feed(database, zone)
    assert check.drift == []
    async with database.sessions() as session:
        set_aside = await dropped_figures(session)
    # What was set aside is what the dropped messages counted, day by day (PostgreSQL sums it in SQL).
    assert set_aside == {key: counts for key, counts in to_go.items() if +counts}
    assert set_aside[(date(2025, 6, 11), ("sms", "twilio", 0, 0))]["gsm7_segments"] == 2
    assert date(2025, 12, 2) in {day for day, _ in set_aside}
    # A repair finds nothing to change: the daily figures of the dropped months stay as they were.
    assert not (await check_message_feed(database, zone, repair=True)).repaired
    async with database.sessions() as session:
        assert await recorded_feed(session) == before


async def messages_sent_in(database: Database, period: PeriodSpec, grain: str, *, raw: bool = False) -> float:
    query = MetricQuery(("messages_sent",), period, grain=grain)  # type: ignore[arg-type]
    result = await run_query(
        database, query, now=datetime.now(UTC), business_tz="Europe/Berlin", prefer_rollups=not raw
    )
    return float(result.series[0].total or 0)


async def test_kpi_rollups_keep_what_they_counted_of_months_whose_messages_went(database: Database) -> None:
    """KPI answers come from the rollups. Once retention removed old months of messages, neither a rebuild
    (after an upgrade adds a metric, say) nor a later update counts those buckets again from what is left:
    they keep what they counted. Buckets after the boundary go on counting new messages."""
    tz, today = "Europe/Berlin", datetime.now(UTC).date()
    await seed_database(
        database, SeedPlan(customers=40, days=90, seed=11, end_date=today - timedelta(days=1))
    )
    await rebuild_rollups(database, grains=("day", "week", "month"), business_tz=tz)
    ninety = PeriodSpec("last_n_days", n=90)
    asked = {grain: await messages_sent_in(database, ninety, grain) for grain in ("day", "week", "month")}
    assert asked["day"] == await messages_sent_in(database, ninety, "day", raw=True) > 0

    dropped = await drop_old_messages(database, 1, datetime.now(UTC), business_tz=tz)
    assert dropped.messages > 0
    left = await messages_sent_in(database, ninety, "day", raw=True)
    assert left < asked["day"]  # the messages themselves are gone

    await rebuild_rollups(database, grains=("day", "week", "month"), business_tz=tz)
    everything = {source: [(datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC))] for source in ("messages",)}
    await update_rollups_for(database, await TouchedFacts.from_ranges(database, everything))
    for grain, answer in asked.items():
        assert await messages_sent_in(database, ninety, grain) == answer, grain

    # A message sent now counts, in the buckets after the boundary.
    async with database.sessions() as session:
        session.add(sent_message(900, datetime.now(UTC) - timedelta(minutes=1), sent_at=datetime.now(UTC)))
        await session.commit()
    await update_rollups_for(database, await TouchedFacts.from_ranges(database, everything))
    this_month = PeriodSpec("this_month")
    assert await messages_sent_in(database, this_month, "day") == await messages_sent_in(
        database, this_month, "day", raw=True
    )


async def test_a_reply_to_this_months_message_marks_it_replied_reading_only_one_look_of_old_months(
    postgresql: Database,
) -> None:
    """Linking a customer's reply to our message looks for it in every month (a reminder sent this week may
    have been planned months ago), then names its month: recording the reply, marking the message replied
    and counting it read only that month's partition, not every month's index three more times."""
    database, now = postgresql, datetime.now(UTC)
    url = database.engine.url.render_as_string(hide_password=False)
    async with database.sessions() as session:
        customer = Customer(name="Ada Reply", phone_e164="+4915100000077")
        session.add(customer)
        await session.commit()
        customer_id = customer.id
    old_month = await an_old_month(database, now)
    ours = replace(entry(77), customer_id=customer_id, to_address="+4915100000077")
    assert await plan(database, [ours], now) == 1
    assert await send_what_is_due(url) == 2
    [our_id] = [i for i, key, _ in await messages(database) if key == ours.idempotency_key]
    await database.engine.dispose()

    before = await settled_reads_of(database, old_month)
    reply = InboundMessage(
        "twilio", Channel.SMS, "SMreply-77", "+4915100000077", "+4930123456", "See you Tuesday", now
    )
    replying = Database.connect(url)
    try:
        async with UnitsOfWork(replying, "UTC").conversations() as uow:
            await handle_customer_message(uow, CustomerMessage(reply), InboundPolicy("Northwind"), now)
            await uow.commit()
    finally:
        await replying.dispose()
    # latest_outbound's one look at each month; before, record_inbound, mark_replied and the count read
    # each month's index as well (4 reads).
    assert await settled_reads_of(database, old_month) - before <= 1

    async with database.sessions() as session:
        replied = await session.scalar(
            select(CustomerCommunication.replied_at).where(CustomerCommunication.id == our_id)
        )
        inbound = (
            await session.execute(
                select(CustomerCommunication.source_ref, CustomerCommunication.customer_id).where(
                    CustomerCommunication.direction == "inbound"
                )
            )
        ).one()
        counted = await session.scalar(select(func.sum(CommunicationAnalytics.replied)))
    assert replied is not None
    assert tuple(inbound) == (ours.source_ref, customer_id)
    assert counted == 1


async def release_lapsed_claims(url: str) -> int:
    """The worker's pass over claims whose worker stopped, over connections of its own."""
    database = Database.connect(url)
    try:
        async with SqlUnitOfWork(database) as uow:
            released = await uow.outbox.release_expired_leases(datetime.now(UTC), timedelta(minutes=5))
            await uow.commit()
        return released
    finally:
        await database.dispose()


async def test_the_pass_over_stopped_workers_claims_looks_at_old_months_once_and_releases_any_months(
    postgresql: Database,
) -> None:
    """Every worker looks for claims whose worker stopped every few seconds. It looks once at every month
    (a claim may be for a message of any month), nearly always finding none; what it finds it then releases
    by id and month, reading no other month, and a lapsed claim on an old month's message is released too."""
    database, now = postgresql, datetime.now(UTC)
    url = database.engine.url.render_as_string(hide_password=False)
    old_month = await an_old_month(database, now)
    assert await plan(database, [entry(n) for n in range(5)], now) == 5
    await database.engine.dispose()

    before = await settled_reads_of(database, old_month)
    assert await release_lapsed_claims(url) == 0
    assert await settled_reads_of(database, old_month) - before <= 1  # before: three statements, 3 reads

    async def lapse(created: datetime) -> list[int]:
        async with database.sessions() as session:
            ids = list(
                await session.scalars(
                    update(CustomerCommunication)
                    .where(CustomerCommunication.created_at == created)
                    .values(status="sending", claimed_by="gone", claimed_until=now - timedelta(minutes=1))
                    .returning(CustomerCommunication.id)
                )
            )
            await session.commit()
        await database.engine.dispose()
        return ids

    this_month = [i for i, _, created in await messages(database) if created != OLD]
    assert sorted(await lapse(now)) == sorted(this_month)
    before = await settled_reads_of(database, old_month)
    assert await release_lapsed_claims(url) == 5
    assert await settled_reads_of(database, old_month) - before <= 1

    assert len(await lapse(OLD)) == 1
    assert await release_lapsed_claims(url) == 1
    async with database.sessions() as session:
        statuses = (
            await session.execute(
                select(CustomerCommunication.status, CustomerCommunication.claimed_by).distinct()
            )
        ).all()
    assert [tuple(row) for row in statuses] == [("planned", None)]
