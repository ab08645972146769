"""Tables download as CSV and XLSX with the figures the rows hold: the message log (as filtered) and the
communication analytics table, recounted from the messages themselves."""

# ruff: noqa: F811  (the pages' `client` and `seeded` fixtures are imported, then named as test arguments)
from __future__ import annotations

import csv
import io
from collections import Counter
from zoneinfo import ZoneInfo

import openpyxl
from sqlalchemy import select

from storage.database import Database
from storage.models import BulkMessaging, CustomerCommunication
from tests.integration.test_pages import (  # noqa: F401  (fixtures)
    VIEWER,
    Client,
    Seeded,
    client,
    seeded,
    sign_in,
)


def _csv(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8").lstrip("\ufeff"))))


async def test_the_message_log_downloads_as_filtered_with_whole_texts(client: Client, seeded: Seeded) -> None:
    await sign_in(client, seeded, VIEWER)
    database = Database.connect(seeded.settings.database_url)
    async with database.read_sessions() as session:
        failed_sms = list(
            await session.scalars(
                select(CustomerCommunication)
                .where(CustomerCommunication.channel == "sms", CustomerCommunication.status == "failed")
                .order_by(CustomerCommunication.created_at.desc(), CustomerCommunication.id.desc())
            )
        )
    await database.dispose()
    page = (await client.get("/communication/messages?channel=sms&status=failed")).text
    if failed_sms:
        assert "/communication/messages.csv?channel=sms&amp;status=failed" in page
    else:  # the seed's last hours depend on the wall clock: some runs have no failed SMS
        assert "No messages match these filters." in page
    got = await client.get("/communication/messages.csv?channel=sms&status=failed")
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    assert 'filename="messages.csv"' in got.headers["content-disposition"]
    rows = _csv(got.content)
    heading, body = rows[0], rows[1 : rows.index([])]
    assert heading[1] == "Message" and heading[-1] == "Text"
    assert [int(r[1]) for r in body] == [m.id for m in failed_sms][:10_000]
    assert all(r[3] == "sms" and r[5] == "failed" for r in body)
    if failed_sms:
        assert body[0][-1] == failed_sms[0].body  # the whole text, not the page's snippet
    assert "with channel sms, status failed" in rows[-1][0]

    book = openpyxl.load_workbook(
        io.BytesIO((await client.get("/communication/messages.xlsx?channel=sms&status=failed")).content)
    )
    sheet = book.active
    assert sheet is not None
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0][1] == "Message" and len([v for v in values[1:] if v and v[1] is not None]) == len(body)


async def test_the_communication_analytics_table_is_recounted_from_the_messages(
    client: Client, seeded: Seeded
) -> None:
    await sign_in(client, seeded, VIEWER)
    rows = _csv((await client.get("/communication/analytics.csv")).content)
    heading, body = rows[0], rows[1 : rows.index([])]
    assert heading[:3] == [f"Day ({seeded.settings.business_timezone})", "Channel", "Sent"]
    assert "Last 30 days" in rows[-1][0]
    shown = {(r[0], r[1]): int(r[2]) for r in body}
    first_day = min(day for day, _ in shown)
    zone = ZoneInfo(seeded.settings.business_timezone)
    database = Database.connect(seeded.settings.database_url)
    async with database.read_sessions() as session:
        sent = list(
            (
                await session.execute(
                    select(CustomerCommunication.channel, CustomerCommunication.sent_at).where(
                        CustomerCommunication.direction == "outbound",
                        CustomerCommunication.sent_at.is_not(None),
                    )
                )
            ).all()
        )
    await database.dispose()
    recounted = Counter(
        (at.astimezone(zone).date().isoformat(), channel)
        for channel, at in sent
        if first_day <= at.astimezone(zone).date().isoformat() <= max(day for day, _ in shown)
    )
    assert shown and {k: v for k, v in shown.items() if v} == dict(recounted)
    book = openpyxl.load_workbook(io.BytesIO((await client.get("/communication/analytics.xlsx")).content))
    assert book.active is not None and book.active.cell(1, 2).value == "Channel"


async def test_channel_failures_and_the_campaign_list_download_as_the_rows_say(
    client: Client, seeded: Seeded
) -> None:
    await sign_in(client, seeded, VIEWER)
    database = Database.connect(seeded.settings.database_url)
    async with database.read_sessions() as session:
        failed = set(
            await session.scalars(
                select(CustomerCommunication.id).where(
                    CustomerCommunication.channel == "sms",
                    CustomerCommunication.status.in_(("failed", "undelivered", "dead")),
                )
            )
        )
        # Handed to providers: recounted from the messages a provider took (they have sent_at), whatever
        # their status became; the page reads the kept daily figures instead.
        taken = Counter(
            await session.scalars(
                select(CustomerCommunication.campaign_id).where(
                    CustomerCommunication.campaign_id.is_not(None), CustomerCommunication.sent_at.is_not(None)
                )
            )
        )
        campaigns = {
            slug: (planned, excluded, taken[campaign_id])
            for slug, planned, excluded, campaign_id in (
                await session.execute(
                    select(
                        BulkMessaging.slug,
                        BulkMessaging.planned_count,
                        BulkMessaging.excluded_count,
                        BulkMessaging.id,
                    )
                )
            ).all()
        }
    await database.dispose()
    assert "/communication/sms/failures.csv" in (await client.get("/communication/sms")).text
    rows = _csv((await client.get("/communication/sms/failures.csv")).content)
    body = rows[1 : rows.index([])]
    assert rows[0][1] == "Message" and {int(r[1]) for r in body} == failed
    assert f"The latest {len(failed):,} SMS messages" in rows[-1][0]
    xlsx = await client.get("/communication/whatsapp/failures.xlsx")
    assert (
        xlsx.status_code == 200 and 'filename="whatsapp-failures.xlsx"' in xlsx.headers["content-disposition"]
    )

    listed = _csv((await client.get("/communication/campaigns.csv")).content)
    shown = {r[1]: (int(r[5]), int(r[6]), int(r[7])) for r in listed[1 : listed.index([])]}
    assert campaigns and shown == campaigns
    assert any(handed for _planned, _excluded, handed in campaigns.values())
    assert (await client.get("/communication/fax/failures.csv")).status_code == 404
