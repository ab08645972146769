"""Someone the clinic has never heard of texts from a German mobile. They are kept as a first contact placed by
their number (Germany, Berlin's clock, German), the manager finds them on the dashboard with their number
written as Germany writes it, and the reminder the desk then sends them reads in German without a name to greet
("Hallo, wir erinnern …", never "Hallo SMS"), priced at the German SMS rate (recounted from the stored row)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from domain.messages.pricing import SMS_PRICE_BY_COUNTRY
from storage.models import Customer, CustomerCommunication
from tests.journeys.conftest import MANAGER, Demo, screenshot, sign_in, wait_for

NUMBER = "+4915209876543"
QUESTION = "Hallo, haben Sie samstags geöffnet?"


def test_a_first_contact_by_sms_is_placed_by_number_and_greeted_without_a_name(
    demo: Demo, browser_page: Any
) -> None:
    from playwright.sync_api import expect

    assert demo.rows(select(Customer.id).where(Customer.phone_e164 == NUMBER)) == []
    demo.sandbox("POST", "/_sandbox/customer/sms", {"from": NUMBER, "body": QUESTION})

    def kept() -> Any:
        found = demo.rows(
            select(Customer.id, Customer.name, Customer.country, Customer.timezone, Customer.locale).where(
                Customer.phone_e164 == NUMBER
            )
        )
        return found[0] if found else None

    customer_id, name, country, timezone, locale = wait_for(kept, 30, "the first contact kept")
    assert name.endswith("6543") and "SMS" in name  # "SMS contact …6543" until someone names them
    assert (country, timezone, locale) == ("DE", "Europe/Berlin", "de")

    page = browser_page
    sign_in(page, demo, MANAGER)
    page.goto(f"{demo.app_url}/communication/customers/{customer_id}")
    expect(page.locator("body")).to_contain_text("+49 1520 9876543")
    expect(page.locator("body")).to_contain_text("German")
    expect(page.locator("body")).to_contain_text(QUESTION)
    screenshot(page, "first-contact")

    sent = demo.api(
        "POST",
        "/api/messages",
        {
            "customer_id": customer_id,
            "channel": "sms",
            "template": "appointment_reminder",
            "variables": {
                "service": "Hautcheck",
                "clinic": "Berlin Mitte",
                "appointment_time": "Sa 12.12., 10:00",
            },
            "category": "transactional",
        },
    )

    def arrived() -> list[dict[str, Any]]:
        return [
            m
            for m in demo.sandbox_messages("twilio")
            if m.get("direction") == "outbound"
            and m.get("to") == NUMBER
            and "Hautcheck" in (m.get("body") or "")
        ]

    [sms] = wait_for(arrived, 60, "the reminder on the first contact's phone")
    assert sms["body"].startswith("Hallo, wir erinnern an Ihren Termin (Hautcheck) in Berlin Mitte"), sms[
        "body"
    ]
    assert "SMS" not in sms["body"] and "\ue000" not in sms["body"]
    [(body, segments, cost, currency)] = demo.rows(
        select(
            CustomerCommunication.body,
            CustomerCommunication.segments,
            CustomerCommunication.cost_micros,
            CustomerCommunication.currency,
        ).where(CustomerCommunication.id == sent["id"])
    )
    assert body == sms["body"]
    assert segments >= 1 and cost == segments * SMS_PRICE_BY_COUNTRY["DE"] and currency == "USD"
