"""Customer import benchmark: `switchboard import customers` on a generated CSV against a bare insert.

Writes a CSV of N customers as a clinic's export looks (reference, first and last name, a German mobile
number written nationally, email, SMS and email consent with a date, tags; 1 % of rows repeat an earlier
customer, 1 % are malformed), imports it into a fresh SQLite database through the same code the command
runs, and, as the baseline in the same run, inserts the same customers prebuilt into another fresh database
with one executemany per 5,000 rows. Prints one JSON line: `rows_per_s` (file rows, all of import's work)
and `baseline_rows_per_s`, with their ratio and what the import counted.

Run: .venv/bin/python bench/import.py [--quick] [--rows N]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import random
import resource
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

from storage import migrate
from storage.database import Database
from storage.models import Customer
from switchboard.customer_import import ImportOptions, import_customers

FULL_ROWS = 1_000_000
QUICK_ROWS = 100_000
FIRST = ("Anna", "Ben", "Cara", "David", "Elif", "Finn", "Greta", "Hannah", "Ivan", "Jonas", "Lena", "Mia")
LAST = ("Schmidt", "Müller", "Meyer", "Weber", "Wagner", "Becker", "Hoffmann", "Schulz", "Koch", "Yılmaz")


def write_csv(path: Path, rows: int, seed: int = 7) -> int:
    """The export; returns how many of its rows are malformed (each must end in the error file)."""
    rng = random.Random(seed)
    malformed = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(
            [
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
        )
        for index in range(rows):
            number = index
            if index > 100 and rng.random() < 0.01:
                number = rng.randrange(index)  # the same customer again, found by the reference
            mobile = f"015{rng.choice('1279')} {10_000_000 + number * 7919 % 89_999_999}"
            email = f"patient{number}@example.de"
            if rng.random() < 0.01:
                malformed += 1
                mobile, email = "12", "not-an-email"
            out.writerow(
                [
                    f"P{number:07d}",
                    FIRST[number % len(FIRST)],
                    LAST[number % len(LAST)],
                    mobile,
                    email,
                    rng.choice(("yes", "yes", "no", "")),
                    rng.choice(("yes", "no", "")),
                    f"2025-{1 + number % 12:02d}-{1 + number % 28:02d}",
                    rng.choice(("", "", "recall", "vip;recall", "new")),
                ]
            )
    return malformed


async def fresh_database(folder: Path, name: str) -> Database:
    url = f"sqlite+aiosqlite:///{folder / name}"
    await migrate.upgrade(url)
    return Database.connect(url)


async def bare_insert(database: Database, rows: int) -> float:
    """The same customers, prebuilt, inserted with one executemany per 5,000 rows."""
    values = [
        {
            "external_ref": f"P{n:07d}",
            "name": f"{FIRST[n % len(FIRST)]} {LAST[n % len(LAST)]}",
            "phone_e164": f"+49151{10_000_000 + n}",
            "email": f"patient{n}@example.de",
            "timezone": "Europe/Berlin",
            "locale": "de",
            "country": "DE",
            "segment": "standard",
        }
        for n in range(rows)
    ]
    started = time.perf_counter()
    for start in range(0, rows, 5_000):
        async with database.engine.begin() as connection:
            await connection.execute(insert(Customer), values[start : start + 5_000])
    return time.perf_counter() - started


async def main(rows: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        path = folder / "patients.csv"
        malformed = write_csv(path, rows)
        size_mb = path.stat().st_size / 1e6
        # The import first: the baseline's prebuilt rows would otherwise set the process's peak memory.
        database = await fresh_database(folder, "import.db")
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        options = ImportOptions(path=path, default_region="DE", timezone="Europe/Berlin", locale="de")
        started = time.perf_counter()
        result = await import_customers(database, options)
        seconds = time.perf_counter() - started
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        await database.dispose()
        baseline_db = await fresh_database(folder, "baseline.db")
        baseline_seconds = await bare_insert(baseline_db, rows)
        await baseline_db.dispose()
    counts = result.counts
    return {
        "rows_per_s": round(rows / seconds),
        "baseline_rows_per_s": round(rows / baseline_seconds),
        "ratio_to_baseline": round(baseline_seconds / seconds, 3),
        "rows": rows,
        "file_mb": round(size_mb, 1),
        "seconds": round(seconds, 2),
        "created": counts.created,
        "updated": counts.updated,
        "unchanged": counts.unchanged,
        "merged_in_file": counts.merged_in_file,
        "rejected": result.rejected,
        "rejected_expected": malformed,
        "consents_recorded": counts.consents_recorded,
        "tags_added": counts.tags_added,
        "peak_rss_growth_mb": round((rss_after - rss_before) / 1024),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:,} rows, under 60 s")
    parser.add_argument("--rows", type=int, help=f"rows in the file (default {FULL_ROWS:,})")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.rows or (QUICK_ROWS if args.quick else FULL_ROWS)))))
