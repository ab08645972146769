"""Admins make and switch off website chat keys on the dashboard, on SQLite and PostgreSQL: the key works from
its website at once, a switched-off key stops its widget in words, every change is audited, and only admins
reach the page."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import openpyxl
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from api.app import create_app
from api.auth import login_link
from api.widget.routes import PACE, VISIT_PACE
from storage.database import Database
from storage.models import AuditLog, ChatWidgetKey, Location, StaffUser
from switchboard.settings import Settings
from tests.integration.test_widget import post
from tests.notices import said_after

PUBLIC_URL = "http://testserver.local"
SITE = "https://www.mitte-clinic.example"
PAGE = "/communication/chat/widget-keys"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url, public_url=PUBLIC_URL, environment="test", worker_in_process=False
    )


@pytest.fixture
async def client(settings: Settings, database: Database) -> AsyncIterator[AsyncTestClient[Any]]:
    async with database.sessions() as session:
        session.add_all(
            [
                Location(code="BER", name="Berlin Mitte", country="DE", timezone="Europe/Berlin"),
                StaffUser(email="admin@x.example", name="Amelia", role="admin"),
                StaffUser(email="lena@x.example", name="Lena", role="agent"),
            ]
        )
        await session.commit()
    VISIT_PACE.sent.clear()
    PACE.sent.clear()
    async with AsyncTestClient(create_app(settings)) as test_client:
        yield test_client


async def sign_in(client: AsyncTestClient[Any], database: Database, settings: Settings, email: str) -> None:
    async with database.read_sessions() as session:
        staff_id = (await session.execute(select(StaffUser.id).where(StaffUser.email == email))).scalar_one()
    link = login_link(PUBLIC_URL, settings.session_secret, staff_id, 15, datetime.now(UTC))
    assert (await client.get(link.removeprefix(PUBLIC_URL), follow_redirects=False)).status_code == 303


def csrf(html: str) -> str:
    found = re.search(r'name="_csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


async def test_an_admin_makes_a_key_that_works_at_once_and_switching_it_off_stops_the_widget(
    client: AsyncTestClient[Any], database: Database, settings: Settings
) -> None:
    await sign_in(client, database, settings, "admin@x.example")
    listing = await client.get(PAGE)
    assert listing.status_code == 200 and "No keys yet" in listing.text and "Berlin Mitte" in listing.text
    token = csrf(listing.text)

    refused = await client.post(
        PAGE, data={"_csrf_token": token, "name": "Mitte website", "origins": "www.mitte-clinic.example"}
    )
    assert refused.status_code == 422
    assert "Give each origin as scheme://host[:port]" in refused.text and "Mitte website" in refused.text

    made = await client.post(
        PAGE,
        data={
            "_csrf_token": token,
            "name": "Mitte website",
            "origins": f"{SITE}\nhttps://mitte.example",
            "location": "BER",
        },
        follow_redirects=False,
    )
    assert made.status_code == 303 and said_after(made) == (PAGE, {"done": "created"})
    async with database.read_sessions() as session:
        [row] = (await session.scalars(select(ChatWidgetKey))).all()
    assert (row.name, row.allowed_origins, row.enabled) == (
        "Mitte website",
        [SITE, "https://mitte.example"],
        True,
    )
    shown = (await client.get(f"{PAGE}?done=created")).text
    assert "The key is made" in shown and "Berlin Mitte" in shown
    # The snippet to paste, shown as text (escaped), never run on our page.
    assert f"&lt;script src=&#34;{PUBLIC_URL}/widget.js&#34; data-key=&#34;{row.key}&#34; async&gt;" in shown

    # The keys download as shown (the snippet as text, the switch buttons left out).
    assert "table=widget-keys&amp;format=csv" in shown
    sheet = await client.get(f"{PAGE}?table=widget-keys&format=csv")
    assert sheet.status_code == 200 and "widget-keys.csv" in sheet.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(sheet.text.lstrip("\ufeff"))))
    assert rows[0] == ["Website", "Allowed addresses", "Clinic", "Status", "Embed on the website"]
    assert rows[1][:4] == ["Mitte website", f"{SITE}\nhttps://mitte.example", "Berlin Mitte", "on"], rows[1]
    assert row.key in rows[1][4]
    book = openpyxl.load_workbook(
        io.BytesIO((await client.get(f"{PAGE}?table=widget-keys&format=xlsx")).content)
    )
    addresses = book.active["B2"]  # type: ignore[index]
    assert addresses.value == f"{SITE}\nhttps://mitte.example" and addresses.alignment.wrap_text

    # The website's widget works with it straight away.
    assert (await post(client, "/widget/session", {"key": row.key}, origin=SITE)).status_code == 200

    off = await client.post(
        f"{PAGE}/{row.id}/switch", data={"_csrf_token": token, "enabled": "0"}, follow_redirects=False
    )
    assert off.status_code == 303 and said_after(off) == (PAGE, {"done": "off"})
    stopped = await post(client, "/widget/session", {"key": row.key}, origin=SITE)
    assert stopped.status_code == 403 and "switched off" in stopped.json()["error"]
    # Switching off twice changes nothing more; on again, it works.
    await client.post(f"{PAGE}/{row.id}/switch", data={"_csrf_token": token, "enabled": "0"})
    await client.post(f"{PAGE}/{row.id}/switch", data={"_csrf_token": token, "enabled": "1"})
    assert (await post(client, "/widget/session", {"key": row.key}, origin=SITE)).status_code == 200
    missing = await client.post(f"{PAGE}/999999/switch", data={"_csrf_token": token, "enabled": "0"})
    assert missing.status_code == 404

    async with database.read_sessions() as session:
        audited = list(
            await session.execute(
                select(AuditLog.action, AuditLog.actor)
                .order_by(AuditLog.id)
                .where(AuditLog.action.like("widget.key.%"))
            )
        )
    assert [tuple(a) for a in audited] == [
        ("widget.key.create", "admin@x.example"),
        ("widget.key.disable", "admin@x.example"),
        ("widget.key.enable", "admin@x.example"),
    ]


async def test_only_admins_reach_the_keys(
    client: AsyncTestClient[Any], database: Database, settings: Settings
) -> None:
    await sign_in(client, database, settings, "lena@x.example")
    assert (await client.get(PAGE)).status_code == 403
    chat = await client.get("/communication/chat")
    assert "/communication/chat/widget-keys" not in chat.text
