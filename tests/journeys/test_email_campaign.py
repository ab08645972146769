"""A marketer sends an email campaign to a segment: every consenting recipient gets it, with a working one-click
unsubscribe link in the body and the List-Unsubscribe headers, on SQLite and on PostgreSQL."""

from __future__ import annotations

import re
import urllib.request
from collections import Counter
from typing import Any

from sqlalchemy import select

from storage.database import Database
from storage.models import Customer, CustomerConsent
from tests.journeys.conftest import Demo, run_async, wait_for

SEGMENT = "regular"


async def consenting_addresses(database_url: str, segment: str) -> set[str]:
    """Recount from the raw rows: the segment's customers with an email address who have not opted out."""
    database = Database.connect(database_url)
    try:
        async with database.read_sessions() as session:
            customers = list(
                await session.execute(
                    select(Customer.id, Customer.email).where(
                        Customer.segment == segment, Customer.email.is_not(None)
                    )
                )
            )
            opted_out = set(
                await session.scalars(
                    select(CustomerConsent.customer_id).where(
                        CustomerConsent.channel == "email", CustomerConsent.status == "opted_out"
                    )
                )
            )
    finally:
        await database.dispose()
    return {email.lower() for customer_id, email in customers if customer_id not in opted_out and email}


def one_click(url: str) -> int:
    request = urllib.request.Request(url, data=b"List-Unsubscribe=One-Click", method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return int(answer.status)


def test_an_email_campaign_reaches_every_consenting_recipient_with_a_working_unsubscribe_link(
    demo_on_each_engine: Demo,
) -> None:
    demo = demo_on_each_engine
    expected = run_async(consenting_addresses(demo.database_url, SEGMENT))
    assert expected, "the demo has no VIP customer with an email address"

    demo.api(
        "POST",
        "/api/campaigns",
        {
            "slug": "vip-newsletter",
            "name": "VIP newsletter",
            "template": "monthly_newsletter",
            "channels": ["email"],
            "audience": {"segments": [SEGMENT]},
            "variables": {"headline": "Longer opening hours", "link": "https://northwind.example/news"},
            "respect_quiet_hours": False,
        },
    )
    preview = demo.api("GET", "/api/campaigns/vip-newsletter/preview")
    assert "template_error" not in preview["exclusions"], preview
    assert preview["planned"] == len(expected), preview

    demo.api("POST", "/api/campaigns/vip-newsletter/launch")

    def all_arrived() -> list[dict[str, Any]] | None:
        emails = [e for e in demo.sandbox_emails() if e["subject"] and "Longer opening hours" in e["text"]]
        return emails if len(emails) >= len(expected) else None

    emails = wait_for(all_arrived, 90, f"{len(expected)} campaign emails at the sandbox's SMTP server")
    recipients = Counter(address.lower() for e in emails for address in e["rcpt_tos"])
    assert set(recipients) == expected and set(recipients.values()) == {1}, recipients

    for email in emails:
        headers = {name.lower(): value for name, value in email["headers"].items()}
        assert headers.get("list-unsubscribe-post") == "List-Unsubscribe=One-Click"
        header_link = headers["list-unsubscribe"].strip("<>")
        assert header_link.startswith(f"{demo.app_url}/unsubscribe/")
        body_links = set(
            re.findall(r"https?://\S+/unsubscribe/[\w.-]+", (email["html"] or "") + email["text"])
        )
        assert body_links == {header_link}, (body_links, header_link)

    # The relay offers delivery reports (DSN), so each email comes back "delivered" through the inbound-mail
    # webhook, as from a real mail server, or bounced (the sandbox bounces 3 % of mail, as addresses go stale);
    # a plain "sent" would leave email's delivery rate near zero.
    def all_reported() -> dict[str, int] | None:
        by_status = demo.api("GET", "/api/campaigns/vip-newsletter/progress")["by_status"]
        reported = by_status.get("delivered", 0) + by_status.get("undelivered", 0)
        return by_status if reported == len(expected) else None

    by_status = wait_for(all_reported, 60, f"{len(expected)} delivery reports")
    assert set(by_status) <= {"delivered", "undelivered", "suppressed"}, by_status
    assert by_status["delivered"] >= len(expected) // 2, by_status

    # One recipient clicks the link in the body: a confirmation page, then the one-click POST opts them out.
    first = emails[0]
    link = re.findall(r"https?://\S+/unsubscribe/[\w.-]+", first["html"] or first["text"])[0]
    with urllib.request.urlopen(link, timeout=10) as page:
        # In the customer's language (the seed has English and German patients), with one button to confirm.
        assert page.status == 200 and re.search(
            rb"<button type=\"submit\">(Unsubscribe|Abmelden)</button>", page.read()
        )
    assert one_click(link) == 200
    address = first["rcpt_tos"][0].lower()
    assert address not in run_async(consenting_addresses(demo.database_url, SEGMENT))
