"""Erasing a customer deletes Twilio's records of their SMS, against the sandbox over HTTP: Twilio keeps each
message's text and numbers in the account's logs until its API is asked to delete it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr
from sqlalchemy import select

from api.sandbox import RunningSandbox
from domain.delivery.ports import OutboundMessage
from domain.vocabulary import Channel
from storage.customer_erasure import erase_customer
from storage.database import Database
from storage.models import AuditLog, Customer, CustomerCommunication
from switchboard.erasure_copies import erase_copies
from switchboard.settings import Settings
from tests.integration.test_drivers_sandbox import receiver, sandbox, twilio_driver

__all__ = ["receiver", "sandbox"]

PHONE = "+4915112340001"


async def test_erasing_a_customer_deletes_their_sms_at_twilio_and_again_what_was_still_on_its_way(
    database: Database, sandbox: RunningSandbox, receiver: Any
) -> None:
    driver = twilio_driver(sandbox, receiver[1])
    try:
        sids = [
            (
                await driver.send(
                    OutboundMessage(
                        message_id=n,
                        idempotency_key=f"erase-{n}",
                        channel=Channel.SMS,
                        to=PHONE,
                        body=f"#{n}",
                    )
                )
            ).provider_message_id
            for n in range(4)
        ]
    finally:
        await driver.close()
    await sandbox.settle()
    # The last one is still on its way at Twilio, which then refuses to delete it (20009).
    in_flight = sandbox.state.find("twilio", sids[3])
    assert in_flight is not None
    in_flight.status = "sending"

    now = datetime.now(UTC)
    async with database.sessions() as session:
        customer = Customer(name="Jana Vogel", phone_e164=PHONE, timezone="Europe/Berlin", locale="de")
        session.add(customer)
        await session.flush()
        customer_id = customer.id

        def sms(sid: str, *, tied: bool = True, inbound: bool = False) -> CustomerCommunication:
            return CustomerCommunication(
                customer_id=customer_id if tied else None,
                channel="sms",
                provider="twilio",
                direction="inbound" if inbound else "outbound",
                source="reply" if inbound else "manual",
                from_address=PHONE if inbound else "+4930000000",
                to_address="+4930000000" if inbound else PHONE,
                body="about my results",
                status="received" if inbound else "delivered",
                provider_message_id=sid,
                created_at=now,
            )

        session.add_all(
            [
                sms(sids[0]),
                sms(sids[1]),
                sms(sids[3]),
                # A STOP from their number before they were a customer: found by the number, before it goes.
                sms(sids[2], tied=False, inbound=True),
                # One Twilio no longer has (deleted by hand in the console, say).
                sms("SM" + "0" * 32),
            ]
        )
        await session.commit()
    settings = Settings(
        sandbox=True,
        twilio_base_url=sandbox.base_url,
        twilio_account_sid=sandbox.state.config.twilio_account_sid,
        twilio_auth_token=sandbox.state.config.twilio_auth_token,
    )

    erasure = await erase_customer(database, customer_id, actor="privacy@clinic", now=now)
    assert sorted(erasure.twilio_records) == sorted([sids[0], sids[1], sids[3], sids[2], "SM" + "0" * 32])
    # The first run: the untied one (sids[2]) is the one Twilio cannot delete yet, and then also what is
    # still on its way.
    untied = sandbox.state.find("twilio", sids[2])
    assert untied is not None
    untied.status = "sending"
    done = await erase_copies(settings, database, erasure, actor="privacy@clinic")
    assert (done.twilio_records, done.twilio_gone) == (2, 1)
    assert sorted(done.twilio_pending) == sorted([sids[2], sids[3]])
    assert len(done.failures) == 2 and all(
        "run the erasure again in a few minutes" in f for f in done.failures
    )
    held = {m.provider_message_id for m in sandbox.state.messages if m.provider == "twilio"}
    assert held & set(sids) == {sids[2], sids[3]}, "Twilio still holds what was deleted"
    assert any("2 SMS records deleted" in line and "1 it no longer had" in line for line in done.lines(1))

    # Once Twilio has finished with them, running the erasure again deletes both, the untied one too,
    # though its number is gone from the database: the first run's audit entry kept it.
    in_flight.status = untied.status = "delivered"
    again = await erase_customer(database, customer_id, actor="privacy@clinic", now=now)
    assert sids[2] in again.twilio_records, "the first run's audit entry kept it"
    done = await erase_copies(settings, database, again, actor="privacy@clinic")
    assert (done.twilio_records, done.twilio_gone, done.twilio_pending, done.failures) == (2, 3, [], [])
    assert not {m.provider_message_id for m in sandbox.state.messages} & set(sids)
    assert sandbox.state.totals()["deleted"] == 4

    # Twilio refusing the credentials stops at once, naming every record, and keeps them for later.
    wrong = settings.model_copy(update={"twilio_auth_token": SecretStr("not-the-token")})
    refused = await erase_copies(wrong, database, again, actor="privacy@clinic")
    assert refused.failures == ["5 Twilio SMS records: Twilio refused the credentials (401 Authenticate)"]
    assert len(refused.twilio_pending) == 5

    # A run stopped after the database was erased but before its Twilio pass (Ctrl-C, say) loses nothing:
    # its own audit entry holds every record it found, the untied one too.
    interrupted = await erase_customer(database, customer_id, actor="privacy@clinic", now=now)
    resumed = await erase_customer(database, customer_id, actor="privacy@clinic", now=now)
    assert sids[2] in interrupted.twilio_records and set(resumed.twilio_records) == set(
        interrupted.twilio_records
    )

    async with database.read_sessions() as session:
        audits = (
            await session.scalars(
                select(AuditLog.detail)
                .where(AuditLog.action == "customer.erase.copies")
                .order_by(AuditLog.id)
            )
        ).all()
    assert [(a["twilio_records"], a["twilio_records_gone"], a["failures"]) for a in audits] == [
        (2, 1, 2),
        (2, 3, 0),
        (0, 0, 1),
    ]
