"""/api/notification-rules over HTTP on both engines: auth, validation, changes, audit, and a rule that fires."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from api.app import create_app
from domain.notifications.use_cases import process_pending_events
from storage.database import Database
from storage.models import AuditLog, CustomerCommunication
from storage.notifications import SqlNotificationUnitOfWork
from storage.seeding import SeedPlan, seed_database
from storage.seeding.catalogue import NOTIFICATION_RULES
from switchboard.settings import Settings
from tests.integration.test_json_api import opted_in_customer

TOKEN = "rules-api-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "X-Switchboard-Actor": "ops@northwind.example"}
RULES = "/api/notification-rules"
SHIPPED = {"name": "parcel sent", "event_type": "parcel.sent", "template": "order_confirmation"}


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[AsyncTestClient[Any]]:
    """The app over a small seeded world: the catalogue's notification rules, the templates they name, a few customers."""
    database = Database.connect(database_url)
    await seed_database(database, SeedPlan(customers=12, days=3, seed=5, end_date=date(2026, 11, 20)))
    await database.dispose()
    app = create_app(Settings(database_url=database_url, api_token=TOKEN))  # type: ignore[arg-type]
    async with AsyncTestClient(app) as test_client:
        yield test_client


async def rows_of(database_url: str, query: Any) -> list[Any]:
    database = Database.connect(database_url)
    async with database.sessions() as session:
        rows = list(await session.scalars(query))
    await database.dispose()
    return rows


async def test_every_rule_route_needs_the_bearer_token(client: AsyncTestClient[Any]) -> None:
    for method, path in [("GET", RULES), ("POST", RULES), ("PATCH", f"{RULES}/1"), ("DELETE", f"{RULES}/1")]:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            response = await client.request(method, path, headers=headers, json=SHIPPED)
            assert response.status_code == 401, (method, path, headers)
    assert len((await client.get(RULES, headers=AUTH)).json()["rules"]) == len(
        NOTIFICATION_RULES
    )  # nothing was created or deleted
    assert {RULES, f"{RULES}/{{rule_id}}"} <= set(
        (await client.get("/api/schema/openapi.json")).json()["paths"]
    )


async def test_a_rule_is_created_listed_changed_and_deleted_with_an_audit_trail(
    client: AsyncTestClient[Any], database_url: str
) -> None:
    created = await client.post(RULES, headers=AUTH, json={**SHIPPED, "channels": ["email", "sms"]})
    assert created.status_code == 201, created.text
    rule = created.json()
    assert rule == {
        "id": rule["id"],
        "name": "parcel sent",
        "event_type": "parcel.sent",
        "template": "order_confirmation",
        "channels": ["email", "sms"],
        "offset_minutes": 0,
        "category": "transactional",
        "enabled": True,
    }
    listed = (await client.get(RULES, headers=AUTH)).json()["rules"]
    assert listed[-1] == rule and {"order_confirmation", "welcome"} <= {r["name"] for r in listed}

    path = f"{RULES}/{rule['id']}"
    changed = await client.patch(
        path, headers=AUTH, json={"enabled": False, "offset_minutes": -90, "category": "marketing"}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {**rule, "enabled": False, "offset_minutes": -90, "category": "marketing"}
    defaults = await client.patch(path, headers=AUTH, json={"channels": [], "template": "order_shipped"})
    assert (defaults.json()["channels"], defaults.json()["template"]) == ([], "order_shipped")

    deleted = await client.delete(path, headers=AUTH)
    assert deleted.status_code == 204 and deleted.content == b""
    assert rule["id"] not in [r["id"] for r in (await client.get(RULES, headers=AUTH)).json()["rules"]]
    audits = await rows_of(
        database_url, select(AuditLog).where(AuditLog.target == f"notification_rule:{rule['id']}")
    )
    assert [(a.action, a.actor, a.via) for a in sorted(audits, key=lambda a: a.id)] == [
        ("notification_rule.create", "ops@northwind.example", "api"),
        ("notification_rule.update", "ops@northwind.example", "api"),
        ("notification_rule.update", "ops@northwind.example", "api"),
        ("notification_rule.delete", "ops@northwind.example", "api"),
    ]


async def test_bad_rules_answer_422_naming_the_problem(client: AsyncTestClient[Any]) -> None:
    for changes, fragment in [
        ({"name": "order_confirmation"}, "a notification rule named 'order_confirmation' already exists"),
        ({"name": " "}, "needs a name and an event type"),
        ({"event_type": "Parcel Sent"}, "must look like 'order.created'"),
        ({"event_type": "parcel"}, "must look like 'order.created'"),
        ({"template": "no_such_template"}, "no active template named 'no_such_template'"),
        ({"channels": ["pigeon"]}, "channel order must list one or more of sms"),
        ({"channels": ["sms", "sms"]}, "names a channel more than once"),
        ({"offset_minutes": 10081}, "between -10080 and 10080 minutes"),
        ({"category": "conversational"}, "must be transactional or marketing"),
        ({"colour": "red"}, "unknown field `colour`"),
        ({"offset_minutes": "soon"}, "expected `int`"),
    ]:
        response = await client.post(RULES, headers=AUTH, json={**SHIPPED, **changes})
        assert response.status_code == 422, (changes, response.text)
        assert fragment in response.text.lower(), (changes, response.text)
    missing = await client.post(RULES, headers=AUTH, json={"name": "half a rule"})
    assert missing.status_code == 422 and "event_type" in missing.text
    assert len((await client.get(RULES, headers=AUTH)).json()["rules"]) == len(NOTIFICATION_RULES)


async def test_bad_changes_answer_422_and_unknown_rules_404(client: AsyncTestClient[Any]) -> None:
    rule = (await client.get(RULES, headers=AUTH)).json()["rules"][0]
    path = f"{RULES}/{rule['id']}"
    for changes, fragment in [
        ({"template": "no_such_template"}, "no active template named 'no_such_template'"),
        ({"offset_minutes": -20000}, "between -10080 and 10080 minutes"),
        ({"category": "urgent"}, "must be transactional or marketing, not 'urgent'"),
        ({"channels": ["chat"]}, "channel order must list one or more of sms"),
        ({"name": "renamed"}, "unknown field `name`"),
    ]:
        response = await client.patch(path, headers=AUTH, json=changes)
        assert response.status_code == 422, (changes, response.text)
        assert fragment in response.text.lower(), (changes, response.text)
    assert (await client.get(RULES, headers=AUTH)).json()["rules"][0] == rule
    for unknown in (999_999, 2**70):
        assert (await client.patch(f"{RULES}/{unknown}", headers=AUTH, json={})).status_code == 404
        assert (await client.delete(f"{RULES}/{unknown}", headers=AUTH)).status_code == 404


async def test_a_rule_created_through_the_api_fires_on_a_posted_event_until_switched_off(
    client: AsyncTestClient[Any], database_url: str
) -> None:
    template = await client.put(
        "/api/templates/parcel_sent/sms/en",
        headers=AUTH,
        json={
            "body": "Hi {{ first_name }}, parcel {{ parcel_ref }} is on its way.",
            "variables": ["first_name", "parcel_ref"],
        },
    )
    assert template.status_code == 200, template.text
    created = await client.post(
        RULES, headers=AUTH, json={**SHIPPED, "template": "parcel_sent", "channels": ["sms"]}
    )
    assert created.status_code == 201, created.text
    rule_id = created.json()["id"]
    customer = await opted_in_customer(database_url, "sms")

    async def post_and_process(key: str) -> list[CustomerCommunication]:
        event = {
            "type": "parcel.sent",
            "idempotency_key": key,
            "customer_id": customer,
            "payload": {"parcel_ref": key},
        }
        posted = await client.post("/api/events", headers=AUTH, json=event)
        assert posted.status_code == 202, posted.text
        database = Database.connect(database_url)
        await process_pending_events(lambda: SqlNotificationUnitOfWork(database))
        await database.dispose()
        source_ref = f"{rule_id}:{posted.json()['id']}"
        return await rows_of(
            database_url, select(CustomerCommunication).where(CustomerCommunication.source_ref == source_ref)
        )

    [message] = await post_and_process("P-100")
    assert (message.source, message.channel, message.status, message.customer_id) == (
        "notification",
        "sms",
        "planned",
        customer,
    )
    assert message.body is not None and message.body.endswith(", parcel P-100 is on its way.")

    switched_off = await client.patch(f"{RULES}/{rule_id}", headers=AUTH, json={"enabled": False})
    assert switched_off.status_code == 200 and switched_off.json()["enabled"] is False
    assert await post_and_process("P-101") == []
