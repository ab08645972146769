"""SWITCHBOARD_MARKETING_REQUIRES_OPT_IN on both engines: with it on (the default) marketing reaches a
customer only on a channel where they opted in, and a customer never asked gets service messages but no
marketing, held back with the reason in words; with it off, marketing reaches them until they opt out. The
customer page says which rule holds."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient
from sqlalchemy import select

from api.app import create_app
from storage.database import Database
from storage.models import Customer, CustomerCommunication, CustomerConsent
from tests.integration.test_pages import MANAGER, SCRIPT_NAME, Seeded, seeded, sign_in

__all__ = ["seeded"]


async def _never_asked(seeded: Seeded) -> int:
    """The fixture's customer with a phone number and no consent row on any channel."""
    database = Database.connect(seeded.settings.database_url)
    try:
        async with database.read_sessions() as session:
            customer_id = (
                await session.execute(select(Customer.id).where(Customer.name == SCRIPT_NAME))
            ).scalar_one()
            said = (
                await session.execute(
                    select(CustomerConsent.channel).where(CustomerConsent.customer_id == customer_id)
                )
            ).all()
        assert said == [], "the customer was never asked"
        return int(customer_id)
    finally:
        await database.dispose()


async def _reason(seeded: Seeded, message_id: int) -> tuple[str, str | None]:
    database = Database.connect(seeded.settings.database_url)
    try:
        async with database.read_sessions() as session:
            row = (
                await session.execute(
                    select(
                        CustomerCommunication.status,
                        CustomerCommunication.status_reason,
                    ).where(CustomerCommunication.id == message_id)
                )
            ).one()
        return row[0], row[1]
    finally:
        await database.dispose()


async def test_marketing_needs_an_opt_in_unless_the_business_says_otherwise(seeded: Seeded) -> None:
    customer_id = await _never_asked(seeded)
    bearer = {"Authorization": f"Bearer {seeded.settings.api_token.get_secret_value()}"}
    expected: dict[tuple[bool, str], tuple[str, str | None]] = {
        (True, "marketing"): ("suppressed", "no_consent"),
        (True, "transactional"): ("planned", None),
        (False, "marketing"): ("planned", None),
        (False, "transactional"): ("planned", None),
    }
    for requires_opt_in in (True, False):
        settings = seeded.settings.model_copy(update={"marketing_requires_opt_in": requires_opt_in})
        assert settings.marketing_requires_opt_in is requires_opt_in
        async with AsyncTestClient(create_app(settings)) as client:
            for category in ("marketing", "transactional"):
                sent = await client.post(
                    "/api/messages",
                    json={
                        "customer_id": customer_id,
                        "channel": "sms",
                        "body": "Spring offer",
                        "category": category,
                    },
                    headers={**bearer, "Idempotency-Key": f"opt-in-{requires_opt_in}-{category}"},
                )
                assert sent.status_code in (200, 201, 202), sent.text
                answer: dict[str, Any] = sent.json()
                status, reason = await _reason(seeded, answer["id"])
                assert (status, reason) == expected[(requires_opt_in, category)], (requires_opt_in, category)
                assert answer["status"] == status
                if reason == "no_consent":
                    assert answer["explanation"] == (
                        "Not sent: marketing on SMS needs the customer's opt-in, which they have not given."
                    )

            await sign_in(client, seeded, MANAGER)  # type: ignore[arg-type]
            html = (await client.get(f"/communication/customers/{customer_id}")).text
            rule = html.split('id="consent-rule">', 1)[1].split("</p>", 1)[0]
            wizard = (await client.get("/communication/campaigns/new")).text
            if requires_opt_in:
                assert rule.startswith("Marketing goes only on channels where they opted in")
                assert "Marketing messages also need consent on the channel they go by" in wizard
            else:
                assert rule.startswith("Marketing also goes on channels not asked, until they opt out")
                assert "Marketing messages go on any channel the customer has not opted out of" in wizard
