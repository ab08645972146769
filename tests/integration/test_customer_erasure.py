"""A patient asks to be forgotten: their personal data goes everywhere it is held, while every figure the
dashboard shows, the consent ledger's history and other customers' data stay exactly as they were."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text

from reports.metrics import REGISTRY
from reports.periods import PeriodSpec
from reports.query import MetricQuery, run_query
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

OUTBOUND = ("email", "sms", "telegram", "whatsapp")

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
    """Give the customer what the seed lacks: a phone and email, a tag, a file, a planned message, an SMS in
    Twilio's logs, webhooks that name them (one applied, one failed), an event with their name, and a note
    with their number."""
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

    def sms_to_them(body: str, status: str, **more: Any) -> CustomerCommunication:
        return CustomerCommunication(
            customer_id=customer_id,
            channel="sms",
            provider="twilio",
            direction="outbound",
            source="manual",
            to_address="+4915112345678",
            body=body,
            status=status,
            **more,
        )

    session.add(sms_to_them("Your results are ready", "planned", next_attempt_at=NOW + timedelta(hours=2)))
    session.add(
        sms_to_them(
            "Reminder",
            "failed",
            status_reason="The 'To' number +4915112345678 is not a valid phone number.",
        )
    )
    # An SMS Twilio accepted, so its record (text and both numbers) is in Twilio's logs: the seed gives a
    # customer SMS on some days only, and the erasure's Twilio pass must have one to name.
    session.add(
        sms_to_them(
            "Your appointment is confirmed",
            "delivered",
            provider_message_id="SM" + "5" * 32,
            created_at=NOW - timedelta(days=3),
            sent_at=NOW - timedelta(days=3),
        )
    )
    # Written from their number before it was on their profile: tied to no customer.
    session.add(
        CustomerCommunication(
            customer_id=None,
            channel="sms",
            provider="twilio",
            direction="inbound",
            source="reply",
            from_address="+4915112345678",
            to_address="+4930000000",
            body="are my results ready?",
            status="received",
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


async def _kpis(url: str) -> dict[str, Any]:
    """Every KPI the dashboard and the bots show, over the seeded month, as the analytics layer computes it."""
    database = Database.connect(url)
    try:
        figures = {}
        for name in REGISTRY:
            result = await run_query(
                database, MetricQuery((name,), PeriodSpec.last_n_days(30)), now=NOW, business_tz="UTC"
            )
            figures[name] = [(series.total, list(series.points)) for series in result.series]
        return figures
    finally:
        await database.dispose()


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


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_erasing_removes_the_person_and_keeps_every_figure(
    engine: str, fresh_databases: FreshDatabases, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = fresh_databases.url(engine)
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", url)
    # Twilio unreachable here (a closed port): the seeded SMS' records are named and kept for a later run.
    monkeypatch.setenv("SWITCHBOARD_TWILIO_BASE_URL", "http://127.0.0.1:9")
    runner = CliRunner()
    seeded = runner.invoke(cli, ["seed", "--customers", "40", "--days", "30"])
    assert seeded.exit_code == 0, seeded.output
    customer_id, held = asyncio.run(busiest_customer(url))
    other_id = customer_id + 1 if customer_id < 40 else customer_id - 1
    old_address, name = asyncio.run(
        _with(
            url,
            lambda s: s.execute(
                select(CustomerCommunication.to_address, Customer.name)
                .join(Customer, Customer.id == CustomerCommunication.customer_id)
                .where(
                    CustomerCommunication.customer_id == customer_id,
                    CustomerCommunication.direction == "outbound",
                )
                .limit(1)
            ),
        )
    ).one()
    other = asyncio.run(_with(url, lambda s: _prepare(s, customer_id, other_id)))
    before = asyncio.run(_with(url, _figures))
    kpis = asyncio.run(_kpis(url))
    assert kpis["opt_outs" if "opt_outs" in kpis else "opt_out_rate"], "the seed gives the month opt-outs"
    tags = asyncio.run(
        _with(url, lambda s: s.scalar(select(func.count()).where(CustomerTag.customer_id == customer_id)))
    )
    assert tags > 1
    ledger_before = asyncio.run(
        _with(url, lambda s: s.scalar(select(func.count()).where(ConsentRecord.customer_id == customer_id)))
    )

    # Asked first; "no" changes nothing.
    declined = runner.invoke(cli, ["customer", "erase", str(customer_id)], input="n\n")
    assert declined.exit_code == 0 and "Nothing was erased." in declined.output
    assert asyncio.run(_with(url, _figures)) == before

    done = runner.invoke(cli, ["customer", "erase", "--phone", "+4915112345678", "--yes"])
    assert done.exit_code == 0, done.output
    assert "Traceback" not in done.output
    summary = done.output.splitlines()[0]
    assert summary.startswith(f"erased customer {customer_id}: 1 planned message withdrawn, ")
    assert f"{held['messages'] + 4} messages" in summary
    assert f"{held['conversation_messages']} conversation turn" in summary
    assert "1 file, " in summary and f"{tags} tags" in summary
    assert "4 channels closed in the consent ledger" in summary and "1 applied webhook blanked" in summary
    assert "1 webhook not applied yet (failed or waiting) mention their phone" in done.output

    async def afterwards(session: Any) -> dict[str, Any]:
        customer = await session.get(Customer, customer_id)
        cc = CustomerCommunication
        mine = cc.customer_id == customer_id
        theirs = select(ChatSession.id).where(ChatSession.customer_id == customer_id)
        # Every text column that could hold them, searched for their numbers (the one on the profile and the
        # one their messages went to), email, name and words.
        leaks = {}
        for table, column in (
            ("customer_communications", "body"),
            ("customer_communications", "to_address"),
            ("customer_communications", "from_address"),
            ("customer_communications", "status_reason"),
            ("chat_messages", "body"),
            ("consent_records", "detail"),
            ("message_status_events", "detail"),
            ("webhook_inbox", "body"),
            ("customers", "name"),
        ):
            for needle in ("4915112345678", "erase.me", "results are", old_address.lstrip("+"), name):
                found = await session.scalar(
                    text(f"SELECT count(*) FROM {table} WHERE {column} LIKE :needle").bindparams(
                        needle=f"%{needle}%"
                    )
                )
                if found:
                    leaks[(table, column, needle)] = found
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
            "webhooks": sorted((await session.execute(select(WebhookInbox.status, WebhookInbox.body))).all()),
            "event": await session.scalar(
                select(BusinessEvent.payload).where(BusinessEvent.idempotency_key == f"erase-{customer_id}")
            ),
            "ledger": (
                await session.execute(
                    select(ConsentRecord.channel, ConsentRecord.status, ConsentRecord.source)
                    .where(ConsentRecord.customer_id == customer_id)
                    .order_by(ConsentRecord.id)
                )
            ).all(),
            "consent": set(
                (
                    await session.execute(
                        select(CustomerConsent.channel, CustomerConsent.status).where(
                            CustomerConsent.customer_id == customer_id
                        )
                    )
                ).all()
            ),
            "other": await session.get(Customer, other_id),
            "audit": (
                await session.execute(
                    select(AuditLog.action, AuditLog.actor, AuditLog.target, AuditLog.detail)
                    .where(AuditLog.action.like("customer.erase%"))
                    .order_by(AuditLog.id)
                )
            ).all(),
        }

    after = asyncio.run(_with(url, afterwards))
    assert after["customer"] == (f"Erased customer {customer_id}", None, None, None)
    assert after["erased_at"] is not None
    assert after["bodies"] == {"(erased)"} and after["turns"] == {"(erased)"}
    assert after["planned"] == 0 and after["tags"] == 0 and after["files"] == 0
    # Only the failed webhook still names them: kept for replay (it may be someone else's), and said so.
    assert after["leaks"] == {("webhook_inbox", "body", "4915112345678"): 1}
    assert after["webhooks"] == [
        ("applied", "(erased)"),  # the row stays, so a provider's retry is still applied once
        ("applied", "From=%2B4915199999999&Body=someone+else"),
        ("failed", '{"from": "4915112345678", "text": "still there?"}'),
    ]
    assert after["event"] == {"appointment_id": 7}
    # The ledger keeps its history and closes every channel, in the erasure's name.
    assert len(after["ledger"]) == ledger_before + 4
    assert after["ledger"][-4:] == [
        (channel, "opted_out", "erasure") for channel in ("sms", "email", "whatsapp", "telegram")
    ]
    assert after["consent"] == {(channel, "opted_out") for channel in OUTBOUND}
    assert (after["other"].name, after["other"].phone_e164) == (other["other_name"], other["other_phone"])
    (main, actor, target, detail), (webhooks, *_, blanked), (copies, *_, elsewhere) = after["audit"]
    assert (main, webhooks, copies) == ("customer.erase", "customer.erase.webhooks", "customer.erase.copies")
    cc = CustomerCommunication
    their_sms = asyncio.run(
        _with(
            url,
            lambda s: s.scalars(
                select(cc.provider_message_id.distinct()).where(
                    cc.customer_id == customer_id,
                    cc.provider == "twilio",
                    cc.provider_message_id.is_not(None),
                )
            ),
        )
    ).all()
    assert elsewhere["twilio_records"] == 0 and elsewhere["failures"] == 1
    assert len(their_sms) > 0 and sorted(elsewhere["twilio_pending"]) == sorted(their_sms)
    assert actor.startswith("cli") and target == f"customer:{customer_id}"
    assert detail["messages"] == held["messages"] + 4 and detail["again"] is False
    assert blanked == {"blanked": 1, "kept": 1}

    # Every figure is the same: the KPIs, the rollups, the tables' counts. The one planned message is now
    # suppressed instead of planned.
    now = asyncio.run(_with(url, _figures))
    assert asyncio.run(_kpis(url)) == kpis
    moved = dict(((c, s), n) for c, s, n in before["messages by status"])
    moved[("sms", "planned")] -= 1  # (the failed one was added before the figures were taken)
    moved[("sms", "suppressed")] = moved.get(("sms", "suppressed"), 0) + 1
    assert {(c, s): n for c, s, n in now["messages by status"]} == {k: n for k, n in moved.items() if n}
    for key in ("customers", "revenue", "orders", "communication analytics"):
        assert now[key] == before[key], key

    again = runner.invoke(cli, ["customer", "erase", str(customer_id), "--yes"])
    assert again.exit_code == 0
    assert (
        f"customer {customer_id} was already erased on " in again.output
        and "nothing new to erase" in again.output
    )
    unknown = runner.invoke(cli, ["customer", "erase", "999999", "--yes"])
    assert unknown.exit_code == 2 and "no customer has id 999999" in unknown.output


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_what_reaches_an_erased_customer_later_is_erased_by_erasing_again(
    engine: str, fresh_databases: FreshDatabases, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message that arrived while the erasure ran (tied to the row by a lookup made just before) is caught
    by running the erasure again; nothing is sent to the row."""
    url = fresh_databases.url(engine)
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", url)
    runner = CliRunner()
    assert runner.invoke(cli, ["seed", "--customers", "10", "--days", "5"]).exit_code == 0
    customer_id = asyncio.run(_with(url, lambda s: s.scalar(select(func.min(Customer.id)))))
    assert runner.invoke(cli, ["customer", "erase", str(customer_id), "--yes"]).exit_code == 0

    async def late(session: Any) -> None:
        session.add(
            CustomerCommunication(
                customer_id=customer_id,
                channel="sms",
                provider="twilio",
                direction="inbound",
                source="reply",
                from_address="+4915177777777",
                to_address="+4930000000",
                body="one more thing about my test results",
                status="received",
            )
        )

    asyncio.run(_with(url, late))
    again = runner.invoke(cli, ["customer", "erase", str(customer_id), "--yes"])
    assert again.exit_code == 0, again.output
    assert (
        "was already erased on" in again.output
        and "erased what reached them since: 1 message" in again.output
    )
    texts = asyncio.run(
        _with(
            url,
            lambda s: s.execute(
                select(CustomerCommunication.body, CustomerCommunication.from_address).where(
                    CustomerCommunication.customer_id == customer_id,
                    CustomerCommunication.direction == "inbound",
                )
            ),
        )
    ).all()
    assert {body for body, _ in texts} == {"(erased)"} and "+4915177777777" not in {a for _, a in texts}


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
    assert "has 1 message being handed to a provider right now; nothing was erased" in refused.output

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


async def test_the_telegram_bot_never_links_an_erased_customer_again(database: Database) -> None:
    from storage.conversations import SqlConversations

    async with database.sessions() as session:
        erased = Customer(name="Erased customer", erased_at=NOW)
        kept = Customer(name="Ida Kept")
        session.add_all([erased, kept])
        await session.flush()
        conversations = SqlConversations(session)
        assert await conversations.link_telegram_chat(erased.id, "4242") is None
        assert await conversations.link_telegram_chat(kept.id, "4243") == kept.id
        await session.commit()
        await session.refresh(erased)
        await session.refresh(kept)
        assert (erased.telegram_chat_id, kept.telegram_chat_id) == (None, 4243)


async def test_an_opt_in_never_reopens_a_channel_an_erasure_closed_even_racing_it(database: Database) -> None:
    """The erasure holds the customer row for update until it commits; an opt-in written meanwhile waits for
    it and is then refused, so the ledger's last word stays the erasure's (an opt-out still goes through)."""
    from domain.consent.ledger import CustomerErased, record_consent
    from domain.vocabulary import Channel, ConsentStatus
    from storage.units import UnitsOfWork

    async with database.sessions() as session:
        racing, erased = Customer(name="Rita Racing"), Customer(name="Erased customer", erased_at=NOW)
        session.add_all([racing, erased])
        await session.commit()
        ids = racing.id, erased.id
    units = UnitsOfWork(database, "Europe/Berlin")

    async def opt_in(customer_id: int) -> object:
        return await record_consent(
            units.conversations(), customer_id, Channel.SMS, ConsentStatus.OPTED_IN, "front_desk", None, NOW
        )

    with pytest.raises(CustomerErased):
        await opt_in(ids[1])
    assert await record_consent(
        units.conversations(), ids[1], Channel.SMS, ConsentStatus.OPTED_OUT, "front_desk", None, NOW
    )
    if database.url.startswith("postgresql"):  # SQLite runs one writer at a time: there is no race to lose
        async with database.sessions() as session:
            customer = await session.get(Customer, ids[0], with_for_update=True)
            assert customer is not None
            customer.erased_at = NOW
            await session.flush()
            waiting = asyncio.ensure_future(opt_in(ids[0]))
            await asyncio.sleep(0.5)
            assert not waiting.done(), "the opt-in waits for the erasure's lock"
            await session.commit()
        with pytest.raises(CustomerErased):
            await waiting
    async with database.read_sessions() as session:
        ledger = (
            await session.execute(
                select(ConsentRecord.customer_id, ConsentRecord.status).where(
                    ConsentRecord.customer_id.in_(ids)
                )
            )
        ).all()
    assert [tuple(row) for row in ledger] == [(ids[1], "opted_out")]
