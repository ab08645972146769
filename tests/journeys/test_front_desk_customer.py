"""A patient rings the front desk: "no more texts, WhatsApp is fine, and nothing after eight in the evening".
The receptionist finds them on the Customers page by the number as the patient says it, records the opt-out
and the preferences in the browser, and the next SMS to them is held back for that reason, at the sandbox
too; the page then shows it among their latest messages."""

from __future__ import annotations

import time

from sqlalchemy import select

from storage.models import (
    CommunicationPreference,
    ConsentRecord,
    Customer,
    CustomerCommunication,
    CustomerConsent,
)
from tests.journeys.conftest import AGENT, Demo, browser_page, record_at_desk, screenshot, sign_in, wait_for

__all__ = ["browser_page"]


def test_the_front_desk_records_what_a_patient_said_on_the_phone(demo: Demo, browser_page) -> None:  # type: ignore[no-untyped-def]
    customer_id, name, phone = demo.rows(
        select(Customer.id, Customer.name, Customer.phone_e164)
        .join(CustomerConsent, CustomerConsent.customer_id == Customer.id)
        .where(
            Customer.phone_e164.like("+49%"),
            CustomerConsent.channel == "sms",
            CustomerConsent.status == "opted_in",
        )
        .order_by(Customer.id)
        .limit(1)
    )[0]
    said = "0" + phone[3:6] + " " + phone[6:9] + " " + phone[9:]  # as the patient reads it out
    page = browser_page
    sign_in(page, demo, AGENT)

    page.goto(f"{demo.app_url}/communication/")
    page.get_by_role("link", name="Customers", exact=True).first.click()
    page.wait_for_load_state()
    page.get_by_role("searchbox").fill(said)
    page.get_by_role("button", name="Find").click()
    page.wait_for_load_state()
    assert "1 customer matches" in page.inner_text("#customer-count")
    screenshot(page, "customers-found-by-phone")
    page.get_by_role("link", name=name).click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/communication/customers/{customer_id}")
    assert page.inner_text("h1") == name

    record_at_desk(page, "sms", "opted_out", "phone_call", "no more texts, WhatsApp is fine")
    sms_row = page.locator("#consent-now tr", has_text="SMS")
    assert "opted out" in sms_row.inner_text() and "on the phone" in sms_row.inner_text()

    page.get_by_text("Change preferences").click()
    form = page.locator("#preferences-form")
    form.get_by_label("Preferred channel").select_option("whatsapp")
    form.get_by_label("Quiet hours from").fill("20:00")
    form.get_by_label("until").fill("08:00")
    form.get_by_role("button", name="Save preferences").click()
    page.wait_for_load_state()
    assert "20:00–08:00" in page.content()
    # Said where the page lands (#preferences), not at its top, off screen.
    assert page.locator("#preferences .notice.ok").inner_text() == "Preferences saved."
    assert page.locator("#preferences .notice.ok").is_visible()
    screenshot(page, "customer-after-front-desk")

    ledger = demo.rows(
        select(ConsentRecord.status, ConsentRecord.source, ConsentRecord.detail)
        .where(ConsentRecord.customer_id == customer_id, ConsentRecord.channel == "sms")
        .order_by(ConsentRecord.id.desc())
        .limit(1)
    )
    assert ledger == [("opted_out", "phone_call", f"recorded by {AGENT}: no more texts, WhatsApp is fine")]
    [(preferred, quiet_start)] = demo.rows(
        select(CommunicationPreference.preferred_channel, CommunicationPreference.quiet_hours_start).where(
            CommunicationPreference.customer_id == customer_id
        )
    )
    assert preferred == "whatsapp" and quiet_start.strftime("%H:%M") == "20:00"

    # The next SMS is held back for what they said, and never reaches the provider.
    sent = demo.api(
        "POST",
        "/api/messages",
        {
            "customer_id": customer_id,
            "channel": "sms",
            "body": "Your results are ready",
            "category": "transactional",
        },
    )
    message_id = sent["id"]

    def settled() -> str | None:
        [(status,)] = demo.rows(
            select(CustomerCommunication.status).where(CustomerCommunication.id == message_id)
        )
        return status if status != "planned" else None

    assert wait_for(settled, 30, "the SMS decided") == "suppressed"
    time.sleep(1)
    assert not [
        m for m in demo.sandbox_messages("twilio") if "Your results are ready" in (m.get("body") or "")
    ]
    page.reload()
    screenshot(page, "customer-message-held-back")
    row = page.locator("#customer-messages tbody tr").first
    assert row.locator("td").first.inner_text() == str(message_id)
    assert "held back" in row.inner_text() and "opted out" in row.inner_text()
    row.get_by_role("link").click()
    page.wait_for_load_state()
    assert "opted out" in page.inner_text(".why")
