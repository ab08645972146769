"""A manager turns a question into a report: ask, save, list, run, export CSV, schedule it to email, and the
report arrives once; and the same from the dashboard's form."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

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
    rows = list(csv.reader(io.StringIO(ran.attachments[0].content.decode())))
    assert rows[0] == ["metric", "location", "bucket_start_utc", "value"]
    totals = {row[1]: float(row[3]) for row in rows[1:] if row[2] == "total"}
    assert totals and all(value >= 0 for value in totals.values())

    # The command line runs the same report, as a person at a terminal would.
    out = demo.folder / "report-out"
    done = demo.cli("report", "run", "revenue-by-clinic", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert (out / "revenue-by-clinic.png").stat().st_size > 1000
    exported = list(csv.reader(io.StringIO((out / "revenue-by-clinic.csv").read_text())))
    assert {row[1]: float(row[3]) for row in exported[1:] if row[2] == "total"} == totals

    # Due in the next minute in the business's timezone, then once a day: exactly one delivery to wait for.
    local = (datetime.now(UTC) + timedelta(minutes=1)).astimezone(ZoneInfo("Europe/Berlin"))
    cron = f"{local.minute} {local.hour} * * *"
    scheduled = demo.ask(
        f'report schedule revenue-by-clinic "{cron}" to reports@northwind.example', as_email=MANAGER
    )
    assert scheduled.kind == "answer", scheduled.text

    def delivered() -> list[dict[str, Any]]:
        return [
            e
            for e in demo.sandbox_emails()
            if "reports@northwind.example" in e["rcpt_tos"] and e["subject"].startswith("Revenue by clinic")
        ]

    first = wait_for(delivered, 150, "the scheduled report at the sandbox's mailbox")
    assert "revenue-by-clinic.png" in first[0]["raw"]
    # Two more scheduler ticks (every 15 s): nothing is delivered twice.
    wait_for(
        lambda: datetime.now(UTC) > datetime.fromisoformat(first[0]["received_at"]) + timedelta(seconds=35),
        60,
        "two more scheduler ticks",
    )
    assert len(delivered()) == 1


def test_a_report_saved_from_the_dashboard_runs_and_exports(demo: Demo, browser_page: Any) -> None:
    from playwright.sync_api import expect

    page = browser_page
    sign_in(page, demo, MANAGER)
    page.goto(f"{demo.app_url}/analytics/reports")
    page.get_by_label("Name").fill("Appointments per service")
    page.get_by_label("Metric").select_option(label="Appointments")
    page.get_by_label("Period").select_option(label="Last month")
    page.get_by_label("Split by").select_option("service")
    page.get_by_label("Everyone can see it").check()
    page.get_by_role("button", name="Save report").click()
    expect(page.locator("h1")).to_have_text("Appointments per service")
    expect(page.locator(".notice")).to_contain_text("Saved.")
    expect(page.locator("svg.chart")).to_be_visible()
    screenshot(page, "report-saved-from-form")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download CSV").click()
    text = open(download_info.value.path(), encoding="utf-8").read()
    assert text.startswith("metric,service,bucket_start_utc,value")

    # A mistake is explained next to the form, and what was typed stays.
    page.goto(f"{demo.app_url}/analytics/reports")
    page.get_by_label("Name").fill("Revenue per doctor")
    page.get_by_label("Metric").select_option(label="Revenue")
    page.get_by_label("Split by").select_option("staff")
    page.get_by_role("button", name="Save report").click()
    expect(page.locator("#save-error")).to_contain_text("cannot be split by staff")
    expect(page.get_by_label("Name")).to_have_value("Revenue per doctor")
    listed = demo.ask("report list", as_email=MANAGER)
    assert listed.table is not None
    assert "appointments-per-service" in [row[0] for row in listed.table.rows]
    assert "Revenue per doctor" not in [row[1] for row in listed.table.rows]
