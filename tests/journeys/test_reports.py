"""A manager turns a question into a report: ask, save, list, run, export CSV, schedule it to email, and the
report arrives once; and the same from the dashboard's form."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from reports.answer import standing_alone, value_label
from tests.journeys.conftest import MANAGER, Demo, screenshot, sign_in, wait_for


def test_ask_save_run_export_schedule_and_receive_once(demo: Demo) -> None:
    answered = demo.ask("revenue last 30 days by location", as_email=MANAGER)
    assert answered.kind == "answer" and answered.images

    saved = demo.ask("report save Revenue by clinic", as_email=MANAGER)
    assert saved.kind == "answer" and "revenue-by-clinic" in saved.text, saved.text

    listed = demo.ask("report list", as_email=MANAGER)
    assert (
        listed.table is not None
        and ("revenue-by-clinic", "Revenue by clinic", "no", "0") in listed.table.rows
    )

    ran = demo.ask("report run Revenue by clinic", as_email=MANAGER)
    assert ran.images and ran.attachments
    rows = list(csv.reader(io.StringIO(ran.attachments[0].content.decode().lstrip("\ufeff"))))
    assert rows[0] == ["Location", "Revenue (EUR)"]
    totals = {row[0]: float(row[1]) for row in rows[1 : rows.index([])]}
    assert totals and all(value >= 0 for value in totals.values())

    # The command line runs the same report, as a person at a terminal would.
    out = demo.folder / "report-out"
    done = demo.cli("report", "run", "revenue-by-clinic", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert (out / "revenue-by-clinic.png").stat().st_size > 1000
    exported = list(csv.reader(io.StringIO((out / "revenue-by-clinic.csv").read_text().lstrip("\ufeff"))))
    assert {row[0]: float(row[1]) for row in exported[1 : exported.index([])]} == totals

    # Due in the next minute in the business's timezone, then once a day: exactly one delivery to wait for.
    # Late in a minute, the two commands below could land in the next one (then due tomorrow): wait it out.
    if (second := datetime.now(UTC).second) >= 45:
        time.sleep(61 - second)
    local = (datetime.now(UTC) + timedelta(minutes=1)).astimezone(ZoneInfo("Europe/Berlin"))
    cron = f"{local.minute} {local.hour} * * *"
    scheduled = demo.ask(
        f'report schedule revenue-by-clinic "{cron}" to reports@northwind.example', as_email=MANAGER
    )
    assert scheduled.kind == "answer", scheduled.text
    # And to an address that does not exist (the sandbox's relay refuses it: 550 5.1.1).
    demo.sandbox("POST", "/_sandbox/opt-out", {"address": "ghost@northwind.example"})
    to_ghost = demo.ask(
        f'report schedule revenue-by-clinic "{cron}" to ghost@northwind.example', as_email=MANAGER
    )
    assert to_ghost.kind == "answer", to_ghost.text
    to_slack = demo.ask(f'report schedule revenue-by-clinic "{cron}" to #switchboard', as_email=MANAGER)
    assert to_slack.kind == "answer" and "Said so in #switchboard." in to_slack.text, to_slack.text
    # The channel was told what is coming when it was scheduled: that post was also the check it exists.
    told = demo.sandbox("GET", "/_sandbox/slack/channels/C0SWITCHBOARD/messages")["messages"]
    assert any("scheduled the report" in m["text"] and "here, every day at" in m["text"] for m in told), told[
        -3:
    ]

    def delivered() -> list[dict[str, Any]]:
        return [
            e
            for e in demo.sandbox_emails()
            if "reports@northwind.example" in e["rcpt_tos"] and e["subject"].startswith("Revenue by clinic")
        ]

    first = wait_for(delivered, 150, "the scheduled report at the sandbox's mailbox")
    assert "revenue-by-clinic.png" in first[0]["raw"]
    # Signed as ours, so only a bounce carrying it back can fail the delivery.
    assert first[0]["headers"].get("X-Switchboard-Mail") == "report"
    assert len(first[0]["headers"].get("X-Switchboard-Check", "")) == 32

    from storage.models import ReportDelivery

    # The address that does not exist fails at once, in the mail server's words, and its owner hears of it.
    ghost = wait_for(
        lambda: [
            row
            for row in demo.rows(
                select(ReportDelivery.status, ReportDelivery.attempts, ReportDelivery.error).where(
                    ReportDelivery.destination == "ghost@northwind.example", ReportDelivery.status == "failed"
                )
            )
        ],
        150,
        "the refused address's delivery to fail",
    )
    assert [tuple(row) for row in ghost] == [
        (
            "failed",
            1,
            "email to ghost@northwind.example failed: the mail server refused it: Recipient address rejected: "
            "User unknown (5.1.1)",
        )
    ]
    alert = wait_for(
        lambda: [
            e
            for e in demo.sandbox_emails()
            if e["subject"] == "Scheduled report not delivered: Revenue by clinic"
        ],
        60,
        "the owner's email about the failed delivery",
    )
    assert "Recipient address rejected" in alert[0]["text"], alert[0]["text"]
    assert "/analytics/reports/revenue-by-clinic" in alert[0]["text"]
    # Two more scheduler ticks (every 15 s): nothing is delivered twice.
    wait_for(
        lambda: datetime.now(UTC) > datetime.fromisoformat(first[0]["received_at"]) + timedelta(seconds=35),
        60,
        "two more scheduler ticks",
    )
    assert len(delivered()) == 1

    # In Slack the delivery ends with "By …" buttons; pressing one redraws the report by that split.
    def slack_posts() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = demo.sandbox("GET", "/_sandbox/slack/channels/C0SWITCHBOARD/messages")[
            "messages"
        ]
        return found

    def redraw_buttons() -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        for post in slack_posts():
            for block in post.get("blocks") or []:
                if block.get("type") == "actions" and any(
                    e.get("value", "").startswith("report run revenue-by-clinic by ")
                    for e in block["elements"]
                ):
                    return post, block["elements"]
        return None

    try:
        post, buttons = wait_for(redraw_buttons, 60, "the redraw buttons under the Slack delivery")
    except AssertionError:
        print("DELIVERIES", demo.rows(select(ReportDelivery.__table__)))
        print("POSTS", slack_posts()[-5:])
        raise
    assert [b["text"]["text"] for b in buttons][:1] and all(
        b["text"]["text"].startswith("By ") for b in buttons
    )
    before = len(slack_posts())
    demo.sandbox(
        "POST",
        "/_sandbox/slack/click",
        {
            "user": "U0MANAGER1",
            "channel": "C0SWITCHBOARD",
            "ts": post["ts"],
            "action_id": buttons[0]["action_id"],
        },
    )
    split = buttons[0]["value"].rpartition(" by ")[2]
    answer = wait_for(
        lambda: next(
            (
                m
                for m in slack_posts()[before:]
                if f"by {split}" in str(m.get("text", "")) + str(m.get("blocks", "")).lower()
            ),
            None,
        ),
        60,
        f"the report redrawn by {split}",
    )
    assert "Traceback" not in str(answer)


def test_a_report_is_built_in_the_browser_previewed_live_saved_exported_and_scheduled(
    demo: Demo, browser_page: Any
) -> None:
    from playwright.sync_api import expect

    page = browser_page
    sign_in(page, demo, MANAGER)
    page.goto(f"{demo.app_url}/analytics/reports")
    page.get_by_role("link", name="Build a report").click()
    expect(page.locator("h1")).to_have_text("Build a report")

    # Every field of the form has a label, and the keyboard reaches each one in order.
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('#report-builder input:not([type=hidden]), #report-builder select')]
              .filter(e => !e.labels || e.labels.length === 0).map(e => e.name || e.id)"""
    )
    assert unlabelled == []
    page.get_by_label("Name").focus()
    reached = []
    for _ in range(8):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.id"))
    assert reached[:3] == ["metric-search", "report-metric", "report-period"], reached

    # Typing finds a metric and shows its definition; the preview redraws as the form changes.
    page.get_by_label("Name").fill("Appointments per service")
    page.get_by_label("Find a metric").fill("appointm")
    expect(page.get_by_label("Metric", exact=True)).to_have_value("appointments")
    expect(page.locator("#metric-definition")).not_to_be_empty()
    page.get_by_label("Period").select_option(label="Last month")
    page.get_by_label("Split by").select_option("service")
    page.get_by_label("Chart").select_option(label="Bars")
    page.get_by_label("Show only the top").fill("3")
    page.get_by_label("Show only the top").press("Tab")
    expect(page.locator("#preview svg.chart")).to_be_visible(timeout=10_000)
    expect(page.locator("#preview .lead")).to_contain_text("Appointments, last month, by service")
    screenshot(page, "report-builder-preview")

    # A mistake is named beside its field; what was typed stays.
    page.get_by_label("Chart").select_option(label="Single number")
    page.get_by_role("button", name="Save report").click()
    expect(page.locator("#kind-error")).to_contain_text("cannot be split")
    expect(page.get_by_label("Name")).to_have_value("Appointments per service")
    screenshot(page, "report-builder-error")
    page.get_by_label("Chart").select_option(label="Bars")
    page.get_by_label("Everyone can see it").check()
    page.get_by_role("button", name="Save report").click()
    expect(page.locator("h1")).to_have_text("Appointments per service")
    expect(page.locator(".notice")).to_contain_text("Saved.")
    expect(page.locator("svg.chart")).to_be_visible()

    with page.expect_download() as download_info:
        page.get_by_role("link", name="XLSX").click()
    import openpyxl

    assert download_info.value.suggested_filename == "appointments-per-service.xlsx"
    sheet = openpyxl.load_workbook(io.BytesIO(download_info.value.path().read_bytes())).active
    assert sheet is not None
    header, *rest = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert header == ["Service", "Appointments"]
    shown = [row for row in rest if row and row[1] is not None]
    assert 1 <= len(shown) <= 3 and [r[1] for r in shown] == sorted((r[1] for r in shown), reverse=True)
    with page.expect_download() as download_info:
        page.get_by_role("link", name="CSV").click()
    text = open(download_info.value.path(), encoding="utf-8-sig").read()
    assert text.startswith("Service,Appointments")

    # Scheduled from the page, in words, to the manager's own address; the page lists it.
    page.get_by_label("How often").select_option(label="Every week on")
    page.get_by_label("Day of the week (weekly)").select_option(label="Friday")
    page.get_by_label("Time", exact=True).fill("07:30")
    page.get_by_role("button", name="Schedule").click()
    expect(page.locator(".notice")).to_contain_text("Scheduled.")
    expect(page.locator("table").first).to_contain_text("every Friday at 07:30 (Europe/Berlin)")
    screenshot(page, "report-scheduled")

    # The same report from chat: another period and split for one run, then its schedule stopped.
    ran = demo.ask("report run appointments-per-service for last 90 days by clinic", as_email=MANAGER)
    assert ran.kind == "answer" and ran.images and "by location" in (ran.title or ""), ran.text
    assert any(b.label.startswith("By ") for b in ran.buttons)
    stopped = demo.ask("report unschedule appointments-per-service", as_email=MANAGER)
    assert "Stopped 1 schedule" in stopped.text, stopped.text
    listed = demo.ask("report list", as_email=MANAGER)
    assert listed.table is not None and (
        "appointments-per-service",
        "Appointments per service",
        "yes",
        "0",
    ) in (listed.table.rows)


def test_a_manager_splits_a_report_two_ways_keeps_a_range_and_downloads_a_page_table(
    demo: Demo, browser_page: Any
) -> None:
    """Revenue by clinic, stacked by source channel, only clinics with some revenue, built and saved in the
    browser; its CSV recounted from the orders; then a table of the performance page downloaded as shown."""
    from playwright.sync_api import expect

    from storage.analytics.facts import COUNTED_ORDER_STATUSES, NET_ORDER_AMOUNT
    from storage.models import Location, Order

    page = browser_page
    sign_in(page, demo, MANAGER)
    page.goto(f"{demo.app_url}/analytics/reports/new")
    # Finding a metric by a word of its name picks that one, not the first whose description has the word.
    page.locator("#metric-search").press_sequentially("sent")
    expect(page.locator("#report-metric")).to_have_value("messages_sent")
    page.locator("#metric-search").fill("")
    page.locator("#metric-search").dispatch_event("input")
    page.locator("#report-metric").select_option("revenue")
    page.get_by_label("Name").fill("Clinics by channel")
    page.get_by_label("Period").select_option(label="Last month")
    page.get_by_label("Split by").select_option("location")
    page.get_by_label("Then by").select_option("source_channel")
    page.get_by_label("Chart").select_option(label="Stacked bars")
    page.get_by_label("Only values from").fill("0.01")
    page.get_by_label("Only values from").press("Tab")
    expect(page.locator("#preview svg.chart")).to_be_visible(timeout=10_000)
    expect(page.locator("#preview .lead")).to_contain_text("by location and source channel")
    screenshot(page, "report-builder-two-splits")
    page.get_by_role("button", name="Save report").click()
    expect(page.locator("h1")).to_have_text("Clinics by channel")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="CSV", exact=True).click()
    rows = list(csv.reader(io.StringIO(open(download_info.value.path(), encoding="utf-8-sig").read())))
    header, body = rows[0], rows[1 : rows.index([])]
    assert header[0] == "Location" and len(header) > 2, header
    settings = demo.settings()
    currency = settings.business_currency
    channels = [name.removesuffix(f" ({currency})") for name in header[1:]]
    shown = {
        (row[0], channel): float(value)
        for row in body
        for channel, value in zip(channels, row[1:], strict=True)
        if float(value or 0)
    }
    zone = ZoneInfo(settings.business_timezone)
    first_of_this_month = datetime.now(zone).date().replace(day=1)
    first_of_last_month = (first_of_this_month - timedelta(days=1)).replace(day=1)
    start, end = (
        datetime.combine(day, datetime.min.time(), zone).astimezone(UTC)
        for day in (first_of_last_month, first_of_this_month)
    )
    found = demo.rows(  # clinics as reports name them: without the business's first word
        select(func.replace(Location.name, "Northwind ", ""), Order.source_channel, NET_ORDER_AMOUNT)
        .join(Location, Location.id == Order.location_id)
        .where(
            Order.created_at >= start,
            Order.created_at < end,
            Order.status.in_(COUNTED_ORDER_STATUSES),
            Order.currency == currency,
        )
    )
    expected: dict[tuple[str, str], float] = {}
    for code, channel, amount in found:
        key = (code, standing_alone(value_label(channel)))
        expected[key] = expected.get(key, 0.0) + float(amount)
    assert shown == {k: round(v, 2) for k, v in expected.items() if round(v, 2)}

    page.goto(f"{demo.app_url}/analytics/performance")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download the jobs table as CSV").click()
    assert download_info.value.suggested_filename == "analytics-performance-jobs.csv"
    jobs = list(csv.reader(io.StringIO(open(download_info.value.path(), encoding="utf-8-sig").read())))
    assert jobs[0] == ["Job", "State", "Details"] and len(jobs) > 3
    screenshot(page, "performance-with-downloads")


def test_a_question_split_two_ways_is_saved_run_and_recounted_from_the_orders(demo: Demo) -> None:
    from collections import Counter

    from reports.periods import PeriodSpec, resolve_period
    from storage.analytics.facts import COUNTED_ORDER_STATUSES
    from storage.models import Location, Order

    answered = demo.ask("orders last 30 days by clinic and channel", as_email=MANAGER)
    assert answered.kind == "answer" and answered.images, answered.text
    assert {f.label: f.value for f in answered.fields}["Read as"].endswith("by location and source channel")
    saved = demo.ask("report save Orders by clinic and channel", as_email=MANAGER)
    assert "by location and source channel" in saved.text, saved.text
    ran = demo.ask("report run orders-by-clinic-and-channel", as_email=MANAGER)
    assert ran.images and ran.attachments, ran.text
    rows = list(csv.reader(io.StringIO(ran.attachments[0].content.decode().lstrip("\ufeff"))))
    assert rows[0] == ["Location and source channel", "Orders"]
    shown = {tuple(row[0].split(" · ")): int(row[1]) for row in rows[1 : rows.index([])]}

    # Recount from the orders themselves: the same 30 complete days in the business's timezone.
    period = resolve_period(PeriodSpec.last_n_days(30), datetime.now(UTC), "Europe/Berlin")
    counted = Counter(
        # A value as the chart and its figures name it: "in_clinic" reads "In clinic", "whatsapp" "WhatsApp".
        (code, standing_alone(value_label(channel)))
        for code, channel in demo.rows(
            select(func.replace(Location.name, "Northwind ", ""), Order.source_channel)
            .join(Location, Location.id == Order.location_id)
            .where(
                Order.created_at >= period.start,
                Order.created_at < period.end,
                Order.status.in_(COUNTED_ORDER_STATUSES),
            )
        )
    )
    assert shown and all(shown[pair] == counted[pair] for pair in shown), sorted(
        (pair, shown[pair], counted[pair]) for pair in shown if shown[pair] != counted[pair]
    )
    footnote = rows[-1][0]
    if len(counted) > len(shown):  # the chart holds 8 bars; the figures say which they are, of how many
        assert f"top {len(shown)} of {len(counted)}" in footnote, footnote
        assert sorted(shown.values(), reverse=True) == sorted(counted.values(), reverse=True)[: len(shown)]
    else:
        assert shown == dict(counted)


def test_the_customer_page_counts_customers_as_the_orders_do(demo: Demo, browser_page: Any) -> None:
    """Active, returning and churned customers come from the kept customer days; recounted from the orders."""
    import re

    from reports.periods import PeriodSpec, previous_period, resolve_period
    from storage.analytics.facts import COUNTED_ORDER_STATUSES
    from storage.models import Order

    sign_in(browser_page, demo, MANAGER)
    browser_page.goto(f"{demo.app_url}/analytics/customer")
    tiles = {
        tile.locator(".tile-label").inner_text(): tile.locator(".tile-value").inner_text()
        for tile in browser_page.locator(".tile").all()
    }
    screenshot(browser_page, "customer-page-counted")

    period = resolve_period(PeriodSpec.last_n_days(30), datetime.now(UTC), "Europe/Berlin")
    before = previous_period(period)
    orders = demo.rows(
        select(Order.customer_id, Order.created_at).where(Order.status.in_(COUNTED_ORDER_STATUSES))
    )
    active = {c for c, at in orders if period.start <= at < period.end}
    earlier = {c for c, at in orders if at < period.start}
    base = {c for c, at in orders if before.start <= at < period.start}
    assert active and base
    assert int(re.sub(r"\D", "", tiles["Active customers"])) == len(active), tiles
    assert int(re.sub(r"\D", "", tiles["Returning customers"])) == len(active & earlier), tiles
    churn = float(re.sub(r"[^\d.]", "", tiles["Churn rate"].replace(",", ".")))
    assert abs(churn - 100 * len(base - active) / len(base)) <= 0.051, (tiles, len(base - active), len(base))

    verified = demo.cli("analytics", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert re.search(
        r"active customers: \d+ days checked against a recount of the orders; drift: 0", verified.stdout
    )


def test_a_ranking_is_saved_with_its_n_and_runs_as_the_n_largest_of_the_whole_split(demo: Demo) -> None:
    """ "top 3 clinics by revenue", saved and run, keeps three clinics: the three largest of the same split
    unranked, with the same amounts, and its sentence names them and how many more there are."""

    def figures(slug: str) -> dict[str, float]:
        ran = demo.ask(f"report run {slug}", as_email=MANAGER)
        assert ran.attachments, ran.text
        rows = list(csv.reader(io.StringIO(ran.attachments[0].content.decode().lstrip("\ufeff"))))
        return {row[0]: float(row[1]) for row in rows[1 : rows.index([])]}

    demo.ask("revenue last 30 days by clinic", as_email=MANAGER)
    demo.ask("report save Revenue of every clinic", as_email=MANAGER)
    every = figures("revenue-of-every-clinic")
    assert len(every) > 3, every

    answered = demo.ask("top 3 clinics by revenue last 30 days", as_email=MANAGER)
    assert answered.kind == "answer" and answered.images, answered.text
    saved = demo.ask("report save Top clinics", as_email=MANAGER)
    assert saved.kind == "answer" and "by location, top 3" in saved.text, saved.text
    ran = demo.ask("report run top-clinics", as_email=MANAGER)
    assert f"and {len(every) - 3} more" in ran.text, ran.text
    ranked = figures("top-clinics")
    largest = sorted(every.items(), key=lambda item: -item[1])[:3]
    assert ranked == dict(largest), (ranked, every)
    for code, amount in largest:
        assert code in ran.text and f"{amount:,.2f}" in ran.text, (code, amount, ran.text)
