"""A clinic imports a patient list that says nothing about consent, and the business's marketing rule
(SWITCHBOARD_MARKETING_REQUIRES_OPT_IN, on by default) holds all the way: the import says the new patients
will get no campaigns until they opt in, a campaign's preview in the bot leaves them out in words, the front
desk records one patient's yes in the browser, and the campaign then reaches exactly that patient."""

from __future__ import annotations

import csv
import time

from sqlalchemy import select

from bot.console import render_reply
from storage.models import ConsentRecord, Customer, CustomerCommunication, CustomerConsent
from tests.journeys.conftest import (
    AGENT,
    MANAGER,
    Demo,
    browser_page,
    record_at_desk,
    screenshot,
    sign_in,
    wait_for,
)

__all__ = ["browser_page"]

TAG = "optin-journey"
CODE = "OPTIN7"


def test_imported_patients_get_marketing_only_once_they_opt_in(demo: Demo, browser_page) -> None:  # type: ignore[no-untyped-def]
    path = demo.folder / "no-consent.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(
            [
                ["Patient No", "Name", "Mobile", "Tags"],
                ["OPT-1", "Olga Optin", "0151 55508001", TAG],
                ["OPT-2", "Otto Optin", "0151 55508002", TAG],
            ]
        )
    done = demo.cli("import", "customers", str(path), "--region", "DE")
    assert done.returncode == 0, done.stderr
    assert "created 2 customers" in done.stdout
    assert "campaigns will not reach the new customers until they opt in" in done.stdout, done.stdout
    people = demo.rows(
        select(Customer.id, Customer.name).where(Customer.external_ref.like("OPT-%")).order_by(Customer.id)
    )
    assert [name for _, name in people] == ["Olga Optin", "Otto Optin"]
    ids = [customer_id for customer_id, _ in people]
    assert not demo.rows(select(CustomerConsent.channel).where(CustomerConsent.customer_id.in_(ids)))

    slug = "opt-in-journey"
    demo.api(
        "POST",
        "/api/campaigns",
        {
            "slug": slug,
            "name": "Opt-in journey offer",
            "template": "seasonal_offer",
            "channels": ["sms"],
            "variables": {"offer": "a free skin check", "code": CODE},
            "audience": {"tags_any": [TAG]},
            "respect_quiet_hours": False,
        },
    )
    before = demo.api("GET", f"/api/campaigns/{slug}/preview")
    assert (before["recipients"], before["planned"]) == (2, 0), before
    assert before["exclusions"] == {"no_consent": 2}, before
    shown = render_reply(demo.ask(f"campaign preview {slug}", as_email=MANAGER))
    assert "2 never gave marketing consent on the chosen channels" in shown, shown
    assert "no_consent" not in shown

    # Olga rings the desk: texts about offers are welcome.
    olga, otto = ids
    page = browser_page
    sign_in(page, demo, AGENT)
    page.goto(f"{demo.app_url}/communication/customers/{olga}")
    page.wait_for_load_state()
    assert "only on channels where they opted in" in page.inner_text("#consent-rule"), "the rule in words"
    record_at_desk(page, "sms", "opted_in", "phone_call")
    screenshot(page, "customer-opted-in-at-the-desk")
    assert demo.rows(
        select(ConsentRecord.status, ConsentRecord.source).where(ConsentRecord.customer_id == olga)
    ) == [("opted_in", "phone_call")]

    after = demo.api("GET", f"/api/campaigns/{slug}/preview")
    assert (after["recipients"], after["planned"]) == (2, 1), after
    assert after["exclusions"] == {"no_consent": 1}, after

    assert demo.api("POST", f"/api/campaigns/{slug}/launch")["status"] == "running"
    olga_phone, otto_phone = "+4915155508001", "+4915155508002"

    def reached() -> list[str]:
        return [m["to"] for m in demo.sandbox_messages("twilio") if CODE in (m.get("body") or "")]

    assert wait_for(reached, 60, "the campaign SMS to the patient who opted in") == [olga_phone]

    def completed() -> bool:
        return bool(demo.api("GET", f"/api/campaigns/{slug}/progress")["status"] == "completed")

    wait_for(completed, 120, "the campaign to complete")
    time.sleep(1)
    assert reached() == [olga_phone] and otto_phone not in reached(), "Otto never said yes"
    decided = dict(
        demo.rows(
            select(CustomerCommunication.customer_id, CustomerCommunication.status_reason).where(
                CustomerCommunication.source == "campaign", CustomerCommunication.customer_id.in_(ids)
            )
        )
    )
    assert decided == {olga: None, otto: "no_consent"}, "Otto's is held back, with the reason"
