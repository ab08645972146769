"""A clinic brings its patient list in: a dry run, the import, the error file, and then an imported patient
is messaged and the message log in the browser names them."""

from __future__ import annotations

import csv
import json
import urllib.request

from sqlalchemy import select

from storage.models import ConsentRecord, Customer
from tests.journeys.conftest import ADMIN, Demo, browser_page, screenshot, sign_in, wait_for

__all__ = ["browser_page"]

PATIENTS = [
    ["Patient No", "Vorname", "Nachname", "Mobil", "E-Mail", "SMS opt-in", "Consent date"],
    ["IMP-1", "Jana", "Importa", "0151 55501234", "jana.importa@example.de", "ja", "2026-10-01"],
    ["IMP-2", "Kai", "Importa", "0151 5550 1235", "", "nein", "2026-10-01"],
    ["IMP-3", "Lia", "Importa", "555", "lia@", "ja", ""],
]


def test_a_patient_list_is_imported_and_its_patients_can_be_reached(demo: Demo, browser_page) -> None:  # type: ignore[no-untyped-def]
    path = demo.folder / "patients.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, delimiter=";").writerows(PATIENTS)

    dry = demo.cli("import", "customers", str(path), "--region", "DE", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("dry run, nothing written: 3 rows read; would create 2 customers")
    assert not demo.rows(select(Customer.id).where(Customer.external_ref.like("IMP-%")))

    done = demo.cli("import", "customers", str(path), "--region", "DE")
    assert done.returncode == 0, done.stderr
    assert "created 2 customers" in done.stdout and "1 row rejected, with its reason in" in done.stdout
    # With the file's own semicolons, as the clinic's Excel opens them.
    errors = list(csv.reader((demo.folder / "patients.errors.csv").open(encoding="utf-8"), delimiter=";"))
    assert errors[1][:2] == [
        "4",
        "'555' is not a valid DE number: check its digits (a number from another country needs its +code); "
        "'lia@' is not an email address",  # both, so one fix is enough
    ]

    imported = demo.rows(
        select(Customer.id, Customer.external_ref, Customer.phone_e164)
        .where(Customer.external_ref.like("IMP-%"))
        .order_by(Customer.external_ref)
    )
    assert [(ref, phone) for _, ref, phone in imported] == [
        ("IMP-1", "+4915155501234"),
        ("IMP-2", "+4915155501235"),
    ]
    ledger = demo.rows(
        select(ConsentRecord.customer_id, ConsentRecord.status, ConsentRecord.source)
        .where(ConsentRecord.customer_id.in_([row[0] for row in imported]))
        .order_by(ConsentRecord.customer_id)
    )
    assert [(status, source) for _, status, source in ledger] == [
        ("opted_in", "import"),
        ("opted_out", "import"),
    ]

    jana = imported[0][0]
    demo.api(
        "POST", "/api/messages", {"customer_id": jana, "channel": "sms", "body": "Welcome to Northwind, Jana"}
    )

    def arrived() -> bool:
        with urllib.request.urlopen(
            f"{demo.sandbox_url}/_sandbox/messages?provider=twilio", timeout=10
        ) as answer:
            messages = json.loads(answer.read())["messages"]
        return any(
            m["to"] == "+4915155501234" and "Welcome to Northwind" in (m.get("body") or "") for m in messages
        )

    wait_for(arrived, 30, "the welcome SMS at the imported number")

    page = browser_page
    sign_in(page, demo, ADMIN)
    page.goto(f"{demo.app_url}/communication/messages?customer_id={jana}")
    page.wait_for_load_state()
    screenshot(page, "customer-import-message-log")
    text = page.inner_text("main")
    assert "Jana Importa" in text and "Welcome to Northwind" in text


def test_a_manager_imports_a_patient_list_in_the_browser(demo: Demo, browser_page) -> None:  # type: ignore[no-untyped-def]
    path = demo.folder / "praxis-export.csv"
    with path.open("w", encoding="cp1252", newline="") as handle:
        csv.writer(handle, delimiter=";").writerows(
            [
                ["Nr", "Patient", "Handynummer", "SMS", "Bemerkung"],
                ["WEB-1", "Jörg Webber", "0151 55507001", "ja", "Allergie"],
                ["WEB-2", "Mira Webber", "0151 55507002", "nein", ""],
                ["WEB-3", "Ohne Nummer", "", "ja", ""],
            ]
        )
    page = browser_page
    sign_in(page, demo, ADMIN)
    page.goto(f"{demo.app_url}/communication/campaigns")
    page.get_by_role("link", name="Import customers").click()
    page.set_input_files("input[name=file]", str(path))
    page.select_option("select[name=encoding]", "cp1252")
    page.fill("input[name=region]", "DE")
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url("**/communication/customers/import/*")
    screenshot(page, "customer-import-columns")
    # "Patient" is found as the name; the rest are chosen by hand, as a clinic would.
    assert page.get_by_label("Field for Patient").input_value() == "name"
    page.get_by_label("Field for Nr").select_option("external_ref")
    page.get_by_label("Field for Handynummer").select_option("phone")
    page.get_by_label("Field for SMS").select_option("consent_sms")
    assert page.get_by_label("Field for Bemerkung").input_value() == ""  # notes stay out

    page.get_by_role("button", name="Check (writes nothing)").click()
    page.wait_for_selector("#import-result", timeout=30_000)
    result = page.inner_text("#import-result")
    assert "dry run, nothing written: 3 rows read; would create 2 customers" in result
    assert "1 row to fix" in result and "4\tneither a phone number nor an email address" in result, result
    assert not demo.rows(select(Customer.id).where(Customer.external_ref.like("WEB-%")))

    page.get_by_role("button", name="Import", exact=True).click()
    page.wait_for_selector("#import-result >> text=Imported", timeout=30_000)
    screenshot(page, "customer-import-done")
    assert "created 2 customers" in page.inner_text("#import-result")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download every row to fix with its reason").click()
    rejected = download.value.path().read_text(encoding="cp1252")
    assert "Ohne Nummer" in rejected

    imported = demo.rows(
        select(Customer.name, Customer.phone_e164)
        .where(Customer.external_ref.like("WEB-%"))
        .order_by(Customer.name)
    )
    assert imported == [("Jörg Webber", "+4915155507001"), ("Mira Webber", "+4915155507002")]
    # The import page lists it under the earlier imports, by whom, with its counts.
    page.goto(f"{demo.app_url}/communication/customers/import")
    earlier = page.inner_text("#earlier-imports")
    assert "praxis-export.csv" in earlier and ADMIN in earlier, earlier
    assert "praxis-export.csv\t" + ADMIN + "\t2\t0\t1" in earlier, earlier
