"""Managers make, change and delete automated notification rules on the dashboard, on SQLite and PostgreSQL: the
form offers the event types that arrive and the active templates, mistakes are refused in words with the form
kept, the stored rule is the one the event processor reads, every change is audited, and only managers (with the
CSRF token) may change anything."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update

from api.app import create_app
from api.pages.notices import COOKIE
from domain.notifications.use_cases import process_pending_events, record_event
from storage.database import Database
from storage.models import AuditLog, AutomatedNotification, CustomerCommunication, MessageTemplate, StaffUser
from storage.notifications import SqlNotificationUnitOfWork
from storage.seeding import SeedPlan, seed_database
from switchboard.settings import Settings
from tests.integration.test_json_api import opted_in_customer
from tests.integration.test_widget_keys_page import csrf, settings, sign_in
from tests.notices import said_after

__all__ = ["settings"]  # the fixture this module borrows

PAGE = "/communication/notification-rules"
LISTING = "/communication/templates"
MANAGER = "markus.brandt@northwind.example"
VIEWER = "finance@northwind.example"
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
async def client(settings: Settings, database: Database) -> AsyncIterator[AsyncTestClient[Any]]:
    """The app over a small seeded world: the catalogue's rules, the templates they name, staff of every role."""
    await seed_database(database, SeedPlan(customers=12, days=3, seed=5, end_date=date(2026, 11, 20)))
    async with AsyncTestClient(create_app(settings)) as test_client:
        yield test_client


def form(token: str, **fields: str) -> dict[str, str]:
    base = {
        "_csrf_token": token,
        "name": "parcel_sent",
        "event_type": "parcel.sent",
        "template": "order_shipped",
        "channel_1": "sms",
        "channel_2": "email",
        "channel_3": "",
        "channel_4": "",
        "amount": "2",
        "unit": "hours",
        "direction": "after",
        "category": "transactional",
        "enabled": "on",
    }
    return {**base, **fields}


async def rule_named(database: Database, name: str) -> AutomatedNotification | None:
    async with database.read_sessions() as session:
        return await session.scalar(select(AutomatedNotification).where(AutomatedNotification.name == name))


async def audited(database: Database) -> list[tuple[str, str, str]]:
    async with database.read_sessions() as session:
        rows = await session.execute(
            select(AuditLog.action, AuditLog.actor, AuditLog.via)
            .where(AuditLog.action.like("notification_rule.%"))
            .order_by(AuditLog.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def test_a_manager_makes_a_rule_that_the_event_processor_fires(
    client: AsyncTestClient[Any], database: Database, settings: Settings
) -> None:
    await sign_in(client, database, settings, MANAGER)
    listing = (await client.get(LISTING)).text
    assert f'href="{PAGE}/new"' in listing and "Change the rule appointment_reminder_24h" in listing
    new = await client.get(f"{PAGE}/new")
    assert new.status_code == 200
    token = csrf(new.text)
    assert '<option value="order.created">' in new.text  # the types the seeded events and rules use
    assert '<option value="order_shipped">order_shipped</option>' in new.text
    # What each template needs from the event's payload (the customer's own details fill themselves).
    assert "<dt>order_shipped</dt><dd><code>order_number</code>, <code>tracking_url</code></dd>" in new.text

    # Mistakes come back in words, with what was typed.
    cases = [
        (
            form(token, amount="two"),
            "The offset must be a whole number of hours, such as 2 (not &#39;two&#39;).",
        ),
        (
            form(token, amount="8", unit="days", direction="before"),
            "at most 7 days before or after the event",
        ),
        (form(token, channel_2="sms"), "The channel order names a channel more than once."),
        (form(token, channel_1="", channel_2="sms"), "Choose the channels from the first box on"),
        (form(token, template="seasonal_offer"), "is written for marketing, so a rule that sends it must be"),
        (form(token, amount="²"), "The offset must be a whole number of hours"),
        (form(token, template=""), "Choose the template the rule sends."),
        (
            form(token, name="ORDER_CONFIRMATION"),
            "A notification rule named &#39;order_confirmation&#39; already",
        ),
        (
            form(token, event_type="order.created", template="order_confirmation", amount="0"),
            "The rule &#39;order_confirmation&#39; already sends &#39;order_confirmation&#39; for order.created at",
        ),
        (
            form(token, channel_2="", template="chat_csat_survey"),
            "&#39;chat_csat_survey&#39; has no SMS message",
        ),
        (
            form(token, template="no_such_template"),
            "There is no active template named &#39;no_such_template&#39;.",
        ),
        (
            form(token, name="order_confirmation"),
            "A notification rule named &#39;order_confirmation&#39; already",
        ),
        (form(token, event_type="Parcel Sent"), "must look like &#39;order.created&#39;"),
    ]
    gap = await client.post(PAGE, data=form(token, channel_1="", channel_2="sms"))
    boxes = {
        name: re.findall(r'<option value="([a-z]*)" selected>', box)
        for name, box in re.findall(r'<select name="(channel_\d)">(.*?)</select>', gap.text, re.S)
    }
    assert boxes == {"channel_1": [], "channel_2": ["sms"], "channel_3": [], "channel_4": []}  # as chosen
    for fields, words in cases:
        refused = await client.post(PAGE, data=fields)
        assert refused.status_code == 422, fields
        assert words in refused.text, (words, refused.text[refused.text.find("notice error") :][:300])
        assert (
            f'value="{fields["event_type"]}"' in refused.text
            and f'value="{fields["amount"]}"' in refused.text
        )
    assert await rule_named(database, "parcel_sent") is None

    made = await client.post(PAGE, data=form(token), follow_redirects=False)
    assert (
        made.status_code == 303
        and made.headers["location"] == f"{LISTING}#rules-heading"
        and said_after(made) == (LISTING, {"rule_done": "created"})
    )
    stored = await rule_named(database, "parcel_sent")
    assert stored is not None
    assert (stored.event_type, stored.template_name, list(stored.channel_order)) == (
        "parcel.sent",
        "order_shipped",
        ["sms", "email"],
    )
    assert (stored.offset_minutes, stored.category, stored.enabled) == (120, "transactional", True)
    shown = (await client.get(f"{LISTING}?rule_done=created")).text
    assert "The notification rule is saved." in shown
    row = re.search(r"<tr>\s*<td><a [^>]*>parcel_sent</a></td>(.*?)</tr>", shown, re.S)
    assert row is not None
    assert [
        re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    ] == [
        "parcel.sent",
        "order_shipped",
        "SMS, email",
        "2 h after",
        "transactional",
        "on",
    ]

    # The event processor reads it: a parcel.sent event plans an SMS two hours on.
    customer_id = await opted_in_customer(settings.database_url, "sms")
    occurred = datetime.now(UTC).replace(microsecond=0)
    await record_event(
        SqlNotificationUnitOfWork(database),
        "parcel.sent",
        "parcel-1",
        customer_id,
        {"order_number": "A-1", "tracking_url": "https://track.example/A-1"},
        occurred,
    )
    await process_pending_events(lambda: SqlNotificationUnitOfWork(database), occurred)
    async with database.read_sessions() as session:
        planned = (
            await session.execute(
                select(
                    CustomerCommunication.channel,
                    CustomerCommunication.next_attempt_at,
                    CustomerCommunication.status,
                    CustomerCommunication.status_reason,
                ).where(CustomerCommunication.source_ref.like(f"{stored.id}:%"))
            )
        ).all()
    assert len(planned) == 1 and planned[0].channel == "sms", planned
    assert planned[0].status == "planned", planned
    assert planned[0].next_attempt_at.replace(tzinfo=UTC) == occurred + timedelta(hours=2)

    # Changing it: a day before, the customer's own channels, marketing, off.
    edit = await client.get(f"{PAGE}/{stored.id}")
    assert "<code>parcel.sent</code>" in edit.text and 'name="event_type"' not in edit.text
    assert '<option value="hours" selected>' in edit.text and 'value="2"' in edit.text
    changes = {
        k: v
        for k, v in form(
            token, channel_1="", channel_2="", amount="1", unit="days", direction="before"
        ).items()
        if k != "enabled"
    }
    changes["category"] = "marketing"
    changes["name"] = "renamed"  # ignored: a rule keeps its name
    unchanged = await client.post(f"{PAGE}/{stored.id}", data=form(token), follow_redirects=False)
    assert said_after(unchanged) == (LISTING, {"rule_done": "unchanged"})
    assert "Nothing was changed" in (await client.get(unchanged.headers["location"])).text
    # "Before" an event that carries no appointment time would always be too late: refused while the
    # latest parcel.sent events carry none, accepted once they do.
    too_late = await client.post(f"{PAGE}/{stored.id}", data=changes)
    assert too_late.status_code == 422
    assert "The latest parcel.sent events carry no appointment_at" in too_late.text
    await record_event(
        SqlNotificationUnitOfWork(database),
        "parcel.sent",
        "parcel-2",
        customer_id,
        {
            "order_number": "A-2",
            "tracking_url": "https://track.example/A-2",
            "appointment_at": "2026-12-24T10:00:00+01:00",
        },
        occurred,
    )
    saved = await client.post(f"{PAGE}/{stored.id}", data=changes, follow_redirects=False)
    assert saved.status_code == 303 and said_after(saved) == (LISTING, {"rule_done": "saved"})
    changed = await rule_named(database, "parcel_sent")
    assert changed is not None
    assert (list(changed.channel_order), changed.offset_minutes, changed.category, changed.enabled) == (
        [],
        -1440,
        "marketing",
        False,
    )
    again = (await client.get(f"{PAGE}/{stored.id}")).text
    assert '<option value="days" selected>' in again and '<option value="before" selected>' in again
    assert re.search(r'<input type="checkbox" name="enabled"\s*>', again)  # off, as saved

    deleted = await client.post(
        f"{PAGE}/{stored.id}/delete", data={"_csrf_token": token}, follow_redirects=False
    )
    assert deleted.status_code == 303 and said_after(deleted) == (LISTING, {"rule_done": "deleted"})
    assert await rule_named(database, "parcel_sent") is None
    # Said once, on the page the redirect leads to; not again on reloading it, nor on another page.
    assert "Messages it had already planned still go out." not in (await client.get(f"{PAGE}/new")).text
    assert "Messages it had already planned still go out." in (await client.get(LISTING)).text
    assert "Messages it had already planned still go out." not in (await client.get(LISTING)).text
    assert await audited(database) == [
        ("notification_rule.create", MANAGER, "web"),
        ("notification_rule.update", MANAGER, "web"),
        ("notification_rule.delete", MANAGER, "web"),
    ]
    for method, path in (
        ("GET", f"{PAGE}/{stored.id}"),
        ("POST", f"{PAGE}/{stored.id}"),
        ("POST", f"{PAGE}/{stored.id}/delete"),
    ):
        gone = await client.request(method, path, data=form(token) if method == "POST" else None)
        assert gone.status_code == 404, (method, path)


async def test_a_rule_name_is_shown_as_text(
    client: AsyncTestClient[Any], database: Database, settings: Settings
) -> None:
    await sign_in(client, database, settings, MANAGER)
    token = csrf((await client.get(f"{PAGE}/new")).text)
    assert (
        await client.post(PAGE, data=form(token, name=HOSTILE), follow_redirects=False)
    ).status_code == 303
    stored = await rule_named(database, HOSTILE)
    assert stored is not None
    for html in ((await client.get(f"{PAGE}/{stored.id}")).text, (await client.get(LISTING)).text):
        assert HOSTILE not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


async def test_only_managers_change_rules_and_only_with_the_csrf_token(
    client: AsyncTestClient[Any], database: Database, settings: Settings
) -> None:
    async with database.read_sessions() as session:
        agent = await session.scalar(select(StaffUser.email).where(StaffUser.role == "agent").limit(1))
    assert agent is not None
    for email in (agent, VIEWER):
        await sign_in(client, database, settings, email)
        listing = (await client.get(LISTING)).text
        assert "appointment_reminder_24h" in listing and f'href="{PAGE}' not in listing
        assert "Managers change them." in listing
        assert (await client.get(f"{PAGE}/new")).status_code == 403
        assert (await client.get(f"{PAGE}/1")).status_code == 403
        token = csrf(listing)
        assert (await client.post(PAGE, data=form(token))).status_code == 403
        assert (await client.post(f"{PAGE}/1", data=form(token, enabled=""))).status_code == 403
        assert (await client.post(f"{PAGE}/1/delete", data={"_csrf_token": token})).status_code == 403
    await sign_in(client, database, settings, MANAGER)
    await client.get(f"{PAGE}/new")
    without = {k: v for k, v in form("").items() if k != "_csrf_token"}
    assert (await client.post(PAGE, data=without)).status_code == 403
    assert await rule_named(database, "parcel_sent") is None
    assert await audited(database) == []


async def test_a_rule_whose_template_is_no_longer_in_use_can_still_be_switched_off(
    client: AsyncTestClient[Any], database: Database, settings: Settings
) -> None:
    """Saving the form as shown changes only what the manager changed: the old template is kept as it is."""
    async with database.sessions() as session:
        rule = await session.scalar(
            select(AutomatedNotification).where(AutomatedNotification.name == "payment_failed")
        )
        assert rule is not None
        await session.execute(
            update(MessageTemplate)
            .where(MessageTemplate.name == rule.template_name)
            .values(status="archived")
        )
        await session.commit()
    await sign_in(client, database, settings, MANAGER)
    edit = (await client.get(f"{PAGE}/{rule.id}")).text
    assert '<option value="payment_failed" selected>payment_failed (no active variant)</option>' in edit
    shown = {
        "_csrf_token": csrf(edit),
        "template": "payment_failed",
        "channel_1": "email",
        "channel_2": "sms",
        "amount": "0",
        "unit": "days",
        "direction": "after",
        "category": "transactional",
    }  # as the form shows it, with "On" unticked
    saved = await client.post(f"{PAGE}/{rule.id}", data=shown, follow_redirects=False)
    assert saved.status_code == 303, saved.text[-800:]
    off = await rule_named(database, "payment_failed")
    assert off is not None and off.enabled is False and list(off.channel_order) == ["email", "sms"]
    async with database.read_sessions() as session:
        detail = await session.scalar(
            select(AuditLog.detail).where(AuditLog.action == "notification_rule.update")
        )
    assert detail == {"enabled": False}  # only what changed
    on = await client.post(f"{PAGE}/{rule.id}", data={**shown, "enabled": "on"})
    assert on.status_code == 422 and "There is no active template named &#39;payment_failed&#39;." in on.text


async def test_a_rule_s_page_lists_the_other_rules_for_its_event(
    client: AsyncTestClient[Any], database: Database, settings: Settings
) -> None:
    """One rule by SMS and one by email for the same event both send; each one's page names the other."""
    await sign_in(client, database, settings, MANAGER)
    token = csrf((await client.get(f"{PAGE}/new")).text)
    for name, channel in (("parcel_sms", "sms"), ("parcel_mail", "email")):
        made = await client.post(
            PAGE, data=form(token, name=name, channel_1=channel, channel_2=""), follow_redirects=False
        )
        assert made.status_code == 303, made.text[-1500:]
    await client.post(
        PAGE, data=form(token, name="other_event", event_type="parcel.lost"), follow_redirects=False
    )
    by_sms = await rule_named(database, "parcel_sms")
    by_mail = await rule_named(database, "parcel_mail")
    assert by_sms is not None and by_mail is not None
    html = (await client.get(f"{PAGE}/{by_sms.id}")).text
    alongside = html[html.index('id="rules-alongside"') :]
    assert "Other rules for <code>parcel.sent</code>" in html and "gets both" in html
    assert f'<a href="{PAGE}/{by_mail.id}">parcel_mail</a>' in alongside and "<td>email</td>" in alongside
    assert ">parcel_sms<" not in alongside and "other_event" not in alongside
    lone = await rule_named(database, "other_event")
    assert lone is not None and "rules-alongside" not in (await client.get(f"{PAGE}/{lone.id}")).text


async def test_a_forged_or_stale_notice_cookie_says_nothing(
    client: AsyncTestClient[Any], database: Database, settings: Settings
) -> None:
    """The notice cookie is the browser's to send: garbage, too many fields, or another page's notice is
    ignored (a 200 without a notice), never a 500."""
    await sign_in(client, database, settings, MANAGER)

    def packed(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    for value in (
        "%%%not-base64%%%",
        packed(f"{LISTING}?" + "&".join(f"rule_done=deleted{i}" for i in range(50))),
        packed("/communication/campaigns?rule_done=deleted"),  # another page's
        packed(f"{LISTING}?rule_done=<script>"),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),  # not UTF-8
    ):
        client.cookies.set(COOKIE, value)
        page = await client.get(LISTING)
        assert page.status_code == 200, value
        assert "The notification rule is" not in page.text and "<script>" not in page.text, value
    client.cookies.set(COOKIE, packed(f"{LISTING}?rule_done=deleted"))  # a genuine one still reads
    assert "The notification rule is deleted." in (await client.get(LISTING)).text


async def test_the_rules_and_new_template_addresses_typed_or_bookmarked_lead_to_their_place(
    client: AsyncTestClient[Any], database: Database, settings: Settings
) -> None:
    """The walk typed /communication/notification-rules (405, "That is not possible") and opened
    /communication/templates/new without its form (422): both lead to the templates page's section."""
    await sign_in(client, database, settings, MANAGER)
    rules = await client.get(PAGE, follow_redirects=False)
    assert (rules.status_code, rules.headers["location"]) == (303, f"{LISTING}#rules-heading")
    new = await client.get("/communication/templates/new", follow_redirects=False)
    assert (new.status_code, new.headers["location"]) == (303, f"{LISTING}#new-variant-heading")
    page = await client.get(PAGE)
    assert (
        page.status_code == 200
        and 'id="rules-heading"' in page.text
        and 'id="new-variant-heading"' in page.text
    )
    # A name that is no name is still refused in words.
    refused = await client.get("/communication/templates/new", params={"name": "%%%"})
    assert refused.status_code == 422 and "Give the template a name of letters or digits" in refused.text
