"""Dashboard page benchmark: every page's latency from `switchboard serve` in another process; one JSON line.

Run: .venv/bin/python bench/pages.py [--quick | --full]

Seeds (cached under /tmp, shared with bench/kpi_query.py) 1,500 customers with --quick, 50,000 (~2.5M
messages, ~270k orders) by default and the issue's 200,000 (~10M messages, ~1M orders) with --full; builds the
rollups and the daily insights as the worker would, saves one report, then signs in as the administrator and
asks every dashboard page in turn (one warm-up, then ROUNDS timed requests each, one at a time). The baseline
is the same server's `/healthz` over the same connection, in the same run.

Prints: {"pages": {path: {"p50_ms", "p95_ms"}}, "max_p95_ms", "slowest", "target_p95_ms": 300,
"baseline": {"healthz": {...}}, "rows": {"customers", "messages", "orders"}, "mode"}.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select

from api.auth import SESSION_COOKIE, session_token
from api.pages.common import SECTIONS
from bench._common import child, free_port, wait_http
from bench.kpi_query import PLANS, TZ, seeded_copy
from reports.business_format import BusinessFormat
from reports.daily_insight import record_daily_insights
from reports.rollups import rebuild_rollups
from storage import migrate
from storage.database import Database
from storage.models import Customer, CustomerCommunication, CustomReport, Order, StaffUser
from storage.unit_of_work import SqlUnitOfWork
from switchboard.settings import Settings

ROUNDS = {"quick": 5, "default": 20, "full": 20}
TARGET_P95_MS = 300.0
ADMIN = "admin@northwind.example"
REPORT = {
    "query": {
        "metrics": ["revenue"],
        "period": {"kind": "last_n_days", "n": 30},
        "grain": "day",
        "dimensions": ["location"],
        "filters": [],
        "comparison": "previous_period",
    },
    "chart": {"kind": "auto", "sort": "largest", "top": None},
}


def page_paths() -> list[str]:
    paths = ["/", "/communication/", "/analytics/"]
    for section, (_, pages) in SECTIONS.items():
        paths += [f"/{section}/{p.slug}" for p in pages]
    return [
        *paths,
        "/analytics/reports/bench-revenue",
        "/analytics/reports/new",
        "/communication/campaigns/new",
        "/communication/templates/welcome/sms/en",
        "/communication/chat/canned",
    ]


async def prepare(path: Path) -> tuple[dict[str, int], int]:
    """Rollups and daily insights as the worker keeps them, one saved report; returns row counts and the
    administrator's staff id."""
    url = f"sqlite+aiosqlite:///{path}"
    await migrate.upgrade(url)  # the cached seed may be from an older schema
    database = Database.connect(url)
    try:
        await rebuild_rollups(database, business_tz=TZ)
        settings = Settings(database_url=url, business_timezone=TZ)  # type: ignore[arg-type]
        await record_daily_insights(
            database,
            lambda: SqlUnitOfWork(database),
            datetime.now(UTC),
            BusinessFormat(settings.business_timezone, settings.business_locale, settings.business_currency),
        )
        async with SqlUnitOfWork(database) as uow:
            uow.session.add(
                CustomReport(slug="bench-revenue", name="Bench revenue", shared=True, definition=REPORT)
            )
            await uow.commit()
        async with database.read_sessions() as session:
            rows = {
                "customers": int(await session.scalar(select(func.count()).select_from(Customer)) or 0),
                "messages": int(
                    await session.scalar(select(func.count()).select_from(CustomerCommunication)) or 0
                ),
                "orders": int(await session.scalar(select(func.count()).select_from(Order)) or 0),
            }
            admin = await session.scalar(select(StaffUser.id).where(StaffUser.email == ADMIN))
        assert admin is not None, "the seed has an administrator"
        return rows, int(admin)
    finally:
        await database.dispose()


def timed(connection: http.client.HTTPConnection, path: str, cookie: str, rounds: int) -> list[float]:
    def get() -> float:
        started = time.perf_counter()
        connection.request("GET", path, headers={"Cookie": cookie})
        answer = connection.getresponse()
        answer.read()
        if answer.status != 200:
            raise RuntimeError(f"{path} answered {answer.status}")
        return (time.perf_counter() - started) * 1000

    get()  # warm-up: compiled statements, chart cache
    return [get() for _ in range(rounds)]


def figures(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50_ms": round(statistics.median(ordered), 1), "p95_ms": round(p95, 1)}


def main(mode: str) -> dict[str, object]:
    plan = PLANS[mode]
    with tempfile.TemporaryDirectory() as workdir:
        path = asyncio.run(seeded_copy(plan, Path(workdir)))
        rows, admin = asyncio.run(prepare(path))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            "SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{path}",
            "SWITCHBOARD_PUBLIC_URL": base,
            "SWITCHBOARD_SANDBOX": "0",
            "SWITCHBOARD_WORKER_IN_PROCESS": "0",
            "SWITCHBOARD_BUSINESS_TIMEZONE": TZ,
        }
        secret = Settings(**{"database_url": env["SWITCHBOARD_DATABASE_URL"]}).session_secret  # type: ignore[arg-type]
        if "SWITCHBOARD_SESSION_SECRET" in os.environ:
            env["SWITCHBOARD_SESSION_SECRET"] = os.environ["SWITCHBOARD_SESSION_SECRET"]
        cookie = f"{SESSION_COOKIE}={session_token(secret, admin, datetime.now(UTC))}"
        log = Path(tempfile.gettempdir()) / f"switchboard-bench-pages-{mode}-serve.log"
        with child(["-m", "switchboard.cli", "serve", "--port", str(port)], env, log):
            wait_http(f"{base}/healthz", 900)  # a large database takes serve a while to check on start
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            baseline = figures(timed(connection, "/healthz", cookie, ROUNDS[mode]))
            pages = {p: figures(timed(connection, p, cookie, ROUNDS[mode])) for p in page_paths()}
            connection.close()
    slowest = max(pages, key=lambda p: pages[p]["p95_ms"])
    return {
        "bench": "pages",
        "mode": mode,
        "pages": pages,
        "max_p95_ms": pages[slowest]["p95_ms"],
        "slowest": slowest,
        "target_p95_ms": TARGET_P95_MS,
        "met": pages[slowest]["p95_ms"] <= TARGET_P95_MS,
        "baseline": {"healthz": baseline},
        "rows": rows,
        "rounds": ROUNDS[mode],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="1,500 customers, 5 rounds (under a minute)")
    group.add_argument("--full", action="store_true", help="200,000 customers (~10M messages)")
    args = parser.parse_args()
    chosen = "quick" if args.quick else "full" if args.full else "default"
    print(json.dumps(main(chosen)))
