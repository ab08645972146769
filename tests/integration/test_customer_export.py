"""A patient asks for their data: the bundle holds every row about them, recounted from the tables."""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from storage.database import Database
from storage.models import (
    AuditLog,
    ChatMessage,
    ChatSession,
    ConsentRecord,
    CustomerCommunication,
    MessageStatusEvent,
    Order,
    Payment,
)
from switchboard.cli import main as cli
from tests.conftest import FreshDatabases


async def busiest_customer(url: str) -> tuple[int, dict[str, int]]:
    """The customer with the most messages who also has a conversation, and what the tables hold of them."""
    database = Database.connect(url)
    try:
        async with database.read_sessions() as session:
            chatted = select(ChatSession.customer_id)
            customer_id = await session.scalar(
                select(CustomerCommunication.customer_id)
                .where(CustomerCommunication.customer_id.in_(chatted))
                .group_by(CustomerCommunication.customer_id)
                .order_by(func.count().desc(), CustomerCommunication.customer_id)
                .limit(1)
            )
            assert customer_id is not None

            async def count(statement: object) -> int:
                return int(await session.scalar(statement) or 0)  # type: ignore[arg-type]

            messages = select(CustomerCommunication.id).where(
                CustomerCommunication.customer_id == customer_id
            )
            sessions = select(ChatSession.id).where(ChatSession.customer_id == customer_id)
            orders = select(Order.id).where(Order.customer_id == customer_id)
            held = {
                "messages": await count(select(func.count()).select_from(messages.subquery())),
                "message_status_history": await count(
                    select(func.count()).where(MessageStatusEvent.communication_id.in_(messages))
                ),
                "consent_ledger": await count(
                    select(func.count()).where(ConsentRecord.customer_id == customer_id)
                ),
                "conversations": await count(select(func.count()).select_from(sessions.subquery())),
                "conversation_messages": await count(
                    select(func.count()).where(ChatMessage.session_id.in_(sessions))
                ),
                "orders": await count(select(func.count()).select_from(orders.subquery())),
                "payments": await count(select(func.count()).where(Payment.order_id.in_(orders))),
            }
    finally:
        await database.dispose()
    return customer_id, held


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_the_bundle_holds_every_row_about_the_customer_and_the_export_is_audited(
    engine: str, fresh_databases: FreshDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = fresh_databases.url(engine)
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", url)
    runner = CliRunner()
    seeded = runner.invoke(cli, ["seed", "--customers", "40", "--days", "30"])
    assert seeded.exit_code == 0, seeded.output
    customer_id, held = asyncio.run(busiest_customer(url))
    assert held["messages"] > 0 and held["conversations"] > 0

    out = tmp_path / "request.zip"
    shells_umask = os.umask(0o022)  # as a root shell's: new files readable by everyone
    try:
        done = runner.invoke(cli, ["customer", "export", str(customer_id), "--out", str(out)])
        assert os.umask(0o022) == 0o022, "the command puts the process's umask back"
    finally:
        os.umask(shells_umask)
    assert done.exit_code == 0, done.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600, "a patient's data is readable by its owner only"
    assert done.output.startswith(f"wrote everything held about customer {customer_id} to {out}: ")
    assert "(s)" not in done.output and not re.search(r"\b1 [a-z ]+s\b(?<!preferences)", done.output), (
        done.output
    )
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        everything = json.loads(archive.read("customer.json"))
        raw = archive.read("customer.json").decode()
    assert everything["customer"][0]["id"] == customer_id
    for section, count in held.items():
        assert len(everything[section]) == count, section
        assert count == 0 or f"{section}.csv" in names
    assert all(row["customer_id"] == customer_id for row in everything["messages"])
    assert "token_hash" not in raw

    async def audited() -> list[tuple[str, str | None]]:
        database = Database.connect(url)
        try:
            async with database.read_sessions() as session:
                rows = await session.execute(
                    select(AuditLog.action, AuditLog.target).where(AuditLog.action == "customer.export")
                )
                return [(a, t) for a, t in rows.all()]
        finally:
            await database.dispose()

    assert asyncio.run(audited()) == [("customer.export", f"customer:{customer_id}")]

    again = runner.invoke(cli, ["customer", "export", str(customer_id), "--out", str(out)])
    assert again.exit_code == 2 and "already exists" in again.output
    missing = runner.invoke(cli, ["customer", "export", "999999", "--out", str(tmp_path / "x.zip")])
    assert missing.exit_code == 2 and "no customer has id 999999" in missing.output
    nobody = runner.invoke(cli, ["customer", "export", "--email", "nobody@nowhere.example"])
    assert nobody.exit_code == 2 and "no customer has email nobody@nowhere.example" in nobody.output
    assert not (tmp_path / "x.zip").exists()


async def test_a_phone_number_is_read_as_people_write_it_and_a_shared_one_names_whose_it_is(
    database: Database,
) -> None:
    """`--phone "0151 23456789"` finds the patient stored as +4915123456789; a family's shared mobile lists
    the customers who have it, so the operator can give an id."""
    from storage.customer_export import NoSuchCustomer, find_customer
    from storage.models import Customer

    async with database.sessions() as session:
        mother = Customer(name="Mara Klein", phone_e164="+4915123456789", timezone="Europe/Berlin")
        alone = Customer(name="Otto Solo", phone_e164="+4915100000077", timezone="Europe/Berlin")
        session.add_all([mother, alone])
        await session.commit()
        found = await find_customer(
            database, customer_id=None, email=None, phone="0151 00000077", region="DE"
        )
        assert found == alone.id
        son = Customer(name="Tim Klein", phone_e164="+4915123456789", timezone="Europe/Berlin")
        session.add(son)
        await session.commit()
        with pytest.raises(NoSuchCustomer) as shared:
            await find_customer(database, customer_id=None, email=None, phone="0151 23456789", region="DE")
    assert str(shared.value) == (
        f"more than one customer has phone +4915123456789 (a family may share one): #{mother.id}, #{son.id}; "
        f"give the customer's id instead, in place of --email or --phone (e.g. {mother.id})"
    )
