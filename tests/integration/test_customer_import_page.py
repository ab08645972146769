"""The upload page for customer lists, on both engines: the columns found and chosen, a check that writes
nothing, the import with its progress, the rejected rows shown and downloadable, and every bad input answered
with a clear 4xx that changes nothing."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from sqlalchemy import func, select

from api.pages import customer_import
from storage.database import Database
from storage.models import AuditLog, ConsentRecord, Customer
from tests.integration.test_pages import AGENT, MANAGER, Client, Seeded, client, csrf_token, seeded, sign_in

__all__ = ["client", "seeded"]

PAGE = "/communication/customers/import"
LIST = (
    "Patient No;Vorname;Nachname;Mobil;E-Mail;SMS opt-in;Notiz\r\n"
    "UP-1;Jana;Upload;0151 55509001;jana.upload@example.de;ja;prefers mornings\r\n"
    "UP-2;Kai;Upload;0151 55509002;;nein;\r\n"
    "UP-3;Lia;Upload;555;lia@;ja;\r\n"
)


async def upload(client: Client, content: bytes, name: str = "patients.csv", **form: str) -> Any:
    token = csrf_token((await client.get(PAGE)).text)
    return await client.post(
        PAGE,
        data={"region": "DE", "encoding": "utf-8-sig", "_csrf_token": token, **form},
        files={"file": (name, content, "text/csv")},
        follow_redirects=False,
    )


def choices(html: str) -> dict[str, str]:
    """column_N -> the field selected for it on the page."""
    found = {}
    for name, options in re.findall(r'<select name="(column_\d+)"[^>]*>(.*?)</select>', html, re.S):
        selected = re.search(r'<option value="([^"]*)" selected>', options)
        found[name] = selected.group(1) if selected else ""
    return found


async def run(client: Client, where: str, action: str, chosen: dict[str, str]) -> Any:
    token = csrf_token((await client.get(where)).text)
    return await client.post(
        where, data={**chosen, "action": action, "_csrf_token": token}, follow_redirects=False
    )


async def finished(client: Client, where: str) -> str:
    for _ in range(300):
        html = (await client.get(where)).text
        if "Checking…" not in html and "Importing…" not in html:
            return html
        assert 'http-equiv="refresh"' in html and "<progress" in html  # the page follows the run by itself
        await asyncio.sleep(0.1)
    raise AssertionError("the run did not finish in 30 s")


async def count_uploaded(seeded: Seeded) -> int:
    database = Database.connect(seeded.settings.database_url)
    try:
        async with database.read_sessions() as session:
            return int(
                await session.scalar(select(func.count()).where(Customer.external_ref.like("UP-%"))) or 0
            )
    finally:
        await database.dispose()


async def test_a_manager_uploads_chooses_columns_checks_and_imports(client: Client, seeded: Seeded) -> None:
    await sign_in(client, seeded, MANAGER)
    page = (await client.get(PAGE)).text
    assert 'type="file"' in page and 'name="region"' in page
    assert "No customer list has been imported yet." in page
    sent = await upload(client, LIST.encode())
    assert sent.status_code == 303, (sent.status_code, sent.headers, sent.text[:500])
    where = sent.headers["location"]
    assert where.startswith(f"{PAGE}/")
    html = (await client.get(where)).text
    found = choices(html)
    # Detected from the German column names; the notes column is not imported.
    assert found == {
        "column_0": "external_ref",
        "column_1": "first_name",
        "column_2": "last_name",
        "column_3": "phone",
        "column_4": "email",
        "column_5": "consent_sms",
        "column_6": "",
    }
    assert "0151 55509001" in html  # the first rows are shown beside their columns
    # Row by row: Kai's blank email is marked, so Lia's "lia@" stays on her own line.
    email_cell = html[html.index("<tr><td>E-Mail</td>") :].split("</td>")[1]
    assert email_cell.count("<br>") == 2 and email_cell.index("blank in this row") < email_cell.index("lia@")
    # Fields in words; the option values stay the field names --map takes.
    assert '<option value="consent_sms" selected>SMS consent (yes/no)</option>' in html
    assert '<option value="external_ref" selected>Patient or customer number</option>' in html
    found["column_4"] = ""  # the clinic leaves the emails out: a column set to "not imported" stays out

    checked = await run(client, where, "check", found)
    assert checked.status_code == 303, checked.text
    html = await finished(client, where)
    assert "Check: nothing written yet" in html
    assert "dry run, nothing written: 3 rows read; would create 2 customers" in html
    assert "2 consent changes would be recorded" in html
    assert "1 row to fix" in html and "&#39;555&#39; is not a valid DE number" in html
    assert '<p class="notice warn" role="status" id="import-summary">' in html, "rows to fix: not all green"
    assert 'id="left-out-explained"' not in html  # only rejected rows: nothing imported without its number
    assert await count_uploaded(seeded) == 0
    assert choices(html) == found  # the choices are kept for the import

    imported = await run(client, where, "import", found)
    assert imported.status_code == 303
    html = await finished(client, where)
    assert "Imported" in html and "created 2 customers" in html
    assert await count_uploaded(seeded) == 2
    rejected = await client.get(f"{where}/rejected-rows.csv")
    assert rejected.status_code == 200 and "attachment" in rejected.headers["content-disposition"]
    lines = rejected.text.lstrip("\ufeff").splitlines()  # in the file's encoding: UTF-8 with a BOM for Excel
    # ... and its separator: the semicolons the clinic's Excel wrote (and opens in columns).
    # The email column left out by hand is marked so, and stays out when the fixed rows come back.
    assert lines[0] == "line;reason;Patient No;Vorname;Nachname;Mobil;E-Mail (not imported);SMS opt-in;Notiz"
    assert lines[1].startswith("4;")
    assert rejected.headers["content-type"] == "text/csv; charset=utf-8"
    fixed = rejected.content.replace(b";555;", b";0151 55509003;")
    back = (
        await client.get((await upload(client, fixed, name="patients.rows-to-fix.csv")).headers["location"])
    ).text
    assert {choice for choice in choices(back).values() if choice} == {
        choice for choice in found.values() if choice
    }
    # The import is listed under "Earlier imports" (the check before it wrote nothing and is not).
    earlier = (await client.get(PAGE)).text
    earlier = earlier[earlier.index('id="earlier-imports"') :]
    assert earlier.count("<tr><td>") == 1, earlier
    assert (
        f"{MANAGER}</td>" in earlier
        and '<td class="num">2</td><td class="num">0</td><td class="num">1</td>' in earlier
    )

    database = Database.connect(seeded.settings.database_url)
    try:
        async with database.read_sessions() as session:
            contacts = sorted(
                (
                    await session.execute(
                        select(Customer.phone_e164, Customer.email).where(Customer.external_ref.like("UP-%"))
                    )
                ).all()
            )
            ledger = sorted(
                (
                    await session.execute(
                        select(ConsentRecord.status, ConsentRecord.detail).where(
                            ConsentRecord.source == "import", ConsentRecord.detail.like("%patients.csv%")
                        )
                    )
                ).all()
            )
            audit = (
                await session.execute(
                    select(AuditLog.actor, AuditLog.via, AuditLog.detail).where(
                        AuditLog.action == "customers.import"
                    )
                )
            ).all()
    finally:
        await database.dispose()
    assert contacts == [("+4915155509001", None), ("+4915155509002", None)]
    assert [status for status, _ in ledger] == ["opted_in", "opted_out"]
    assert [(actor, via, detail["created"], detail["rejected"]) for actor, via, detail in audit] == [
        (MANAGER, "web", 2, 1)
    ]

    # Importing the same file again changes nothing.
    again = await run(client, where, "import", found)
    assert again.status_code == 303
    assert "created 0 customers; updated 0; unchanged 2" in await finished(client, where)


async def test_bad_input_is_answered_on_the_page_and_changes_nothing(
    client: Client, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    await sign_in(client, seeded, MANAGER)
    empty = await upload(client, b"")
    assert empty.status_code == 400 and "is empty" in empty.text
    bad_region = await upload(client, LIST.encode(), region="1")
    assert bad_region.status_code == 400 and "two letters" in bad_region.text
    monkeypatch.setattr(customer_import, "MAX_FILE_BYTES", 100)
    big = await upload(client, LIST.encode())
    assert big.status_code == 400 and "switchboard import customers" in big.text
    monkeypatch.undo()

    where = (await upload(client, LIST.encode())).headers["location"]
    readable = (await client.get(where)).text
    assert 'id="columns-garbled"' not in readable
    found = choices(readable)
    twice = await run(client, where, "check", {**found, "column_4": "phone"})
    assert twice.status_code == 400 and "phone is chosen twice" in twice.text
    no_contact = await run(client, where, "check", {**found, "column_3": "", "column_4": ""})
    assert no_contact.status_code == 400
    assert "no phone or email column" in no_contact.text and "--map" not in no_contact.text
    assert "choose its field below" in no_contact.text

    windows = LIST.replace("Jana", "Jörg").encode("cp1252")
    where = (await upload(client, windows, name="excel.csv")).headers["location"]
    columns_page = (await client.get(where)).text
    assert (
        'id="columns-garbled"' in columns_page
        and "Some letters of this file do not read as UTF-8" in columns_page
    )
    assert (await run(client, where, "check", choices(columns_page))).status_code == 303
    html = await finished(client, where)
    assert (
        "is not UTF-8" in html
        and "upload it again choosing its encoding under Encoding" in html
        and "--encoding" not in html
        and "utf-8-sig" not in html
    )
    assert await count_uploaded(seeded) == 0

    assert (await client.get(f"{PAGE}/no-such-upload")).status_code == 404
    await sign_in(client, seeded, AGENT)
    assert (await client.get(PAGE)).status_code == 403


async def test_a_row_imported_without_its_number_is_listed_to_fix_and_explained(
    client: Client, seeded: Seeded
) -> None:
    await sign_in(client, seeded, MANAGER)
    listed = "Patient No;Name;Mobil;E-Mail\r\nUP-9;Mara Upload;555;mara.upload@example.de\r\n"
    where = (await upload(client, listed.encode(), name="one.csv")).headers["location"]
    checked = await run(client, where, "check", choices((await client.get(where)).text))
    assert checked.status_code == 303
    html = await finished(client, where)
    assert "1 row to fix" in html and "imported without its phone number" in html
    assert 'id="left-out-explained"' in html and "would come" in html  # a check: nothing is in yet
