"""A manager sets up an automated notification on the dashboard: the clinic system has begun sending
`appointment.rebooked`, and the patient should get the new time by SMS at once. The manager makes the rule in the
browser (a mistake is refused in words, the form kept), the clinic system posts the event to the JSON API, and
the patient's phone (the sandbox) receives the confirmation once, even when the system posts it twice. Switched
off, the rule sends nothing for the next event; deleted, it is gone from the list; each step is audited."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from storage.models import (
    AuditLog,
    AutomatedNotification,
    BusinessEvent,
    Customer,
    CustomerCommunication,
    CustomerConsent,
)
from tests.journeys.conftest import MANAGER, Demo, screenshot, sign_in, wait_for

RULE = "rebooked_by_sms"
EVENT = "appointment.rebooked"


def sms_to(demo: Demo, phone: str, text: str) -> list[dict[str, Any]]:
    return [
        m
        for m in demo.sandbox_messages("twilio")
        if m.get("direction") == "outbound" and m.get("to") == phone and text in (m.get("body") or "")
    ]


def post_rebooked(demo: Demo, customer_id: int, key: str, when: str) -> int:
    payload = {"service": "Skin check", "clinic": "Berlin Mitte", "appointment_time": when}
    body = {"type": EVENT, "idempotency_key": key, "customer_id": customer_id, "payload": payload}
    answer = demo.api("POST", "/api/events", body, expect=202)
    return int(answer["id"])


def test_a_manager_makes_a_rule_and_the_patient_gets_its_message(demo: Demo, browser_page: Any) -> None:
    from playwright.sync_api import expect

    sms_opted_in = select(CustomerConsent.customer_id).where(
        CustomerConsent.channel == "sms", CustomerConsent.status == "opted_in"
    )
    [(customer_id, phone)] = demo.rows(
        select(Customer.id, Customer.phone_e164)
        .where(Customer.id.in_(sms_opted_in), Customer.phone_e164.is_not(None))
        .order_by(Customer.id)
        .limit(1)
    )

    page = browser_page
    sign_in(page, demo, MANAGER)
    page.goto(f"{demo.app_url}/communication/templates")
    page.get_by_role("link", name="New notification rule").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New notification rule")
    page.get_by_label("Name").fill(RULE)
    page.get_by_label("Event").fill(EVENT)
    page.get_by_label("Template").select_option("appointment_booked")
    page.get_by_label("1.").select_option("sms")
    page.get_by_label("How long").fill("8")
    page.get_by_label("Unit").select_option("days")
    page.get_by_label("Before or after").select_option("after")
    page.get_by_role("button", name="Save rule").click()
    expect(page.get_by_role("alert")).to_contain_text("A rule sends at most 7 days before or after the event")
    expect(page.get_by_label("Name")).to_have_value(RULE)  # nothing typed is lost
    expect(page.get_by_label("Template")).to_have_value("appointment_booked")
    screenshot(page, "notification-rule-refused")

    page.get_by_label("How long").fill("0")
    page.get_by_role("button", name="Save rule").click()
    expect(page.get_by_role("status")).to_contain_text("The notification rule is saved.")
    row = page.locator("#notification-rules tr").filter(has_text=RULE)
    expect(row).to_contain_text(EVENT)
    expect(row).to_contain_text("SMS")
    expect(row).to_contain_text("at the event")
    screenshot(page, "notification-rule-saved")

    # The clinic system posts the event, twice (a retry): one SMS reaches the patient.
    first = post_rebooked(demo, customer_id, "rebooked-1", "Tue 15 Dec, 10:30")
    assert post_rebooked(demo, customer_id, "rebooked-1", "Tue 15 Dec, 10:30") == first
    [sms] = wait_for(
        lambda: sms_to(demo, phone, "15 Dec, 10:30"), 60, "the rebooking SMS on the patient's phone"
    )
    assert "Skin check" in sms["body"] and "Berlin Mitte" in sms["body"]

    # Switched off: the next event is processed and sends nothing.
    row.get_by_role("link", name=RULE).click()
    expect(page.get_by_label("Template")).to_have_value("appointment_booked")
    page.get_by_label("On", exact=True).uncheck()
    page.get_by_role("button", name="Save rule").click()
    expect(page.get_by_role("status")).to_contain_text("Your changes to the notification rule are saved.")
    expect(page.locator("#notification-rules tr").filter(has_text=RULE)).to_contain_text("off")
    second = post_rebooked(demo, customer_id, "rebooked-2", "Wed 16 Dec, 09:00")
    wait_for(
        lambda: demo.rows(select(BusinessEvent.processed_at).where(BusinessEvent.id == second))[0][0],
        60,
        "the second event processed",
    )
    [(rule_id,)] = demo.rows(select(AutomatedNotification.id).where(AutomatedNotification.name == RULE))
    planned = select(CustomerCommunication.id).where(CustomerCommunication.source_ref.like(f"{rule_id}:%"))
    assert len(demo.rows(planned)) == 1  # the first event's message only: nothing planned for the second
    assert sms_to(demo, phone, "16 Dec, 09:00") == []
    assert len(sms_to(demo, phone, "15 Dec, 10:30")) == 1

    page.locator("#notification-rules tr").filter(has_text=RULE).get_by_role("link", name=RULE).click()
    page.locator("#confirm-delete summary").click()  # asked twice: the first press only says what will happen
    expect(page.locator("#confirm-delete")).to_contain_text("switch it off instead")
    page.get_by_role("button", name="Delete for good").click()
    expect(page.get_by_role("status")).to_contain_text("The notification rule is deleted.")
    expect(page.locator("#notification-rules")).not_to_contain_text(RULE)
    assert demo.rows(select(AutomatedNotification.id).where(AutomatedNotification.name == RULE)) == []
    actions = demo.rows(
        select(AuditLog.action, AuditLog.actor, AuditLog.via)
        .where(AuditLog.action.like("notification_rule.%"))
        .order_by(AuditLog.id)
    )
    assert actions == [
        ("notification_rule.create", MANAGER, "web"),
        ("notification_rule.update", MANAGER, "web"),
        ("notification_rule.delete", MANAGER, "web"),
    ]
