"""`switchboard import customers` on both engines: what it counts is what the tables hold, importing again
changes nothing, a dry run writes nothing, existing customers are merged, bad files change nothing."""

from __future__ import annotations

import asyncio
import codecs
import csv
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from storage import customer_import as storage_importing
from storage.backups import BackupError
from storage.customer_import import CustomerImport
from storage.database import Database
from storage.models import (
    AuditLog,
    CommunicationPreference,
    ConsentRecord,
    Customer,
    CustomerConsent,
    CustomerTag,
)
from switchboard import customer_import as importing
from switchboard.cli import main as cli
from switchboard.customer_import import ImportOptions
from tests.conftest import FreshDatabases

ENGINES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
HEADER = [
    "Patient No",
    "First name",
    "Last name",
    "Mobile",
    "Email",
    "SMS consent",
    "Email consent",
    "Consent date",
    "Tags",
]


def write(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        csv.writer(handle).writerows([HEADER, *rows])
    return path


def clinic_list(count: int) -> list[list[str]]:
    """`count` patients; every tenth row is malformed, every 25th repeats an earlier patient."""
    rows = []
    for n in range(count):
        if n % 10 == 9:
            rows.append([f"P{n}", f"Bad{n}", "Row", "123", "nope", "yes", "", "", ""])
        elif n % 25 == 24:
            rows.append(
                [
                    f"P{n - 20}",
                    "Again",
                    "Same",
                    f"0151 {20_000_000 + n - 20}",
                    "",
                    "no",
                    "",
                    "2026-06-01",
                    "vip",
                ]
            )
        else:
            rows.append(
                [
                    f"P{n}",
                    f"Name{n}",
                    "Test",
                    f"0151 {20_000_000 + n}",
                    f"p{n}@example.de",
                    "yes",
                    "yes" if n % 2 else "",
                    "2026-01-15",
                    "recall" if n % 3 == 0 else "",
                ]
            )
    return rows


async def tables(url: str) -> dict[str, Any]:
    database = Database.connect(url)
    try:
        async with database.read_sessions() as session:
            return {
                "customers": await session.scalar(select(func.count()).select_from(Customer)),
                "phones": set((await session.scalars(select(Customer.phone_e164))).all()),
                "records": (
                    await session.execute(
                        select(
                            ConsentRecord.customer_id,
                            ConsentRecord.channel,
                            ConsentRecord.status,
                            ConsentRecord.recorded_at,
                        ).order_by(ConsentRecord.id)
                    )
                ).all(),
                "current": (
                    await session.execute(
                        select(CustomerConsent.customer_id, CustomerConsent.channel, CustomerConsent.status)
                    )
                ).all(),
                "tags": (await session.execute(select(CustomerTag.customer_id, CustomerTag.tag))).all(),
                "audit": (
                    await session.execute(
                        select(AuditLog.action, AuditLog.detail).where(AuditLog.action == "customers.import")
                    )
                ).all(),
            }
    finally:
        await database.dispose()


async def import_fails(url: str, path: Path, error: type[Exception], words: str) -> None:
    """Imports `path` through the code the command runs, which must stop with `error`."""
    database = Database.connect(url)
    try:
        options = ImportOptions(path=path, default_region="DE", timezone="Europe/Berlin", locale="de")
        with pytest.raises(error, match=words):
            await importing.import_customers(database, options)
    finally:
        await database.dispose()


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, ["import", "customers", *args])


@pytest.mark.parametrize("engine", ENGINES)
def test_an_import_holds_what_it_counts_and_importing_again_changes_nothing(
    engine: str, fresh_databases: FreshDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = fresh_databases.url(engine)
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", url)
    rows = clinic_list(100)
    path = write(tmp_path / "patients.csv", rows)

    good = [r for r in rows if r[3] != "123"]
    distinct = {r[0] for r in good}
    repeats = len(good) - len(distinct)
    assert (len(rows) - len(good), repeats) == (10, 2)  # the recount below must see both kinds

    dry = run(str(path), "--region", "DE", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.output.startswith(
        f"dry run, nothing written: 100 rows read; would create {len(distinct)} customers"
    )
    assert asyncio.run(tables(url))["customers"] == 0

    done = run(str(path), "--region", "DE")
    assert done.exit_code == 0, done.output
    held = asyncio.run(tables(url))
    # Recounted from the file's rows.
    assert held["customers"] == len(distinct)
    assert held["phones"] == {"+49151" + r[3].split()[1] for r in good}
    # The ledger takes each patient's last word per channel in the file (latest date, then later line).
    last_word: dict[tuple[str, str], tuple[str, int, str]] = {}
    for line, r in enumerate(good):
        for channel, answer in (("sms", r[5]), ("email", r[6])):
            key = (r[0], channel)
            if answer and (key not in last_word or (r[7], line) >= last_word[key][:2]):
                last_word[key] = (r[7], line, answer)
    expected_changes = len(last_word)
    assert len(held["records"]) == expected_changes
    sms_now = {customer: status for customer, channel, status in held["current"] if channel == "sms"}
    assert sorted(sms_now.values()).count("opted_out") == repeats
    assert len(held["tags"]) == len({(r[0], t) for r in good for t in [r[8]] if t})
    assert f"created {len(distinct)} customers" in done.output and "10 rows rejected" in done.output
    assert (
        f"{repeats} rows merged into an earlier row of the file; {expected_changes} consent changes recorded"
        in done.output
    )

    errors = list(csv.reader((tmp_path / "patients.errors.csv").open(encoding="utf-8-sig")))
    assert errors[0] == ["line", "reason", *HEADER]
    assert [int(e[0]) for e in errors[1:]] == [n + 2 for n in range(100) if n % 10 == 9]
    assert all("'123' is not a valid DE number" in e[1] for e in errors[1:])

    again = run(str(path), "--region", "DE")
    assert again.exit_code == 0
    assert (
        f"created 0 customers; updated 0; unchanged {len(distinct)}" in again.output
        and "0 consent changes" in again.output
    )
    after = asyncio.run(tables(url))
    assert (after["customers"], len(after["records"]), len(after["tags"])) == (
        len(distinct),
        expected_changes,
        len(held["tags"]),
    )
    assert [detail["created"] for _, detail in after["audit"]] == [len(distinct), 0]


@pytest.mark.parametrize("engine", ENGINES)
def test_existing_customers_are_found_by_phone_or_email_and_filled_in(
    engine: str, fresh_databases: FreshDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = fresh_databases.url(engine)
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", url)
    first = write(
        tmp_path / "first.csv",
        [
            ["", "Ana", "Lima", "0151 30000001", "", "yes", "", "2026-01-01", ""],
            ["", "Bo", "Berg", "", "bo@example.de", "", "yes", "2026-01-01", ""],
        ],
    )
    assert run(str(first), "--region", "DE").exit_code == 0
    second = write(
        tmp_path / "second.csv",
        [
            ["A-1", "Ana Lima", "", "+49 151 30000001", "ana@example.de", "no", "", "2026-02-01", "vip"],
            ["B-1", "Bo Berg", "", "0151 30000002", "BO@example.de", "", "", "", ""],
        ],
    )
    done = run(str(second), "--region", "DE")
    assert done.exit_code == 0, done.output
    assert "created 0 customers; updated 2; unchanged 0" in done.output

    async def customers() -> list[tuple[str | None, str, str | None, str | None]]:
        database = Database.connect(url)
        try:
            async with database.read_sessions() as session:
                rows = await session.execute(
                    select(
                        Customer.external_ref, Customer.name, Customer.phone_e164, Customer.email
                    ).order_by(Customer.id)
                )
                return [tuple(r) for r in rows.all()]  # type: ignore[misc]
        finally:
            await database.dispose()

    assert asyncio.run(customers()) == [
        ("A-1", "Ana Lima", "+4915130000001", "ana@example.de"),
        ("B-1", "Bo Berg", "+4915130000002", "bo@example.de"),
    ]
    records = asyncio.run(tables(url))["records"]
    assert [(channel, status) for _, channel, status, _ in records] == [
        ("sms", "opted_in"),
        ("email", "opted_in"),
        ("sms", "opted_out"),
    ]
    assert "names another" not in done.output  # every detail was new: nothing held was kept over it

    # A third list gives Ana another email: hers stays, and the summary names the line it was not taken from.
    third = write(tmp_path / "third.csv", [["A-1", "Ana Lima", "", "", "ana.new@example.de", "", "", "", ""]])
    changed = run(str(third), "--region", "DE")
    assert changed.exit_code == 0, changed.output
    assert "line 2 names another phone number, email or patient number than the customer has" in flat(
        changed.output
    )
    assert asyncio.run(customers())[0] == ("A-1", "Ana Lima", "+4915130000001", "ana@example.de")


def test_a_list_without_consent_columns_says_campaigns_will_not_reach_its_new_customers(
    fresh_databases: FreshDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", fresh_databases.url("sqlite"))
    bare = tmp_path / "bare.csv"
    bare.write_text("Name,Mobile\nAna Lima,0151 30000001\nBo Berg,0151 30000002\n", encoding="utf-8")
    warning = (
        "The file says nothing about consent, so campaigns {} not reach the new customers until they opt in"
    )
    checked = run(str(bare), "--dry-run")
    assert checked.exit_code == 0 and warning.format("would") in checked.output, checked.output
    done = run(str(bare))
    assert (
        done.exit_code == 0 and "created 2 customers" in done.output and warning.format("will") in done.output
    )
    # A list with consent says nothing of the sort, nor does a business that lets marketing reach the unasked.
    given = write(
        tmp_path / "given.csv", [["", "Cem", "Kaya", "0151 30000003", "", "yes", "", "2026-01-01", ""]]
    )
    assert "says nothing about consent" not in run(str(given)).output
    monkeypatch.setenv("SWITCHBOARD_MARKETING_REQUIRES_OPT_IN", "off")
    other = tmp_path / "other.csv"
    other.write_text("Name,Mobile\nDora Diaz,0151 30000004\n", encoding="utf-8")
    output = run(str(other)).output
    assert "created 1 customer" in output and "says nothing about consent" not in output, output


def test_bad_files_are_refused_in_one_line_and_change_nothing(
    fresh_databases: FreshDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = fresh_databases.url("sqlite")
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", url)
    latin = write(
        tmp_path / "excel.csv",
        [["P1", "Jürgen", "Müller", "0151 30000009", "", "yes", "", "", ""]],
        encoding="cp1252",
    )
    refused = run(str(latin), "--region", "DE")
    assert refused.exit_code == 2
    assert "line 2 of excel.csv is not UTF-8" in refused.output and "--encoding" in refused.output
    assert asyncio.run(tables(url))["customers"] == 0
    accepted = run(str(latin), "--region", "DE", "--encoding", "cp1252")
    assert accepted.exit_code == 0, accepted.output

    no_name = tmp_path / "no-name.csv"
    no_name.write_text("Mobile,Email\n0151 30000010,x@example.de\n")
    answer = run(str(no_name), "--region", "DE")
    assert answer.exit_code == 2 and "no name column" in answer.output and "--map" in answer.output

    semicolons = tmp_path / "semicolons.csv"
    semicolons.write_text("Kunde;Telefon;Notiz\nEva Ost;0151 30000011;hi\n", encoding="utf-8")
    mapped = run(str(semicolons), "--region", "DE", "--map", "Kunde=name")
    assert mapped.exit_code == 0, mapped.output
    assert "created 1 customer;" in mapped.output and "columns not imported: Notiz" in mapped.output

    for args, says in (
        ([str(tmp_path / "missing.csv")], "there is no file"),
        ([str(semicolons), "--map", "Kunde"], "write COLUMN=FIELD"),
        ([str(semicolons), "--encoding", "klingon"], "unknown encoding"),
    ):
        answer = run(*args, "--region", "DE")
        assert answer.exit_code == 2 and says in answer.output and "Traceback" not in answer.output, (
            answer.output
        )
    assert "Traceback" not in refused.output
    assert asyncio.run(tables(url))["customers"] == 2


def test_a_utf8_file_is_never_read_as_cp1252_nor_a_mixed_one_imported_garbled(
    fresh_databases: FreshDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Following "name its encoding with --encoding cp1252" for a UTF-8 file with one Excel line pasted in
    would store every other accent as two letters ("JÃ¼rgen"): both are refused, saying what to do."""
    url = fresh_databases.url("sqlite")
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", url)
    utf8 = write(
        tmp_path / "clinic.csv", [["P1", "Jürgen", "Müller", "0151 30000009", "", "yes", "", "", ""]]
    )
    named_wrongly = run(str(utf8), "--region", "DE", "--encoding", "cp1252")
    assert named_wrongly.exit_code == 2 and "Traceback" not in named_wrongly.output
    assert (
        "clinic.csv is UTF-8 (line 2 has letters written so), which cp1252 would misread (ü as Ã¼): import it "
        "without --encoding" in flat(named_wrongly.output)
    )
    mixed = tmp_path / "mixed.csv"
    mixed.write_bytes(
        utf8.read_bytes()
        + "P2,Grete,Bäcker,0151 30000010,,yes,,,\n".encode()
        + "P3,Jörg,Weiß,0151 30000011,,yes,,,\n".encode("cp1252")
    )
    refused = run(str(mixed), "--region", "DE")
    assert refused.exit_code == 2 and "Traceback" not in refused.output, refused.output
    assert "line 4 of mixed.csv is not UTF-8, though the lines before it are (line 2" in flat(refused.output)
    assert "mixes two encodings" in flat(refused.output) and "Nothing was imported" in flat(refused.output)
    assert asyncio.run(tables(url))["customers"] == 0
    assert run(str(utf8), "--region", "DE").exit_code == 0  # as UTF-8, it imports
    # A real cp1252 file whose letters happen to pair as UTF-8 would ("É" then a no-break space) imports.
    windows = tmp_path / "windows.csv"
    windows.write_bytes(
        (",".join(HEADER) + "\r\nP7,José\xa0Luis,García,0151 30000012,,yes,,,\r\n").encode("cp1252")
    )
    assert run(str(windows), "--region", "DE", "--encoding", "cp1252").exit_code == 0
    # Excel's UTF-8 byte order mark is no letter: an ASCII file that starts with one imports.
    marked = tmp_path / "marked.csv"
    marked.write_bytes(
        codecs.BOM_UTF8 + (",".join(HEADER) + "\r\nP8,Ann,Lee,0151 30000013,,yes,,,\r\n").encode()
    )
    assert run(str(marked), "--region", "DE", "--encoding", "cp1252").exit_code == 0
    assert asyncio.run(tables(url))["customers"] == 3


def flat(output: str) -> str:
    """A command's output as one line, however it was wrapped."""
    return " ".join(output.split())


def test_a_family_sharing_a_mobile_stays_two_patients_and_consent_keeps_its_last_word(
    fresh_databases: FreshDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = fresh_databases.url("sqlite")
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", url)
    family = write(
        tmp_path / "family.csv",
        [
            ["F-1", "Mia", "Vogel", "0151 40000001", "", "yes", "", "", ""],
            ["F-2", "Leo", "Vogel", "0151 40000001", "", "yes", "", "", ""],
            # Undated, so both lines carry the import's time: the later line is the last word.
            ["F-1", "Mia", "Vogel", "0151 40000001", "", "no", "", "", ""],
        ],
    )
    done = run(str(family), "--region", "DE")
    assert done.exit_code == 0, done.output
    assert "created 2 customers" in done.output and "1 row merged" in done.output
    held = asyncio.run(tables(url))
    assert held["customers"] == 2
    assert sorted(status for _, channel, status in held["current"]) == ["opted_in", "opted_out"]

    # An older dated list, and an undated one, cannot undo the opt-out on record.
    older = write(
        tmp_path / "older.csv", [["F-1", "Mia", "Vogel", "0151 40000001", "", "yes", "", "2026-11-01", ""]]
    )
    undated = write(
        tmp_path / "undated.csv", [["F-1", "Mia", "Vogel", "0151 40000001", "", "yes", "", "", ""]]
    )
    for path in (older, undated, family):
        again = run(str(path), "--region", "DE")
        assert again.exit_code == 0 and "0 consent changes recorded" in again.output, again.output
    current = {customer: status for customer, _, status in asyncio.run(tables(url))["current"]}
    assert sorted(current.values()) == ["opted_in", "opted_out"]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_customer_whose_only_change_is_a_tag_or_consent_counts_as_updated(
    engine: str, fresh_databases: FreshDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = fresh_databases.url(engine)
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", url)
    rows = [
        ["C-1", "Cem", "Kaya", "0151 40000001", "", "yes", "", "2026-01-01", ""],
        ["C-2", "Dana", "Ott", "0151 40000002", "", "yes", "", "2026-01-01", ""],
        ["C-3", "Eli", "Roth", "0151 40000003", "", "yes", "", "2026-01-01", ""],
    ]
    assert run(str(write(tmp_path / "first.csv", rows)), "--region", "DE").exit_code == 0
    # The same people: one gets a tag, one withdraws consent later, one is just as before.
    rows[0][8] = "diabetes"
    rows[1][5], rows[1][7] = "no", "2026-03-01"
    done = run(str(write(tmp_path / "second.csv", rows)), "--region", "DE")
    assert done.exit_code == 0, done.output
    assert "created 0 customers; updated 2; unchanged 1" in done.output
    assert "1 consent change recorded; 1 tag added" in done.output
    again = run(str(write(tmp_path / "third.csv", rows)), "--region", "DE", "--map", "Mobile=phone")
    assert "created 0 customers; updated 0; unchanged 3" in again.output, again.output


@pytest.mark.parametrize("engine", ENGINES)
def test_batches_written_while_the_next_is_read_end_as_one_batch_would(
    engine: str, fresh_databases: FreshDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of 7 rows, the event loop turning after every row: a later batch's repeat of a patient
    finds the customer an earlier batch created, and the tables end as one batch leaves them."""
    path = write(tmp_path / "patients.csv", clinic_list(100))
    whole_url, batched_url = fresh_databases.url(engine), fresh_databases.url(engine)
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", whole_url)
    whole = run(str(path), "--region", "DE")
    monkeypatch.setattr(importing, "BATCH_ROWS", 7)
    monkeypatch.setattr(importing, "YIELD_EVERY_ROWS", 1)
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", batched_url)
    batched = run(str(path), "--region", "DE")
    assert batched.exit_code == 0, batched.output
    # The two repeats now find their patient stored by an earlier batch (updated) instead of earlier in
    # the same batch (merged); the ledger then keeps both answers, where one batch keeps the last word.
    assert "created 88 customers; updated 0; unchanged 0; 2 rows merged" in whole.output, whole.output
    assert "created 88 customers; updated 2; unchanged 0; 0 rows merged" in batched.output, batched.output
    expected, held = asyncio.run(tables(whole_url)), asyncio.run(tables(batched_url))
    assert (held["customers"], held["phones"]) == (expected["customers"], expected["phones"])
    assert sorted(held["current"]) == sorted(expected["current"])
    assert sorted(held["tags"]) == sorted(expected["tags"])
    assert len(held["records"]) == len(expected["records"]) + 2


def phone_numbers_of_a_process_that_dies(numbers: list[tuple[str, str]], default_region: str) -> list[Any]:
    """Stands for a worker process killed while reading numbers (out of memory, say)."""
    os._exit(1)


@pytest.mark.parametrize("worker", ["reads", "dies", "cannot start"])
def test_phone_numbers_read_ahead_in_another_process_end_as_read_here(
    worker: str,
    fresh_databases: FreshDatabases,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A big file's numbers are read a batch ahead by a worker process (here every file, in batches of 7):
    the counts, the error file and the tables end as when they are read in the importing process; and
    if the worker dies or cannot start, the numbers are read here and nothing is lost."""
    path = write(tmp_path / "patients.csv", clinic_list(100))
    here_url, ahead_url = fresh_databases.url("sqlite"), fresh_databases.url("sqlite")
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", here_url)
    here = run(str(path), "--region", "DE")
    here_errors = (tmp_path / "patients.errors.csv").read_text(encoding="utf-8-sig")

    pools: list[Any] = []

    class CountedPool(importing.ProcessPoolExecutor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pools.append(self)
            if worker == "cannot start":
                raise OSError("no /dev/shm for the pool's semaphores")
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(importing, "ProcessPoolExecutor", CountedPool)
    monkeypatch.setattr(importing, "AHEAD_FROM_BYTES", 0)
    monkeypatch.setattr(importing, "_cores", lambda: 2)
    monkeypatch.setattr(importing, "BATCH_ROWS", 7)
    if worker == "dies":
        monkeypatch.setattr(importing, "normalise_phones", phone_numbers_of_a_process_that_dies)
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", ahead_url)
    ahead = run(str(path), "--region", "DE")
    assert ahead.exit_code == 0, ahead.output
    assert len(pools) == 1
    assert ("reading them here" in caplog.text) == (worker == "dies")
    assert ("no worker process (no /dev/shm" in caplog.text) == (worker == "cannot start")
    # Batches of 7 here as well: the two repeats are found stored by an earlier batch (updated).
    assert "created 88 customers; updated 2; unchanged 0; 0 rows merged" in ahead.output, ahead.output
    assert "created 88 customers; updated 0; unchanged 0; 2 rows merged" in here.output, here.output
    assert (tmp_path / "patients.errors.csv").read_text(encoding="utf-8-sig") == here_errors
    expected, held = asyncio.run(tables(here_url)), asyncio.run(tables(ahead_url))
    assert (held["customers"], held["phones"]) == (expected["customers"], expected["phones"])
    assert sorted(held["current"]) == sorted(expected["current"])
    assert sorted(held["tags"]) == sorted(expected["tags"])


@pytest.mark.parametrize("ahead", [False, True], ids=["read here", "read ahead"])
def test_a_number_without_a_country_code_is_read_as_one_of_its_rows_country(
    ahead: bool, fresh_databases: FreshDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clinic group's list holds patients of several countries: a national number is read as one of the
    row's own country when the row gives one, else of the business's (--region), read here or ahead."""
    path = tmp_path / "group.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(
            [
                ["Name", "Mobile", "Country"],
                ["Lena Berger", "0664 1234567", "AT"],
                ["Noah Keller", "079 123 45 67", "ch"],
                ["Amelia Clarke", "07911 123456", "GB"],
                ["Jonas Weber", "0151 23456789", ""],
                ["Sofia Rossi", "+39 312 345 6789", "DE"],
                ["Mia Brunner", "0151 98765432", "CH"],  # a Swiss resident's German mobile
                ["Oliver Hughes", "07400 123456", "UK"],  # GB, as people write it
                ["Anna Huber", "0664 12", "AT"],  # neither Austrian nor German
                ["Piotr Nowak", "+48 512 345 678", ""],  # a Polish mobile: no country said, no language
            ]
        )
    if ahead:
        monkeypatch.setattr(importing, "AHEAD_FROM_BYTES", 0)
        monkeypatch.setattr(importing, "_cores", lambda: 2)
    url = fresh_databases.url("sqlite")
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", url)
    result = run(str(path), "--region", "DE")
    assert result.exit_code == 0, result.output
    assert "created 8 customers" in result.output, result.output
    assert asyncio.run(tables(url))["phones"] == {
        "+436641234567",
        "+41791234567",
        "+447911123456",
        "+4915123456789",
        "+393123456789",
        "+4915198765432",
        "+447400123456",
        "+48512345678",
    }
    errors = (tmp_path / "group.errors.csv").read_text(encoding="utf-8-sig")
    assert "'0664 12' is not a valid AT number" in errors, errors

    # Without a language of its own, a patient of another country reads that country's (the walk saw British
    # and French patients of a German clinic stored as German readers); the business's own read its language.
    async def languages() -> dict[str, str]:
        database = Database.connect(url)
        try:
            async with database.read_sessions() as session:
                return dict((await session.execute(select(Customer.name, Customer.locale))).tuples().all())
        finally:
            await database.dispose()

    from switchboard.settings import Settings

    business = Settings(database_url=url).customer_language
    assert asyncio.run(languages()) == {
        "Lena Berger": "de",
        "Noah Keller": "de",
        "Amelia Clarke": "en",
        "Jonas Weber": business,
        "Sofia Rossi": business,  # the row says DE, whatever her number's country
        "Mia Brunner": "de",
        "Oliver Hughes": "en",
        "Piotr Nowak": business,  # a number's country says nothing of the language its owner reads
    }


UNGUARDED_PROGRAM = """
import asyncio, sys
sys.path.insert(0, {repo!r})
from storage.database import Database
from switchboard import customer_import as importing

importing.AHEAD_FROM_BYTES = 0
importing._cores = lambda: 2


async def main():
    database = Database.connect({url!r})
    options = importing.ImportOptions(
        path=importing.Path({path!r}), default_region="DE", timezone="Europe/Berlin", locale="de"
    )
    print((await importing.import_customers(database, options)).summary())
    await database.dispose()


asyncio.run(main())  # no `if __name__ == "__main__":`: each process it starts runs this line again
"""


def test_a_program_without_a_main_guard_imports_its_file_once(
    fresh_databases: FreshDatabases, tmp_path: Path
) -> None:
    """Python's spawn runs an unguarded program again in the phone-number reader; that second run is
    stopped before it imports anything, and the program's own run reads the numbers itself."""
    url = fresh_databases.url("sqlite")
    path = write(tmp_path / "patients.csv", clinic_list(100))
    program = tmp_path / "unguarded.py"
    repo = str(Path(__file__).resolve().parents[2])
    program.write_text(UNGUARDED_PROGRAM.format(repo=repo, url=url, path=str(path)))
    done = subprocess.run(
        [sys.executable, str(program)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("created 88 customers") == 1, done.stdout
    assert "reading them here" in done.stderr, done.stderr
    held = asyncio.run(tables(url))
    assert held["customers"] == 88 and len(held["audit"]) == 1


@pytest.mark.parametrize("engine", ENGINES)
def test_a_batch_that_fails_to_write_stops_the_import_and_keeps_the_batches_before_it(
    engine: str, fresh_databases: FreshDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = fresh_databases.url(engine)
    path = write(tmp_path / "patients.csv", [r for r in clinic_list(40) if r[3] != "123"][:30])
    monkeypatch.setattr(importing, "BATCH_ROWS", 10)
    monkeypatch.setattr(importing, "YIELD_EVERY_ROWS", 1)
    calls = 0
    original = CustomerImport._apply

    async def second_fails(self: CustomerImport, connection: Any, rows: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            await original(self, connection, rows)
            raise ConnectionError("the database went away")
        return await original(self, connection, rows)

    monkeypatch.setattr(CustomerImport, "_apply", second_fails)

    asyncio.run(import_fails(url, path, ConnectionError, "went away"))
    held = asyncio.run(tables(url))
    # The second batch failed while the third was read: the error surfaced when the third was handed over,
    # which was never written. The first batch stays; the second rolled back; no audit entry.
    assert (calls, held["customers"], held["audit"]) == (2, 10, [])
    monkeypatch.setattr(CustomerImport, "_apply", original)
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", url)
    again = run(str(path), "--region", "DE")
    assert again.exit_code == 0, again.output
    assert asyncio.run(tables(url))["customers"] == 30 - 1


@pytest.mark.parametrize("engine", ENGINES)
def test_a_file_that_fails_to_read_while_a_batch_is_written_stops_cleanly(
    engine: str,
    fresh_databases: FreshDatabases,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = fresh_databases.url(engine)
    path = write(tmp_path / "patients.csv", [r for r in clinic_list(40) if r[3] != "123"][:30])
    monkeypatch.setattr(importing, "BATCH_ROWS", 10)
    monkeypatch.setattr(importing, "YIELD_EVERY_ROWS", 1)
    real_read_row = importing.read_row

    def breaks_at_line_14(line: int, *args: Any) -> Any:
        if line == 14:  # the first batch (lines 2-11) is being written meanwhile
            raise RuntimeError("the disk went away")
        return real_read_row(line, *args)

    monkeypatch.setattr(importing, "read_row", breaks_at_line_14)

    asyncio.run(import_fails(url, path, RuntimeError, "the disk went away"))
    assert "never retrieved" not in caplog.text
    # The batch in hand was written whole or not at all.
    assert asyncio.run(tables(url))["customers"] in (0, 10)
    monkeypatch.setattr(importing, "read_row", real_read_row)
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", url)
    assert run(str(path), "--region", "DE").exit_code == 0
    assert asyncio.run(tables(url))["customers"] == 30 - 1


def test_a_dry_run_on_sqlite_leaves_the_database_free_for_other_writers(
    fresh_databases: FreshDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check on the upload page runs while agents work: on SQLite it runs on a scratch copy, so a
    webhook or a Slack command writing meanwhile gets the write lock at once instead of waiting it out."""
    url = fresh_databases.url("sqlite")
    database_file = Path(make_url(url).database or "")
    rows = clinic_list(60)
    distinct = {r[0] for r in rows if r[3] != "123"}
    path = write(tmp_path / "patients.csv", rows)
    monkeypatch.setattr(importing, "BATCH_ROWS", 10)
    monkeypatch.setattr(importing, "YIELD_EVERY_ROWS", 1)
    before = sorted(p.name for p in database_file.parent.iterdir())
    writes: list[str] = []

    def another_writer(done: int, size: int) -> None:
        other = sqlite3.connect(database_file, timeout=0.2, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            writes.append("ok")
        except sqlite3.OperationalError as error:
            writes.append(str(error))
        finally:
            other.close()

    async def dry_run() -> importing.ImportResult:
        database = Database.connect(url)
        try:
            options = ImportOptions(path, "DE", "Europe/Berlin", "de", dry_run=True)
            return await importing.import_customers(database, options, another_writer)
        finally:
            await database.dispose()

    result = asyncio.run(dry_run())
    assert len(writes) >= 5 and set(writes) == {"ok"}, writes
    assert result.summary().startswith(
        f"dry run, nothing written: 60 rows read; would create {len(distinct)} customers"
    )
    assert asyncio.run(tables(url))["customers"] == 0
    # The scratch copy is gone, with its WAL.
    assert sorted(p.name for p in database_file.parent.iterdir()) == before


def test_a_dry_run_that_cannot_make_its_scratch_copy_checks_the_database_itself(
    fresh_databases: FreshDatabases,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = fresh_databases.url("sqlite")
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", url)
    path = write(tmp_path / "patients.csv", clinic_list(30))

    def disk_full(database_url: str) -> Any:
        raise BackupError("cannot write a scratch copy beside the database: No space left on device")

    monkeypatch.setattr(storage_importing, "scratch_copy", disk_full)
    dry = run(str(path), "--region", "DE", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.output.startswith("dry run, nothing written: 30 rows read; would create 26 customers")
    assert "holding its write lock: cannot write a scratch copy" in caplog.text
    assert asyncio.run(tables(url))["customers"] == 0


async def country_of(url: str, ref: str) -> str | None:
    database = Database.connect(url)
    try:
        async with database.read_sessions() as session:
            return await session.scalar(select(Customer.country).where(Customer.external_ref == ref))
    finally:
        await database.dispose()


async def customers_by_ref(url: str) -> dict[str, tuple[str | None, str | None, str, set[str]]]:
    """Each customer's number, email, time zone and the channels they have a consent on, by their ref."""
    database = Database.connect(url)
    try:
        async with database.read_sessions() as session:
            consents = (
                await session.execute(select(CustomerConsent.customer_id, CustomerConsent.channel))
            ).all()
            rows = await session.execute(
                select(
                    Customer.id, Customer.external_ref, Customer.phone_e164, Customer.email, Customer.timezone
                )
            )
            return {
                r.external_ref: (r.phone_e164, r.email, r.timezone, {c for i, c in consents if i == r.id})
                for r in rows
            }
    finally:
        await database.dispose()


@pytest.mark.parametrize("engine", ENGINES)
def test_a_row_whose_phone_is_no_number_is_imported_by_its_email_and_listed_to_fix(
    engine: str, fresh_databases: FreshDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its SMS consent is left out with the number (it could otherwise land on a number already stored), and a
    foreign mobile's customer gets that country's time zone, not the business's."""
    url = fresh_databases.url(engine)
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", url)
    rows = [
        ["P1", "Greta", "Gruber", "0151 555", "greta@example.at", "yes", "yes", "", ""],
        ["P2", "Hans", "Huber", "+43 664 1234567", "", "yes", "", "", ""],
        ["P3", "Ida", "Ilse", "0151 23456789", "", "", "", "", ""],
        ["P4", "Jan", "Jansen", "0151 555", "", "", "", "", ""],
        # One patient twice: the earlier row's number is kept, with its zone, as a stored patient's would be,
        # and the summary names the later line, whose number is not imported.
        ["P5", "Mia", "Meyer", "+44 20 7946 0958", "mia@example.de", "", "", "", ""],
        ["P5", "Mia", "Meyer", "0151 34567890", "mia@example.de", "", "", "", ""],
        # A row without a patient number, found by its number: it renames P6 but does not take its email.
        ["P6", "Jürgen", "Müller", "+49 151 22152791", "juergen@example.de", "", "", "", ""],
        ["", "Jürgen", "Müller-Lang", "+49 151 22152791", "jm@example.de", "", "", "", ""],
    ]
    path = write(tmp_path / "patients.csv", rows)
    monkeypatch.setenv("SWITCHBOARD_BUSINESS_TIMEZONE", "Europe/Berlin")
    done = run(str(path), "--region", "DE")
    assert done.exit_code == 0, done.output
    assert "created 5 customers" in done.output and "2 rows merged into an earlier row" in done.output
    assert "1 row rejected and 1 row imported in part, each with its reason in" in done.output
    assert (
        "lines 7, 9 name another phone number, email or patient number than the customer has (on file or from an "
        "earlier line): the one held was kept, the other not imported" in flat(done.output)
    )

    held = asyncio.run(customers_by_ref(url))
    assert held == {
        "P1": (None, "greta@example.at", "Europe/Berlin", {"email"}),
        "P2": ("+436641234567", None, "Europe/Vienna", {"sms"}),
        "P3": ("+4915123456789", None, "Europe/Berlin", set()),
        "P5": ("+442079460958", "mia@example.de", "Europe/London", set()),
        "P6": ("+4915122152791", "juergen@example.de", "Europe/Berlin", set()),
    }
    assert asyncio.run(country_of(url, "P5")) == "GB"  # the kept number's country, not the dropped one's
    errors = list(csv.reader((tmp_path / "patients.errors.csv").open(encoding="utf-8-sig")))
    assert [(e[0], e[1]) for e in errors[1:]] == [
        (
            "2",
            "imported without its phone number or its phone consent: '0151 555' is not a valid DE number: check "
            "its digits (a number from another country needs its +code)",
        ),
        (
            "5",
            "'0151 555' is not a valid DE number: check its digits (a number from another country needs its +code)",
        ),
    ]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_consent_refresh_by_patient_number_stands_where_the_address_is_on_file(
    engine: str, fresh_databases: FreshDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A yes given without its address (an email yes in a row with only a mobile) stands when the patient has
    that address on file; without one anywhere it is left out (it would apply to whatever address is added
    later), and the summary says so. The same for a preferred channel."""
    url = fresh_databases.url(engine)
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", url)
    first = [
        ["R-1", "Rita", "Rau", "0151 41000001", "rita@example.de", "", "", "", ""],
        ["R-2", "Sven", "Saar", "", "sven@example.de", "", "", "", ""],
    ]
    assert run(str(write(tmp_path / "patients.csv", first)), "--region", "DE").exit_code == 0
    refresh = tmp_path / "consents.csv"  # matched by patient number; each row has one contact of its own
    refresh.write_text(
        "Patient No,Name,Mobile,E-Mail,SMS consent,Email consent,Preferred channel\n"
        "R-1,Rita Rau,0151 41000001,,yes,yes,email\n"
        "R-2,Sven Saar,,sven@example.de,yes,,sms\n"
        "R-3,Tom Neu,,tom@example.de,yes,,\n",
        encoding="utf-8",
    )
    done = run(str(refresh), "--region", "DE")
    assert done.exit_code == 0, done.output
    assert "3 yeses or preferred channels were left out" in done.output, done.output
    held = asyncio.run(customers_by_ref(url))
    assert held["R-1"][3] == {"sms", "email"}, "Rita's address is on file: her email yes stands"
    assert held["R-2"][3] == set() and held["R-3"][3] == set(), "no number anywhere: no SMS yes"
    preferred = asyncio.run(preferred_channels(url))
    assert preferred == {"R-1": "email"}, preferred


async def preferred_channels(url: str) -> dict[str, str]:
    database = Database.connect(url)
    try:
        async with database.read_sessions() as session:
            rows = await session.execute(
                select(Customer.external_ref, CommunicationPreference.preferred_channel)
                .join(CommunicationPreference, CommunicationPreference.customer_id == Customer.id)
                .where(CommunicationPreference.preferred_channel.is_not(None))
            )
            return {ref: channel for ref, channel in rows.all()}
    finally:
        await database.dispose()


@pytest.mark.parametrize("engine", ENGINES)
def test_an_imported_list_brings_no_new_customers_nor_opt_outs_into_the_analytics(
    engine: str, fresh_databases: FreshDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clinic's long-standing patients, with the "no"s they said before, are neither new customers nor
    opt-outs of the import's day (the walk saw imported patients spike both); a patient who joins through
    the product and a STOP do count."""
    from datetime import UTC, datetime, timedelta

    from reports.periods import PeriodSpec
    from reports.query import MetricQuery, run_query

    url = fresh_databases.url(engine)
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", url)
    # Undated answers are recorded as of the import: its day's ledger holds these "no"s.
    undated = [
        [f"U{n}", f"Undated{n}", "Test", f"0152 {30_000_000 + n}", "", "no", "", "", ""] for n in range(5)
    ]
    done = run(str(write(tmp_path / "patients.csv", clinic_list(40) + undated)), "--region", "DE")
    assert done.exit_code == 0, done.output
    held = asyncio.run(tables(url))
    assert held["customers"] > 30
    assert [status for _, channel, status in held["current"] if channel == "sms"].count("opted_out") >= 5

    async def figures() -> tuple[float, float]:
        database = Database.connect(url)
        try:
            now = datetime.now(UTC) + timedelta(minutes=1)
            period = PeriodSpec.between(now.date() - timedelta(days=1), now.date())
            totals = []
            for metric in ("new_customers", "opt_outs"):
                result = await run_query(database, MetricQuery((metric,), period), now=now, business_tz="UTC")
                totals.append(result.series[0].total or 0.0)
            return totals[0], totals[1]
        finally:
            await database.dispose()

    async def join_and_stop() -> None:
        database = Database.connect(url)
        try:
            async with database.sessions() as session:
                walked_in = Customer(name="New Patient", phone_e164="+4915199999999")
                session.add(walked_in)
                await session.flush()
                session.add(ConsentRecord(customer_id=walked_in.id, channel="sms", status="opted_out",
                                          source="sms_keyword", detail="STOP"))  # fmt: skip
                await session.commit()
        finally:
            await database.dispose()

    async def joined_since_yesterday() -> int:
        from sqlalchemy import func, select

        from domain.campaigns.model import Audience
        from storage.campaigns import audience_conditions

        audience = Audience(created_after=datetime.now(UTC) - timedelta(days=1))
        database = Database.connect(url)
        try:
            async with database.read_sessions() as session:
                query = select(func.count()).select_from(Customer).where(*audience_conditions(audience))
                return int(await session.scalar(query) or 0)
        finally:
            await database.dispose()

    assert asyncio.run(figures()) == (0.0, 0.0)
    assert asyncio.run(joined_since_yesterday()) == 0  # a campaign to "customers since" leaves them out too
    asyncio.run(join_and_stop())
    assert asyncio.run(figures()) == (1.0, 1.0)
    assert asyncio.run(joined_since_yesterday()) == 1
