"""The video consultations page in a real browser: a manager reads today's and this week's consultations per
clinician, opens one, marks a missed visit a no-show with the button, and is refused in words where a visit
has not begun; a screenshot of the page is left in /tmp for a human look."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from storage import migrate
from storage.database import Database
from tests.e2e.test_browser import CHROMIUM, CHROMIUM_ARGS, RunningApp, _require_chromium, serving
from tests.integration.video_world import MANAGER, VideoWorld, build_video_world

SCREENSHOT = Path("/tmp/switchboard-video.png")

pytestmark = pytest.mark.browser


async def _prepare(url: str) -> VideoWorld:
    await migrate.upgrade(url)
    database = Database.connect(url)
    try:
        return await build_video_world(database)
    finally:
        await database.dispose()


@pytest.fixture
def app_with_clinic(tmp_path: Path) -> Iterator[tuple[RunningApp, VideoWorld]]:
    _require_chromium()
    url = f"sqlite+aiosqlite:///{tmp_path / 'video.db'}"
    world = asyncio.run(_prepare(url))
    extra = {
        "SWITCHBOARD_BUSINESS_TIMEZONE": "Europe/Berlin",
        # Booking makes a room: plain links to a stand-in meeting address.
        "SWITCHBOARD_VIDEO_PROVIDER": "link",
        "SWITCHBOARD_VIDEO_LINK_URL": "https://meet.example/",
    }
    with serving(tmp_path, url, extra, healthy_within=120) as running:
        yield running, world


def _login_link(app: RunningApp) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "switchboard.cli", "login-link", MANAGER, "--minutes", "5"],
        env=app.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.strip()


def test_a_manager_reads_the_day_opens_a_consultation_and_marks_a_no_show(
    app_with_clinic: tuple[RunningApp, VideoWorld],
) -> None:
    from playwright.sync_api import expect, sync_playwright

    app, world = app_with_clinic
    base = app.base_url
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(_login_link(app))
            expect(page.locator(".staff-name")).to_have_text("Mia Manager")

            page.goto(f"{base}/communication/")
            page.locator("ul.pages").get_by_role("link", name="Video consultations", exact=True).click()
            expect(page.locator("h1")).to_have_text("Video consultations")
            expect(page.locator("#video-span")).to_contain_text("times in Europe/Berlin")
            headings = page.locator("section.clinician h2")
            expect(headings).to_have_count(2)
            expect(headings.first).to_contain_text("Dr. Anna Vogel")
            anna = page.locator("section.clinician").first
            expect(anna.locator("tbody tr")).to_have_count(1)
            expect(anna.locator("tbody tr")).to_contain_text("Clara Klein")
            expect(anna.locator(".status-confirmed")).to_have_text("confirmed")
            expect(anna.locator("tbody tr")).to_contain_text("1 day before (WhatsApp): delivered")
            ben = page.locator("section.clinician").nth(1)
            expect(ben.locator(".status-no_show")).to_have_text("no-show")
            expect(ben.locator("tbody tr")).to_contain_text("<script>alert(1)</script>")  # shown as text
            expect(page.locator("#no-shows-staff")).to_contain_text("Dr. Ben Roth")

            page.get_by_role("link", name="This week", exact=True).click()
            expect(page.locator(f'tr[data-consultation-id="{world.later_this_week}"]')).to_contain_text(
                "Dan Doe"
            )
            page.screenshot(path=str(SCREENSHOT), full_page=True)

            page.locator(f'tr[data-consultation-id="{world.later_this_week}"] a').first.click()
            expect(page.locator("h1")).to_have_text("Video skin consultation with Dan Doe")
            expect(page.locator("dl.facts")).to_contain_text("America/New_York")
            page.goto(f"{base}/communication/video/{world.future_booked}")
            # Not begun: no-show is not offered, and the reminders to come are said as such.
            # Cancelling is asked twice: the first press says what happens.
            page.locator("#confirm-cancel summary").click()
            expect(page.locator("#confirm-cancel")).to_contain_text("This cannot be undone")
            expect(page.get_by_role("button", name="Cancel it and tell the patient")).to_be_visible()
            expect(page.get_by_role("button", name="Mark no-show")).to_have_count(0)
            expect(page.locator("body")).to_contain_text("No reminder has gone out yet")
            expect(page.locator("#consultation-status")).to_have_text("booked")

            page.goto(f"{base}/communication/video/{world.past_done}")
            expect(page.locator("#consultation-status")).to_have_text("done")
            page.get_by_role("button", name="Mark no-show").click()
            expect(page.locator(".notice.ok")).to_contain_text("Marked as a no-show")
            expect(page.locator("#consultation-status")).to_have_text("no-show")
            expect(page.get_by_role("button", name="Correct: the patient attended")).to_be_visible()
        finally:
            browser.close()
    assert SCREENSHOT.stat().st_size > 10_000


def test_a_manager_books_a_consultation_through_the_form_with_the_keyboard(
    app_with_clinic: tuple[RunningApp, VideoWorld],
) -> None:
    from playwright.sync_api import expect, sync_playwright

    app, world = app_with_clinic
    day = (datetime.now(UTC).astimezone(ZoneInfo("Europe/Berlin")) + timedelta(days=3)).date()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            errors: list[str] = []
            page.on(
                "console", lambda message: errors.append(message.text) if message.type == "error" else None
            )
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(_login_link(app))
            page.goto(f"{app.base_url}/communication/video")
            page.get_by_role("link", name="Book a consultation").click()
            expect(page.locator("h1")).to_have_text("Book a video consultation")
            page.get_by_label("Patient (number, name, phone or email)").fill("Clara")
            page.get_by_label("Video service").select_option(label="Video skin consultation (30 min)")
            page.get_by_label("Clinician").select_option(value=str(world.anna))
            page.get_by_label("Day").fill(day.isoformat())
            page.get_by_label("Day").press("Enter")
            expect(page.locator("#booking-patient-found")).to_contain_text("Clara Klein")
            expect(page.locator("#booking-unreachable")).to_contain_text("no notification rule sends it")
            expect(page.locator("fieldset.slots legend")).to_contain_text("Dr. Anna Vogel's time")
            slot = page.get_by_label("12:00", exact=True)
            slot.focus()
            page.keyboard.press("Space")
            expect(slot).to_be_checked()
            page.get_by_role("button", name="Book the consultation").focus()
            page.keyboard.press("Enter")
            # This clinic has no notification rules: nothing will carry the link, so the booking warns
            # (not congratulates) and shows the patient's link for staff to pass on.
            expect(page.locator(".notice.warn")).to_contain_text(
                "Booked Clara Klein for Video skin consultation"
            )
            expect(page.locator(".notice.warn")).to_contain_text("no notification rule sends it")
            expect(page.locator("#patient-link")).to_contain_text("/v/")
            expect(page.locator("#consultation-status")).to_have_text("booked")
            assert errors == [], errors
        finally:
            browser.close()
