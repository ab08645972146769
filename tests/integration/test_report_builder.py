"""The report builder, exports, schedules and the delivery log's "send again", over HTTP on each engine.

Every figure in an export is recounted from the raw orders; every refusal is checked to have saved nothing.
"""

# ruff: noqa: F811  (the pages' `client` and `seeded` fixtures are imported, then named as test arguments)
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from sqlalchemy import func, select

from reports.answer import standing_alone, value_label
from storage.analytics.facts import COUNTED_ORDER_STATUSES, NET_ORDER_AMOUNT
from storage.database import Database
from storage.models import (
    AuditLog,
    CustomReport,
    Location,
    Order,
    ReportDelivery,
    ReportSchedule,
    StaffUser,
)
from storage.unit_of_work import SqlUnitOfWork
from tests.integration.test_pages import (  # noqa: F401  (fixtures)
    AGENT,
    MANAGER,
    VIEWER,
    Client,
    Seeded,
    client,
    csrf_token,
    post_form,
    seeded,
    sign_in,
)
from tests.notices import said_after

BUILDER = "/analytics/reports/new"
CLINIC_REVENUE = {
    "name": "Revenue by clinic, top 2",
    "metric": "revenue",
    "period": "last_30_days",
    "dimension": "location",
    "kind": "table",
    "sort": "largest",
    "top": "2",
    "shared": "on",
}


async def _database(seeded: Seeded) -> Database:
    return Database.connect(seeded.settings.database_url)


async def _reports(seeded: Seeded) -> list[str]:
    database = await _database(seeded)
    async with database.read_sessions() as session:
        names = list(await session.scalars(select(CustomReport.name).order_by(CustomReport.name)))
    await database.dispose()
    return names


async def _revenue_by_clinic(seeded: Seeded, tz: str) -> dict[str, float]:
    """The last 30 whole local days' counted order revenue per clinic name, straight from the orders, each
    clinic named as reports name it: without the business's first word, which every clinic's name has
    ("Northwind Berlin Mitte" is "Berlin Mitte")."""
    zone = ZoneInfo(tz)
    today = datetime.now(zone).date()
    start = datetime.combine(today - timedelta(days=30), datetime.min.time(), zone).astimezone(UTC)
    end = datetime.combine(today, datetime.min.time(), zone).astimezone(UTC)
    database = await _database(seeded)
    async with database.read_sessions() as session:
        rows = (
            await session.execute(
                select(Location.name, func.sum(NET_ORDER_AMOUNT))
                .join(Location, Location.id == Order.location_id)
                .where(
                    Order.created_at >= start,
                    Order.created_at < end,
                    Order.status.in_(COUNTED_ORDER_STATUSES),
                    Order.currency == seeded.settings.business_currency,
                )
                .group_by(Location.name)
            )
        ).all()
    await database.dispose()
    word = seeded.settings.business_name.split()[0]
    assert all(name.startswith(f"{word} ") for name, _ in rows)
    return {name.removeprefix(f"{word} "): round(float(total), 2) for name, total in rows}


async def test_a_report_is_built_previewed_saved_and_exported_with_recounted_figures(
    client: Client, seeded: Seeded
) -> None:
    await sign_in(client, seeded, MANAGER)
    builder = await client.get(BUILDER)
    assert builder.status_code == 200
    assert "script-src 'self'" in builder.headers["content-security-policy"]
    for label in ("Find a metric", "Metric", "Period", "Over time", "Split by", "Chart", "Show only the top"):
        assert f">{label}</label>" in builder.text

    token = csrf_token(builder.text)
    preview = await client.post("/analytics/reports/preview", data={**CLINIC_REVENUE, "_csrf_token": token})
    assert preview.status_code == 200 and "<svg" in preview.text and "Revenue" in preview.text
    assert await _reports(seeded) == sorted(await _reports(seeded))  # nothing saved by a preview
    before = await _reports(seeded)

    saved = await client.post(
        BUILDER.replace("/new", ""), data={**CLINIC_REVENUE, "_csrf_token": token}, follow_redirects=False
    )
    assert saved.status_code == 303, saved.text
    slug = saved.headers["location"].split("/")[-1].split("?")[0]
    assert slug == "revenue-by-clinic-top-2" and len(await _reports(seeded)) == len(before) + 1

    shown = await client.get(f"/analytics/reports/{slug}")
    assert shown.status_code == 200 and "<svg" in shown.text
    for extension in ("CSV", "XLSX", "PNG", "SVG"):
        assert f'.{extension.lower()}" download>{extension}</a>' in shown.text

    expected = await _revenue_by_clinic(seeded, seeded.settings.business_timezone)
    top_two = sorted(expected.values(), reverse=True)[:2]
    exported = await client.get(f"/analytics/reports/{slug}.csv")
    rows = list(csv.reader(io.StringIO(exported.text.lstrip("\ufeff"))))
    assert rows[0] == ["Location", f"Revenue ({seeded.settings.business_currency})"]
    figures = [(row[0], float(row[1])) for row in rows[1:3]]
    assert [value for _, value in figures] == top_two
    assert {code for code, _ in figures} <= set(expected)
    assert rows[3] == [] and seeded.settings.business_timezone in rows[4][0]

    book = openpyxl.load_workbook(io.BytesIO((await client.get(f"/analytics/reports/{slug}.xlsx")).content))
    sheet = book.active
    assert sheet is not None
    cells = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert cells[0] == rows[0] and [c[1] for c in cells[1:3]] == top_two

    png = await client.get(f"/analytics/reports/{slug}.png")
    svg = await client.get(f"/analytics/reports/{slug}.svg")
    assert png.content.startswith(b"\x89PNG") and png.headers["content-type"] == "image/png"
    assert b"<svg" in svg.content and svg.headers["content-disposition"].endswith(f'{slug}.svg"')


async def test_each_mistake_is_named_beside_its_field_and_nothing_is_saved(
    client: Client, seeded: Seeded
) -> None:
    await sign_in(client, seeded, MANAGER)
    before = await _reports(seeded)
    cases = [
        ({"metric": "revenue; DROP TABLE orders"}, "metric", "Pick a metric from the list."),
        ({"dimension": "staff"}, "dimension", "cannot be split by staff"),
        (
            {"period": "between", "start_date": "1926-01-01", "end_date": "2026-01-01"},
            "end_date",
            "at most 3,660",
        ),
        (
            {"period": "last_365_days", "grain": "hour", "dimension": "", "top": "", "kind": "auto"},
            "grain",
            "at most 5,000 points",
        ),
        (
            {"filter_0_dimension": "location", "filter_0_values": "Atlantis"},
            "filter_0_values",
            "“Atlantis” is not",
        ),
        (
            {"dimension": "", "top": "", "kind": "stacked_bar"},
            "kind",
            "stacked bars need a split and the figures over time",
        ),
        ({"kind": "number"}, "kind", "a single number cannot be split"),
        ({"top": "500"}, "top", "from 1 to 50"),
        ({"name": ""}, "name", "Give the report a name"),
    ]
    for change, field, words in cases:
        answer = await post_form(client, BUILDER, "/analytics/reports", {**CLINIC_REVENUE, **change})
        assert answer.status_code == 422, (change, answer.status_code)
        assert f'id="{field}-error"' in answer.text, (change, field)
        assert words.lower() in answer.text.lower().replace("&#34;", '"'), (change, words)
    assert await _reports(seeded) == before

    no_token = await client.post("/analytics/reports", data=CLINIC_REVENUE, follow_redirects=False)
    assert no_token.status_code == 403 and await _reports(seeded) == before

    await sign_in(client, seeded, VIEWER)
    assert (await client.get(BUILDER)).status_code == 403
    refused = await client.post("/analytics/reports/preview", data=CLINIC_REVENUE)
    assert refused.status_code == 403 and await _reports(seeded) == before


async def test_edit_duplicate_and_delete_keep_the_slug_own_the_copy_and_take_schedules_along(
    client: Client, seeded: Seeded
) -> None:
    await sign_in(client, seeded, AGENT)
    saved = await post_form(client, BUILDER, "/analytics/reports", CLINIC_REVENUE)
    slug = saved.headers["location"].split("/")[-1].split("?")[0]
    edit_page = await client.get(f"/analytics/reports/{slug}/edit")
    assert 'value="Revenue by clinic, top 2"' in edit_page.text and 'value="2"' in edit_page.text
    changed = await post_form(
        client,
        f"/analytics/reports/{slug}/edit",
        f"/analytics/reports/{slug}/edit",
        {**CLINIC_REVENUE, "name": "Clinic revenue", "kind": "bar", "top": ""},
    )
    assert changed.status_code == 303 and said_after(changed) == (
        f"/analytics/reports/{slug}",
        {"changed": "1"},
    )

    # Someone else's private report cannot be edited or deleted, only duplicated into one's own.
    await sign_in(client, seeded, MANAGER)
    database = await _database(seeded)
    async with database.read_sessions() as session:
        report = await session.scalar(select(CustomReport).where(CustomReport.slug == slug))
    assert (
        report is not None and report.name == "Clinic revenue" and report.definition["chart"]["kind"] == "bar"
    )
    copy = await post_form(client, f"/analytics/reports/{slug}", f"/analytics/reports/{slug}/duplicate", {})
    assert (
        copy.status_code == 303
        and copy.headers["location"] == "/analytics/reports/copy-of-clinic-revenue/edit"
    )
    async with database.read_sessions() as session:
        duplicate = await session.scalar(
            select(CustomReport).where(CustomReport.slug == "copy-of-clinic-revenue")
        )
    assert duplicate is not None and duplicate.owner_id == seeded.staff[MANAGER] and not duplicate.shared

    # The manager schedules the shared report, then the owner deletes it: its schedule goes with it.
    scheduled = await post_form(
        client,
        f"/analytics/reports/{slug}",
        f"/analytics/reports/{slug}/schedules",
        {
            "frequency": "weekly",
            "weekday": "monday",
            "day": "1",
            "time": "08:00",
            "timezone": "Europe/Berlin",
            "to": "#management",
        },
    )
    assert scheduled.status_code == 303
    # The agent owns the report, but a manager's schedule delivers it: only a manager deletes it now.
    await sign_in(client, seeded, AGENT)
    refused = await post_form(client, f"/analytics/reports/{slug}", f"/analytics/reports/{slug}/delete", {})
    assert refused.status_code == 403 and "only a manager can delete it" in refused.text
    await sign_in(client, seeded, MANAGER)
    deleted = await post_form(client, f"/analytics/reports/{slug}", f"/analytics/reports/{slug}/delete", {})
    assert deleted.status_code == 303 and said_after(deleted) == ("/analytics/reports", {"deleted": slug})
    assert "Deleted the report" in (await client.get(deleted.headers["location"])).text
    assert "Deleted the report" not in (await client.get("/analytics/reports?deleted=<b>you%20won</b>")).text
    async with database.read_sessions() as session:
        left = await session.scalar(
            select(func.count()).select_from(ReportSchedule).where(ReportSchedule.report_id == report.id)
        )
        actions = list(
            await session.scalars(
                select(AuditLog.action).where(AuditLog.target == f"report:{slug}").order_by(AuditLog.id)
            )
        )
    await database.dispose()
    assert left == 0 and actions == ["report.save", "report.edit", "report.schedule", "report.delete"]


async def test_a_schedule_is_said_in_words_refused_when_impossible_and_a_failed_delivery_goes_again(
    client: Client, seeded: Seeded
) -> None:
    await sign_in(client, seeded, MANAGER)
    saved = await post_form(client, BUILDER, "/analytics/reports", CLINIC_REVENUE)
    slug = saved.headers["location"].split("/")[-1].split("?")[0]
    page = f"/analytics/reports/{slug}"
    good = {
        "frequency": "weekly",
        "weekday": "monday",
        "day": "1",
        "time": "08:00",
        "timezone": "Europe/Berlin",
        "to": "board@northwind.example",
    }
    for change, field, words in [
        ({"timezone": "Mars/Olympus_Mons"}, "timezone", "unknown timezone"),
        ({"frequency": "monthly", "day": "30"}, "time", "day 30 is not in every month"),
        ({"time": "25:00"}, "time", "not a time of day"),
        ({"to": "somewhere"}, "to", "cannot deliver to"),
        ({"only_dimension": "location", "only_values": "Atlantis"}, "only", "is not a location we have"),
        ({"only_dimension": "staff", "only_values": "Dr Who"}, "only", "is not a staff we have"),
        # Fixed words, not rows of the database: checked too.
        (
            {"only_dimension": "source_channel", "only_values": "pigeon"},
            "only",
            "is not a source channel we have",
        ),
    ]:
        refused = await post_form(client, page, f"{page}/schedules", {**good, **change})
        assert refused.status_code == 422 and f'id="schedule-{field}-error"' in refused.text, change
        assert words in refused.text.replace("&#39;", "'").lower(), (change, words)
    database = await _database(seeded)
    async with database.read_sessions() as session:
        assert (
            await session.scalar(
                select(func.count())
                .select_from(ReportSchedule)
                .join(CustomReport, CustomReport.id == ReportSchedule.report_id)
                .where(CustomReport.slug == slug)
            )
            == 0
        )

    assert (await post_form(client, page, f"{page}/schedules", good)).status_code == 303
    shown = (await client.get(page)).text
    assert "every Monday at 08:00 (Europe/Berlin)" in shown and "email board@northwind.example" in shown
    listed = (await client.get("/analytics/reports")).text  # the list says it in words too, not as cron
    assert "every Monday at 08:00 (Europe/Berlin) → email board@northwind.example" in listed
    # When it next goes out, from the time the scheduler keeps: a Monday, 08:00 in Berlin.
    async with database.read_sessions() as session:
        due = await session.scalar(
            select(ReportSchedule.next_due_at)
            .join(CustomReport, CustomReport.id == ReportSchedule.report_id)
            .where(CustomReport.slug == slug)
        )
    assert due is not None
    berlin = due.astimezone(ZoneInfo("Europe/Berlin"))
    assert (berlin.weekday(), berlin.hour) == (0, 8)
    said = f"{berlin.day} {berlin:%b} {berlin.year}, 08:00"
    assert f"→ email board@northwind.example, next {said}" in listed, listed
    assert said in shown
    async with database.read_sessions() as session:
        clinic_code, clinic_name = (
            await session.execute(select(Location.code, Location.name).limit(1))
        ).one()
    only = {**good, "to": "mitte@northwind.example", "only_dimension": "location", "only_values": clinic_name}
    assert (await post_form(client, page, f"{page}/schedules", only)).status_code == 303
    assert f"email mitte@northwind.example, only location {clinic_code}" in (await client.get(page)).text
    listed = (await client.get("/analytics/reports")).text  # the list says it too
    assert f"→ email mitte@northwind.example, only location {clinic_code}, next " in listed
    again = await post_form(client, page, f"{page}/schedules", {**only, "only_values": clinic_code.lower()})
    assert again.status_code == 422 and "This report already goes to mitte@northwind.example" in again.text
    # The name as the app shows it, without the business's first word ("Berlin Mitte"), is the same clinic.
    shown_name = clinic_name.split(" ", 1)[1]
    named = await post_form(client, page, f"{page}/schedules", {**only, "only_values": shown_name})
    assert named.status_code == 422 and "This report already goes to mitte@northwind.example" in named.text
    async with database.read_sessions() as session:
        narrowed = await session.scalar(
            select(ReportSchedule.filters).where(ReportSchedule.destination == "mitte@northwind.example")
        )
    assert narrowed == [{"dimension": "location", "operator": "in", "value": [clinic_code]}]

    async with database.read_sessions() as session:
        schedule_id = await session.scalar(
            select(ReportSchedule.id)
            .where(ReportSchedule.destination == "board@northwind.example")
            .join(CustomReport, CustomReport.id == ReportSchedule.report_id)
            .where(CustomReport.slug == slug)
        )
    async with SqlUnitOfWork(database) as uow:
        uow.session.add(
            ReportDelivery(
                schedule_id=schedule_id,
                due_at=datetime.now(UTC) - timedelta(hours=1),
                destination="board@northwind.example",
                status="failed",
                claimed_by="w1",
                attempts=4,
                error="SMTP 550 mailbox unavailable",
            )
        )
        await uow.commit()
    listed = (await client.get(page)).text
    assert "SMTP 550 mailbox unavailable" in listed and "Send again" in listed
    async with database.read_sessions() as session:
        delivery_id = await session.scalar(
            select(ReportDelivery.id).where(ReportDelivery.schedule_id == schedule_id)
        )
    again = await post_form(client, page, f"{page}/deliveries/{delivery_id}/retry", {})
    assert again.status_code == 303
    twice = await post_form(client, page, f"{page}/deliveries/{delivery_id}/retry", {})
    assert twice.status_code == 404  # only a failed delivery goes again, and only once
    async with database.read_sessions() as session:
        status, attempts = (
            await session.execute(
                select(ReportDelivery.status, ReportDelivery.attempts).where(ReportDelivery.id == delivery_id)
            )
        ).one()
    assert (status, attempts) == ("retrying", 0)

    await sign_in(client, seeded, AGENT)  # agents build reports; managers schedule them
    assert (await post_form(client, page, f"{page}/schedules", good)).status_code == 403
    await database.dispose()


async def test_every_dashboard_chart_downloads_as_shown_and_bad_names_are_refused(
    client: Client, seeded: Seeded
) -> None:
    import re

    await sign_in(client, seeded, VIEWER)
    for page in (
        "/analytics/executive",
        "/analytics/financial",
        "/analytics/operational",
        "/analytics/customer",
    ):
        html = (await client.get(page)).text
        links = re.findall(r'href="(/analytics/charts/[^"]+)" download>(CSV|XLSX|PNG|SVG)<', html)
        assert {kind for _, kind in links} == {"CSV", "XLSX", "PNG", "SVG"}, page
        for link, kind in links:
            answer = await client.get(link.replace("&amp;", "&"))
            assert answer.status_code == 200, (page, link)
            if kind == "CSV":
                heading = answer.text.lstrip("\ufeff").splitlines()[0]
                assert heading.startswith(("Date,", "Source channel,")), (link, heading)
            if kind == "PNG":
                assert answer.content.startswith(b"\x89PNG")
    revenue = await client.get("/analytics/charts/revenue.csv?period=last_30_days&grain=day")
    rows = list(csv.reader(io.StringIO(revenue.text.lstrip("\ufeff"))))
    assert (
        rows[0] == ["Date", f"Revenue ({seeded.settings.business_currency})"]
        and len(rows[1 : rows.index([])]) == 30
    )
    for bad in (
        "/analytics/charts/profit;drop.csv",
        "/analytics/charts/revenue.exe",
        "/analytics/charts/revenue.csv?dimension=staff",
        "/analytics/charts/revenue.csv?grain=minute",
        "/analytics/insights/secrets.csv",
    ):
        assert (await client.get(bad)).status_code == 404, bad


async def test_names_that_would_clash_with_pages_or_each_other_get_their_own_slugs(
    client: Client, seeded: Seeded
) -> None:
    await sign_in(client, seeded, MANAGER)
    named_new = await post_form(client, BUILDER, "/analytics/reports", {**CLINIC_REVENUE, "name": "New"})
    assert said_after(named_new) == ("/analytics/reports/new-report", {"saved": "1"})
    long_name = "Revenue per clinic and per channel over the quarter compared with the one before it"
    saved = await post_form(client, BUILDER, "/analytics/reports", {**CLINIC_REVENUE, "name": long_name})
    slug = saved.headers["location"].split("/")[-1].split("?")[0]
    copies = []
    for _ in range(3):  # each copy of a name longer than a slug still gets a slug of its own, at once
        copy = await post_form(
            client, f"/analytics/reports/{slug}", f"/analytics/reports/{slug}/duplicate", {}
        )
        assert copy.status_code == 303, copy.text[-500:]
        copies.append(copy.headers["location"])
    assert len(set(copies)) == 3 and all(len(c.split("/")[3]) <= 64 for c in copies)
    book = openpyxl.load_workbook(io.BytesIO((await client.get(f"/analytics/reports/{slug}.xlsx")).content))
    sheet = book.active
    assert sheet is not None and all(c.data_type != "f" for row in sheet.iter_rows() for c in row)
    bad = await client.get("/communication/templates/welcome%0A/sms/en")
    assert bad.status_code == 404


async def test_a_report_split_two_ways_stacks_and_exports_each_pair_recounted(
    client: Client, seeded: Seeded
) -> None:
    """Revenue by clinic, stacked by source channel: built in the form, saved, and exported; every cell equals
    the orders' own sum for that clinic and channel."""
    await sign_in(client, seeded, MANAGER)
    token = csrf_token((await client.get(BUILDER)).text)
    form = {
        **CLINIC_REVENUE,
        "name": "Clinics by channel",
        "dimension_2": "source_channel",
        "kind": "stacked_bar",
        "top": "",
        "_csrf_token": token,
    }
    preview = await client.post("/analytics/reports/preview", data=form)
    assert preview.status_code == 200 and "<svg" in preview.text
    assert "by location, stacked by source channel" in preview.text

    same = await client.post("/analytics/reports/preview", data={**form, "dimension_2": "location"})
    assert "same as the first" in same.text

    saved = await client.post(BUILDER.replace("/new", ""), data=form, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    slug = saved.headers["location"].split("/")[-1].split("?")[0]
    edit = await client.get(f"/analytics/reports/{slug}/edit")
    assert 'value="source_channel" selected' in edit.text

    zone = ZoneInfo(seeded.settings.business_timezone)
    today = datetime.now(zone).date()
    start = datetime.combine(today - timedelta(days=30), datetime.min.time(), zone).astimezone(UTC)
    end = datetime.combine(today, datetime.min.time(), zone).astimezone(UTC)
    database = await _database(seeded)
    async with database.read_sessions() as session:
        found = (
            await session.execute(
                select(Location.name, Order.source_channel, func.sum(NET_ORDER_AMOUNT))
                .join(Location, Location.id == Order.location_id)
                .where(
                    Order.created_at >= start,
                    Order.created_at < end,
                    Order.status.in_(COUNTED_ORDER_STATUSES),
                    Order.currency == seeded.settings.business_currency,
                )
                .group_by(Location.name, Order.source_channel)
            )
        ).all()
    await database.dispose()
    word = f"{seeded.settings.business_name.split()[0]} "  # clinics are named without the business's word
    expected = {
        (name.removeprefix(word), standing_alone(value_label(channel))): round(float(total), 2)
        for name, channel, total in found
    }

    exported = await client.get(f"/analytics/reports/{slug}.csv")
    rows = list(csv.reader(io.StringIO(exported.text.lstrip("\ufeff"))))
    header = rows[0]
    assert header[0] == "Location"
    channels = [name.removesuffix(f" ({seeded.settings.business_currency})") for name in header[1:]]
    cells = {}
    for row in rows[1:]:
        if not row:
            break
        for channel, value in zip(channels, row[1:], strict=True):
            if float(value or 0):
                cells[(row[0], channel)] = float(value)
    assert cells == expected


async def test_a_range_keeps_the_clinics_whose_revenue_lies_in_it(client: Client, seeded: Seeded) -> None:
    await sign_in(client, seeded, MANAGER)
    token = csrf_token((await client.get(BUILDER)).text)
    expected = await _revenue_by_clinic(seeded, seeded.settings.business_timezone)
    figures = sorted(expected.values())
    assert len(figures) >= 3, "the seed must give several clinics revenue"
    low, high = figures[1], figures[-1]  # the lowest clinic is left out; both bounds are kept
    form = {
        **CLINIC_REVENUE,
        "name": "Clinics in a range",
        "top": "",
        # A thousandth of a cent outside each figure, so rounding cannot decide what is kept.
        "value_from": f"{low - 0.00001:.5f}",
        "value_to": f"{high + 0.00001:.5f}",
        "_csrf_token": token,
    }
    preview = await client.post("/analytics/reports/preview", data=form)
    assert preview.status_code == 200 and "only those from" in preview.text
    refused = await client.post("/analytics/reports/preview", data={**form, "value_from": "plenty"})
    assert "Give a number" in refused.text
    saved = await client.post(BUILDER.replace("/new", ""), data=form, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    slug = saved.headers["location"].split("/")[-1].split("?")[0]
    rows = list(
        csv.reader(io.StringIO((await client.get(f"/analytics/reports/{slug}.csv")).text.lstrip("\ufeff")))
    )
    shown = {row[0]: float(row[1]) for row in rows[1 : rows.index([])]}
    assert shown == {code: value for code, value in expected.items() if low <= value <= high}
    edit = (await client.get(f"/analytics/reports/{slug}/edit")).text
    assert f'name="value_from" value="{round(low - 0.00001, 5)}"' in edit


async def test_a_slack_channel_is_told_when_a_schedule_to_it_is_saved_and_one_the_bot_cannot_reach_is_refused(
    client: Client, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reports import schedule_check
    from reports.destinations import ChannelCheck

    told: list[tuple[str, str]] = []

    async def slack(token: str, base_url: str, channel: str, text: str) -> ChannelCheck:
        told.append((channel, text))
        if channel == "#management":
            return ChannelCheck(refused="Slack has no channel #management that the bot can see")
        if channel == "#down":
            return ChannelCheck(unchecked="Slack did not answer")
        return ChannelCheck()

    monkeypatch.setattr(schedule_check, "announce_in_slack", slack)
    await sign_in(client, seeded, MANAGER)
    saved = await post_form(client, BUILDER, "/analytics/reports", CLINIC_REVENUE)
    slug = saved.headers["location"].split("/")[-1].split("?")[0]
    page = f"/analytics/reports/{slug}"
    form = {
        "frequency": "weekly",
        "weekday": "monday",
        "day": "1",
        "time": "08:00",
        "timezone": "Europe/Berlin",
    }

    refused = await post_form(client, page, f"{page}/schedules", {**form, "to": "#management"})
    assert refused.status_code == 422 and 'id="schedule-to-error"' in refused.text
    assert "Slack has no channel #management that the bot can see. Nothing was scheduled." in refused.text
    announced = await post_form(client, page, f"{page}/schedules", {**form, "to": "#ops"})
    assert announced.status_code == 303
    assert "said so in the Slack channel" in (await client.get(announced.headers["location"])).text
    unchecked = await post_form(client, page, f"{page}/schedules", {**form, "to": "#down"})
    assert "the channel is not checked yet" in (await client.get(unchecked.headers["location"])).text
    emailed = await post_form(client, page, f"{page}/schedules", {**form, "to": "board@northwind.example"})
    assert emailed.status_code == 303
    # The same schedule again (a double click, a colleague): refused before the channel is told twice.
    again = await post_form(client, page, f"{page}/schedules", {**form, "to": "#ops"})
    assert again.status_code == 422 and 'id="schedule-time-error"' in again.text
    assert (
        "This report already goes to #ops every Monday at 08:00 (Europe/Berlin), as schedule #" in again.text
    )
    assert "nothing new was scheduled." in again.text

    assert [channel for channel, _ in told] == ["#management", "#ops", "#down"]  # email is not tried
    [(_, text)] = [t for t in told if t[0] == "#ops"]
    assert text.startswith(
        "Markus Brandt scheduled the report “Revenue by clinic, top 2” here, every Monday at 08:00 "
        "(Europe/Berlin); the first comes "
    ), text
    database = await _database(seeded)
    async with database.read_sessions() as session:
        kept = list(
            await session.scalars(
                select(ReportSchedule.destination)
                .join(CustomReport, CustomReport.id == ReportSchedule.report_id)
                .where(CustomReport.slug == slug)
                .order_by(ReportSchedule.id)
            )
        )
        withdrawn = list(
            await session.scalars(
                select(AuditLog.detail).where(
                    AuditLog.action == "report.unschedule", AuditLog.target.like("report_schedule:%")
                )
            )
        )
    await database.dispose()
    assert kept == ["#ops", "#down", "board@northwind.example"]
    # The refused one was stored first (under the report's lock, so a double click is one announcement) and
    # taken back, with Slack's reason in the audit trail.
    assert [d["reason"] for d in withdrawn] == ["Slack has no channel #management that the bot can see"]


async def test_two_saves_of_one_schedule_at_once_make_one_schedule_and_one_announcement(
    client: Client, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two presses of Save at the same instant: the second waits on the report (PostgreSQL's row lock,
    SQLite's BEGIN IMMEDIATE) and finds the first's schedule, so the channel is told once."""
    import asyncio

    from domain.report_schedule import ScheduleRequest
    from reports import schedule_check
    from reports.destinations import ChannelCheck
    from reports.library import find_report
    from reports.schedules import AlreadyScheduled
    from storage.schedules import ReportSchedulingUnitOfWork

    told: list[str] = []

    async def slow_slack(token: str, base_url: str, channel: str, text: str) -> ChannelCheck:
        told.append(channel)
        await asyncio.sleep(0.2)  # Slack takes its time; the other save must not announce meanwhile
        return ChannelCheck()

    monkeypatch.setattr(schedule_check, "announce_in_slack", slow_slack)
    await sign_in(client, seeded, MANAGER)
    saved = await post_form(client, BUILDER, "/analytics/reports", CLINIC_REVENUE)
    slug = saved.headers["location"].split("/")[-1].split("?")[0]
    database = await _database(seeded)
    try:
        async with database.read_sessions() as session:
            staff_id = int(await session.scalar(select(StaffUser.id).where(StaffUser.email == MANAGER)) or 0)
        report = await find_report(database, staff_id, slug)
        assert report is not None

        async def save(cron: str) -> object:
            try:
                return await schedule_check.schedule_and_announce(
                    lambda: ReportSchedulingUnitOfWork(database),
                    report,
                    ScheduleRequest(cron, "Europe/Berlin", "slack", "#ops"),
                    owner_id=staff_id,
                    owner_name="Markus Brandt",
                    actor=MANAGER,
                    via="web",
                    now=datetime.now(UTC),
                    slack_token="xoxb-test",
                    slack_base_url="http://127.0.0.1:9",
                )
            except AlreadyScheduled as error:
                return error

        # The same Monday said two ways, as two forms or a form and a bot might.
        outcomes = await asyncio.gather(save("0 8 * * 1"), save("0 8 * * mon"))
        async with database.read_sessions() as session:
            kept = list(
                await session.scalars(select(ReportSchedule.id).where(ReportSchedule.report_id == report.id))
            )
    finally:
        await database.dispose()
    refused = [o for o in outcomes if isinstance(o, AlreadyScheduled)]
    assert len(refused) == 1 and told == ["#ops"] and kept == [refused[0].schedule_id]


async def test_an_edit_that_would_stop_a_schedule_for_some_values_only_is_refused(
    client: Client, seeded: Seeded
) -> None:
    """Changing "revenue by clinic" into "messages sent by channel" saved, and the schedule sending it only
    for Berlin failed at every due time after."""
    await sign_in(client, seeded, MANAGER)
    saved = await post_form(client, BUILDER, "/analytics/reports", CLINIC_REVENUE)
    slug = saved.headers["location"].split("/")[-1].split("?")[0]
    page, edit = f"/analytics/reports/{slug}", f"/analytics/reports/{slug}/edit"
    database = await _database(seeded)
    async with database.read_sessions() as session:
        code = await session.scalar(select(Location.code).order_by(Location.id).limit(1))
    schedule = {
        "frequency": "daily",
        "weekday": "monday",
        "day": "1",
        "time": "08:00",
        "timezone": "Europe/Berlin",
        "to": "finance@northwind.example",
        "only_dimension": "location",
        "only_values": str(code),
    }
    assert (await post_form(client, page, f"{page}/schedules", schedule)).status_code == 303
    messages = {**CLINIC_REVENUE, "metric": "messages_sent", "dimension": "channel", "top": ""}
    refused = await post_form(client, edit, edit, messages)
    assert refused.status_code == 422, refused.text
    assert (
        "This change would stop 1 schedule of this report that sends it for some values only: schedule #"
        in (refused.text)
    )
    assert f"to finance@northwind.example (only location {code})" in refused.text
    assert "Nothing was changed." in refused.text
    async with database.read_sessions() as session:
        kept = await session.scalar(select(CustomReport.definition).where(CustomReport.slug == slug))
    await database.dispose()
    assert kept is not None and kept["query"]["metrics"] == ["revenue"]
    # A change the schedule still fits is saved.
    renamed = await post_form(client, edit, edit, {**CLINIC_REVENUE, "name": "Clinic revenue"})
    assert renamed.status_code == 303


async def test_a_removed_schedule_s_finished_deliveries_stay_in_the_report_s_log(
    client: Client, seeded: Seeded
) -> None:
    """Removing a schedule deleted its whole delivery log: whether the board got October's report was lost."""
    await sign_in(client, seeded, MANAGER)
    saved = await post_form(client, BUILDER, "/analytics/reports", CLINIC_REVENUE)
    slug = saved.headers["location"].split("/")[-1].split("?")[0]
    page = f"/analytics/reports/{slug}"
    schedule = {
        "frequency": "weekly",
        "weekday": "monday",
        "day": "1",
        "time": "08:00",
        "timezone": "Europe/Berlin",
        "to": "board@northwind.example",
    }
    assert (await post_form(client, page, f"{page}/schedules", schedule)).status_code == 303
    database = await _database(seeded)
    async with database.read_sessions() as session:
        report_id, schedule_id = (
            await session.execute(
                select(CustomReport.id, ReportSchedule.id)
                .join(ReportSchedule, ReportSchedule.report_id == CustomReport.id)
                .where(CustomReport.slug == slug)
            )
        ).one()
    now = datetime.now(UTC)
    async with SqlUnitOfWork(database) as uow:
        for weeks, status in ((3, "delivered"), (2, "failed"), (1, "delivered"), (0, "retrying")):
            uow.session.add(
                ReportDelivery(
                    schedule_id=schedule_id,
                    due_at=now - timedelta(weeks=weeks, hours=1),
                    destination="board@northwind.example",
                    status=status,
                    claimed_by="w1",
                    attempts=1,
                    delivered_at=now - timedelta(weeks=weeks) if status == "delivered" else None,
                    error="the mail server refused it" if status == "failed" else None,
                    claimed_until=now + timedelta(minutes=5) if status == "retrying" else None,
                    owner_to_hear=status == "delivered",
                )
            )
        await uow.commit()

    removed = await post_form(client, page, f"{page}/schedules/{schedule_id}/delete", {})
    assert removed.status_code == 303
    async with database.read_sessions() as session:
        kept = (
            await session.execute(
                select(
                    ReportDelivery.status,
                    ReportDelivery.schedule_id,
                    ReportDelivery.report_id,
                    ReportDelivery.schedule_words,
                    ReportDelivery.owner_to_hear,
                )
                .where(ReportDelivery.report_id == report_id)
                .order_by(ReportDelivery.due_at)
            )
        ).all()
        schedules_left = await session.scalar(
            select(func.count()).select_from(ReportSchedule).where(ReportSchedule.report_id == report_id)
        )
    # The finished runs stay, saying what the schedule was; the run still to be retried went with it, and
    # the owner is not told of a late bounce of a schedule that is gone.
    assert schedules_left == 0
    assert [(status, sid, words, told) for status, sid, _, words, told in kept] == [
        (status, None, "every Monday at 08:00, Europe/Berlin", False)
        for status in ("delivered", "failed", "delivered")
    ]
    html = (await client.get(page)).text
    log = html[html.index('id="deliveries"') :]
    assert log.count("(from a removed schedule: every Monday at 08:00, Europe/Berlin)") == 3
    assert "Send again" not in log, "a removed schedule's run is not sent again"
    failed_id = await _one(
        database,
        select(ReportDelivery.id).where(
            ReportDelivery.status == "failed", ReportDelivery.report_id == report_id
        ),
    )
    again = await post_form(client, page, f"{page}/deliveries/{failed_id}/retry", {})
    assert again.status_code == 404 and "Its schedule was removed" in again.text

    # Deleting the report takes its log along.
    assert (await post_form(client, page, f"{page}/delete", {})).status_code == 303
    assert (
        await _one(
            database,
            select(func.count()).select_from(ReportDelivery).where(ReportDelivery.report_id == report_id),
        )
        == 0
    )
    await database.dispose()


async def _one(database: Database, query: Any) -> Any:
    async with database.read_sessions() as session:
        return await session.scalar(query)
