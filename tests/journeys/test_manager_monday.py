"""A clinic manager's Monday in chat and on the dashboard: the return on the messages asked in words and in
German, this quarter against the last one (recounted from the orders), a clinic that does not exist, a report
sent to one clinic's lead by the clinic's name as the app shows it, and a change to that report that would
have stopped the schedule, refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from reports.periods import add_months, quarter_start
from storage.analytics.facts import COUNTED_ORDER_STATUSES, NET_ORDER_AMOUNT
from storage.models import CustomReport, Location, Order, ReportSchedule
from tests.journeys.conftest import MANAGER, Demo, screenshot, sign_in


def _money(amount: float) -> str:
    return f"€{amount:,.2f}"


def test_a_manager_asks_in_words_schedules_for_one_clinic_and_cannot_break_the_schedule(
    demo: Demo, browser_page: Any
) -> None:
    from playwright.sync_api import expect

    # The return on the messages, asked as people ask it: the attribution, the same as the typed command.
    typed = demo.ask("attribution last quarter", as_email=MANAGER)
    for asked in ("what's our ROI last quarter?", "Kosten gegen Umsatz letztes Quartal"):
        said = demo.ask(asked, as_email=MANAGER)
        assert said.title == "Attribution" and said.text == typed.text, (asked, said.text)
    split = demo.ask("costs vs revenue by clinic last quarter", as_email=MANAGER)
    assert split.text.endswith(
        "Not read: by clinic (the attribution is the whole business's, one period at a time)."
    )

    # "Q4 vs Q3" while Q4 runs: this quarter so far against as many days of the last, recounted from orders.
    settings = demo.settings()
    zone = ZoneInfo(settings.business_timezone)
    today = datetime.now(zone).date()
    this_quarter = quarter_start(today)
    named = f"Q{(this_quarter.month - 1) // 3 + 1}"
    before = f"Q{(add_months(this_quarter, -3).month - 1) // 3 + 1}"
    answer = demo.ask(f"revenue {named} vs {before}", as_email=MANAGER)
    assert answer.kind == "answer", answer.text
    start = datetime.combine(this_quarter, datetime.min.time(), zone).astimezone(UTC)
    [total] = demo.rows(
        select(func.coalesce(func.sum(NET_ORDER_AMOUNT), 0)).where(
            Order.created_at >= start,
            Order.created_at < datetime.now(UTC) + timedelta(seconds=1),
            Order.status.in_(COUNTED_ORDER_STATUSES),
            Order.currency == settings.business_currency,
        )
    )
    assert f"so far ({settings.business_timezone}): {_money(float(total[0]))}" in answer.text, answer.text
    # Compared with as many days of the last quarter, or (a young demo) said to have nothing to compare with.
    assert (
        "as many days into last quarter" in answer.text
        or "with nothing before it to compare with" in answer.text
    )
    assert answer.text.count("the records start on") <= 1, answer.text

    # A clinic there is not: refused with the clinics there are, not the whole business's figure.
    paris = demo.ask("revenue last month for clinic Paris", as_email=MANAGER)
    assert paris.kind == "error" and paris.text.startswith("There is no clinic “Paris”"), paris.text

    # A report for one clinic's lead, by the clinic's name as the pages show it.
    code, name = demo.rows(select(Location.code, Location.name).order_by(Location.id).limit(1))[0]
    shown = name.split(" ", 1)[1]  # "Berlin Mitte", without the business's first word
    page = browser_page
    sign_in(page, demo, MANAGER)
    page.goto(f"{demo.app_url}/analytics/reports/new")
    page.get_by_label("Name").fill("Revenue per clinic (journey)")
    page.get_by_label("Find a metric").fill("revenue")
    expect(page.get_by_label("Metric", exact=True)).to_have_value("revenue")
    page.get_by_label("Split by").select_option("location")
    page.get_by_role("button", name="Save report").click()
    expect(page.locator("h1")).to_have_text("Revenue per clinic (journey)")
    page.get_by_label("To", exact=True).fill("lead@northwind.example")
    page.get_by_label("Filter on").select_option("location")
    page.get_by_label("Values (comma-separated)").fill(shown)
    page.get_by_role("button", name="Schedule").click()
    expect(page.locator(".notice")).to_contain_text("Scheduled.")
    expect(page.locator("table").first).to_contain_text(f"only location {code}")
    [filters] = demo.rows(
        select(ReportSchedule.filters)
        .join(CustomReport, CustomReport.id == ReportSchedule.report_id)
        .where(CustomReport.name == "Revenue per clinic (journey)")
    )
    assert filters[0] == [{"dimension": "location", "operator": "in", "value": [code]}]

    # Changed into a figure that cannot be split by clinic, the schedule would fail every day: refused.
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Find a metric").fill("messages sent")
    expect(page.get_by_label("Metric", exact=True)).to_have_value("messages_sent")
    page.get_by_label("Split by").select_option("channel")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("body")).to_contain_text("This change would stop 1 schedule of this report")
    expect(page.locator("body")).to_contain_text(f"to lead@northwind.example (only location {code})")
    expect(page.locator("#name-error")).to_have_count(0)  # about the change, not its name: said once, on top
    screenshot(page, "manager-monday-edit-refused")
    [kept] = demo.rows(
        select(CustomReport.definition).where(CustomReport.name == "Revenue per clinic (journey)")
    )
    assert kept[0]["query"]["metrics"] == ["revenue"]
