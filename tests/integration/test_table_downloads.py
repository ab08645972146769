"""Every dashboard table downloads as CSV and XLSX with its figures as the page shows them (api/table_exports.py).

The page's own handler answers, so sign-in, roles and the page's filters apply; the figures are recounted
from the raw rows where the page computes them.
"""

# ruff: noqa: F811  (the pages' `client` and `seeded` fixtures are imported, then named as test arguments)
from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import openpyxl
from sqlalchemy import func, select

from domain.messages.words import provider_words
from reports.performance import FAILED_STATUSES
from storage.database import Database
from storage.models import CustomerCommunication, MessageTemplate
from tests.integration.test_pages import (  # noqa: F401  (fixtures)
    MANAGER,
    VIEWER,
    Client,
    Seeded,
    _insert_operations,
    client,
    seeded,
    sign_in,
)

#: Every page with tables, and the tables each must offer for download.
TABLES = {
    "/analytics/performance": ["jobs", "provider-errors"],
    "/analytics/reports": ["saved-reports"],
    "/analytics/executive": ["targets"],
    "/communication/templates": ["template-1", "notification-rules"],
    "/communication/sms": ["sms-segments"],
    "/communication/whatsapp": ["whatsapp-templates"],
    "/communication/chat?view=resolved": ["queue"],
    "/communication/templates/welcome/sms/en": ["versions"],
    "/communication/video": ["no-shows-reminder_channel"],
    "/analytics/financial": [],  # its attribution tables need the daily insight, which the seed does not run
    "/analytics/customer": [],  # its tables download as charts; listed for the one-id-per-element check
}


def _csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


async def test_provider_errors_download_as_shown_and_recounted(client: Client, seeded: Seeded) -> None:
    await sign_in(client, seeded, VIEWER)
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

    page = (await client.get("/analytics/performance")).text
    assert (
        'href="?table=provider-errors&amp;format=csv" download aria-label="Download the provider errors table as CSV">CSV</a>'
        in page
    )
    answer = await client.get("/analytics/performance?table=provider-errors&format=csv")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert 'filename="analytics-performance-provider-errors.csv"' in answer.headers["content-disposition"]
    assert answer.headers.get("x-request-id")  # the page's own headers are kept
    rows = _csv(answer.text)
    assert rows[0] == [
        "Provider",
        "Messages handed over or failed",
        "Failed",
        "Error rate",
        "Most common error code",
    ]
    body = rows[1 : rows.index([])]
    assert (
        "as shown on /analytics/performance" in rows[-1][0]
        and seeded.settings.business_timezone in rows[-1][0]
    )
    expected = {}
    for provider in {p for p, *_ in outbound}:
        mine = [
            status
            for p, status, sent, failed in outbound
            if p == provider and (sent or failed) and (sent or failed) >= now - timedelta(hours=24)
        ]
        if mine:
            expected[provider_words(provider)] = (len(mine), sum(1 for s in mine if s in FAILED_STATUSES))
    assert len(expected) >= 2
    assert {row[0]: (int(row[1].replace(",", "")), int(row[2].replace(",", ""))) for row in body} == expected
    assert all(re.fullmatch(r"[\d.]+ ?%", row[3]) for row in body)  # the rate as the page writes it

    book = openpyxl.load_workbook(
        io.BytesIO((await client.get("/analytics/performance?table=provider-errors&format=xlsx")).content)
    )
    sheet = book.active
    assert sheet is not None
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    assert cells[0] == rows[0]
    assert [str(c[0]) for c in cells[1 : 1 + len(body)]] == [row[0] for row in body]


async def test_every_page_offers_its_tables_and_each_downloads(client: Client, seeded: Seeded) -> None:
    await sign_in(client, seeded, MANAGER)
    for path, tables in TABLES.items():
        page = await client.get(path)
        assert page.status_code == 200, path
        joiner = "&" if "?" in path else "?"
        for table in tables:
            assert f'id="{table}"' in page.text, (path, table)
            assert f"table={table}&amp;format=xlsx" in page.text, (path, table)
            for ext in ("csv", "xlsx"):
                answer = await client.get(f"{path}{joiner}table={table}&format={ext}")
                assert answer.status_code == 200, (path, table, ext, answer.text[:200])
                assert answer.headers["content-disposition"].endswith(f'{table}.{ext}"')
            rows = _csv((await client.get(f"{path}{joiner}table={table}&format=csv")).text)
            assert rows[0] and all(rows[0]), (path, table, rows[:2])  # a heading per column
            assert not {"Actions", "Edit", "Export"} & set(rows[0])  # buttons and links are not figures
            assert all(len(row) == len(rows[0]) for row in rows[1 : rows.index([])]), (path, table)


async def test_template_versions_download_one_row_per_variant(client: Client, seeded: Seeded) -> None:
    await sign_in(client, seeded, MANAGER)
    database = Database.connect(seeded.settings.database_url)
    async with database.read_sessions() as session:
        first = await session.scalar(select(func.min(MessageTemplate.name)))
        variants = await session.scalar(
            select(func.count()).select_from(MessageTemplate).where(MessageTemplate.name == first)
        )
    await database.dispose()
    page = (await client.get("/communication/templates")).text
    caption = re.search(r'id="template-1">\s*<caption>([^<]+)</caption>', page)
    assert caption is not None and caption.group(1) == first
    rows = _csv((await client.get("/communication/templates?table=template-1&format=csv")).text)
    assert rows[0][:2] == ["Channel", "Locale"]
    assert len(rows[1 : rows.index([])]) == variants
    assert rows[-1][0].startswith(f"{first}, as shown on /communication/templates")


async def test_a_download_is_the_page_or_nothing(client: Client, seeded: Seeded) -> None:
    # Signed out: the sign-in redirect, never a file.
    signed_out = await client.get("/analytics/performance?table=jobs&format=csv", follow_redirects=False)
    assert signed_out.status_code in (302, 303) and "content-disposition" not in signed_out.headers
    await sign_in(client, seeded, VIEWER)
    missing = await client.get("/analytics/performance?table=nothing-here&format=csv")
    assert missing.status_code == 404 and "no table “nothing-here”" in missing.text
    # A format or id we do not make is not a download: the page itself answers.
    for query in ("table=jobs&format=pdf", "table=Jobs%3Cscript%3E&format=csv"):
        page = await client.get(f"/analytics/performance?{query}")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    # A viewer may not open the SLA policies page, so may not download its table either.
    refused = await client.get(
        "/communication/chat/sla-policies?table=sla-policies&format=csv", follow_redirects=False
    )
    assert "content-disposition" not in refused.headers


async def test_no_page_gives_two_elements_one_id(client: Client, seeded: Seeded) -> None:
    """A table is found by its id, so an id must be the page's only one."""
    await sign_in(client, seeded, MANAGER)
    charted = 0
    for path in TABLES:
        # Inline chart SVGs too: matplotlib names each one's groups figure_1, axes_1..., which the page
        # prefixes per chart.
        html = (await client.get(path)).text
        charted += html.count("<svg") > 1
        ids = re.findall(r'\sid="([^"]+)"', html)
        assert len(ids) == len(set(ids)), (path, sorted({i for i in ids if ids.count(i) > 1}))
    assert charted, "no page with two charts was checked"


async def test_channel_and_delivery_rate_charts_download_with_the_daily_figures(
    client: Client, seeded: Seeded
) -> None:
    await sign_in(client, seeded, VIEWER)
    page = (await client.get("/communication/sms")).text
    assert 'href="/communication/sms/chart.png" download>PNG</a>' in page
    chart = _csv((await client.get("/communication/sms/chart.csv")).text)
    assert chart[0] == ["Date", "Sent", "Delivered", "Failed"]
    days = chart[1 : chart.index([])]
    assert len(days) == 30
    daily = _csv((await client.get("/communication/analytics.csv")).text)
    sent_column = daily[0].index("Sent")
    expected = {row[0]: int(row[sent_column]) for row in daily[1 : daily.index([])] if row[1] == "sms"}
    shown = {row[0]: int(row[1]) for row in days if int(row[1])}
    assert shown == {day: sent for day, sent in expected.items() if sent} and shown
    for ext, kind in (("png", "image/png"), ("svg", "image/svg+xml"), ("xlsx", "spreadsheetml")):
        answer = await client.get(f"/communication/sms/chart.{ext}")
        assert answer.status_code == 200 and kind in answer.headers["content-type"], ext
    rates = _csv((await client.get("/communication/analytics/chart.csv")).text)
    assert rates[0][0] == "Date" and "SMS (%)" in rates[0]


async def test_a_page_drawn_again_after_a_refused_form_offers_no_links_to_the_form(
    client: Client, seeded: Seeded
) -> None:
    """A refused POST draws the page at the form's address; relative download links there would 405."""
    from tests.integration.test_pages import csrf_token

    await sign_in(client, seeded, MANAGER)
    token = csrf_token((await client.get("/analytics/reports/new")).text)
    saved = await client.post(
        "/analytics/reports",
        data={"name": "Downloads", "metric": "revenue", "period": "last_30_days", "_csrf_token": token},
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    page = await client.get(saved.headers["location"])
    refused = await client.post(
        saved.headers["location"].split("?")[0] + "/schedules",
        data={
            "_csrf_token": csrf_token(page.text),
            "frequency": "weekly",
            "weekday": "monday",
            "time": "25:00",
        },
    )
    assert refused.status_code in (400, 422), refused.status_code
    assert "table=" not in refused.text


async def test_a_conversations_customer_card_downloads_the_latest_orders_and_appointments(
    client: Client, seeded: Seeded
) -> None:
    from sqlalchemy import insert

    from storage.models import Appointment, ChatSession, Order
    from storage.queries.customer_card import RECENT

    await sign_in(client, seeded, MANAGER)
    database = Database.connect(seeded.settings.database_url)
    async with database.sessions() as session:
        chat_id, customer_id = (
            await session.execute(
                select(ChatSession.id, ChatSession.customer_id)
                .where(ChatSession.customer_id.in_(select(Order.customer_id)))
                .order_by(ChatSession.id)
                .limit(1)
            )
        ).one()
        # The seed may give this customer no appointment: book them two, like someone else's.
        table = Appointment.__table__
        booked = (await session.execute(select(table).order_by(table.c.id).limit(2))).mappings().all()
        for row in booked:
            values = {k: v for k, v in row.items() if k != "id"} | {"customer_id": customer_id}
            await session.execute(insert(table).values(values))
        await session.commit()
        latest = list(
            await session.scalars(
                select(Order.order_number)
                .where(Order.customer_id == customer_id)
                .order_by(Order.created_at.desc(), Order.id.desc())
                .limit(RECENT)
            )
        )
        appointments = await session.scalar(
            select(func.count()).select_from(Appointment).where(Appointment.customer_id == customer_id)
        )
    await database.dispose()
    path = f"/communication/chat/{chat_id}"
    page = (await client.get(path)).text
    assert (
        "table=customer-orders&amp;format=xlsx" in page
        and "table=customer-appointments&amp;format=csv" in page
    )
    rows = _csv((await client.get(f"{path}?table=customer-orders&format=csv")).text)
    assert rows[0] == ["Order", "Date", "Status", "Amount"]
    assert [row[0] for row in rows[1 : rows.index([])]] == latest
    visits = _csv((await client.get(f"{path}?table=customer-appointments&format=csv")).text)
    assert visits[0] == ["Service", "When", "Status", "Price"]
    assert len(visits[1 : visits.index([])]) == min(RECENT, appointments or 0) >= 2
