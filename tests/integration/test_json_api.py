"""The JSON API over HTTP on both engines: authentication, previews, sends, templates, preferences, campaigns, events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from api.app import create_app
from domain.messages.pricing import DEFAULT_PRICE_BOOK
from storage.database import Database
from storage.models import AuditLog, ConsentRecord, Customer, CustomerCommunication, CustomerConsent
from storage.seeding import SeedPlan, seed_database
from switchboard.settings import Settings

TOKEN = "test-api-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[AsyncTestClient[Any]]:
    database = Database.connect(database_url)
    await seed_database(database, SeedPlan(customers=30, days=20, seed=1, end_date=date(2026, 11, 20)))
    await database.dispose()
    app = create_app(Settings(database_url=database_url, api_token=TOKEN))  # type: ignore[arg-type]
    async with AsyncTestClient(app) as test_client:
        yield test_client


async def opted_in_customer(database_url: str, channel: str) -> int:
    database = Database.connect(database_url)
    async with database.sessions() as session:
        found = await session.scalar(
            select(CustomerConsent.customer_id)
            .where(CustomerConsent.channel == channel, CustomerConsent.status == "opted_in")
            .order_by(CustomerConsent.customer_id)
        )
    await database.dispose()
    assert found is not None
    return int(found)


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}]
)
async def test_every_api_route_needs_the_bearer_token(
    client: AsyncTestClient[Any], headers: dict[str, str]
) -> None:
    for method, path in [
        ("POST", "/api/messages/preview"),
        ("GET", "/api/messages"),
        ("GET", "/api/templates"),
        ("GET", "/api/campaigns"),
        ("POST", "/api/events"),
        ("GET", "/api/customers/1/preferences"),
    ]:
        response = await client.request(method, path, headers=headers, json={})
        assert response.status_code == 401, (method, path)


async def test_sms_preview_counts_gsm7_and_ucs2_segments_and_cost(client: AsyncTestClient[Any]) -> None:
    plain = await client.post(
        "/api/messages/preview", headers=AUTH, json={"channel": "sms", "body": "A" * 161}
    )
    assert plain.status_code == 200
    body = plain.json()
    assert (body["encoding"], body["segments"], body["text"]) == ("GSM-7", 2, "A" * 161)
    assert body["estimated_cost"] == pytest.approx(2 * DEFAULT_PRICE_BOOK.sms_per_segment / 1_000_000)
    emoji = (
        await client.post("/api/messages/preview", headers=AUTH, json={"channel": "sms", "body": "Danke! 😀"})
    ).json()
    assert (emoji["encoding"], emoji["segments"]) == ("UCS-2", 1)


async def test_template_preview_renders_variables(client: AsyncTestClient[Any]) -> None:
    response = await client.post(
        "/api/messages/preview",
        headers=AUTH,
        json={
            "channel": "sms",
            "template": "appointment_reminder",
            "variables": {
                "first_name": "Jonas",
                "service": "Skin check",
                "clinic": "Berlin Mitte",
                "appointment_time": "Tue 09:30",
            },
        },
    )
    assert response.status_code == 200, response.text
    assert "Jonas" in response.json()["text"] and response.json()["encoding"] in ("GSM-7", "UCS-2")


async def test_a_first_contact_is_greeted_without_the_words_made_up_for_their_name(
    client: AsyncTestClient[Any], database_url: str
) -> None:
    database = Database.connect(database_url)
    async with database.sessions() as session:
        stranger = Customer(name="SMS contact …4321", phone_e164="+4915100004321", locale="en")
        german = Customer(name="SMS contact …8765", phone_e164="+4915100008765", locale="de")
        session.add_all([stranger, german])
        await session.commit()
        ids = stranger.id, german.id
    await database.dispose()
    values = {"service": "Skin check", "clinic": "Berlin Mitte", "appointment_time": "Thu 10:30"}
    bodies = []
    for customer_id in ids:
        sent = await client.post(
            "/api/messages",
            headers=AUTH,
            json={
                "channel": "sms",
                "customer_id": customer_id,
                "template": "appointment_reminder",
                "variables": values,
            },
        )
        assert sent.status_code == 201, sent.text
        bodies.append((await client.get(f"/api/messages/{sent.json()['id']}", headers=AUTH)).json()["body"])
    assert bodies[0].startswith("Hi, a reminder of your Skin check at Berlin Mitte"), bodies[0]
    assert bodies[1].startswith("Hallo, wir erinnern an Ihren Termin (Skin check)"), bodies[1]


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"channel": "sms"}, "either a template name or a body"),
        ({"channel": "sms", "body": "x", "template": "appointment_reminder"}, "not both"),
        ({"channel": "pigeon", "body": "x"}, "unknown channel"),
        ({"channel": "sms", "template": "no_such_template"}, "no active template"),
        ({"channel": "sms", "body": "x" * 1601}, "at most 1600"),
        (
            {"channel": "sms", "template": "appointment_reminder", "variables": {"first_name": "x"}},
            "no value was given for the variables “service”",
        ),
        ({"channel": "sms", "body": 42}, "not valid"),
    ],
)
async def test_bad_previews_answer_422_naming_the_problem(
    client: AsyncTestClient[Any], payload: dict[str, Any], fragment: str
) -> None:
    response = await client.post("/api/messages/preview", headers=AUTH, json=payload)
    assert response.status_code == 422, response.text
    assert fragment.lower() in response.text.lower()


async def test_free_text_is_never_rendered_as_a_template(client: AsyncTestClient[Any]) -> None:
    attack = "{{ ''.__class__.__mro__[1].__subclasses__() }} {% for x in range(3) %}x{% endfor %}"
    response = await client.post(
        "/api/messages/preview", headers=AUTH, json={"channel": "sms", "body": attack}
    )
    assert response.status_code == 200
    assert response.json()["text"] == attack


async def test_send_queues_once_per_idempotency_key_and_audits(
    client: AsyncTestClient[Any], database_url: str
) -> None:
    customer = await opted_in_customer(database_url, "sms")
    payload = {"channel": "sms", "customer_id": customer, "body": "Your results are ready."}
    first = await client.post("/api/messages", headers={**AUTH, "Idempotency-Key": "abc-1"}, json=payload)
    again = await client.post("/api/messages", headers={**AUTH, "Idempotency-Key": "abc-1"}, json=payload)
    assert first.status_code == 201 and again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert first.json()["status"] in ("planned", "suppressed") and again.json()["duplicate"] is True
    detail = await client.get(f"/api/messages/{first.json()['id']}", headers=AUTH)
    assert detail.json()["body"] in ("Your results are ready.", "")
    database = Database.connect(database_url)
    async with database.sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(CustomerCommunication)
            .where(CustomerCommunication.idempotency_key.like("manual:api-abc-1:%"))
        )
        audits = await session.scalar(
            select(func.count())
            .select_from(AuditLog)
            .where(AuditLog.action.in_(["message.send", "message.suppressed"]))
        )
    await database.dispose()
    assert count == 1 and audits == 1


async def test_an_opted_out_customer_is_not_sent_to_and_the_reason_is_kept(
    client: AsyncTestClient[Any], database_url: str
) -> None:
    customer = await opted_in_customer(database_url, "sms")
    opt_out = await client.post(
        f"/api/customers/{customer}/consent",
        headers=AUTH,
        json={"channel": "sms", "status": "opted_out", "source": "front_desk"},
    )
    assert opt_out.status_code == 201 and opt_out.json()["previous"] == "opted_in"
    sent = await client.post(
        "/api/messages",
        headers=AUTH,
        json={"channel": "sms", "customer_id": customer, "body": "Offer!", "category": "transactional"},
    )
    assert sent.status_code == 201
    assert (sent.json()["status"], sent.json()["reason"]) == ("suppressed", "opted_out")
    assert "opted out" in sent.json()["explanation"].lower()
    prefs = (await client.get(f"/api/customers/{customer}/preferences", headers=AUTH)).json()
    assert prefs["consent"]["sms"]["status"] == "opted_out"
    assert prefs["ledger"][-1]["source"] == "front_desk" and len(prefs["ledger"]) >= 2
    database = Database.connect(database_url)
    async with database.sessions() as session:
        ledger = await session.scalar(
            select(func.count())
            .select_from(ConsentRecord)
            .where(ConsentRecord.customer_id == customer, ConsentRecord.channel == "sms")
        )
    await database.dispose()
    assert ledger == len([r for r in prefs["ledger"] if r["channel"] == "sms"])


async def test_preferences_are_validated_and_saved(client: AsyncTestClient[Any]) -> None:
    bad = await client.put(
        "/api/customers/1/preferences",
        headers=AUTH,
        json={"preferred_channel": "sms", "quiet_hours_start": "25:00", "quiet_hours_end": "07:00"},
    )
    assert bad.status_code == 422
    good = await client.put(
        "/api/customers/1/preferences",
        headers=AUTH,
        json={
            "preferred_channel": "email",
            "quiet_hours_start": "22:00",
            "quiet_hours_end": "07:00",
            "marketing_max_per_week": 2,
        },
    )
    assert good.status_code == 200
    assert good.json()["quiet_hours"] == {"start": "22:00", "end": "07:00"}
    assert (await client.get("/api/customers/999999/preferences", headers=AUTH)).status_code == 404


async def test_templates_are_validated_on_save(client: AsyncTestClient[Any]) -> None:
    path = "/api/templates/lab_results/sms/en"
    missing = await client.put(path, headers=AUTH, json={"body": "Hi {{ first_name }}", "variables": []})
    assert missing.status_code == 422 and "first_name" in missing.text
    ssti = await client.put(
        path, headers=AUTH, json={"body": "{{ cycler.__init__.__globals__ }}", "variables": []}
    )
    assert ssti.status_code == 422
    saved = await client.put(
        path,
        headers=AUTH,
        json={"body": "Hi {{ first_name }}, your lab results are in.", "variables": ["first_name"]},
    )
    assert saved.status_code == 200 and saved.json()["version"] == 1
    again = await client.put(
        path,
        headers=AUTH,
        json={"body": "Hello {{ first_name }}, results are in.", "variables": ["first_name"]},
    )
    assert again.json()["version"] == 2
    assert (await client.get(path, headers=AUTH)).json()["body"].startswith("Hello")


async def test_campaign_lifecycle_preview_launch_pause_resume_cancel(client: AsyncTestClient[Any]) -> None:
    created = await client.post(
        "/api/campaigns",
        headers=AUTH,
        json={
            "slug": "winter-check",
            "name": "Winter skin check",
            "template": "csat_survey",
            "channels": ["whatsapp", "sms", "email"],
            "audience": {},
            "variables": {"clinic": "Northwind"},
            "category": "marketing",
        },
    )
    assert created.status_code == 201, created.text
    duplicate = await client.post(
        "/api/campaigns",
        headers=AUTH,
        json={"slug": "winter-check", "name": "again", "template": "csat_survey", "channels": ["sms"]},
    )
    assert duplicate.status_code == 422
    # Values per language: keyed by language codes, each beside a plain value; anything else is refused.
    for table, words in (
        ({"DE": {"clinic": "Nordwind"}}, "is not a language"),
        ({"de": {"offer": "Rabatt"}}, "offer is given for “de” only"),
        ({"de": "Nordwind"}, "gives values per language"),
    ):
        refused = await client.post(
            "/api/campaigns",
            headers=AUTH,
            json={
                "slug": "per-language",
                "name": "Per language",
                "template": "csat_survey",
                "channels": ["sms"],
                "variables": {"clinic": "Northwind", "by_language": table},
            },
        )
        assert refused.status_code == 422 and words in refused.text, (table, refused.text)
    preview = (await client.get("/api/campaigns/winter-check/preview", headers=AUTH)).json()
    assert preview["recipients"] == 30
    assert preview["planned"] + sum(preview["exclusions"].values()) == 30
    assert preview["estimated_cost_micros"] > 0 and preview["sample"]["text"]
    for action, status in [
        ("launch", "running"),
        ("pause", "paused"),
        ("resume", "running"),
        ("cancel", "cancelled"),
    ]:
        response = await client.post(f"/api/campaigns/winter-check/{action}", headers=AUTH)
        assert response.status_code == 200, (action, response.text)
        assert response.json()["status"] == status
    assert (await client.post("/api/campaigns/winter-check/explode", headers=AUTH)).status_code == 422
    assert (await client.get("/api/campaigns/nope/progress", headers=AUTH)).status_code == 404


async def test_events_are_recorded_once_per_key(client: AsyncTestClient[Any]) -> None:
    event = {
        "type": "order.shipped",
        "idempotency_key": "order-77-shipped",
        "customer_id": 3,
        "payload": {"order_number": "NW-77", "tracking_url": "https://track.example/77"},
    }
    first = await client.post("/api/events", headers=AUTH, json=event)
    second = await client.post("/api/events", headers=AUTH, json=event)
    assert first.status_code == 202 and first.json()["created"] is True
    assert second.json() == {**first.json(), "created": False}
    naive = await client.post(
        "/api/events",
        headers=AUTH,
        json={**event, "idempotency_key": "x", "occurred_at": "2026-11-24T09:30:00"},
    )
    assert naive.status_code == 422


async def test_openapi_schema_lists_the_api(client: AsyncTestClient[Any]) -> None:
    schema = (await client.get("/api/schema/openapi.json")).json()
    for path in ("/api/messages/preview", "/api/campaigns", "/api/events", "/api/templates"):
        assert any(p.startswith(path) for p in schema["paths"]), path


async def test_messages_are_listed_newest_first_by_time_and_paged_exactly(
    client: AsyncTestClient[Any], database_url: str
) -> None:
    database = Database.connect(database_url)
    async with database.read_sessions() as session:
        expected = [
            row.id
            for row in (
                await session.execute(
                    select(CustomerCommunication.id, CustomerCommunication.created_at).order_by(
                        CustomerCommunication.created_at.desc(), CustomerCommunication.id.desc()
                    )
                )
            ).all()
        ]
    await database.dispose()
    assert expected != sorted(expected, reverse=True), "the seed should not write messages in id order"
    seen: list[int] = []
    before: int | None = None
    while len(seen) < len(expected):
        query = "?limit=37" + (f"&before_id={before}" if before else "")
        page = (await client.get(f"/api/messages{query}", headers=AUTH)).json()
        if not page["messages"]:
            break
        seen += [m["id"] for m in page["messages"]]
        before = page["next_before_id"]
    assert seen == expected and len(seen) > 100
