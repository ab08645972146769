"""Every dashboard page and every builder form in Debian chromium: a full-page screenshot of each (saved under
/tmp/switchboard-journeys/pages/ as the run's artifact), every control labelled and reachable by keyboard, no
console errors; then a marketer creates and launches a campaign in the wizard and edits a template."""

from __future__ import annotations

import re
from typing import Any

from api.pages.common import SECTIONS
from tests.journeys.conftest import MANAGER, Demo, screenshot, sign_in

ADMIN = "admin@northwind.example"

#: Controls without a label (or aria-label / aria-labelledby) on the page, by name or id.
UNLABELLED = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby'))
  .map(e => e.name || e.id || e.outerHTML.slice(0, 60))"""
#: Controls the keyboard cannot reach (taken out of the tab order, or disabled without saying why).
UNREACHABLE = """() => [...document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea')]
  .filter(e => e.tabIndex < 0).map(e => e.name || e.id || e.textContent.trim().slice(0, 40))"""


def _pages(demo: Demo) -> list[str]:
    pages = ["/", "/communication/", "/analytics/"]
    for section, (_, subpages) in SECTIONS.items():
        pages += [f"/{section}/{p.slug}" for p in subpages]
    return [
        *pages,
        "/analytics/reports/new",
        "/communication/campaigns/new",
        "/communication/templates/welcome/sms/en",
        "/communication/chat/widget-keys",
        "/communication/chat/sla-policies",
        "/communication/chat/canned",
        "/communication/video/new",
    ]


def test_every_page_and_builder_form_is_labelled_reachable_and_error_free(
    demo: Demo, browser_page: Any
) -> None:
    page = browser_page
    sign_in(page, demo, ADMIN)  # the administrator sees every page
    for path in _pages(demo):
        answer = page.goto(f"{demo.app_url}{path}")
        assert answer is not None and answer.status == 200, (path, answer and answer.status)
        page.wait_for_load_state("networkidle")
        assert "Traceback" not in page.content(), path
        assert page.evaluate(UNLABELLED) == [], path
        assert page.evaluate(UNREACHABLE) == [], path
        forms = page.locator("main form")
        if forms.count():
            first = page.locator(
                "main form input:not([type=hidden]), main form select, main form textarea, main form button"
            ).first
            first.focus()
            page.keyboard.press("Tab")
            assert page.evaluate("document.activeElement !== document.body"), f"{path}: Tab leaves the page"
        name = re.sub(r"[^a-z0-9]+", "-", path.strip("/").lower()) or "home"
        screenshot(page, f"pages/{name}")


def test_a_marketer_creates_and_launches_a_campaign_and_edits_a_template_in_the_browser(
    demo: Demo, browser_page: Any
) -> None:
    from playwright.sync_api import expect

    page = browser_page
    sign_in(page, demo, MANAGER)
    page.goto(f"{demo.app_url}/communication/campaigns")
    page.get_by_role("link", name="New campaign").click()
    expect(page.locator("h1")).to_have_text("New campaign")
    page.get_by_label("Name").fill("Winter check-up")
    page.get_by_label("Channel", exact=True).select_option(label="SMS")
    page.get_by_label("If not delivered, fall back to").select_option(label="Email")
    page.get_by_label("Template", exact=True).select_option("welcome")
    page.get_by_label("Values the template needs").fill("clinic = Mitte")
    page.get_by_role("button", name="Count").click()
    planned = page.locator("#planned-count")
    expect(planned).to_be_visible()
    count = int(planned.inner_text().replace(",", ""))
    assert count > 0
    expect(page.locator("#sample-body")).to_contain_text("Mitte")
    screenshot(page, "campaign-wizard-count")
    page.get_by_role("button", name="Save draft").click()
    expect(page.locator(".notice")).to_contain_text("Saved as a draft")
    expect(page.locator("#campaign-status")).to_have_text("draft")
    page.get_by_text("Launch…").click()  # the first press says what launching will do
    expect(page.locator("#confirm-launch")).to_contain_text(f"This sends to {count:,} customers")
    page.get_by_role("button", name="Launch now").click()
    expect(page.locator("#campaign-status")).to_have_text(re.compile("running|completed"))
    screenshot(page, "campaign-launched-from-wizard")
    status = demo.ask("campaign status winter-check-up", as_email=MANAGER)
    assert status.kind in ("answer", "progress") and "winter-check-up" in status.text, status.text

    page.goto(f"{demo.app_url}/communication/templates")
    page.get_by_role("link", name="Edit welcome sms en").click()
    body = page.get_by_label("Text", exact=True)
    original = body.input_value()
    body.fill(original + " Bis bald!")
    page.get_by_label("Sample values for the preview, one “name = value” per line").fill(
        "first_name = Jana\nclinic = Mitte"
    )
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#preview-body")).to_contain_text("Bis bald!")
    expect(page.locator("#preview-sms")).to_contain_text("segment")
    expect(page.locator("#preview-diff")).to_contain_text("Bis bald!")
    screenshot(page, "template-editor-preview")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".notice")).to_contain_text("Saved as version")
    screenshot(page, "template-editor-saved")
    page.get_by_role("link", name="Compare").first.click()
    expect(page.locator("#compare-diff")).to_contain_text("Bis bald!")
    page.get_by_role("button", name=re.compile("Restore version")).first.click()
    expect(page.get_by_label("Text", exact=True)).to_have_value(original)
    shown = demo.ask("template show welcome", as_email=MANAGER)
    assert "Bis bald!" not in shown.text
