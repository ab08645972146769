"""The customer list and customer page on both engines: every count recounted from the rows, searches by
name, email, phone (as people type it) and #id, paging, roles, consent and preferences recorded with who did
it, the data download and the erasure, and every bad input answered with a clear 4xx that changes nothing."""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from api.pages import customers as customer_pages
from bot.commands.masking import spaced_phone
from domain.staff import StaffIdentity
from domain.vocabulary import Role
from storage.database import Database
from storage.models import (
    AuditLog,
    ChatMessage,
    ChatSession,
    CommunicationPreference,
    ConsentRecord,
    Customer,
    CustomerCommunication,
    CustomerConsent,
)
from storage.units import UnitsOfWork
from switchboard.chat_threads import AgentReplies, agent_answers
from tests.integration.test_pages import (
    AGENT,
    MANAGER,
    VIEWER,
    Client,
    Seeded,
    client,
    csrf_token,
    seeded,
    sign_in,
)
from tests.notices import said_after

__all__ = ["client", "seeded"]

ADMIN = "admin@northwind.example"
LIST = "/communication/customers"


async def rows(seeded: Seeded, query: Any) -> list[Any]:
    database = Database.connect(seeded.settings.database_url)
    try:
        async with database.read_sessions() as session:
            return list((await session.execute(query)).all())
    finally:
        await database.dispose()


def listed_ids(html: str) -> list[int]:
    table = re.search(r'<table id="customers">.*?</table>', html, re.S)
    return (
        [int(i) for i in re.findall(r"<tr><td><a href=\"/communication/customers/(\d+)\">", table.group(0))]
        if table
        else []
    )


def count_said(html: str) -> int:
    found = re.search(r'<p id="customer-count" role="status">([\d,]+|No) customer', html)
    assert found, html[:2000]
    return 0 if found.group(1) == "No" else int(found.group(1).replace(",", ""))


async def post(client: Client, where: str, form: dict[str, str]) -> Any:
    token = csrf_token((await client.get(where.rsplit("/", 1)[0])).text)
    return await client.post(where, data={**form, "_csrf_token": token}, follow_redirects=False)


async def test_the_list_counts_finds_and_pages_like_the_rows(
    client: Client, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    await sign_in(client, seeded, AGENT)
    everyone = [row[0] for row in await rows(seeded, select(Customer.id).order_by(Customer.id.desc()))]
    html = (await client.get(LIST)).text
    assert count_said(html) == len(everyone) and listed_ids(html) == everyone
    assert "Customers" in html and 'aria-current="page"' in html

    # A part of a name, any case: recounted from the rows.
    name = (await rows(seeded, select(Customer.name).order_by(Customer.id).limit(1)))[0][0]
    part = name.split()[-1][:4].upper()
    matching = [
        cid
        for cid, n, e in await rows(seeded, select(Customer.id, Customer.name, Customer.email))
        if part.lower() in n.lower() or part.lower() in (e or "").lower()
    ]
    html = (await client.get(LIST, params={"q": part})).text
    assert count_said(html) == len(matching) and sorted(listed_ids(html)) == sorted(matching)

    # A phone number as people say it (national, with spaces) and #id find the one customer.
    cid, phone = (
        await rows(
            seeded,
            select(Customer.id, Customer.phone_e164)
            .where(Customer.phone_e164.like("+49%"))
            .order_by(Customer.id)
            .limit(1),
        )
    )[0]
    national = "0" + phone[3:6] + " " + phone[6:]
    for typed in (national, phone, f"#{cid}"):
        html = (await client.get(LIST, params={"q": typed})).text
        assert cid in listed_ids(html), typed

    # A segment; an unknown segment is ignored rather than failing the page.
    segment, in_segment = (
        await rows(seeded, select(Customer.segment, func.count()).group_by(Customer.segment).limit(1))
    )[0]
    html = (await client.get(LIST, params={"segment": segment})).text
    assert count_said(html) == in_segment
    assert count_said((await client.get(LIST, params={"segment": "<b>x</b>"})).text) == len(everyone)

    # Wildcards are letters: "%" matches no one, and user text is escaped.
    html = (await client.get(LIST, params={"q": "%"})).text
    assert count_said(html) == 0 and "No customer matches" in html and html.count("No customer matches") == 1
    html = (await client.get(LIST, params={"q": "<script>x</script>"})).text
    assert "<script>x</script>" not in html and "&lt;script&gt;" in html

    # Pages: newest first, no one twice or missed, the count the same on every page.
    monkeypatch.setattr(customer_pages, "PAGE_SIZE", 15)
    seen: list[int] = []
    where: str | None = LIST
    while where:
        html = (await client.get(where)).text
        assert count_said(html) == len(everyone)
        seen += listed_ids(html)
        found = re.search(r'href="(/communication/customers\?[^"]*before=\d+)" rel="next"', html)
        where = found.group(1).replace("&amp;", "&") if found else None
    assert seen == everyone
    assert (await client.get(LIST, params={"before": "x' or 1=1"})).status_code == 200
    huge = await client.get(LIST, params={"q": "99999999999999999999"})
    assert huge.status_code == 422  # the web edge refuses numbers beyond 64 bits, in words
    for odd in ("²", "٣٣", "#²"):  # digits to Python, not numbers to int()
        assert (await client.get(LIST, params={"q": odd})).status_code == 200, odd
        assert (await client.get(LIST, params={"before": odd})).status_code == 200, odd
        assert (await client.get("/communication/messages", params={"customer_id": odd})).status_code == 200
        for search in (odd, f"12{odd}"):
            log = await client.get("/communication/messages", params={"customer": search})
            assert log.status_code == 200 and 'id="customer-search"' in log.text, search
        assert (
            await client.get(f"/communication/chat/{seeded.chat_id}", params={"sent": odd})
        ).status_code == 200
        assert (
            await client.get("/communication/chat/canned", params={"q": "", "chat": odd})
        ).status_code == 200
        assert (await client.get("/communication/video", params={"staff": odd})).status_code == 200
        assert (
            await client.get("/communication/video/new", params={"customer_id": odd, "staff_id": odd})
        ).status_code < 500
    html = (await client.get(LIST, params={"before": "1"})).text
    assert listed_ids(html) == [] and "No older customers." in html


async def test_a_viewer_sees_shortened_contacts_and_no_forms(client: Client, seeded: Seeded) -> None:
    await sign_in(client, seeded, VIEWER)
    cid, phone, email = (
        await rows(
            seeded,
            select(Customer.id, Customer.phone_e164, Customer.email)
            .where(Customer.phone_e164.is_not(None), Customer.email.is_not(None))
            .limit(1),
        )
    )[0]
    for where in (LIST, f"{LIST}/{cid}"):
        html = (await client.get(where)).text
        assert phone not in html and email not in html and "shortened" in html
    html = (await client.get(f"{LIST}/{cid}")).text
    assert 'id="consent-form"' not in html and 'id="export-button"' not in html and 'id="erase"' not in html
    # A shortened email cannot be guessed a letter at a time: a viewer finds by the whole address only.
    assert listed_ids((await client.get(LIST, params={"q": email[:4]})).text) == [
        c
        for (c,) in await rows(
            seeded, select(Customer.id).where(Customer.name.icontains(email[:4])).order_by(Customer.id.desc())
        )
    ]
    assert cid in listed_ids((await client.get(LIST, params={"q": email.upper()})).text)
    response = await post(
        client, f"{LIST}/{cid}/consent", {"channel": "sms", "status": "opted_out", "how": "front_desk"}
    )
    assert response.status_code == 403
    assert (await post(client, f"{LIST}/{cid}/preferences", {"marketing_cap": "1"})).status_code == 403


async def test_the_customer_page_shows_what_the_rows_hold(client: Client, seeded: Seeded) -> None:
    await sign_in(client, seeded, AGENT)
    cid = (
        await rows(
            seeded,
            select(ConsentRecord.customer_id)
            .group_by(ConsentRecord.customer_id)
            .order_by(func.count().desc(), ConsentRecord.customer_id)
            .limit(1),
        )
    )[0][0]
    html = (await client.get(f"{LIST}/{cid}")).text
    name, phone = (await rows(seeded, select(Customer.name, Customer.phone_e164).where(Customer.id == cid)))[
        0
    ]
    # A manager reads the number in full, spaced as its country writes it (+44 7700 112345).
    assert f"<h1>{name}</h1>" in html and (phone is None or spaced_phone(phone) in html)
    assert phone is None or " " in spaced_phone(phone)
    ledger = await rows(seeded, select(ConsentRecord.id).where(ConsentRecord.customer_id == cid))
    table = re.search(r'<table id="consent-ledger".*?</table>', html, re.S)
    assert table and table.group(0).count("<tr>") == len(ledger) + 1  # the head row
    current = dict(
        await rows(
            seeded,
            select(CustomerConsent.channel, CustomerConsent.status).where(CustomerConsent.customer_id == cid),
        )
    )
    now = re.search(r'<table id="consent-now".*?</table>', html, re.S)
    assert now
    for channel, words in (
        ("sms", "SMS"),
        ("email", "email"),
        ("whatsapp", "WhatsApp"),
        ("telegram", "Telegram"),
    ):
        row = re.search(rf"<tr><td>{words}</td><td><span [^>]*>([^<]+)</span>", now.group(0))
        assert row, channel
        expected = {"opted_in": "opted in", "opted_out": "opted out"}.get(
            current.get(channel, ""), "not asked"
        )
        assert row.group(1) == expected, channel
    newest = [
        m
        for (m,) in await rows(
            seeded,
            select(CustomerCommunication.id)
            .where(CustomerCommunication.customer_id == cid)
            .order_by(CustomerCommunication.created_at.desc(), CustomerCommunication.id.desc())
            .limit(customer_pages.MESSAGES_SHOWN),
        )
    ]
    shown = re.search(r'<table id="customer-messages">.*?</table>', html, re.S)
    shown_ids = (
        [int(i) for i in re.findall(r'href="/communication/messages/(\d+)"', shown.group(0))] if shown else []
    )
    assert shown_ids == newest
    assert "None" not in re.sub(r"<[^>]+>", " ", html).split()  # no raw Python value
    missing = await client.get(f"{LIST}/99999999")
    assert missing.status_code == 404 and "There is no customer #99999999." in missing.text


async def test_an_agent_records_consent_and_preferences_with_their_name(
    client: Client, seeded: Seeded
) -> None:
    await sign_in(client, seeded, AGENT)
    cid = (await rows(seeded, select(Customer.id).order_by(Customer.id).limit(1)))[0][0]
    before = len(await rows(seeded, select(ConsentRecord.id).where(ConsentRecord.customer_id == cid)))

    # Bad input: each refused in words, with nothing recorded.
    for form, said in (
        ({"channel": "pigeon", "status": "opted_out", "how": "front_desk"}, "Choose the channel"),
        ({"channel": "sms", "status": "maybe", "how": "front_desk"}, "opted in or out"),
        ({"channel": "sms", "status": "opted_out", "how": "telepathy"}, "Choose how they told you"),
        ({"channel": "sms", "status": "opted_out", "how": "phone_call", "note": "x" * 201}, "200 characters"),
    ):
        response = await post(client, f"{LIST}/{cid}/consent", form)
        assert response.status_code == 400 and said in response.text, form
    assert len(await rows(seeded, select(ConsentRecord.id).where(ConsentRecord.customer_id == cid))) == before

    response = await post(
        client,
        f"{LIST}/{cid}/consent",
        {"channel": "sms", "status": "opted_out", "how": "phone_call", "note": "asked  to stop texts"},
    )
    assert (
        response.status_code == 303
        and response.headers["location"] == f"{LIST}/{cid}#consent"
        and said_after(response) == (f"{LIST}/{cid}", {"done": "consent"})
    )
    (source, detail, status), *_ = await rows(
        seeded,
        select(ConsentRecord.source, ConsentRecord.detail, ConsentRecord.status)
        .where(ConsentRecord.customer_id == cid)
        .order_by(ConsentRecord.id.desc())
        .limit(1),
    )
    assert (source, status) == (
        "phone_call",
        "opted_out",
    ) and detail == f"recorded by {AGENT}: asked to stop texts"
    assert (
        await rows(
            seeded,
            select(CustomerConsent.status).where(
                CustomerConsent.customer_id == cid, CustomerConsent.channel == "sms"
            ),
        )
    )[0][0] == "opted_out"
    html = (await client.get(f"{LIST}/{cid}?done=consent")).text
    assert "Recorded in the consent ledger." in html and "on the phone" in html
    # Nothing set of their own: the page names the business's rules that hold, not "none".
    assert "21:00–08:00, the business&#39;s default" in html and "marketing waits, reminders do not" in html
    assert "none of their own; the business sends at most 1 a day and 3 a week on a channel" in html
    # The form says what an empty field leaves to the business, not "no cap".
    assert "Both empty: the business's quiet hours, 21:00–08:00." in html
    assert "(empty: the business's limit, at most 1 a day and 3 a week on a channel; 0: no marketing)" in html
    assert "no cap" not in html

    for form, said in (
        ({"quiet_start": "21:00"}, "both a start and an end"),
        ({"marketing_cap": "99"}, "whole number from 0 to"),
        ({"marketing_cap": "-1"}, "whole number from 0 to"),
        ({"marketing_cap": "²"}, "whole number from 0 to"),
        ({"preferred_channel": "fax"}, "preferred channel from the list"),
        ({"quiet_start": "25:00", "quiet_end": "08:00"}, "times of day"),
        ({"quiet_start": "09:00", "quiet_end": "09:00"}, "the same time"),
    ):
        response = await post(client, f"{LIST}/{cid}/preferences", form)
        assert response.status_code == 400 and said in response.text, form
        for name, value in form.items():  # what was typed stays in the form, to be corrected
            if name != "preferred_channel":
                assert f'name="{name}" ' in response.text and f'value="{value}"' in response.text, (
                    name,
                    value,
                )
    response = await post(
        client,
        f"{LIST}/{cid}/preferences",
        {"preferred_channel": "whatsapp", "quiet_start": "21:00", "quiet_end": "08:00", "marketing_cap": "2"},
    )
    assert response.status_code == 303
    stored = (
        await rows(
            seeded,
            select(
                CommunicationPreference.preferred_channel,
                CommunicationPreference.quiet_hours_start,
                CommunicationPreference.quiet_hours_end,
                CommunicationPreference.marketing_max_per_week,
            ).where(CommunicationPreference.customer_id == cid),
        )
    )[0]
    assert (stored[0], stored[1].strftime("%H:%M"), stored[2].strftime("%H:%M"), stored[3]) == (
        "whatsapp",
        "21:00",
        "08:00",
        2,
    )
    audit = await rows(
        seeded,
        select(AuditLog.actor, AuditLog.via).where(
            AuditLog.action == "customer.preferences", AuditLog.target == f"customer:{cid}"
        ),
    )
    assert (AGENT, "dashboard") in [tuple(a) for a in audit]
    html = (await client.get(f"{LIST}/{cid}")).text
    assert "21:00–08:00" in html and "at most 2 a week" in html and 'value="2"' in html

    # "No marketing at all": kept by the send decision, on every channel, and said as such.
    response = await post(client, f"{LIST}/{cid}/preferences", {"marketing_cap": "0"})
    assert response.status_code == 303
    assert "no marketing" in (await client.get(f"{LIST}/{cid}")).text
    bearer = {"Authorization": f"Bearer {seeded.settings.api_token.get_secret_value()}"}
    channel = (
        await rows(
            seeded,
            select(CustomerConsent.channel).where(
                CustomerConsent.customer_id == cid, CustomerConsent.status == "opted_in"
            ),
        )
    )[0][0]
    for category, status in (("marketing", "suppressed"), ("transactional", "planned")):
        sent = await client.post(
            "/api/messages",
            json={
                "customer_id": cid,
                "channel": channel,
                "body": "Spring offer",
                "subject": "Spring",
                "category": category,
            },
            headers={**bearer, "Idempotency-Key": f"cap-{category}"},
        )
        assert sent.status_code in (200, 201, 202), sent.text
        assert sent.json()["status"] == status, sent.json()
        [(reason,)] = await rows(
            seeded,
            select(CustomerCommunication.status_reason).where(CustomerCommunication.id == sent.json()["id"]),
        )
        assert reason == ("customer_marketing_limit" if status == "suppressed" else None), reason


async def test_a_manager_downloads_their_data_and_an_admin_erases_them(
    client: Client, seeded: Seeded
) -> None:
    cid, name = (
        await rows(
            seeded,
            select(Customer.id, Customer.name)
            .join(CustomerCommunication, CustomerCommunication.customer_id == Customer.id)
            .order_by(Customer.id)
            .limit(1),
        )
    )[0]
    await sign_in(client, seeded, AGENT)
    assert (await post(client, f"{LIST}/{cid}/export", {})).status_code == 403

    await sign_in(client, seeded, MANAGER)
    response = await post(client, f"{LIST}/{cid}/export", {})
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    assert f'filename="customer-{cid}.zip"' in response.headers["content-disposition"]
    bundle = json.loads(zipfile.ZipFile(io.BytesIO(response.content)).read("customer.json"))
    assert bundle["customer"][0]["id"] == cid and bundle["customer"][0]["name"] == name
    held = len(
        await rows(seeded, select(CustomerCommunication.id).where(CustomerCommunication.customer_id == cid))
    )
    assert len(bundle["messages"]) == held
    assert (MANAGER, "dashboard") in [
        tuple(a)
        for a in await rows(
            seeded,
            select(AuditLog.actor, AuditLog.via).where(
                AuditLog.action == "customer.export", AuditLog.target == f"customer:{cid}"
            ),
        )
    ]
    assert (await post(client, f"{LIST}/{cid}/erase", {"confirm": str(cid)})).status_code == 403

    await sign_in(client, seeded, ADMIN)
    response = await post(client, f"{LIST}/{cid}/erase", {"confirm": str(cid + 1)})
    assert response.status_code == 400 and "Nothing was erased" in response.text
    assert (await rows(seeded, select(Customer.erased_at).where(Customer.id == cid)))[0][0] is None

    erased = await post(client, f"{LIST}/{cid}/erase", {"confirm": f"#{cid}"})
    # To the page, which says what was done: a reload there erases nothing.
    assert (
        erased.status_code == 303
        and erased.headers["location"] == f"{LIST}/{cid}#erasure-result"
        and said_after(erased) == (f"{LIST}/{cid}", {"done": "erased"})
    )
    response = await client.get(f"{LIST}/{cid}?done=erased")
    assert response.status_code == 200, response.text
    assert f"Erased customer {cid}" in response.text and "Erased at their request on" in response.text
    said = re.search(
        r'<div class="notice ok" role="status" id="erasure-result">(.*?)</div>', response.text, re.S
    )
    assert said and "<p>Not reached: WhatsApp's copies at Meta" in said.group(1).replace("&#39;", "'")
    erased_name, erased_at = (
        await rows(seeded, select(Customer.name, Customer.erased_at).where(Customer.id == cid))
    )[0]
    assert erased_at is not None and erased_name != name and name not in response.text
    assert 'id="consent-form"' not in response.text and "Erase again…" in response.text
    erase_audit = await rows(
        seeded,
        select(AuditLog.actor, AuditLog.via).where(
            AuditLog.action == "customer.erase", AuditLog.target == f"customer:{cid}"
        ),
    )
    assert [tuple(a) for a in erase_audit] == [(ADMIN, "dashboard")]
    reloaded = await client.get(f"{LIST}/{cid}?done=erased")
    assert "Erased customer" in reloaded.text and len(
        await rows(seeded, select(AuditLog.id).where(AuditLog.action == "customer.erase"))
    ) == len(erase_audit)
    opened = await client.get(f"{LIST}/{cid}/erase", follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"] == f"{LIST}/{cid}"
    refused_preferences = await post(client, f"{LIST}/{cid}/preferences", {"marketing_cap": "1"})
    assert refused_preferences.status_code == 400 and "erased at their request" in refused_preferences.text
    # The JSON API refuses the same, in words, and the consent stays as the erasure closed it.
    bearer = {"Authorization": f"Bearer {seeded.settings.api_token.get_secret_value()}"}
    api_consent = await client.post(
        f"/api/customers/{cid}/consent", json={"channel": "sms", "status": "opted_in"}, headers=bearer
    )
    api_preferences = await client.put(
        f"/api/customers/{cid}/preferences", json={"marketing_max_per_week": 1}, headers=bearer
    )
    for answer in (api_consent, api_preferences):
        assert answer.status_code == 422 and "was erased at their request" in answer.text, answer.text
    missing = await client.post(
        "/api/customers/99999999/consent", json={"channel": "sms", "status": "opted_in"}, headers=bearer
    )
    assert missing.status_code == 404
    refused = await post(
        client, f"{LIST}/{cid}/consent", {"channel": "sms", "status": "opted_in", "how": "front_desk"}
    )
    assert refused.status_code == 400 and "erased at their request" in refused.text
    html = (await client.get(LIST, params={"q": f"#{cid}"})).text
    assert listed_ids(html) == [cid] and "erased</span>" in html


async def test_a_name_with_accented_letters_is_found_in_any_case(client: Client, seeded: Seeded) -> None:
    database = Database.connect(seeded.settings.database_url)
    try:
        async with database.sessions() as session:
            customer = Customer(name="Ömer Ärztin", timezone="Europe/Berlin", locale="de_DE")
            umlaut = Customer(name="Jürgen Ümlaut", timezone="Europe/Berlin", external_ref="PRAXIS-Ü7")
            session.add_all([customer, umlaut, Customer(name="Quentin Ohnenummer", timezone="Europe/Berlin")])
            await session.commit()
            cid = customer.id
    finally:
        await database.dispose()
    await sign_in(client, seeded, AGENT)
    for typed in ("Ömer", "ÄRZTIN", "mer Ärz", "ömer", "ärztin"):  # any case, on SQLite too
        assert listed_ids((await client.get(LIST, params={"q": typed})).text) == [cid], typed
    # The surname first, as the front desk asks it: every word, in any order.
    for typed in ("Ärztin Ömer", "ärztin, ömer", "ÄRZ Öm"):
        assert listed_ids((await client.get(LIST, params={"q": typed})).text) == [cid], typed
    assert listed_ids((await client.get(LIST, params={"q": "Ärztin Jürgen"})).text) == []
    html = (await client.get(f"{LIST}/{cid}")).text
    assert "<dt>Language</dt><dd>German (Germany)</dd>" in html and "<dt>Country</dt><dd>—</dd>" in html
    cid_de = (await rows(seeded, select(Customer.id).where(Customer.country == "DE").limit(1)))[0][0]
    assert "<dt>Country</dt><dd>Germany</dd>" in (await client.get(f"{LIST}/{cid_de}")).text
    assert "contact details on file: none" in html


async def test_a_number_written_as_a_clinics_country_writes_it_finds_its_patient(
    client: Client, seeded: Seeded
) -> None:
    """The business is in Germany, with clinics in London, New York and Zürich: their patients' numbers are
    found as people there write them, on the list, in the message log's filter and by the bot's lookup."""
    from storage.queries.customers import customers_matching, search_regions
    from storage.queries.messages import message_log_customers

    database = Database.connect(seeded.settings.database_url)
    try:
        async with database.sessions() as session:
            people = {
                "07911 123456": Customer(
                    name="Olivia London", phone_e164="+447911123456", timezone="Europe/London"
                ),
                "(212) 555-0188": Customer(
                    name="Noah York", phone_e164="+12125550188", timezone="America/New_York"
                ),
                "079 040 85 41": Customer(
                    name="Ueli Zürich", phone_e164="+41790408541", timezone="Europe/Zurich"
                ),
            }
            session.add_all(people.values())
            await session.commit()
        regions = await search_regions(database, "DE")
        assert regions[0] == "DE" and {"GB", "US", "CH"} <= set(regions)
        from domain.customers.importing import phones_typed

        for typed, customer in people.items():
            phones = phones_typed(typed, regions)
            assert [c.id for c in await customers_matching(database, typed, limit=5, phones=phones)] == [
                customer.id
            ], typed
            assert await message_log_customers(database, typed, 5, whole_contacts=False, phones=phones) == [
                (customer.id, customer.name)
            ], typed
    finally:
        await database.dispose()
    await sign_in(client, seeded, AGENT)
    for typed, customer in people.items():
        found = (await client.get(LIST, params={"q": typed})).text
        assert listed_ids(found) == [customer.id], typed
    hint = (await client.get(LIST, params={"q": "nobody by this name"})).text
    assert "or as written in" in hint and "United Kingdom" in hint


async def test_the_practices_own_patient_number_finds_its_patient_everywhere(
    client: Client, seeded: Seeded
) -> None:
    """The reference an import or feed gave ("NW-P-4711") finds the patient on the customer list, in the message
    log's filter, on the booking form and in the bot's lookups; whole but in any case ("nw-p-4711"), so "NW-P-47"
    finds nobody by it. The list shows it in its own column."""
    from storage.queries.customers import customers_by_reference, customers_matching
    from storage.queries.messages import message_log_customers

    database = Database.connect(seeded.settings.database_url)
    try:
        async with database.sessions() as session:
            customer = Customer(name="Paula Praxis", timezone="Europe/Berlin", external_ref="NW-P-4711")
            umlaut = Customer(name="Jürgen Ümlaut", timezone="Europe/Berlin", external_ref="PRAXIS-Ü7")
            session.add_all([customer, umlaut, Customer(name="Quentin Ohnenummer", timezone="Europe/Berlin")])
            await session.commit()
            cid = customer.id
        assert [c.id for c in await customers_matching(database, " NW-P-4711 ", limit=5)] == [cid]
        assert [c.id for c in await customers_by_reference(database, "name", "NW-P-4711")] == [cid]
        assert await message_log_customers(database, "NW-P-4711", 5, whole_contacts=False) == [
            (cid, "Paula Praxis")
        ]
        assert await customers_matching(database, "NW-P-47", limit=5) == []
        assert [c.id for c in await customers_matching(database, "nw-p-4711", limit=5)] == [cid]
        assert [c.id for c in await customers_by_reference(database, "name", "Nw-P-4711")] == [cid]
        for typed in ("PRAXIS-Ü7", "praxis-ü7"):
            assert [c.id for c in await customers_matching(database, typed, limit=5)] == [umlaut.id], typed
    finally:
        await database.dispose()
    await sign_in(client, seeded, AGENT)
    found = (await client.get(LIST, params={"q": "nw-p-4711"})).text
    assert listed_ids(found) == [cid]
    assert (
        '<th scope="col">Patient number in your records</th>' in found
        and '<td class="nowrap">NW-P-4711</td>' in found
    )
    without = (await client.get(LIST, params={"q": "Quentin Ohnenummer"})).text
    assert len(listed_ids(without)) == 1 and "Patient number in your records" not in without, (
        "no numbers shown: no column"
    )
    booking = (await client.get("/communication/video/new", params={"patient": "NW-P-4711"})).text
    assert "Patient: <strong>Paula Praxis (#" in booking, booking[-3000:]


async def test_nothing_more_is_written_in_an_erased_customer_s_conversation(
    client: Client, seeded: Seeded
) -> None:
    [(cid,)] = await rows(seeded, select(ChatSession.customer_id).where(ChatSession.id == seeded.chat_id))
    await sign_in(client, seeded, ADMIN)
    assert (await post(client, f"{LIST}/{cid}/erase", {"confirm": str(cid)})).status_code == 303
    turns = len(await rows(seeded, select(ChatMessage.id).where(ChatMessage.session_id == seeded.chat_id)))
    await sign_in(client, seeded, AGENT)
    chat = f"/communication/chat/{seeded.chat_id}"
    page = (await client.get(chat)).text
    assert 'id="chat-erased"' in page and f'action="{chat}/reply"' not in page
    for action, form in (
        ("note", {"body": "Patient phoned, new number 0151 99999999"}),
        ("reply", {"body": "Hi"}),
    ):
        token = csrf_token((await client.get(chat)).text)
        answer = await client.post(
            f"{chat}/{action}", data={**form, "_csrf_token": token}, follow_redirects=False
        )
        assert answer.status_code == 422 and "nothing more is written in their conversation" in answer.text, (
            action
        )
    # The same from a Slack thread or the staff bot's Telegram: refused in words, nothing kept.
    database = Database.connect(seeded.settings.database_url)
    try:
        parts = AgentReplies(
            seeded.settings, UnitsOfWork(database, "Europe/Berlin"), lambda: datetime.now(UTC), lambda: None
        )
        agent = StaffIdentity(seeded.staff[AGENT], "Lena", AGENT, Role.AGENT, "slack")
        for text in (f"{seeded.settings.slack_note_prefix} new number 0151 99999999", "Hello again"):
            answer = await agent_answers(
                parts, seeded.chat_id, agent, text, via="slack", ref=f"slack:C1:{len(text)}", request_key=text
            )
            assert answer.kind == "refused" and "nothing more is written" in str(answer.say), answer
    finally:
        await database.dispose()
    assert (
        len(await rows(seeded, select(ChatMessage.id).where(ChatMessage.session_id == seeded.chat_id)))
        == turns
    )


async def test_a_command_typed_in_a_thread_is_refused_and_nothing_reaches_the_customer(
    seeded: Seeded,
) -> None:
    """ "canned thanks for 12" typed as a thread reply (not run with /sb) would reach the customer word for word."""
    turns = len(await rows(seeded, select(ChatMessage.id).where(ChatMessage.session_id == seeded.chat_id)))
    database = Database.connect(seeded.settings.database_url)
    try:
        parts = AgentReplies(
            seeded.settings, UnitsOfWork(database, "Europe/Berlin"), lambda: datetime.now(UTC), lambda: None
        )
        agent = StaffIdentity(seeded.staff[AGENT], "Lena", AGENT, Role.AGENT, "slack")
        for text in (f"canned thanks for {seeded.chat_id}", "/thanks"):
            answer = await agent_answers(
                parts, seeded.chat_id, agent, text, via="slack", ref=f"slack:C1:{text}", request_key=text
            )
            assert answer.kind == "refused" and "looks like a command" in str(answer.say), answer
            named = "thanks" if text.startswith("canned") else "SHORTCUT"  # "/thanks" may be no canned reply
            assert f"/sb canned {named} for {seeded.chat_id}`" in str(answer.say)
    finally:
        await database.dispose()
    assert (
        len(await rows(seeded, select(ChatMessage.id).where(ChatMessage.session_id == seeded.chat_id)))
        == turns
    )


async def test_the_page_names_the_business_s_own_quiet_hours_and_limits_from_its_settings(
    seeded: Seeded,
) -> None:
    from dataclasses import replace

    from litestar.testing import AsyncTestClient

    from api.app import create_app

    ours = replace(
        seeded,
        settings=seeded.settings.model_copy(
            update={"quiet_hours": "off", "marketing_per_day": None, "marketing_per_week": 5}
        ),
    )
    cid = (await rows(seeded, select(Customer.id).order_by(Customer.id).limit(1)))[0][0]
    database = Database.connect(seeded.settings.database_url)
    try:  # Nothing of the customer's own: the business's rules hold.
        async with database.sessions() as session, session.begin():
            await session.execute(
                delete(CommunicationPreference).where(CommunicationPreference.customer_id == cid)
            )
    finally:
        await database.dispose()
    async with AsyncTestClient(create_app(ours.settings)) as ours_client:
        await sign_in(ours_client, ours, AGENT)
        html = (await ours_client.get(f"{LIST}/{cid}")).text
    assert "none (neither the customer&#39;s nor the business&#39;s)</dd>" in html
    assert "none of their own; the business sends at most 5 a week on a channel" in html
    assert "Both empty: no quiet hours (the business has none)." in html
    assert "(empty: the business's limit, at most 5 a week on a channel; 0: no marketing)" in html
    assert "21:00" not in html
    # A business that sends no marketing at all: the customer's own limit is said to count only once it does.
    none = seeded.settings.model_copy(update={"marketing_per_week": 0})
    async with AsyncTestClient(create_app(none)) as none_client:
        await sign_in(none_client, ours, AGENT)
        html = (await none_client.get(f"{LIST}/{cid}")).text
    assert "no marketing (the business sends none)</dd>" in html
    assert "(the business sends no marketing at present, so this counts only once it does;" in html
