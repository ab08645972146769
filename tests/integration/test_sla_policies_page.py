"""Admins write SLA policies on the dashboard, on SQLite and PostgreSQL: split shifts and holidays are stored as the
SLA watcher reads them, mistakes are refused in words with the form kept, a clinic holds one policy, every change
is audited, and only admins reach the page."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient
from sqlalchemy import select

from storage.database import Database
from storage.models import AuditLog, Location
from storage.models import SlaPolicy as SlaPolicyRow
from storage.sla import all_policies
from switchboard.settings import Settings
from tests.integration.test_widget_keys_page import client, csrf, settings, sign_in
from tests.notices import said_after

__all__ = ["client", "settings"]  # the fixtures this module borrows

PAGE = "/communication/chat/sla-policies"


def form(token: str, **fields: str) -> dict[str, str]:
    base = {
        "_csrf_token": token,
        "name": "Berlin Mitte",
        "location": "BER",
        "first_response": "10",
        "next_response": "20",
        "resolution": "360",
        "warn_before": "5",
        "hours_mon": "08:00-12:30, 13:30-20:00",
        "hours_sat": "10:00-16:00",
        "holidays": "2026-12-25\n2026-12-26",
        "enabled": "on",
    }
    return {**base, **fields}


async def test_an_admin_writes_a_clinic_policy_the_sla_watcher_reads(
    client: AsyncTestClient[Any], database: Database, settings: Settings
) -> None:
    await sign_in(client, database, settings, "admin@x.example")
    empty = await client.get(PAGE)
    assert empty.status_code == 200 and "No SLA policies yet" in empty.text
    new = await client.get(f"{PAGE}/new")
    token = csrf(new.text)
    assert "Berlin Mitte only" in new.text

    wrong = await client.post(PAGE, data=form(token, hours_mon="8-12"))
    assert wrong.status_code == 422
    assert "Monday: “8-12” is not a span like 08:00-12:30." in wrong.text
    assert 'value="8-12"' in wrong.text and 'value="Berlin Mitte"' in wrong.text  # nothing typed is lost

    made = await client.post(PAGE, data=form(token), follow_redirects=False)
    assert made.status_code == 303 and said_after(made) == (PAGE, {"done": "created"})
    async with database.read_sessions() as session:
        [policy] = await all_policies(session)
        berlin = await session.scalar(select(Location.id).where(Location.code == "BER"))
    assert (policy.name, policy.location_id, policy.enabled) == ("Berlin Mitte", berlin, True)
    assert (policy.first_response_minutes, policy.next_response_minutes, policy.resolution_minutes) == (
        10,
        20,
        360,
    )
    assert policy.business_hours == {
        "mon": [["08:00", "12:30"], ["13:30", "20:00"]],
        "sat": [["10:00", "16:00"]],
    }
    assert list(policy.holidays) == ["2026-12-25", "2026-12-26"]
    listing = (await client.get(f"{PAGE}?done=created")).text
    assert "The policy is saved." in listing
    assert "Mon 08:00–12:30, 13:30–20:00; Sat 10:00–16:00; closed on 2 holidays" in listing
    assert "10 min" in listing and "6 h" in listing

    # A second policy for the same clinic, or with the same name, is refused.
    again = await client.post(PAGE, data=form(token, name="Mitte late"))
    assert again.status_code == 422 and "That clinic already has its own policy" in again.text
    same_name = await client.post(PAGE, data=form(token, location=""))
    assert (
        same_name.status_code == 422 and "Another policy is already called “Berlin Mitte”." in same_name.text
    )
    # One switched-on default: a second is refused, saying which is the default.
    assert (await client.post(PAGE, data=form(token, name="Standard", location=""))).status_code == 200
    second = await client.post(PAGE, data=form(token, name="Evening", location=""))
    assert second.status_code == 422 and "“Standard” is already the default policy" in second.text
    off = {k: v for k, v in form(token, name="Evening", location="").items() if k != "enabled"}
    assert (await client.post(PAGE, data=off)).status_code == 200  # a switched-off one may wait beside it

    # Changing it: off, and a target dropped.
    edit = await client.get(f"{PAGE}/{policy.policy_id}")
    assert 'value="08:00-12:30, 13:30-20:00"' in edit.text and "2026-12-25" in edit.text
    changed = await client.post(
        f"{PAGE}/{policy.policy_id}",
        data={k: v for k, v in form(token, next_response="").items() if k != "enabled"},
        follow_redirects=False,
    )
    assert changed.status_code == 303
    async with database.read_sessions() as session:
        policy = next(p for p in await all_policies(session) if p.name == "Berlin Mitte")
        audited = list(
            await session.scalars(select(AuditLog.action).where(AuditLog.action.like("sla.policy.%")))
        )
    assert (policy.enabled, policy.next_response_minutes) == (False, None)
    assert audited == ["sla.policy.create"] * 3 + ["sla.policy.update"]
    assert (
        await client.post(f"{PAGE}/999999", data=form(token, name="Other", location=""))
    ).status_code == 404
    assert (await client.get(f"{PAGE}/999999")).status_code == 404


async def test_only_admins_reach_sla_policies(
    client: AsyncTestClient[Any], database: Database, settings: Settings
) -> None:
    await sign_in(client, database, settings, "lena@x.example")
    assert (await client.get(PAGE)).status_code == 403
    assert (await client.post(PAGE, data={"name": "x"})).status_code == 403
    async with database.read_sessions() as session:
        assert list(await session.scalars(select(SlaPolicyRow.id))) == []
