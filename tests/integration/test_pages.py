"""The dashboard pages over HTTP on both engines: sign-in, every page, roles, CSRF and escaping of user text."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_skeleton
from click.testing import CliRunner
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, update

from api.app import create_app
from api.auth import SESSION_COOKIE, SESSION_PURPOSE, login_link, sign_token
from api.pages.common import Formats
from api.unsubscribe import unsubscribe_token
from domain.messages.pricing import DEFAULT_PRICE_BOOK
from domain.messages.words import channel_words, provider_words
from storage.database import Database
from storage.models import (
    AuditLog,
    AutomatedNotification,
    BulkMessaging,
    ChatMessage,
    ChatSession,
    Customer,
    CustomerCommunication,
    CustomReport,
    DashboardConfig,
    MessageTemplate,
    PerformanceMetric,
    ReportDelivery,
    ReportSchedule,
    StaffUser,
    WebhookInbox,
)
from storage.queries.channels import daily_figures
from storage.seeding import SeedPlan, seed_database
from storage.seeding.catalogue import NOTIFICATION_RULES
from switchboard.cli import main as cli
from switchboard.settings import Settings
from tests.notices import said_after

SCRIPT_NAME = "<script>alert(1)</script>"
ESCAPED_NAME = "&lt;script&gt;alert(1)&lt;/script&gt;"
DRAFT_CAMPAIGN = "2026-12-loyalty-preview"
REPORT_SLUG = "revenue-by-channel"

Client = AsyncTestClient[Any]


@dataclass(frozen=True)
class Seeded:
    settings: Settings
    chat_id: int
    campaign_slug: str
    staff: dict[str, int]


async def _add_fixtures(database: Database) -> tuple[int, str]:
    """Data the seeder does not make: an open chat with a hostile name, a saved report, a draft campaign."""
    now = datetime.now(UTC)
    async with database.sessions() as session:
        customer = Customer(name=SCRIPT_NAME, phone_e164="+4915100000001", timezone="Europe/Berlin")
        session.add(customer)
        await session.flush()
        chat = ChatSession(
            customer_id=customer.id,
            channel="sms",
            status="open",
            subject="Question about my booking",
            started_at=now - timedelta(minutes=20),
            last_message_at=now - timedelta(minutes=20),
        )
        session.add(chat)
        await session.flush()
        session.add(ChatMessage(session_id=chat.id, author="customer", body=SCRIPT_NAME, created_at=now))
        session.add(
            CustomerCommunication(
                customer_id=customer.id,
                channel="sms",
                provider="twilio",
                direction="inbound",
                source="reply",
                to_address="+15005550006",
                from_address=customer.phone_e164,
                body="Hello from " + SCRIPT_NAME,
                status="received",
            )
        )
        admin = await session.scalar(select(StaffUser.id).where(StaffUser.role == "admin"))
        report = CustomReport(
            slug=REPORT_SLUG,
            name="Revenue by channel",
            owner_id=admin,
            shared=True,
            definition={
                "query": {
                    "metrics": ["revenue"],
                    "period": {"kind": "last_n_days", "n": 30},
                    "dimensions": ["source_channel"],
                }
            },
        )
        session.add(report)
        await session.flush()
        schedule = ReportSchedule(
            report_id=report.id,
            owner_id=admin,
            cron="0 8 * * mon",
            timezone="Europe/Berlin",
            destination_kind="email",
            destination="board@northwind.example",
        )
        session.add(schedule)
        await session.flush()
        session.add(
            ReportDelivery(
                schedule_id=schedule.id,
                due_at=now - timedelta(days=1),
                destination="board@northwind.example",
                status="delivered",
                claimed_by="worker-1",
                delivered_at=now - timedelta(days=1),
            )
        )
        session.add(
            PerformanceMetric(name="outbox_oldest_due_seconds", labels={}, value=12.0, recorded_at=now)
        )
        draft = await session.scalar(select(BulkMessaging).where(BulkMessaging.status == "draft"))
        assert draft is not None, "the seeder makes one draft campaign"
        await session.commit()
        return chat.id, draft.slug


@pytest.fixture
async def seeded(database_url: str) -> Seeded:
    database = Database.connect(database_url)
    await seed_database(database, SeedPlan(customers=40, days=40, seed=3, end_date=datetime.now(UTC).date()))
    chat_id, slug = await _add_fixtures(database)
    async with database.read_sessions() as session:
        staff = {
            email: staff_id
            for staff_id, email in (await session.execute(select(StaffUser.id, StaffUser.email))).all()
        }
    await database.dispose()
    settings = Settings(database_url=database_url, sandbox=True, worker_in_process=False)  # type: ignore[arg-type]
    return Seeded(settings, chat_id, slug, staff)


@pytest.fixture
async def client(seeded: Seeded) -> AsyncIterator[Client]:
    async with AsyncTestClient(create_app(seeded.settings)) as test_client:
        yield test_client


MANAGER = "markus.brandt@northwind.example"
AGENT = "lena.hoffmann@northwind.example"
VIEWER = "finance@northwind.example"


async def sign_in(client: Client, seeded: Seeded, email: str) -> None:
    link = login_link(
        "http://testserver.local", seeded.settings.session_secret, seeded.staff[email], 15, datetime.now(UTC)
    )
    response = await client.get(link.removeprefix("http://testserver.local"), follow_redirects=False)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/"


def csrf_token(html: str) -> str:
    found = re.search(r'name="_csrf_token" value="([^"]+)"', html)
    assert found, "the page has a form with a CSRF token"
    return found.group(1)


async def post_form(client: Client, page: str, action: str, data: dict[str, Any]) -> Any:
    """Posts like a browser: the form's CSRF token from the page it is on."""
    token = csrf_token((await client.get(page)).text)
    return await client.post(action, data={**data, "_csrf_token": token}, follow_redirects=False)


async def campaign_status(seeded: Seeded, slug: str) -> str:
    database = Database.connect(seeded.settings.database_url)
    async with database.read_sessions() as session:
        status = await session.scalar(select(BulkMessaging.status).where(BulkMessaging.slug == slug))
    await database.dispose()
    return str(status)


DASHBOARD_PAGES = [
    "/",
    "/communication/",
    "/analytics/",
    "/communication/messages",
    "/communication/templates",
    "/communication/campaigns",
    "/communication/customers/import",
    "/communication/sms",
    "/communication/email",
    "/communication/whatsapp",
    "/communication/telegram",
    "/communication/chat",
    "/communication/video",
    "/communication/video/new",
    "/communication/video/services",
    "/communication/analytics",
    "/analytics/executive",
    "/analytics/financial",
    "/analytics/operational",
    "/analytics/customer",
    "/analytics/reports",
    "/analytics/performance",
]


async def test_pages_without_a_session_redirect_to_sign_in(client: Client) -> None:
    chat_pages = ["/communication/chat/1", "/communication/chat/attachments/1"]
    for path in [*DASHBOARD_PAGES, "/communication/messages/1", *chat_pages]:
        response = await client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=%2F"), path
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/api/campaigns")).status_code == 401  # the API keeps its bearer token


async def test_forged_expired_reused_and_wrong_purpose_tokens_are_refused(
    client: Client, seeded: Seeded
) -> None:
    secret = seeded.settings.session_secret
    manager = seeded.staff[MANAGER]
    now = datetime.now(UTC)
    good = login_link("", secret, manager, 15, now)
    payload, _, signature = good.removeprefix("/login/").partition(".")
    forged = f"/login/{payload}.{signature[:-2]}AA"
    other_staff = sign_token(
        secret, "login", seeded.staff["admin@northwind.example"], now + timedelta(minutes=5)
    )
    tampered = f"/login/{other_staff.split('.')[0]}.{signature}"
    expired = login_link("", secret, manager, 15, now - timedelta(minutes=16))
    session_as_link = "/login/" + sign_token(secret, SESSION_PURPOSE, manager, now + timedelta(hours=1))
    for path in (forged, tampered, expired, session_as_link, "/login/not-a-token"):
        response = await client.get(path, follow_redirects=False)
        assert response.status_code == 400, path
        assert SESSION_COOKIE not in response.headers.get("set-cookie", ""), path
    assert (await client.get(good, follow_redirects=False)).status_code == 303
    client.cookies.clear()
    reused = await client.get(good, follow_redirects=False)
    assert reused.status_code == 400, "a login link signs in once"
    client.cookies.set(SESSION_COOKIE, good.removeprefix("/login/"))  # a login token is no session cookie
    assert (await client.get("/", follow_redirects=False)).status_code == 303


async def test_login_link_sets_an_httponly_lax_session_cookie(client: Client, seeded: Seeded) -> None:
    link = login_link("", seeded.settings.session_secret, seeded.staff[MANAGER], 15, datetime.now(UTC))
    response = await client.get(link, follow_redirects=False)
    cookie = response.headers["set-cookie"].lower()
    assert f"{SESSION_COOKIE}=" in cookie
    assert "httponly" in cookie and "samesite=lax" in cookie and "max-age=43200" in cookie
    home = await client.get("/")
    assert "Markus Brandt" in home.text and ">manager<" in home.text
    logout = await post_form(client, "/", "/logout", {})
    assert logout.status_code == 303
    assert (await client.get("/", follow_redirects=False)).status_code == 303


async def test_cli_login_link_prints_a_working_link(
    client: Client, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", seeded.settings.database_url)
    monkeypatch.setenv("SWITCHBOARD_PUBLIC_URL", "https://switchboard.example")
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["login-link", MANAGER.upper(), "--minutes", "5"]
    )
    assert result.exit_code == 0, result.output
    link = result.output.strip()
    assert link.startswith("https://switchboard.example/login/")
    response = await client.get(link.removeprefix("https://switchboard.example"), follow_redirects=False)
    assert response.status_code == 303
    unknown = await asyncio.to_thread(CliRunner().invoke, cli, ["login-link", "nobody@example.com"])
    assert unknown.exit_code == 2 and "no active staff member" in unknown.output


async def test_demo_sign_in_only_in_the_sandbox(client: Client, seeded: Seeded) -> None:
    login = await client.get("/login")
    assert "admin@northwind.example" in login.text and "finance@northwind.example" in login.text
    response = await client.post(
        "/login/demo",
        data={"email": VIEWER, "next": "/analytics/", "_csrf_token": csrf_token(login.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/analytics/"
    assert "Finance Viewer" in (await client.get("/analytics/")).text
    production_like = seeded.settings.model_copy(update={"sandbox": False})
    async with AsyncTestClient(create_app(production_like)) as plain:
        page = await plain.get("/login")
        assert "admin@northwind.example" not in page.text
        refused = await plain.post(
            "/login/demo",
            data={"email": VIEWER, "_csrf_token": plain.cookies["csrftoken"]},
            follow_redirects=False,
        )
        assert refused.status_code == 404


async def test_every_page_renders_its_key_content_for_a_manager(client: Client, seeded: Seeded) -> None:
    await sign_in(client, seeded, MANAGER)
    expected = {
        "/": ["Communication", "Analytics", "Markus Brandt"],
        "/communication/": ["Messages", "Campaigns"],
        "/analytics/": ["Executive", "Performance"],
        "/communication/messages": ["<h1>Messages</h1>", "<table", "/communication/messages/"],
        "/communication/messages?channel=sms&direction=inbound": [ESCAPED_NAME],
        "/communication/templates": ["appointment_reminder", "<textarea"],
        "/communication/campaigns": [seeded.campaign_slug, "draft"],
        f"/communication/campaigns/{seeded.campaign_slug}": [
            "Preview",
            "Exclusions by reason",
            ">Launch…<",
            ">Launch now<",
            ">Cancel the campaign<",
            "the next channel when a message is not delivered within 4 h",
        ],
        "/communication/sms": ["<h1>SMS</h1>", "<svg", "Latest failures", "today so far included"],
        "/communication/email": ["<h1>Email</h1>", "<svg"],
        "/communication/whatsapp": ["<h1>WhatsApp</h1>", "<svg"],
        "/communication/chat": ["Open conversations", ESCAPED_NAME],
        f"/communication/chat/{seeded.chat_id}": ["Send reply", ESCAPED_NAME],
        "/communication/analytics": ["Delivery rate", "<svg", "Per day and channel"],
        "/analytics/executive": ["Revenue", "Orders", "Average order value", "Active customers", "<svg"],
        "/analytics/executive?period=last_month": ["Last month", "<svg"],
        "/analytics/financial": ["Average order value", "Communication cost", "Cost per message", "<svg"],
        "/analytics/operational?period=last_90_days": [
            "Appointments",
            "No-show rate",
            "First response time",
            "<svg",
        ],
        "/analytics/customer?period=this_month": [
            "New customers",
            "Active customers",
            "Returning customers",
            "Churn rate",
            "<svg",
        ],
        "/analytics/reports": ["Revenue by channel", "0 8 * * mon", "board@northwind.example", "delivered"],
        f"/analytics/reports/{REPORT_SLUG}": ["Revenue", "<svg", f"{REPORT_SLUG}.csv"],
        "/analytics/performance": ["Background work", "Send rate, last 5 minutes", "Recent snapshots"],
    }
    for path, needles in expected.items():
        response = await client.get(path)
        assert response.status_code == 200, (path, response.text[:500])
        for needle in needles:
            assert needle in response.text, (path, needle)
    communication = (await client.get("/communication/")).text
    for slug in (
        "messages",
        "templates",
        "campaigns",
        "sms",
        "email",
        "whatsapp",
        "telegram",
        "chat",
        "analytics",
    ):
        assert f'href="/communication/{slug}/"' in communication
    analytics = (await client.get("/analytics/")).text
    for slug in ("executive", "financial", "operational", "customer", "reports", "performance"):
        assert f'href="/analytics/{slug}/"' in analytics
    assert (await client.get("/analytics/nonsense/")).status_code == 404
    messages = (await client.get("/communication/messages")).text
    first_id = re.search(r'href="/communication/messages/(\d+)"', messages)
    assert first_id
    detail = await client.get(f"/communication/messages/{first_id.group(1)}")
    assert detail.status_code == 200 and "Status history" in detail.text and 'class="why"' in detail.text
    older = re.search(r'href="(/communication/messages\?[^"]*before=\d+)"', messages)
    assert older, "more than one page of messages gives an older-messages link"
    assert (await client.get(older.group(1).replace("&amp;", "&"))).status_code == 200
    csv = await client.get(f"/analytics/reports/{REPORT_SLUG}.csv")
    assert csv.status_code == 200 and csv.headers["content-type"] == "text/csv; charset=utf-8"  # once
    assert csv.text.lstrip("\ufeff").startswith("Source channel,Revenue (EUR)\r\n")
    assert (await client.get("/communication/messages/99999999")).status_code == 404


async def test_template_preview_shows_segments_and_errors_inline(client: Client, seeded: Seeded) -> None:
    await sign_in(client, seeded, VIEWER)
    variables = "first_name=Ada\nservice=Eye test\nclinic=Berlin Mitte\nappointment_time=Tue 10:00"
    ok = await client.get(
        "/communication/templates",
        params={
            "preview": "1",
            "template": "appointment_reminder",
            "channel": "sms",
            "locale": "en",
            "variables": variables,
        },
    )
    assert ok.status_code == 200
    assert 'class="segments">1<' in ok.text and "GSM-7" in ok.text and "Ada" in ok.text
    missing = await client.get(
        "/communication/templates",
        params={
            "preview": "1",
            "template": "appointment_reminder",
            "channel": "sms",
            "variables": "nonsense",
        },
    )
    assert missing.status_code == 200 and 'class="notice error"' in missing.text
    no_variant = await client.get(
        "/communication/templates",
        params={"preview": "1", "template": "appointment_reminder", "channel": "fax"},
    )
    assert no_variant.status_code == 200 and 'class="notice error"' in no_variant.text
    # Switching the template keeps the values that still apply and gives the new one's names.
    switched = await client.get(
        "/communication/templates",
        params={"template": "seasonal_offer", "variables": f"{variables}\noffer=10% off"},
    )
    box = re.search(r'<textarea name="variables" rows="6">([^<]*)</textarea>', switched.text)
    assert box is not None and "appointment_time" not in box.group(1), box
    assert "offer=10% off" in box.group(1) and "code=" in box.group(1)


async def test_templates_page_lists_the_automated_notification_rules(client: Client, seeded: Seeded) -> None:
    database = Database.connect(seeded.settings.database_url)
    async with database.sessions() as session:
        await session.execute(
            update(AutomatedNotification)
            .where(AutomatedNotification.name == "csat_after_visit")
            .values(enabled=False)
        )
        session.add(
            AutomatedNotification(
                name=SCRIPT_NAME,
                event_type="order.created",
                template_name="order_confirmation",
                channel_order=[],
                offset_minutes=-90,
            )
        )
        await session.commit()
    await database.dispose()
    await sign_in(client, seeded, VIEWER)

    html = (await client.get("/communication/templates")).text

    section = html[html.index('<h2 id="rules-heading">Automated notifications</h2>') :]
    assert "Managers change them." in section and "/communication/notification-rules" not in section
    rows = {
        cells[0]: cells[1:]
        for cells in (
            [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", section, re.S)
        )
        if cells
    }
    assert rows["appointment_reminder_24h"] == [
        "appointment.reminder",
        "appointment_reminder",
        "WhatsApp, Telegram, SMS, email",
        "1 day before",
        "transactional",
        "on",
    ]
    assert rows["csat_after_visit"][-3:] == ["2 h after", "transactional", "off"]
    assert rows[ESCAPED_NAME] == [
        "order.created",
        "order_confirmation",
        "preferred, then opted in",
        "1 h 30 min before",
        "transactional",
        "on",
    ]
    assert SCRIPT_NAME not in html and len(rows) == len(NOTIFICATION_RULES) + 1


async def test_viewer_cannot_change_campaigns_or_reply(client: Client, seeded: Seeded) -> None:
    await sign_in(client, seeded, VIEWER)
    campaign_page = f"/communication/campaigns/{seeded.campaign_slug}"
    assert ">Launch now<" not in (await client.get(campaign_page)).text
    launch = await post_form(client, campaign_page, f"{campaign_page}/launch", {})
    assert launch.status_code == 403
    chat_page = f"/communication/chat/{seeded.chat_id}"
    reply = await post_form(client, chat_page, f"{chat_page}/reply", {"body": "hi", "request_key": "k1"})
    assert reply.status_code == 403
    assert await campaign_status(seeded, seeded.campaign_slug) == "draft"


async def test_posts_without_a_csrf_token_are_refused(client: Client, seeded: Seeded) -> None:
    await sign_in(client, seeded, MANAGER)
    await client.get("/")  # the browser holds the CSRF cookie, but the form post lacks the token
    action = f"/communication/campaigns/{seeded.campaign_slug}/launch"
    response = await client.post(action, data={}, follow_redirects=False)
    assert response.status_code == 403
    wrong = await client.post(action, data={"_csrf_token": "x" * 64}, follow_redirects=False)
    assert wrong.status_code == 403
    assert await campaign_status(seeded, seeded.campaign_slug) == "draft"


async def test_manager_launches_pauses_and_cancels_with_an_audit_trail(
    client: Client, seeded: Seeded
) -> None:
    await sign_in(client, seeded, MANAGER)
    page = f"/communication/campaigns/{seeded.campaign_slug}"
    launched = await post_form(client, page, f"{page}/launch", {})
    assert launched.status_code == 303 and said_after(launched) == (page, {"done": "launch"})
    assert await campaign_status(seeded, seeded.campaign_slug) == "running"
    shown = await client.get(launched.headers["location"])
    assert "Launched" in shown.text and ">Pause<" in shown.text
    again = await post_form(client, page, f"{page}/launch", {})
    assert again.status_code == 409 and "cannot be launched" in again.text
    assert (await post_form(client, page, f"{page}/pause", {})).status_code == 303
    assert (await post_form(client, page, f"{page}/cancel", {})).status_code == 303
    assert await campaign_status(seeded, seeded.campaign_slug) == "cancelled"
    database = Database.connect(seeded.settings.database_url)
    async with database.read_sessions() as session:
        entries = (
            await session.execute(
                select(AuditLog.action, AuditLog.actor, AuditLog.via).where(
                    AuditLog.action.like("campaign.%")
                )
            )
        ).all()
    await database.dispose()
    assert sorted(entries) == sorted(
        [(f"campaign.{verb}", MANAGER, "web") for verb in ("launch", "pause", "cancel")]
    )


async def test_a_running_campaigns_progress_counts_its_own_messages_in_words_and_says_why_some_failed(
    client: Client, seeded: Seeded
) -> None:
    """Replies attributed to the campaign are counted apart from its messages; failures give their reasons;
    the page refreshes itself while the campaign runs. Every figure recounted from the rows."""
    await sign_in(client, seeded, MANAGER)
    page = f"/communication/campaigns/{seeded.campaign_slug}"
    assert (await post_form(client, page, f"{page}/launch", {})).status_code == 303
    database = Database.connect(seeded.settings.database_url)
    cc = CustomerCommunication
    async with database.sessions() as session:
        campaign_id = await session.scalar(
            select(BulkMessaging.id).where(BulkMessaging.slug == seeded.campaign_slug)
        )
        customer_id = await session.scalar(select(Customer.id).order_by(Customer.id).limit(1))
        # As the worker leaves them once it planned and sent the campaign (no worker runs here).
        for n, (status, reason) in enumerate(
            [
                ("planned", None),
                ("delivered", None),
                ("undelivered", "Unknown destination handset"),
                ("undelivered", "Unknown destination handset"),
                ("dead", "the provider refused the number"),
                # More reasons than the page lists: the rarest are counted in one line.
                *(("undelivered", f"zone {k} unreachable") for k in range(8)),
            ]
        ):
            session.add(
                cc(
                    customer_id=customer_id,
                    channel="sms",
                    provider="twilio",
                    direction="outbound",
                    source="campaign",
                    source_ref=seeded.campaign_slug,
                    category="marketing",
                    campaign_id=campaign_id,
                    idempotency_key=f"campaign:progress-test:{n}",
                    to_address=f"+4915100002{n:03d}",
                    body="Spring offer",
                    status=status,
                    status_reason=reason,
                    # Each carries planning's estimate; only those handed to the provider were charged.
                    sent_at=datetime.now(UTC) if status in ("delivered", "undelivered") else None,
                    # The one waiting waits for its recipient's quiet hours to end: 18:00 in Berlin.
                    next_attempt_at=datetime(2030, 1, 15, 17, 0, tzinfo=UTC) if status == "planned" else None,
                    cost_micros=87_500,
                    currency="USD",
                )
            )
        session.add(
            cc(
                customer_id=customer_id,
                channel="sms",
                provider="twilio",
                direction="inbound",
                source="reply",
                category="transactional",
                campaign_id=campaign_id,
                to_address="+4930123456",
                body="Is this offer for Mitte too?",
                status="received",
            )
        )
        await session.commit()
        outbound = await session.scalar(
            select(func.count()).where(cc.campaign_id == campaign_id, cc.direction == "outbound")
        )
    await database.dispose()

    shown = (await client.get(page)).text
    assert f'<meta http-equiv="refresh" content="10; url={page}">' in shown
    table = shown.split('id="by-status"')[1].split("</table>")[0]
    stages = dict(re.findall(r"<tr><td>([^<]+)</td><td class=\"num\">([\d,]+)</td></tr>", table))
    assert stages["delivered"] == "1" and stages["not delivered"] == "10"
    assert stages["given up after retries"] == "1"
    assert "received" not in stages and "dead" not in stages
    assert sum(int(n.replace(",", "")) for n in stages.values()) == outbound
    reasons = shown.split('id="failed-reasons"')[1].split("</ul>")[0]
    assert "Unknown destination handset: 2" in reasons and "the provider refused the number: 1" in reasons
    assert "zone 5 unreachable: 1" in reasons and "zone 6 unreachable" not in reasons
    assert "2 other reasons: 2 (in the message log)" in reasons
    assert "Replies from recipients: 1" in shown
    charged = 87_500 * (
        int(stages["delivered"]) + int(stages["not delivered"])
    )  # not the planned or given up
    assert f"Cost so far: <strong>US${charged / 1_000_000:.2f}</strong>" in shown
    next_send = shown.split('id="next-send"')[1].split("</p>")[0]
    assert (
        "The next message waiting goes at" in next_send
        and "15 Jan 2030" in next_send
        and "18:00" in next_send
    )

    # Its messages in the log: the five it sent and the reply it drew, and nobody else's.
    assert f'href="/communication/messages?campaign={seeded.campaign_slug}"' in shown
    log = (await client.get(f"/communication/messages?campaign={seeded.campaign_slug}")).text
    assert 'id="campaign-filter"' in log and "and the replies it drew" in log
    listed = re.findall(r'href="/communication/messages/(\d+)"', log)
    assert len(set(listed)) == outbound + 1, listed
    undelivered = (
        await client.get(f"/communication/messages?campaign={seeded.campaign_slug}&status=undelivered")
    ).text
    assert len(set(re.findall(r'href="/communication/messages/(\d+)"', undelivered))) == 10
    # Staff read words, not stored values: in the rows, the chosen filter, and the message's own page.
    assert '<option value="undelivered" selected>not delivered</option>' in undelivered
    assert undelivered.count('<span class="status status-undelivered">not delivered</span>') == 10
    assert ">to the customer<" in undelivered and ">outbound<" not in undelivered
    first = re.findall(r'href="/communication/messages/(\d+)"', undelivered)[0]
    facts = (await client.get(f"/communication/messages/{first}")).text
    assert "<dd>not delivered</dd>" in facts and "<dd>a campaign (" in facts
    assert re.search(r"<dt>Channel</dt><dd>(SMS|WhatsApp|email|Telegram) through [A-Z][^<_]+</dd>", facts), (
        facts
    )
    unknown = (await client.get("/communication/messages?campaign=no-such-campaign")).text
    assert "There is no campaign “no-such-campaign”" in unknown and "No messages match" in unknown
    # A campaign address no campaign could have is dropped as the other malformed filters are: every message.
    forged = await client.get("/communication/messages?campaign=%3Cscript%3E%27%3B--")
    assert (
        forged.status_code == 200
        and 'id="campaign-filter"' not in forged.text
        and "<script>'" not in forged.text
    )
    sheet = (await client.get(f"/communication/messages.csv?campaign={seeded.campaign_slug}")).text
    assert f"campaign {seeded.campaign_slug}" in sheet and "Is this offer for Mitte too?" in sheet


async def test_agent_reply_is_queued_and_joins_the_conversation(client: Client, seeded: Seeded) -> None:
    await sign_in(client, seeded, AGENT)
    page = f"/communication/chat/{seeded.chat_id}"
    form = {"body": "We have moved your booking to 10:30.", "request_key": "reply-1"}
    first = await post_form(client, page, f"{page}/reply", form)
    assert first.status_code == 303
    shown = await client.get(first.headers["location"])
    assert "We have moved your booking" in shown.text and "Lena Hoffmann" in shown.text
    await post_form(client, page, f"{page}/reply", form)  # the same form sent twice queues one message
    database = Database.connect(seeded.settings.database_url)
    async with database.read_sessions() as session:
        queued = (
            await session.execute(
                select(
                    CustomerCommunication.channel,
                    CustomerCommunication.category,
                    CustomerCommunication.status,
                ).where(CustomerCommunication.body == form["body"])
            )
        ).all()
        turns = await session.scalar(
            select(func.count()).select_from(ChatMessage).where(ChatMessage.session_id == seeded.chat_id)
        )
        chat = await session.get(ChatSession, seeded.chat_id)
    await database.dispose()
    assert queued == [("sms", "conversational", "planned")]
    assert turns == 2
    assert chat is not None and chat.first_response_at is not None
    empty = await post_form(client, page, f"{page}/reply", {"body": " ", "request_key": "reply-2"})
    assert empty.status_code == 422 and "empty" in empty.text


async def test_user_text_is_escaped_everywhere(client: Client, seeded: Seeded) -> None:
    await sign_in(client, seeded, MANAGER)
    for path in (
        "/communication/chat",
        f"/communication/chat/{seeded.chat_id}",
        "/communication/messages?direction=inbound",
    ):
        html = (await client.get(path)).text
        assert ESCAPED_NAME in html, path
        assert SCRIPT_NAME not in html, path


async def test_executive_page_follows_the_saved_layout(client: Client, seeded: Seeded) -> None:
    await sign_in(client, seeded, VIEWER)
    saved = await post_form(
        client,
        "/analytics/executive",
        "/analytics/executive/layout",
        {"metric": "new_customers", "period": "last_7_days"},
    )
    assert saved.status_code == 303
    page = (await client.get("/analytics/executive")).text
    assert "New customers" in page and 'value="last_7_days" selected' in page
    assert "Average order value</span>" not in page
    database = Database.connect(seeded.settings.database_url)
    async with database.read_sessions() as session:
        config = await session.scalar(
            select(DashboardConfig).where(DashboardConfig.owner_id == seeded.staff[VIEWER])
        )
    await database.dispose()
    assert config is not None and config.period == "last_7_days"
    assert config.layout == [{"kind": "kpi", "metric": "new_customers"}]
    assert "Your layout is saved; this page shows it from now on." in page
    # Nothing ticked: refused in words, the saved layout kept (it said "your saved layout is shown" over the
    # standard four).
    empty = await post_form(
        client, "/analytics/executive", "/analytics/executive/layout", {"period": "last_30_days"}
    )
    assert empty.status_code == 303
    again = (await client.get("/analytics/executive")).text
    assert "No KPI was ticked, so nothing was saved" in again and "New customers" in again


async def _insert_operations(database: Database, now: datetime) -> None:
    """A worker with one failing job, a message overdue by 7 minutes, a webhook 3 minutes ago, a watermark."""
    from reports.heartbeats import JobHealth, JobRecord, write_heartbeat
    from storage.analytics.rollup_store import RollupWatermark, write_watermark

    health = JobHealth(lambda: now)
    health.jobs.update(
        {
            "delivery": JobRecord(5, last_success_at=now - timedelta(seconds=4)),
            "rollups": JobRecord(
                60,
                last_failure_at=now - timedelta(seconds=20),
                failing_since=now - timedelta(minutes=10),
                last_error="OperationalError: database is locked",
            ),
        }
    )
    async with database.sessions() as session:
        await write_heartbeat(session, "clinic-1:812:worker", "worker", now, health, pid=812)
        customer = await session.scalar(select(Customer.id).limit(1))
        session.add(
            CustomerCommunication(
                customer_id=customer,
                channel="sms",
                provider="twilio",
                direction="outbound",
                source="manual",
                to_address="+4915100000002",
                body="overdue",
                status="planned",
                next_attempt_at=now - timedelta(minutes=7),
                created_at=now - timedelta(minutes=8),
            )
        )
        # Messages sent within the last 24 hours on two more providers, whatever the hour: the seed's last day
        # ends at the wall clock's hour, and late in the UTC evening it can leave one provider only.
        for provider, channel, status, code in (
            ("whatsapp_cloud", "whatsapp", "delivered", None),
            ("whatsapp_cloud", "whatsapp", "failed", "131047"),
            ("smtp", "email", "delivered", None),
        ):
            session.add(
                CustomerCommunication(
                    customer_id=customer,
                    channel=channel,
                    provider=provider,
                    direction="outbound",
                    source="manual",
                    to_address="+4915100000002" if channel == "whatsapp" else "late@example.de",
                    body="sent late in the evening",
                    status=status,
                    error_code=code,
                    created_at=now - timedelta(hours=2),
                    sent_at=now - timedelta(hours=2) if status == "delivered" else None,
                    failed_at=now - timedelta(hours=2) if status == "failed" else None,
                )
            )
        session.add(
            WebhookInbox(
                provider="twilio",
                kind="status",
                dedupe_key="performance-page",
                status="applied",
                body="{}",
                received_at=now - timedelta(minutes=3),
            )
        )
        await write_watermark(
            session,
            RollupWatermark(now - timedelta(minutes=2), "Europe/Berlin", ("day", "week"), ("revenue",)),
        )
        await session.commit()


async def test_performance_page_speaks_in_words_and_units(client: Client, seeded: Seeded) -> None:
    from reports.performance import FAILED_STATUSES

    await sign_in(client, seeded, VIEWER)
    empty = (await client.get("/analytics/performance")).text
    assert "No worker is running" in empty and "not running" in empty

    now = datetime.now(UTC)
    database = Database.connect(seeded.settings.database_url)
    await _insert_operations(database, now)
    async with database.read_sessions() as session:
        outbound = (
            await session.execute(
                select(
                    CustomerCommunication.provider,
                    CustomerCommunication.status,
                    CustomerCommunication.sent_at,
                    CustomerCommunication.failed_at,
                ).where(CustomerCommunication.direction == "outbound")
            )
        ).all()
    await database.dispose()
    html = (await client.get("/analytics/performance")).text

    assert "1 worker process running; needs a look:" in html and "rollups" in html
    ago = re.search(r"ok, last success (\d+) s ago", html)
    assert ago and 4 <= int(ago.group(1)) < 60, "the delivery job's last success, counted from when it was"
    assert "failing since 10 min: OperationalError: database is locked; no success since the start" in html
    assert re.search(r"Oldest due message has waited</span><span class=\"tile-value\">7 min<", html)
    assert re.search(r"<td>Twilio</td><td>3 min ago", html)
    assert "The analytics rollups reflect the facts up to" in html and "(2 min ago)" in html
    # Provider errors over the last 24 hours, checked against the raw rows.
    checked = 0
    for provider in {p for p, *_ in outbound}:
        mine = [
            (status, sent, failed)
            for p, status, sent, failed in outbound
            if p == provider and (sent or failed) and (sent or failed) >= now - timedelta(hours=24)
        ]
        if not mine:
            continue
        failures = sum(1 for status, _, _ in mine if status in FAILED_STATUSES)
        assert (
            f'<td>{provider_words(provider)}</td><td class="num">{len(mine):,}</td><td class="num">{failures:,}</td>'
            in html
        )
        checked += 1
    assert checked >= 2, "the seeded day has outbound messages on several providers"
    # No raw values: no epoch seconds, no list dumps, no internal figure names.
    text = re.sub(r"<[^>]+>", " ", html)
    assert not re.search(r"\b1[6-9]\d{8}(\.\d+)?\b|\b1,[6-9]\d\d,\d{3},\d{3}\b", text)
    for raw in ("[", "'", "rollup_watermark", "_seconds", "None", "outbox oldest due seconds"):
        assert raw not in text, raw


def _message_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<td><a href="/communication/messages/(\d+)">', html)]


async def test_messages_are_newest_first_by_time_and_page_exactly(client: Client, seeded: Seeded) -> None:
    database = Database.connect(seeded.settings.database_url)
    async with database.sessions() as session:
        ids = sorted(await session.scalars(select(CustomerCommunication.id)))
        newest = await session.scalar(select(func.max(CustomerCommunication.created_at)))
        assert newest is not None
        tie = newest + timedelta(minutes=1)
        # The oldest row becomes the newest message, and 60 rows share one moment across the page break.
        await session.execute(
            update(CustomerCommunication)
            .where(CustomerCommunication.id == ids[0])
            .values(created_at=tie + timedelta(seconds=1))
        )
        await session.execute(
            update(CustomerCommunication)
            .where(CustomerCommunication.id.in_(ids[1::7][:60]))
            .values(created_at=tie)
        )
        await session.commit()
        expected = list(
            await session.scalars(
                select(CustomerCommunication.id)
                .order_by(CustomerCommunication.created_at.desc(), CustomerCommunication.id.desc())
                .limit(150)
            )
        )
    await database.dispose()
    await sign_in(client, seeded, VIEWER)
    shown: list[int] = []
    path = "/communication/messages"
    for _ in range(3):
        html = (await client.get(path)).text
        shown += _message_ids(html)
        older = re.search(r'href="(/communication/messages\?[^"]*before=\d+)"', html)
        assert older, "every page of a long list links to the next"
        path = older.group(1).replace("&amp;", "&")
    assert shown == expected
    assert shown[0] == ids[0]


async def test_the_customer_filter_takes_a_name_phone_or_email(client: Client, seeded: Seeded) -> None:
    database = Database.connect(seeded.settings.database_url)
    async with database.read_sessions() as session:
        people = list(await session.scalars(select(Customer).order_by(Customer.id)))
        senders = set(await session.scalars(select(CustomerCommunication.customer_id).distinct()))
    await database.dispose()
    named = [c for c in people if c.id in senders and c.email and c.phone_e164]
    one = next(c for c in named if sum(c.name.lower() in other.name.lower() for other in people) == 1)
    await sign_in(client, seeded, AGENT)

    async def search(text: str) -> tuple[str, set[int]]:
        html = (await client.get("/communication/messages", params={"customer": text})).text
        customers = set(re.findall(r'href="/communication/messages\?customer_id=(\d+)">', html))
        return html, {int(c) for c in customers}

    def shown_customers(html: str) -> set[int]:
        table = html.split("<tbody>", 1)[1] if "<tbody>" in html else ""
        return {int(c) for c in re.findall(r'messages\?customer_id=(\d+)">', table)}

    assert one.email and one.phone_e164
    for text in (
        one.name.upper(),  # the whole name, any case
        one.email.split("@")[0].upper(),  # part of the email
        "0" + one.phone_e164[3:6] + " " + one.phone_e164[6:],  # the national form, with a space
        f"#{one.id}",
    ):
        html, _ = await search(text)
        assert f"Showing the messages of {one.name} (#{one.id})" in html, text
        assert shown_customers(html) == {one.id}, text

    # Staff who see contact details shortened find by whole ones only: part of an email finds no one, so a
    # shortened address cannot be found out a letter at a time; the whole email, or the number, finds them.
    await sign_in(client, seeded, VIEWER)
    html, listed = await search(one.email.split("@")[0][:-1])
    assert one.id not in listed
    for text in (one.email.upper(), one.phone_e164, f"#{one.id}"):
        html, _ = await search(text)
        assert f"Showing the messages of {one.name} (#{one.id})" in html, text

    def matching(fragment: str) -> set[int]:
        low = fragment.lower()
        return {c.id for c in people if low in c.name.lower() or low in (c.email or "").lower()}

    few = next(f for f in (c.name.split()[0][:3] for c in named) if 2 <= len(matching(f)) <= 20)
    html, listed = await search(few)
    assert f"{len(matching(few))} customers match “{few}”; showing the messages of all of them" in html
    assert listed == matching(few) and shown_customers(html) <= matching(few)
    assert len(matching("e")) > 20
    html, listed = await search("E")
    assert "More than 20 customers match “E”" in html
    assert len(listed) == 20 and listed <= matching("e") and shown_customers(html) <= listed
    for hostile in ("%", "_", "' OR 1=1 --", "zzzz nobody"):
        html, _ = await search(hostile)
        assert "No customer matches" in html and "<tbody>" not in html, hostile


async def test_the_executive_page_sets_each_kpi_with_a_target_against_it(
    client: Client, seeded: Seeded
) -> None:
    from babel.numbers import format_decimal, format_percent

    from reports.metrics import REGISTRY
    from reports.periods import PeriodSpec
    from reports.query import MetricQuery, run_query

    await sign_in(client, seeded, VIEWER)
    html = (await client.get("/analytics/executive?period=last_90_days")).text
    assert "Against target" in html
    database = Database.connect(seeded.settings.database_url)
    with_target = [m for m in REGISTRY.values() if m.target is not None]
    assert len(with_target) >= 3
    for metric in with_target:
        found = await run_query(
            database,
            MetricQuery((metric.name,), PeriodSpec.last_n_days(90)),
            now=datetime.now(UTC),
            business_tz="Europe/Berlin",
            prefer_rollups=False,
        )
        total = found.series_for(metric.name)[0].total
        assert total is not None, metric.name
        met = total <= metric.target if metric.direction == "down_is_good" else total >= metric.target
        shown = (  # a score (CSAT) to two decimals at most
            format_percent(total, "#,##0.00%" if 0 < total < 0.01 else "#,##0.0%", locale="en_GB")
            if metric.unit == "percent"
            else format_decimal(total, "#,##0.##", locale="en_GB")
        )
        row = re.search(
            rf"<tr><td>{re.escape(metric.label)}</td><td class=\"num\">([^<]+)</td><td class=\"num\">([^<]+)</td>",
            html,
        )
        assert row, metric.label
        assert row.group(1).rstrip("0").rstrip(".") == shown.rstrip("0").rstrip(".") or row.group(1) == shown
        verdict = re.search(
            rf"<td>{re.escape(metric.label)}</td>.*?<span class=\"tile-change (good|bad)\">([^<]+)<", html
        )
        assert verdict and verdict.group(1) == ("good" if met else "bad"), metric.label
        assert verdict.group(2) == "on target" if met else verdict.group(2).startswith("off target by ")
    await database.dispose()


async def test_the_customer_page_shows_the_stored_cohort_retention(client: Client, seeded: Seeded) -> None:
    from reports.insight import cohort_retention, store_insight
    from reports.periods import PeriodSpec

    await sign_in(client, seeded, VIEWER)
    before = (await client.get("/analytics/customer")).text
    assert "Retention by cohort" in before and "has not run yet" in before
    database = Database.connect(seeded.settings.database_url)
    insight = await cohort_retention(
        database, PeriodSpec.last_n_days(40), now=datetime.now(UTC), business_tz="Europe/Berlin"
    )
    async with database.sessions() as session:
        await store_insight(session, insight)
        await session.commit()
    await database.dispose()
    html = (await client.get("/analytics/customer")).text
    definitions = html[html.index('<details id="tile-definitions">') :]
    assert (
        "<dt>Churn rate</dt><dd>Share of customers with a paid order in the previous equally long period"
        in (definitions)
    )
    assert insight.result.rows, "the seed has first orders in the last 40 days"
    for row in insight.result.rows:
        cells = "".join(
            f'<td class="num">{"—" if share is None else f"{share:.1%}"}</td>' for share in row.retention
        )
        assert f'<td class="num">{row.customers}</td>{cells}</tr>' in html, row
    assert insight.summary in html
    assert html.count('<svg role="img"') >= 1 and 'aria-label="' + insight.summary[:40] in html  # the heatmap
    exported = (
        (await client.get("/analytics/insights/cohort_retention.csv")).text.lstrip("\ufeff").splitlines()
    )
    assert exported[0] == "Cohort," + ",".join(f"Month +{k} (%)" for k in range(1, insight.result.months + 1))
    for line, row in zip(exported[1:], insight.result.rows, strict=False):
        cells = ["" if share is None else f"{round(share * 100, 2):g}" for share in row.retention]
        month = format_skeleton("yMMM", row.cohort, locale="en_GB")  # "Jun 2026", "Sept 2026"
        assert line == ",".join([f"{month} ({row.customers})", *cells]), line


async def test_a_cohort_period_without_first_orders_says_so_without_an_empty_heatmap(
    client: Client, seeded: Seeded
) -> None:
    from datetime import date

    from reports.insight import cohort_retention, store_insight
    from reports.periods import PeriodSpec

    await sign_in(client, seeded, VIEWER)
    database = Database.connect(seeded.settings.database_url)
    insight = await cohort_retention(
        database,
        PeriodSpec.between(date(2020, 1, 1), date(2020, 3, 31)),
        now=datetime.now(UTC),
        business_tz="Europe/Berlin",
    )
    async with database.sessions() as session:
        await store_insight(session, insight)
        await session.commit()
    await database.dispose()
    assert insight.result.rows == ()
    html = (await client.get("/analytics/customer")).text
    cohorts = html[html.index('id="cohorts"') : html.index("</table>", html.index('id="cohort-table"'))]
    assert "<svg" not in cohorts  # no heatmap of a made-up empty cohort
    assert "No customer placed a first order in that period." in cohorts
    assert "so there are no cohorts to follow yet." in html and "n/a" not in html
    assert "A dash: that month had not ended" not in html


async def test_the_financial_page_shows_cost_against_attributed_revenue_per_channel_and_campaign(
    client: Client, seeded: Seeded
) -> None:
    from reports.insight import campaign_attribution, cost_vs_revenue, store_insight
    from reports.periods import PeriodSpec

    await sign_in(client, seeded, VIEWER)
    before = (await client.get("/analytics/financial")).text
    assert "Message cost against attributed revenue" in before and "has not run yet" in before
    database = Database.connect(seeded.settings.database_url)
    period, now = PeriodSpec.last_n_days(30), datetime.now(UTC)
    attribution = await campaign_attribution(database, period, now=now, business_tz="Europe/Berlin")
    costs = await cost_vs_revenue(database, period, now=now, business_tz="Europe/Berlin")
    async with database.sessions() as session:
        await store_insight(session, attribution)
        await store_insight(session, costs)
        await session.commit()
    html = (await client.get("/analytics/financial")).text
    assert costs.summary in html and attribution.summary in html
    assert 'id="attribution-models"' in html and "count only the orders your shop tagged" in html
    assert "Cost (provider, USD)" in html and "Attributed revenue (EUR)" in html
    assert costs.result.by_channel, "the seed sends messages in the last 30 days"
    for row in costs.result.by_channel:
        assert f"<td>{channel_words(row.channel)}</td>" in html
    # Each campaign row is the stored figure, and the rows add up to the attributed total.
    campaign_orders = sum(r.attributed_orders for r in attribution.result.by_campaign)
    channel_orders = sum(r.attributed_orders for r in attribution.result.by_channel)
    assert campaign_orders <= channel_orders == attribution.result.attributed_orders
    async with database.read_sessions() as session:
        names = dict((await session.execute(select(BulkMessaging.slug, BulkMessaging.name))).all())
    await database.dispose()
    for row in attribution.result.by_campaign:
        # Campaigns by the name staff gave them, never the stored slug.
        shown = "No campaign (single messages and notifications)" if row.key == "(none)" else names[row.key]
        assert f'<td>{escape(shown)}</td><td class="num">{row.attributed_orders}</td>' in html, row.key
    assert any(row.key != "(none)" for row in attribution.result.by_campaign), (
        "the seed attributes a campaign"
    )


async def test_channel_pages_show_segments_templates_and_the_whatsapp_window(
    client: Client, seeded: Seeded
) -> None:
    from reports.periods import local_midnight

    now = datetime.now(UTC)
    database = Database.connect(seeded.settings.database_url)
    async with database.sessions() as session:
        writing, silent = list(await session.scalars(select(Customer).order_by(Customer.id).limit(2)))
        for customer, ago_hours in ((writing, 2), (silent, 25)):
            session.add(
                CustomerCommunication(
                    customer_id=customer.id,
                    channel="whatsapp",
                    provider="whatsapp_cloud",
                    direction="inbound",
                    source="reply",
                    to_address="+15550001",
                    from_address="+4915100000009",
                    body="Hello",
                    status="received",
                    created_at=now - timedelta(hours=ago_hours, minutes=5),
                )
            )
        await session.commit()
        first_day = (now.astimezone(ZoneInfo("Europe/Berlin")).date()) - timedelta(days=29)
        segments = await session.scalar(
            select(func.sum(CustomerCommunication.segments)).where(
                CustomerCommunication.channel == "sms",
                CustomerCommunication.direction == "outbound",
                CustomerCommunication.sent_at.is_not(None),
                CustomerCommunication.created_at >= local_midnight(first_day, "Europe/Berlin"),
            )
        )
        named = list(
            await session.scalars(
                select(MessageTemplate.whatsapp_name).where(MessageTemplate.whatsapp_name.is_not(None))
            )
        )
        open_windows = set(
            await session.scalars(
                select(CustomerCommunication.customer_id).where(
                    CustomerCommunication.channel == "whatsapp",
                    CustomerCommunication.direction == "inbound",
                    CustomerCommunication.created_at > now - timedelta(hours=24),
                    CustomerCommunication.created_at <= now,
                )
            )
        )
    await database.dispose()
    await sign_in(client, seeded, VIEWER)

    sms = (await client.get("/communication/sms")).text
    assert segments and re.search(rf'Segments billed</span><span class="tile-value">{segments:,}<', sms), (
        segments
    )
    assert "GSM-7" in sms and "Cost (provider, USD)" in sms and "€" not in sms

    whatsapp = (await client.get("/communication/whatsapp")).text
    assert named and all(f"<code>{name}</code>" in whatsapp for name in named)
    assert f"<strong>{len(open_windows)}</strong> customer" in whatsapp
    assert f"customer_id={writing.id}&amp;channel=whatsapp" in whatsapp
    assert f"customer_id={silent.id}&amp;channel=whatsapp" not in whatsapp
    assert re.search(r"<td>2[12] h</td>", whatsapp), "a window opened 2 h ago has about 22 h left"

    telegram = await client.get("/communication/telegram")
    assert telegram.status_code == 200 and "<h1>Telegram</h1>" in telegram.text and "<svg" in telegram.text
    assert "Cost (provider, USD)" in telegram.text
    index = (await client.get("/communication/")).text
    assert 'href="/communication/telegram/"' in index and "satisfaction" not in index
    assert 'href="/communication/telegram"' in sms, "every channel page links its siblings"


async def test_costs_are_labelled_in_the_providers_currency_next_to_euro_figures(
    client: Client, seeded: Seeded
) -> None:
    await sign_in(client, seeded, VIEWER)
    financial = (await client.get("/analytics/financial")).text
    tiles = dict(
        re.findall(r'<span class="tile-label">([^<]+)</span>\s*<span class="tile-value">([^<]+)<', financial)
    )
    assert tiles["Revenue"].startswith("€") and tiles["Average order value"].startswith("€")
    assert tiles["Communication cost (provider, USD)"].startswith("US$")
    assert tiles["Cost per message (provider, USD)"].startswith("US$")
    assert (
        "Revenue and average order value: in EUR, the business currency. "
        "Message costs: what the providers charge, in USD. The two are never converted or added together."
        in financial
    )
    analytics = (await client.get("/communication/analytics")).text
    assert '<th scope="col" class="num">Cost (provider, USD)</th>' in analytics and "€" not in analytics


async def test_communication_analytics_names_channels_and_says_today_is_partial(
    client: Client, seeded: Seeded
) -> None:
    """Channels by name (never the stored "whatsapp"), today's rows marked "so far", and what Sent and
    Failed count said under the table, so a day with every sent message delivered and one failed reads right."""
    await sign_in(client, seeded, VIEWER)
    analytics = (await client.get("/communication/analytics")).text
    channels = set(re.findall(r'<td class="nowrap">[^<]+</td><td>([^<]+)</td>', analytics))
    assert channels and channels <= {"SMS", "WhatsApp", "email", "Telegram"}, channels
    assert "today so far included" in analytics and "Failed: failed after sending, or given up" in analytics
    database = Database.connect(seeded.settings.database_url)
    try:
        today = datetime.now(ZoneInfo("Europe/Berlin")).date()
        rows = await daily_figures(database, today)
    finally:
        await database.dispose()
    assert analytics.count(" (so far)</td>") == len(rows)
    legend = analytics.split("<svg", 1)[1].split("</svg>", 1)[0]
    assert ">whatsapp<" not in legend and ">WhatsApp<" in legend, "the chart's legend too"
    # Read is a figure only where the provider says so: WhatsApp's count, the others' "not reported".
    cells = re.findall(
        r'<td>([^<]+)</td>(?:<td class="num">[^<]*</td>){2}<td class="num">([^<]+)</td>', analytics
    )
    read_by_channel: dict[str, set[str]] = {}
    for channel, read in cells:
        read_by_channel.setdefault(channel, set()).add(read)
    assert read_by_channel["email"] == {"—"} and read_by_channel["SMS"] == {"—"}, read_by_channel
    assert "—" not in read_by_channel["WhatsApp"], read_by_channel
    assert "email opens are not tracked" in analytics
    email = (await client.get("/communication/email")).text
    assert re.search(r'tile-label">Read</span><span class="tile-value">—<', email), email[:3000]
    assert "email opens are not tracked" in email
    whatsapp = (await client.get("/communication/whatsapp")).text
    assert re.search(r'tile-label">Read</span><span class="tile-value">[\d,]+<', whatsapp)
    assert 'id="read-not-reported"' not in whatsapp


async def test_a_report_is_saved_from_the_form_checked_and_never_half_saved(
    client: Client, seeded: Seeded
) -> None:
    await sign_in(client, seeded, AGENT)
    form = {
        "name": "Revenue by clinic",
        "metric": "revenue",
        "period": "last_30_days",
        "dimension": "location",
        "grain": "week",
        "comparison": "previous_period",
        "shared": "on",
    }
    saved = await post_form(client, "/analytics/reports", "/analytics/reports", form)
    assert saved.status_code == 303 and said_after(saved) == (
        "/analytics/reports/revenue-by-clinic",
        {"saved": "1"},
    )
    shown = await client.get(saved.headers["location"])
    assert shown.status_code == 200 and "Saved." in shown.text and "<svg" in shown.text
    assert "Revenue, last 30 days, by location, weekly" in shown.text
    csv = await client.get("/analytics/reports/revenue-by-clinic.csv")
    assert csv.status_code == 200 and csv.text.lstrip("\ufeff").startswith("Date,")

    again = await post_form(client, "/analytics/reports", "/analytics/reports", form)
    assert again.status_code == 422 and "already a report named" in again.text
    wrong = await post_form(
        client,
        "/analytics/reports",
        "/analytics/reports",
        {**form, "name": "Staff revenue", "dimension": "staff"},
    )
    assert wrong.status_code == 422 and "revenue" in wrong.text and "staff" in wrong.text
    assert 'value="Staff revenue"' in wrong.text  # what was typed stays in the form

    database = Database.connect(seeded.settings.database_url)
    async with database.read_sessions() as session:
        names = list(await session.scalars(select(CustomReport.name).order_by(CustomReport.name)))
        actions = list(await session.scalars(select(AuditLog.action).where(AuditLog.action == "report.save")))
    await database.dispose()
    assert "Revenue by clinic" in names and "Staff revenue" not in names and actions == ["report.save"]

    await sign_in(client, seeded, VIEWER)
    page = (await client.get("/analytics/reports")).text
    assert "Save report" not in page and "Revenue by clinic" in page
    refused = await client.post(
        "/analytics/reports", data={**form, "name": "Viewer's"}, follow_redirects=False
    )
    assert refused.status_code == 403


# --- security headers --------------------------------------------------------------------------------

SECURITY_HEADERS = {
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
}


def csp_directives(policy: str) -> dict[str, list[str]]:
    directives = (part.split() for part in policy.split(";") if part.strip())
    return {name: sources for name, *sources in directives}


async def every_page(client: Client, seeded: Seeded) -> list[str]:
    """Every dashboard page, one of each detail page, and the public ones (sign-in, unsubscribe, a 404)."""
    message = re.search(
        r'href="(/communication/messages/\d+)"', (await client.get("/communication/messages")).text
    )
    assert message, "the message log links each message"
    token = unsubscribe_token(seeded.settings.session_secret, 1, "email")
    return [
        *DASHBOARD_PAGES,
        message.group(1),
        f"/communication/chat/{seeded.chat_id}",
        f"/communication/campaigns/{seeded.campaign_slug}",
        f"/analytics/reports/{REPORT_SLUG}",
        "/communication/video/services/5",
        "/communication/templates?template=appointment_reminder&channel=sms&preview=1",
        "/communication/messages/999999999",
        "/login",
        f"/unsubscribe/{token}",
        "/unsubscribe/not-a-token",
    ]


def is_live_inbox_page(path: str, status: int) -> bool:
    """The live chat inbox's pages load our own chat_live.js (a deliberate change: script-src 'self' there)."""
    return status == 200 and re.fullmatch(r"/communication/chat(/\d+)?", path) is not None


async def test_every_page_sends_a_strict_policy_and_the_security_headers(
    client: Client, seeded: Seeded
) -> None:
    await sign_in(client, seeded, MANAGER)
    live_pages = 0
    for path in await every_page(client, seeded):
        response = await client.get(path, headers={"Accept": "text/html"})
        assert response.status_code in (200, 404), (path, response.status_code)
        assert response.headers["content-type"].startswith("text/html"), path
        live = is_live_inbox_page(path, response.status_code)
        live_pages += live
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (path, name, response.headers.get(name))
        policy = csp_directives(response.headers["content-security-policy"])
        # Only the live inbox may run a script, and only a file from our own origin; every other page none.
        assert policy["script-src"] == (["'self'"] if live else ["'none'"]), path
        assert policy["default-src"] == ["'none'"] and policy["connect-src"] == ["'self'"], path
        assert policy["frame-ancestors"] == ["'none'"] and policy["form-action"] == ["'self'"], path
        assert policy["style-src"][0] == "'self'" and "'unsafe-inline'" not in policy["style-src"], path
        assert policy["img-src"] == ["'self'", "data:"] and policy["base-uri"] == ["'none'"], path
    assert live_pages == 2, "the queue page and a conversation page are the live ones"
    login = await client.get("/login")
    assert "content-security-policy" in login.headers and login.headers["referrer-policy"] == "no-referrer"


def inline_styles_outside_charts(html: str) -> list[str]:
    without_charts = re.sub(r"<svg\b.*?</svg>", "", html, flags=re.DOTALL)
    return re.findall(r"<[^>]*\sstyle=\"[^\"]*\"", without_charts)


async def test_no_page_needs_more_than_its_policy_allows(client: Client, seeded: Seeded) -> None:
    """Nothing from another site, no script, no inline handler; every <style> element is one the policy names."""
    await sign_in(client, seeded, MANAGER)
    charts_seen = 0
    for path in await every_page(client, seeded):
        response = await client.get(path)
        html, policy = response.text, csp_directives(response.headers["content-security-policy"])
        if is_live_inbox_page(path, response.status_code):  # our one static script file, nothing inline
            assert re.findall(r"<script[^>]*>.*?</script>", html.lower(), flags=re.DOTALL) == [
                '<script src="/static/chat_live.js" defer></script>'
            ], path
            html = html.replace('<script src="/static/chat_live.js" defer></script>', "")
        assert "<script" not in html.lower(), path
        assert not re.search(r"\son[a-z]+\s*=", html), path
        assert not re.search(r'(?:src|href|action)="(?:https?:)?//', html), path
        assert not re.search(r'(?:src|href)="javascript:', html, flags=re.IGNORECASE), path
        assert inline_styles_outside_charts(html) == [], path
        for css in re.findall(r"<style[^>]*>(.*?)</style>", html, flags=re.DOTALL):
            digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
            assert f"'sha256-{digest}'" in policy["style-src"], (path, css)
            charts_seen += 1
    assert charts_seen > 5, "the analytics pages draw their charts inline"


async def test_the_session_cookie_is_secure_behind_https(seeded: Seeded) -> None:
    behind_https = seeded.settings.model_copy(update={"public_url": "https://switchboard.example"})
    async with AsyncTestClient(create_app(behind_https)) as client:
        link = login_link("", behind_https.session_secret, seeded.staff[MANAGER], 15, datetime.now(UTC))
        response = await client.get(link, follow_redirects=False)
        cookie = response.headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie
        assert response.headers["referrer-policy"] == "no-referrer", "the link's token must not leak onwards"


async def test_the_web_inbox_queues_and_the_desk_buttons(client: Client, seeded: Seeded) -> None:
    await sign_in(client, seeded, VIEWER)
    page = f"/communication/chat/{seeded.chat_id}"
    assert ">Assign to me<" not in (await client.get(page)).text
    assert (await post_form(client, page, f"{page}/desk/resolve", {})).status_code == 403

    await sign_in(client, seeded, AGENT)
    overview = (await client.get("/communication/chat")).text
    assert "Open conversations" in overview and 'href="/communication/chat?view=unassigned"' in overview
    taken = await post_form(client, page, f"{page}/desk/assign", {})
    assert taken.status_code == 303 and said_after(taken) == (page, {"done": "assign"})
    shown = (await client.get(taken.headers["location"])).text
    assert "This conversation is now yours." in shown and "Agent: <strong>Lena Hoffmann</strong>" in shown
    # Already hers: no "Assign to me" offered (the form stays, hidden, for the live stream to show again).
    assert re.search(rf'action="{page}/desk/assign"[^>]* hidden>', shown), shown
    mine = (await client.get("/communication/chat?view=mine")).text
    assert (
        f'href="/communication/chat/{seeded.chat_id}"' in mine
        and 'aria-current="page">Mine <span class="count">1' in mine
    )

    assert (await post_form(client, page, f"{page}/desk/snooze", {})).status_code == 303
    snoozed = (await client.get("/communication/chat?view=snoozed")).text
    assert f'href="/communication/chat/{seeded.chat_id}"' in snoozed and " until " in snoozed
    # The note in the conversation gives the business's time, as the page's header does, not UTC's.
    database = Database.connect(seeded.settings.database_url)
    async with database.read_sessions() as session:
        note = await session.scalar(
            select(ChatMessage.body)
            .where(ChatMessage.session_id == seeded.chat_id, ChatMessage.body.like("Snoozed until %"))
            .limit(1)
        )
    await database.dispose()
    assert note is not None and re.fullmatch(r"Snoozed until \d{1,2} \w{3} \d{4}, \d\d:\d\d CES?T\.", note), (
        note
    )
    # Snoozed, it can be woken at once (the customer writing would wake it too).
    wake = f'<form method="post" action="{page}/desk/reopen" data-live-when="snoozed">'
    assert wake in (await client.get(page)).text
    assert (await post_form(client, page, f"{page}/desk/reopen", {})).status_code == 303
    woken = (await client.get(page)).text
    assert "This conversation is open again." in woken and wake not in woken
    assert " · snoozed until" not in woken
    assert (await post_form(client, page, f"{page}/desk/resolve", {})).status_code == 303
    again = await post_form(client, page, f"{page}/desk/resolve", {})
    assert again.status_code == 409 and "already resolved" in again.text
    resolved = (await client.get("/communication/chat?view=resolved")).text
    assert f'href="/communication/chat/{seeded.chat_id}"' in resolved
    assert (await post_form(client, page, f"{page}/desk/reopen", {})).status_code == 303
    assert (await post_form(client, page, f"{page}/desk/fly", {})).status_code == 404
    unknown = await post_form(client, page, "/communication/chat/999999/desk/resolve", {})
    assert unknown.status_code == 404

    database = Database.connect(seeded.settings.database_url)
    async with database.read_sessions() as session:
        actions = list(
            await session.scalars(
                select(AuditLog.action)
                .where(AuditLog.target == f"chat:{seeded.chat_id}")
                .order_by(AuditLog.id)
            )
        )
    await database.dispose()
    assert actions == ["chat.assign", "chat.snooze", "chat.reopen", "chat.resolve", "chat.reopen"]


async def test_an_agent_says_they_are_away_or_back_from_the_inbox(client: Client, seeded: Seeded) -> None:
    await sign_in(client, seeded, VIEWER)
    assert "I am away" not in (await client.get("/communication/chat")).text  # viewers take no conversations
    await sign_in(client, seeded, AGENT)
    inbox = "/communication/chat?view=mine"
    before = (await client.get(inbox)).text
    at_work = "I am away" in before
    wanted = "away" if at_work else "online"
    moved = await post_form(
        client, inbox, "/communication/chat/availability?view=mine", {"availability": wanted}
    )
    assert moved.status_code == 303 and moved.headers["location"] == inbox
    after = (await client.get(inbox)).text
    assert ("You are <strong>away</strong>" in after) is at_work and ("I am back" in after) is at_work
    refused = await post_form(client, inbox, "/communication/chat/availability", {"availability": "asleep"})
    assert refused.status_code == 422 and "Say online (at work) or away." in refused.text

    database = Database.connect(seeded.settings.database_url)
    async with database.read_sessions() as session:
        stored = await session.scalar(select(StaffUser.availability).where(StaffUser.email == AGENT))
        audited = await session.scalar(
            select(AuditLog.detail)
            .where(AuditLog.action == "staff.availability")
            .order_by(AuditLog.id.desc())
        )
    await database.dispose()
    assert stored == wanted and audited == {"availability": wanted}


async def test_a_template_preview_prices_an_sms_to_the_business_s_own_country(
    client: Client, seeded: Seeded
) -> None:
    """No recipient yet: an SMS is priced as one to a German number (the business is in Europe/Berlin), as the
    queued message will be and as the bot's preview says, not at the "elsewhere" price."""
    await sign_in(client, seeded, MANAGER)
    html = (
        await client.get("/communication/templates?template=appointment_reminder&channel=sms&preview=1")
    ).text
    segments = int(re.search(r'<dd class="segments">(\d+)</dd>', html).group(1))  # type: ignore[union-attr]
    shown = re.search(r"<dt>Estimated cost</dt><dd>([^<]+)</dd>", html)
    formats = Formats("Europe/Berlin", "en_GB", "EUR")
    price = DEFAULT_PRICE_BOOK.sms_segment_price("+49")
    assert shown is not None and shown.group(1) == formats.money_micros(segments * price, "USD"), shown
    assert price != DEFAULT_PRICE_BOOK.sms_per_segment


async def test_a_satisfaction_tile_moves_in_the_score_s_units(client: Client, seeded: Seeded) -> None:
    """The walk's CSAT tile read "4.1, +5.0% vs previous period" while its sentence said "up 0.2"."""
    from reports.charts.formatting import format_score_change
    from reports.periods import PeriodSpec
    from reports.query import MetricQuery, run_query

    await sign_in(client, seeded, VIEWER)
    database = Database.connect(seeded.settings.database_url)
    compared = None
    for period, days in (("last_7_days", 7), ("last_30_days", 30), ("last_90_days", 90)):
        found = await run_query(
            database,
            MetricQuery(("csat",), PeriodSpec.last_n_days(days), comparison="previous_period"),
            now=datetime.now(UTC),
            business_tz="Europe/Berlin",
            prefer_rollups=False,
        )
        (series,) = found.series_for("csat")
        if series.total is not None and series.comparison_total is not None:
            compared = period, series.total, series.comparison_total
            break
    await database.dispose()
    assert compared is not None, "the seed rates chats in two periods, or this test shows nothing"
    period, now_score, before = compared
    saved = await post_form(
        client, "/analytics/executive", "/analytics/executive/layout", {"metric": "csat", "period": period}
    )
    assert saved.status_code == 303
    html = (await client.get("/analytics/executive")).text
    moved = format_score_change(now_score, before, locale="en_GB")
    assert f"{moved} vs previous period" in html or "no change vs previous period" in html
    tile = html[html.index("Customer satisfaction") :][:400]
    assert "%" not in tile, tile


async def test_every_kpi_offered_for_the_executive_page_can_be_put_on_it(
    client: Client, seeded: Seeded
) -> None:
    from api.pages.analytics import EXECUTIVE_CHOICES
    from reports.metrics import REGISTRY

    await sign_in(client, seeded, MANAGER)
    saved = await post_form(
        client,
        "/analytics/executive",
        "/analytics/executive/layout",
        {"metric": list(EXECUTIVE_CHOICES), "period": "last_30_days"},
    )
    assert saved.status_code == 303
    response = await client.get("/analytics/executive")
    assert response.status_code == 200
    html = response.text
    for metric in ("opt_outs", "opt_out_rate", "messages_received", "sla_met_rate", "video_consultations"):
        assert escape(REGISTRY[metric].label) in html, metric
    main = re.sub(r"<[^>]+>", " ", html[html.index("<main") :])
    assert not re.search(r"\bNone\b|\bnan\b|Traceback", main)


async def test_a_viewer_never_reads_a_patient_s_join_link(client: Client, seeded: Seeded) -> None:
    """The consultation page hides the patient's link from viewers (opening it counts as the patient
    joining), but the message log showed it whole in the reminder's text."""
    token = "iNZ9aLK_q3Vb7xYz"
    database = Database.connect(seeded.settings.database_url)
    async with database.sessions() as session:
        customer = await session.scalar(select(Customer.id).limit(1))
        reminder = CustomerCommunication(
            customer_id=customer,
            channel="sms",
            provider="twilio",
            direction="outbound",
            source="notification",
            to_address="+4915100000003",
            body=f"Ihre Videosprechstunde beginnt um 15:00. Hier teilnehmen: https://clinic.example/v/{token}",
            status="delivered",
            created_at=datetime.now(UTC),
        )
        session.add(reminder)
        await session.commit()
        message_id = reminder.id
    await database.dispose()

    await sign_in(client, seeded, VIEWER)
    for path in (
        f"/communication/messages/{message_id}",
        "/communication/messages",
        "/communication/messages.csv",
    ):
        shown = (await client.get(path)).text
        assert token not in shown, path
    assert "/v/•••" in (await client.get(f"/communication/messages/{message_id}")).text
    await sign_in(client, seeded, AGENT)
    assert token in (await client.get(f"/communication/messages/{message_id}")).text


async def test_a_paused_campaign_promises_no_new_launch(client: Client, seeded: Seeded) -> None:
    """A paused campaign's page said "Launching now would send 16 of 18 recipients…" beside its Resume
    button; what it will still send is its progress, not another plan."""
    from storage.models import BulkMessaging

    database = Database.connect(seeded.settings.database_url)
    async with database.read_sessions() as session:
        draft = await session.scalar(select(BulkMessaging).where(BulkMessaging.status == "draft").limit(1))
    assert draft is not None, "the seed keeps a draft campaign"
    await sign_in(client, seeded, MANAGER)
    assert "Launching now would send" in (await client.get(f"/communication/campaigns/{draft.slug}")).text
    async with database.sessions() as session:
        await session.execute(
            update(BulkMessaging).where(BulkMessaging.id == draft.id).values(status="paused")
        )
        await session.commit()
    await database.dispose()
    page = (await client.get(f"/communication/campaigns/{draft.slug}")).text
    assert "would send" not in page and "Resume" in page
