"""A patient asks to be forgotten: their personal data goes everywhere it is held, while every figure the
dashboard shows, the consent ledger's history and other customers' data stay exactly as they were."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text

from storage.database import Database
from storage.models import (
    AuditLog,
    BusinessEvent,
    ChatAttachment,
    ChatMessage,
    ChatSession,
    CommunicationAnalytics,
    ConsentRecord,
    Customer,
    CustomerCommunication,
    CustomerConsent,
    CustomerTag,
    Order,
    WebhookInbox,
)
from switchboard.cli import main as cli
from tests.conftest import FreshDatabases
from tests.integration.test_customer_export import busiest_customer

NOW = datetime.now(UTC)


async def _with(url: str, work: Any) -> Any:
    database = Database.connect(url)
    try:
        async with database.sessions() as session:
            result = await work(session)
            await session.commit()
            return result
    finally:
        await database.dispose()


async def _prepare(session: Any, customer_id: int, other_id: int) -> dict[str, Any]:
    """Give the customer what the seed lacks: a phone and email, a tag, a file, a planned message, webhooks
    that name them (one applied, one failed), an event with their name, and a note with their number."""
    customer = await session.get(Customer, customer_id)
    customer.phone_e164 = "+4915112345678"
    customer.email = "erase.me@example.org"
    customer.whatsapp_id = "4915112345678"
    session.add(CustomerTag(customer_id=customer_id, tag="diabetes"))
    turn = await session.scalar(
        select(ChatMessage.id)
        .join(ChatSession, ChatSession.id == ChatMessage.session_id)
        .where(ChatSession.customer_id == customer_id)
        .limit(1)
    )
    session.add(
        ChatAttachment(
            message_id=turn,
            filename="scan.pdf",
            content_type="application/pdf",
            size_bytes=4,
            sha256="0" * 64,
            content=b"%PDF",
        )
    )
    session.add(
        CustomerCommunication(
            customer_id=customer_id,
            channel="sms",
            provider="twilio",
            direction="outbound",
            source="manual",
            to_address="+4915112345678",
            body="Your results are ready",
            status="planned",
            next_attempt_at=NOW + timedelta(hours=2),
        )
    )
    for status, body in (
        ("applied", "From=%2B4915112345678&Body=hello"),
        ("failed", '{"from": "4915112345678", "text": "still there?"}'),
        ("applied", "From=%2B4915199999999&Body=someone+else"),
    ):
        session.add(
            WebhookInbox(
                provider="twilio",
                kind="message",
                dedupe_key=f"{status}-{body[:20]}",
                status=status,
                body=body,
                received_at=NOW - timedelta(days=1),
            )
        )
    session.add(
        BusinessEvent(
            event_type="appointment.booked",
            idempotency_key=f"erase-{customer_id}",
            customer_id=customer_id,
            payload={"first_name": "Erika", "appointment_id": 7, "when": "Tuesday"},
            occurred_at=NOW - timedelta(days=2),
            processed_at=NOW - timedelta(days=2),
        )
    )
    session.add(
        ConsentRecord(
            customer_id=customer_id,
            channel="sms",
            status="opted_in",
            source="checkout form",
            detail="ticked on the form by +4915112345678",
            recorded_at=NOW - timedelta(days=3),
        )
    )
    other = await session.get(Customer, other_id)
    return {"other_name": other.name, "other_phone": other.phone_e164}


async def _figures(session: Any) -> dict[str, Any]:
    """What the dashboard's numbers are made of."""
    cc = CustomerCommunication
    return {
        "customers": await session.scalar(select(func.count()).select_from(Customer)),
        "messages by status": sorted(
            (
                await session.execute(
                    select(cc.channel, cc.status, func.count()).group_by(cc.channel, cc.status)
                )
            ).all()
        ),
        "revenue": await session.scalar(select(func.sum(Order.amount_minor))),
        "orders": await session.scalar(select(func.count()).select_from(Order)),
        "communication analytics": sorted(
            tuple(str(value) for value in row)
            for row in (await session.execute(select(CommunicationAnalytics.__table__))).all()
        ),
    }


def _sent_statuses(figures: dict[str, Any]) -> list[Any]:
    return [row for row in figures["messages by status"] if row[1] not in {"planned", "cancelled"}]


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_erasing_removes_the_person_and_keeps_every_figure(
    engine: str, fresh_databases: FreshDatabases, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = fresh_databases.url(engine)
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", url)
    runner = CliRunner()
    seeded = runner.invoke(cli, ["seed", "--customers", "40", "--days", "30"])
    assert seeded.exit_code == 0, seeded.output
    customer_id, held = asyncio.run(busiest_customer(url))
    other_id = customer_id + 1 if customer_id < 40 else customer_id - 1
    other = asyncio.run(_with(url, lambda s: _prepare(s, customer_id, other_id)))
    before = asyncio.run(_with(url, _figures))
    opted_in = asyncio.run(
        _with(
            url,
            lambda s: s.scalar(
                select(func.count()).where(
                    CustomerConsent.customer_id == customer_id, CustomerConsent.status == "opted_in"
                )
            ),
        )
    )
    tags = asyncio.run(
        _with(url, lambda s: s.scalar(select(func.count()).where(CustomerTag.customer_id == customer_id)))
    )
    assert tags > 1
    ledger_before = asyncio.run(
        _with(url, lambda s: s.scalar(select(func.count()).where(ConsentRecord.customer_id == customer_id)))
    )

    # Asked first; "no" changes nothing.
    declined = runner.invoke(cli, ["customer", "erase", str(customer_id)], input="n\n")
    assert declined.exit_code == 2 and "nothing was erased" in declined.output
    assert asyncio.run(_with(url, _figures)) == before

    done = runner.invoke(cli, ["customer", "erase", "--phone", "+4915112345678", "--yes"])
    assert done.exit_code == 0, done.output
    assert "Traceback" not in done.output
    summary = done.output.splitlines()[0]
    assert summary.startswith(f"erased customer {customer_id}: 1 planned message cancelled, ")
    assert f"{held['messages'] + 1} messages" in summary
    assert f"{held['conversation_messages']} conversation turn" in summary
    assert "1 file, " in summary and f"{tags} tags" in summary and "1 applied webhook deleted" in summary
    assert "1 failed webhook(s) waiting for replay mention them and were kept" in done.output

    async def afterwards(session: Any) -> dict[str, Any]:
        customer = await session.get(Customer, customer_id)
        cc = CustomerCommunication
        mine = cc.customer_id == customer_id
        theirs = select(ChatSession.id).where(ChatSession.customer_id == customer_id)
        # Every text column that could hold them, searched for their number, email and words.
        leaks = 0
        for table, column in (
            ("customer_communications", "body"),
            ("customer_communications", "to_address"),
            ("customer_communications", "from_address"),
            ("chat_messages", "body"),
            ("consent_records", "detail"),
            ("message_status_events", "detail"),
            ("webhook_inbox", "body"),
        ):
            leaks += await session.scalar(
                text(
                    f"SELECT count(*) FROM {table} WHERE {column} LIKE '%4915112345678%' "
                    f"OR {column} LIKE '%erase.me%' OR {column} LIKE '%results are ready%'"
                )
            )
        return {
            "customer": (customer.name, customer.phone_e164, customer.email, customer.whatsapp_id),
            "erased_at": customer.erased_at,
            "bodies": set(await session.scalars(select(cc.body).where(mine))),
            "turns": set(
                await session.scalars(select(ChatMessage.body).where(ChatMessage.session_id.in_(theirs)))
            ),
            "planned": await session.scalar(select(func.count()).where(mine, cc.status == "planned")),
            "tags": await session.scalar(select(func.count()).where(CustomerTag.customer_id == customer_id)),
            "files": await session.scalar(select(func.count()).select_from(ChatAttachment)),
            "leaks": leaks,
            "failed webhook kept": await session.scalar(
                select(func.count()).where(WebhookInbox.status == "failed")
            ),
            "someone else's webhook": await session.scalar(
                select(func.count()).where(WebhookInbox.body.contains("4915199999999"))
            ),
            "event": await session.scalar(
                select(BusinessEvent.payload).where(BusinessEvent.idempotency_key == f"erase-{customer_id}")
            ),
            "ledger": (
                await session.execute(
                    select(ConsentRecord.status, ConsentRecord.source)
                    .where(ConsentRecord.customer_id == customer_id)
                    .order_by(ConsentRecord.id)
                )
            ).all(),
            "consent": set(
                await session.scalars(
                    select(CustomerConsent.status).where(CustomerConsent.customer_id == customer_id)
                )
            ),
            "other": await session.get(Customer, other_id),
            "audit": (
                await session.execute(
                    select(AuditLog.actor, AuditLog.target, AuditLog.detail).where(
                        AuditLog.action == "customer.erase"
                    )
                )
            ).all(),
        }

    after = asyncio.run(_with(url, afterwards))
    assert after["customer"] == (f"Erased customer {customer_id}", None, None, None)
    assert after["erased_at"] is not None
    assert after["bodies"] == {"(erased)"} and after["turns"] == {"(erased)"}
    assert after["planned"] == 0 and after["tags"] == 0 and after["files"] == 0
    assert after["leaks"] == 1  # the failed webhook, kept for replay and named in the output
    assert after["failed webhook kept"] == 1 and after["someone else's webhook"] == 1
    assert after["event"] == {"appointment_id": 7}
    # The ledger keeps its history and adds one withdrawal per channel they had opted in to.
    assert len(after["ledger"]) == ledger_before + opted_in
    assert after["ledger"][-opted_in:] == [("opted_out", "erasure")] * opted_in if opted_in else True
    assert after["consent"] <= {"opted_out"}
    assert (after["other"].name, after["other"].phone_e164) == (other["other_name"], other["other_phone"])
    ((actor, target, detail),) = after["audit"]
    assert actor.startswith("cli") and target == f"customer:{customer_id}"
    assert detail["messages"] == held["messages"] + 1 and detail["failed_webhooks_kept"] == 1

    # Every figure is the same, except that the planned message is now cancelled instead of planned.
    now = asyncio.run(_with(url, _figures))
    assert _sent_statuses(now) == _sent_statuses(before)
    for key in ("customers", "revenue", "orders", "communication analytics"):
        assert now[key] == before[key], key

    again = runner.invoke(cli, ["customer", "erase", str(customer_id), "--yes"])
    assert again.exit_code == 0 and f"customer {customer_id} was already erased on " in again.output
    unknown = runner.invoke(cli, ["customer", "erase", "999999", "--yes"])
    assert unknown.exit_code == 2 and "no customer has id 999999" in unknown.output


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_message_being_sent_makes_the_erasure_wait_and_changes_nothing(
    engine: str, fresh_databases: FreshDatabases, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = fresh_databases.url(engine)
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", url)
    runner = CliRunner()
    assert runner.invoke(cli, ["seed", "--customers", "10", "--days", "5"]).exit_code == 0

    async def sending(session: Any) -> str:
        customer = await session.scalar(select(Customer).order_by(Customer.id).limit(1))
        for status in ("sending", "planned"):
            session.add(
                CustomerCommunication(
                    customer_id=customer.id,
                    channel="sms",
                    provider="twilio",
                    direction="outbound",
                    source="manual",
                    to_address=customer.phone_e164 or "+4915100000000",
                    body=f"a {status} message",
                    status=status,
                )
            )
        return str(customer.id)

    customer_id = asyncio.run(_with(url, sending))
    refused = runner.invoke(cli, ["customer", "erase", customer_id, "--yes"])
    assert refused.exit_code == 2
    assert "has 1 message(s) being handed to a provider right now; nothing was erased" in refused.output

    async def unchanged(session: Any) -> tuple[Any, ...]:
        cc = CustomerCommunication
        customer = await session.get(Customer, int(customer_id))
        statuses = sorted(
            await session.scalars(
                select(cc.status).where(cc.customer_id == int(customer_id), cc.body.like("a % message"))
            )
        )
        return customer.erased_at, customer.name.startswith("Erased"), statuses

    assert asyncio.run(_with(url, unchanged)) == (None, False, ["planned", "sending"])
