"""/api/video over HTTP on both engines: free times, book (409 for taken time), reschedule, cancel, list."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from storage.database import Database
from switchboard.settings import Settings
from tests.integration.test_video_booking import clinic

TOKEN = "video-api-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "X-Switchboard-Actor": "desk@x.example"}
BERLIN = ZoneInfo("Europe/Berlin")


def a_monday_ahead() -> date:
    today = datetime.now(UTC).date()
    return today + timedelta(days=14 - today.weekday())


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[tuple[AsyncTestClient[Any], dict[str, int]]]:
    database = Database.connect(database_url)
    ids = await clinic(database)
    await database.dispose()
    settings = Settings(database_url=database_url, api_token=TOKEN, public_url="https://sb.example")  # type: ignore[arg-type]
    async with AsyncTestClient(create_app(settings)) as client:
        yield client, ids


async def test_book_move_cancel_and_list_over_http(
    world: tuple[AsyncTestClient[Any], dict[str, int]],
) -> None:
    client, ids = world
    monday = a_monday_ahead()
    day_start = datetime.combine(monday, time(0), BERLIN)
    slots = await client.get(
        "/api/video/slots",
        headers=AUTH,
        params={
            "staff_id": ids["lee"],
            "service_id": ids["video"],
            "from": day_start.isoformat(),
            "to": (day_start + timedelta(days=1)).isoformat(),
        },
    )
    assert slots.status_code == 200, slots.text
    body = slots.json()
    assert body["timezone"] == "Europe/Berlin" and len(body["slots"]) == 74
    assert datetime.fromisoformat(body["slots"][0]) == datetime.combine(monday, time(9), BERLIN)

    booking = {
        "customer_id": ids["anna"],
        "service_id": ids["video"],
        "staff_id": ids["lee"],
        "starts_at": f"{monday.isoformat()}T10:30:00",  # no offset: Dr Lee's own wall-clock time
    }
    booked = await client.post("/api/video/consultations", headers=AUTH, json=booking)
    assert booked.status_code == 201, booked.text
    consultation = booked.json()
    # In the zones' own names for that day: CET and GMT in winter, CEST and BST in summer.
    berlin_at = datetime.combine(monday, time(10, 30), BERLIN)
    london_at = berlin_at.astimezone(ZoneInfo("Europe/London"))
    assert consultation["staff"]["local_time"].endswith(f"10:30 {berlin_at.tzname()}")
    assert consultation["customer"]["local_time"].endswith(f"{london_at:%H:%M} {london_at.tzname()}")
    assert (
        consultation["patient_link"].startswith("https://sb.example/v/")
        and consultation["status"] == "scheduled"
    )
    number = consultation["id"]

    taken = await client.post(
        "/api/video/consultations",
        headers=AUTH,
        json={**booking, "starts_at": (berlin_at - timedelta(minutes=15)).isoformat()},
    )
    assert taken.status_code == 409 and "Dr Lee is already booked" in taken.json()["detail"]

    for changes, status, words in [
        ({"starts_at": "2020-01-06T10:15:00+01:00"}, 422, "has already passed"),
        ({"starts_at": "next monday"}, 422, "not an ISO date-time"),
        ({"service_id": ids["visit"]}, 422, "not a video service"),
        ({"customer_id": 999999}, 422, "no customer #999999"),
        ({"starts_at": f"{monday.isoformat()}T12:15:00"}, 422, "outside Dr Lee's working hours"),
        ({"colour": "red"}, 422, "colour"),
    ]:
        response = await client.post("/api/video/consultations", headers=AUTH, json={**booking, **changes})
        assert response.status_code == status and words in response.text, (changes, response.text)

    moved = await client.post(
        f"/api/video/consultations/{number}/reschedule",
        headers=AUTH,
        json={"starts_at": f"{monday.isoformat()}T14:00:00"},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["version"] == 2 and moved.json()["patient_link"] == consultation["patient_link"]
    missing = await client.post(
        "/api/video/consultations/424242/reschedule",
        headers=AUTH,
        json={"starts_at": "2030-01-07T10:15:00+01:00"},
    )
    assert missing.status_code == 404 and "no video consultation 424242" in missing.text

    listed = await client.get(
        "/api/video/consultations",
        headers=AUTH,
        params={
            "from": day_start.isoformat(),
            "to": (day_start + timedelta(days=7)).isoformat(),
            "staff_id": ids["lee"],
        },
    )
    assert listed.status_code == 200
    assert [(c["id"], c["status_words"]) for c in listed.json()["consultations"]] == [(number, "booked")]

    cancelled = await client.post(
        f"/api/video/consultations/{number}/cancel", headers=AUTH, json={"reason": "ill"}
    )
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = await client.post(f"/api/video/consultations/{number}/cancel", headers=AUTH, json={})
    assert again.status_code == 422 and "was cancelled" in again.json()["detail"]


async def test_the_video_routes_need_the_token_and_sane_windows(
    world: tuple[AsyncTestClient[Any], dict[str, int]],
) -> None:
    client, ids = world
    for method, path in [
        ("GET", "/api/video/slots"),
        ("POST", "/api/video/consultations"),
        ("GET", "/api/video/consultations"),
        ("POST", "/api/video/consultations/1/cancel"),
    ]:
        response = await client.request(method, path, headers={"Authorization": "Bearer wrong"}, json={})
        assert response.status_code == 401, (method, path)
    params = {"staff_id": ids["lee"], "service_id": ids["video"]}
    naive = await client.get(
        "/api/video/slots", headers=AUTH, params={**params, "from": "2030-01-07T00:00:00"}
    )
    assert naive.status_code == 422 and "needs a timezone offset" in naive.text
    wide = await client.get(
        "/api/video/slots",
        headers=AUTH,
        params={**params, "from": "2030-01-01T00:00:00+00:00", "to": "2030-06-01T00:00:00+00:00"},
    )
    assert wide.status_code == 422 and "at most 62 days" in wide.text
    unknown = await client.get("/api/video/slots", headers=AUTH, params={**params, "staff_id": 999999})
    assert unknown.status_code == 422 and "no staff member 999999" in unknown.text
    schema = (await client.get("/api/schema/openapi.json")).json()["paths"]
    assert {
        "/api/video/slots",
        "/api/video/consultations",
        "/api/video/consultations/{consultation_id}/reschedule",
    } <= set(schema)
    assert "409" in schema["/api/video/consultations"]["post"]["responses"]
