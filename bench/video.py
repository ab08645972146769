"""Benchmark: video consultations at 10,000 a day, through `switchboard serve`, a `switchboard worker` beside it
(the scale-out topology) and the provider sandbox.

The database holds DAYS days of consultations from today, PER_DAY a day (each with its appointment and its
five-minute time claims), spread over CLINICIANS clinicians working around the clock; reminders already
due when the run starts are recorded, so only those coming due during it are sent (as in a running clinic).

1. reminder due to provider acceptance: probes (consultations whose two-hour reminder comes due while the
   worker runs), one every quarter second, from that moment to the SMS stand-in accepting the message (the
   watcher looks every second; the notification rules and the dispatcher send it); and a burst of BURST due
   at once (bookings start on the quarter hour, so at this volume a quarter hour's reminders come due
   together), p50 and p99 of each.
2. slot search: a busy clinician's free start times over 14 days (domain.video.booking.find_free_slots
   against the database, the server stopped), against a bare read of the same clinician's claims.
3. redirect: `/v/TOKEN` over HTTP for consultations whose window is open (each records a join and
   redirects into the room), p99.

Baselines measured in the same run: `/healthz` p50 and p99 (for 1 and 3) and the bare claims read (for 2).
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import secrets
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import child, free_port, percentile, wait_http
from domain.video.booking import find_free_slots
from storage import migrate
from storage.database import Database
from storage.models import AutomatedNotification, MessageTemplate
from storage.models.base import sqlite_timestamp
from storage.models.video import ClinicianTimeClaim
from storage.seeding.catalogue import notification_rows, template_rows
from storage.video_booking import SqlVideoBookingUnitOfWork
from switchboard.settings import Settings

PER_DAY = 10_000
CLINICIANS = 250
LENGTH_MINUTES = 15
SERVICE_ID = 1
TZ = "UTC"
#: Each reminder is recorded under "video-reminder:{id}:{version}:{minutes}" (domain.video.reminders).
REMINDERS = (1440, 120)
#: Probes come due from this long after they are added (to the running server), one every PROBE_GAP.
PROBE_START = timedelta(seconds=3)
PROBE_GAP = timedelta(seconds=0.25)
MAX_PROBES = 1000
#: A quarter hour's reminders at 10,000 consultations a day: two reminders each, all due at once.
BURST = 2 * PER_DAY * LENGTH_MINUTES // (24 * 60)


APPOINTMENT_INSERT = (
    "INSERT INTO appointments (id, customer_id, service_id, staff_id, location_id, kind, status, scheduled_at, "
    "duration_minutes, price_minor, currency, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
)
CONSULTATION_INSERT = (
    "INSERT INTO video_consultations (id, appointment_id, customer_id, staff_id, status, room_url, scheduled_at, "
    "created_at, duration_minutes, room_name, link_token, clinician_token, version, started_at, patient_joined_at, "
    "clinician_joined_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
EVENT_INSERT = (
    "INSERT INTO business_events (event_type, idempotency_key, customer_id, payload, occurred_at, processed_at) "
    "VALUES (?, ?, ?, '{}', ?, ?)"
)
_STAMPS: dict[datetime, str] = {}


def ts(moment: datetime) -> str:
    """UtcDateTime's SQLite text for `moment` (a bench has few distinct times: each is formatted once)."""
    text = _STAMPS.get(moment)
    if text is None:
        text = _STAMPS[moment] = sqlite_timestamp(moment)
    return text


def link_token(kind: str, consultation_id: int) -> str:
    """Unguessable as a real one, but in id order, so the unique index takes each row at its end."""
    return f"{kind}{consultation_id:09d}{secrets.token_urlsafe(12)}"


def phone(n: int) -> str:
    return f"+4916{n:09d}"


def day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def populate(path: Path, days: int, now: datetime) -> dict[str, Any]:
    """The clinic's rows with plain sqlite3 (executemany in one transaction: the fast way to fill SQLite).

    Times are stored as UtcDateTime stores them (naive UTC text with microseconds)."""
    rng = random.Random(42)
    created = now - timedelta(days=3)
    db = sqlite3.connect(path, timeout=60)
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA foreign_keys = OFF")
    db.execute("PRAGMA cache_size = -400000")  # 400 MB: the unique random tokens' indexes stay in memory
    db.execute("PRAGMA temp_store = MEMORY")
    loaded = ("appointments", "video_consultations", "clinician_time_claims", "business_events")
    indexes = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN (?, ?, ?, ?)",
        loaded,
    ).fetchall()
    for name, _ in indexes:  # built once after the load instead of row by row
        db.execute(f'DROP INDEX "{name}"')
    with db:
        db.execute(
            "INSERT INTO locations (id, code, name, country, timezone, created_at) VALUES (1, 'ONLINE', "
            "'Online', 'DE', 'UTC', ?)",
            (ts(created),),
        )
        db.execute(
            "INSERT INTO services (id, code, name, kind, duration_minutes, price_minor, currency, "
            "reminder_minutes) VALUES (?, 'BENCH-VIDEO', 'Video consultation', 'video', ?, 5000, 'EUR', NULL)",
            (SERVICE_ID, LENGTH_MINUTES),
        )
        db.executemany(
            "INSERT INTO staff_users (id, email, name, role, location_id, timezone, locale, active, created_at, "
            "availability, chat_capacity) VALUES (?, ?, ?, 'agent', 1, 'UTC', 'en', 1, ?, 'away', 5)",
            [
                (n, f"clinician{n}@bench.example", f"Dr. Bench {n}", ts(created))
                for n in range(1, CLINICIANS + 1)
            ],
        )
        db.executemany(
            "INSERT INTO clinician_hours (staff_id, weekday, starts, ends) VALUES (?, ?, '00:00:00.000000', "
            "'23:59:00.000000')",
            [(n, w) for n in range(1, CLINICIANS + 1) for w in range(7)],
        )
        customers = 20_000 + MAX_PROBES
        db.executemany(
            "INSERT INTO customers (id, name, phone_e164, timezone, locale, segment, created_at, updated_at) "
            "VALUES (?, ?, ?, 'UTC', 'en', 'standard', ?, ?)",
            [(n, f"Patient {n}", phone(n), ts(created), ts(created)) for n in range(1, customers + 1)],
        )
        db.executemany(
            "INSERT INTO communication_preferences (customer_id, preferred_channel, updated_at) VALUES (?, 'sms', ?)",
            [(n, ts(created)) for n in range(1, customers + 1)],
        )
        slots_per_day = 24 * 60 // LENGTH_MINUTES
        appointment_rows, consultation_rows, claim_rows, event_rows = [], [], [], []
        around_now: list[tuple[datetime, str]] = []
        first = day_start(now)
        next_id = 1
        for day in range(days):
            # PER_DAY of the day's (slot, clinician) pairs, drawn without repeats: nobody is double-booked.
            pairs = rng.sample(range(slots_per_day * CLINICIANS), PER_DAY)
            for pair in pairs:
                slot, clinician = divmod(pair, CLINICIANS)
                at = first + timedelta(days=day, minutes=slot * LENGTH_MINUTES)
                customer = rng.randrange(1, 20_001)
                # Done before the link closed; under way (both joined) if begun five minutes ago or more, so the
                # no-show watcher has only its usual few a minute; booked after that (the redirects use them).
                status = "completed" if at <= now - timedelta(minutes=40) else "in_progress"
                if at > now - timedelta(minutes=5):
                    status = "scheduled"
                joined = ts(at) if status == "in_progress" else None
                token = link_token("p", next_id)
                appointment_rows.append(
                    (next_id, customer, SERVICE_ID, clinician, 1, "video", "completed" if status == "completed"
                     else "booked", ts(at), LENGTH_MINUTES, 5000, "EUR", ts(created))
                )  # fmt: skip
                consultation_rows.append(
                    (next_id, next_id, customer, clinician, status, f"https://meet.bench/sb-{next_id:08x}", ts(at),
                     ts(created), LENGTH_MINUTES, f"sb-{next_id:08x}", token, link_token("c", next_id), 1, joined,
                     joined, joined)
                )  # fmt: skip
                for step in range(0, LENGTH_MINUTES, 5):
                    claim_rows.append((clinician, ts(at + timedelta(minutes=step)), next_id))
                for minutes in REMINDERS:  # reminders whose time has come were recorded when it came
                    if status == "scheduled" and at - timedelta(minutes=minutes) <= now:
                        event_rows.append(
                            (
                                "video.reminder",
                                f"video-reminder:{next_id}:1:{minutes}",
                                customer,
                                ts(now),
                                ts(now),
                            )
                        )
                if now - timedelta(minutes=40) < at < now + timedelta(minutes=40):
                    around_now.append((at, token))
                next_id += 1
        bulk = next_id - 1
        db.executemany(APPOINTMENT_INSERT, appointment_rows)
        db.executemany(CONSULTATION_INSERT, consultation_rows)
        claim_rows.sort()  # in primary-key order
        db.executemany(
            "INSERT INTO clinician_time_claims (staff_id, starts_at, appointment_id) VALUES (?,?,?)",
            claim_rows,
        )
        db.executemany(EVENT_INSERT, event_rows)
    with db:
        for _, sql in indexes:
            db.execute(sql)
    db.execute("ANALYZE")
    db.close()
    return {"consultations": bulk, "claims": len(claim_rows), "around_now": around_now, "next_id": next_id}


def add_probes(path: Path, first_id: int, dues: list[datetime]) -> dict[str, datetime]:
    """Consultations whose two-hour reminder comes due at each of `dues` (their day-before one already sent),
    each for its own patient; {patient's phone: when their reminder is due}."""
    created = min(dues) - timedelta(days=3)
    appointments, consultations, events, due_by_phone = [], [], [], {}
    for n, due in enumerate(dues):
        consultation_id, customer = first_id + n, 20_001 + n
        at = due + timedelta(minutes=120)
        appointments.append(
            (consultation_id, customer, SERVICE_ID, None, 1, "video", "booked", ts(at), LENGTH_MINUTES, 5000, "EUR",
             ts(created))
        )  # fmt: skip
        consultations.append(
            (consultation_id, consultation_id, customer, None, "scheduled", "https://meet.bench/probe", ts(at),
             ts(created), LENGTH_MINUTES, f"probe-{n}", link_token("p", consultation_id),
             link_token("c", consultation_id), 1, None, None, None)
        )  # fmt: skip
        events.append(
            ("video.reminder", f"video-reminder:{consultation_id}:1:1440", customer, ts(created), ts(created))
        )
        due_by_phone[phone(customer)] = due
    db = sqlite3.connect(path, timeout=30)
    with db:
        db.executemany(APPOINTMENT_INSERT, appointments)
        db.executemany(CONSULTATION_INSERT, consultations)
        db.executemany(EVENT_INSERT, events)
    db.close()
    return due_by_phone


async def add_catalogue(database: Database) -> None:
    """The default templates and notification rules (the video reminder's among them)."""
    created = datetime.now(UTC) - timedelta(days=3)
    templates, _ = template_rows(created)
    async with database.engine.begin() as connection:
        await connection.execute(insert(MessageTemplate), templates)
        await connection.execute(insert(AutomatedNotification), notification_rows(created, 1))


async def slot_search(database: Database, repeat: int, now: datetime) -> tuple[float, float, int]:
    """(find_free_slots p50 ms, bare claims read p50 ms, slots found) over 14 days for busy clinicians."""
    searched, bare, found = [], [], 0
    start, end = now, now + timedelta(days=14)
    for n in range(repeat):
        staff_id = 1 + (n * 37) % CLINICIANS
        started = time.perf_counter()
        slots = await find_free_slots(
            SqlVideoBookingUnitOfWork(database, read_only=True, business_tz=TZ),
            staff_id,
            SERVICE_ID,
            start,
            end,
            now=now,
        )
        searched.append(time.perf_counter() - started)
        found = max(found, len(slots))
        started = time.perf_counter()
        async with database.read_sessions() as session:
            list(
                (
                    await session.execute(
                        select(ClinicianTimeClaim.starts_at, ClinicianTimeClaim.appointment_id).where(
                            ClinicianTimeClaim.staff_id == staff_id,
                            ClinicianTimeClaim.starts_at >= start,
                            ClinicianTimeClaim.starts_at < end,
                        )
                    )
                ).all()
            )
        bare.append(time.perf_counter() - started)
    return percentile(searched, 0.5) * 1000, percentile(bare, 0.5) * 1000, found


async def timed_gets(session: aiohttp.ClientSession, urls: list[str]) -> tuple[list[float], dict[int, int]]:
    took: list[float] = []
    statuses: dict[int, int] = {}
    for url in urls:
        started = time.perf_counter()
        async with session.get(url, allow_redirects=False) as answer:
            await answer.read()
            statuses[answer.status] = statuses.get(answer.status, 0) + 1
        took.append(time.perf_counter() - started)
    return [t * 1000 for t in took], statuses


async def reminder_latencies(
    session: aiohttp.ClientSession, sandbox: str, probes: dict[str, datetime], wait: float
) -> tuple[dict[str, float], int, int]:
    """({probe's phone: due-to-accepted ms}, probes sent, SMS sent in all while measuring)."""
    deadline = time.monotonic() + wait
    accepted: dict[str, datetime] = {}
    total = 0
    while time.monotonic() < deadline:
        async with session.get(f"{sandbox}/_sandbox/messages?provider=twilio") as answer:
            messages: list[dict[str, Any]] = (await answer.json())["messages"]
        total = sum(1 for m in messages if m.get("direction", "outbound") == "outbound")
        for m in messages:
            if m["to"] in probes and m["to"] not in accepted:
                accepted[m["to"]] = datetime.fromisoformat(m["created_at"])
        if len(accepted) == len(probes):
            break
        await asyncio.sleep(0.5)
    # A probe never accepted is left out (`reminder_probes_sent` says how many were).
    latencies = {
        to: (accepted[to] - due).total_seconds() * 1000 for to, due in probes.items() if to in accepted
    }
    return latencies, len(accepted), total


async def main(quick: bool) -> dict[str, object]:
    days = 3 if quick else 14
    probes = 40 if quick else 240
    redirects = 200 if quick else 2000
    port, sandbox_port = free_port(), free_port()
    base, sandbox = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{sandbox_port}"
    phases: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "video.db"
        url = f"sqlite+aiosqlite:///{path}"
        started = time.monotonic()
        await migrate.upgrade(url)
        database = Database.connect(url)
        env = {
            "SWITCHBOARD_DATABASE_URL": url,
            "SWITCHBOARD_PUBLIC_URL": base,
            "SWITCHBOARD_SANDBOX": "1",
            "SWITCHBOARD_SANDBOX_PORT": str(sandbox_port),
            "SWITCHBOARD_SANDBOX_SMTP_PORT": str(free_port()),
            # The scale-out topology: web and worker processes apart (`serve` with a worker inside shares its
            # event loop with the reminder and no-show jobs, and a redirect waits behind them).
            "SWITCHBOARD_WORKER_IN_PROCESS": "0",
            "SWITCHBOARD_BUSINESS_TIMEZONE": TZ,
            "SWITCHBOARD_LOG_LEVEL": "WARNING",
        }
        log, worker_log = Path(folder) / "serve.log", Path(folder) / "worker.log"
        # The server starts (mostly importing) while the clinic is loaded: the run takes less time.
        with (
            child(["-m", "switchboard.cli", "serve", "--port", str(port)], env, log=log),
            contextlib.ExitStack() as worker,
        ):
            seeded = populate(path, days, datetime.now(UTC))
            await add_catalogue(database)
            phases["seed"] = time.monotonic() - started
            worker.enter_context(child(["-m", "switchboard.cli", "worker"], env, log=worker_log))
            wait_http(f"{base}/healthz")
            wait_http(f"{sandbox}/_sandbox/stats")
            phases["start"] = time.monotonic() - started
            async with aiohttp.ClientSession() as session:
                await timed_gets(session, [f"{base}/healthz"] * 20)  # warm up
                healthz, _ = await timed_gets(session, [f"{base}/healthz"] * 200)
                mark = time.monotonic()
                moment = datetime.now(UTC)  # the link is open from ten minutes before to 30 after the end
                tokens = [
                    token
                    for at, token in seeded["around_now"]
                    if at - timedelta(minutes=9) <= moment < at + timedelta(minutes=LENGTH_MINUTES + 29)
                ] or ["none"]
                links = [f"{base}/v/{tokens[n % len(tokens)]}" for n in range(redirects)]
                redirect_ms, statuses = await timed_gets(session, links)
                phases["redirects"] = time.monotonic() - mark
                mark = time.monotonic()
                # Bookings start on the quarter hour, so reminders come due in bursts: one burst the size of
                # a quarter hour's consultations (each with its two reminders), then probes one by one.
                first = datetime.now(UTC) + PROBE_START
                dues = [first] * BURST + [first + timedelta(seconds=3) + n * PROBE_GAP for n in range(probes)]
                due = add_probes(path, seeded["next_id"], dues)
                wait = (max(due.values()) - datetime.now(UTC)).total_seconds() + 20
                all_ms, probes_sent, sms_total = await reminder_latencies(session, sandbox, due, wait)
                burst = set(list(due)[:BURST])
                burst_ms = [ms for to, ms in all_ms.items() if to in burst]
                reminder_ms = [ms for to, ms in all_ms.items() if to not in burst]
                phases["reminders"] = time.monotonic() - mark
        # Searched with the server stopped, so its work does not count against the search.
        mark = time.monotonic()
        slot_ms, bare_ms, slots_found = await slot_search(database, 15 if quick else 60, datetime.now(UTC))
        phases["slot_search"] = time.monotonic() - mark
        troubles = [
            line
            for written in (log, worker_log)
            for line in written.read_text(errors="replace").splitlines()
            if "WARNING" in line or "ERROR" in line
        ]
        for line in troubles[:20]:
            print(line, file=sys.stderr)
        await database.dispose()
    healthz_p50, healthz_p99 = percentile(healthz, 0.5), percentile(healthz, 0.99)
    reminder_p50 = percentile(reminder_ms, 0.5) if reminder_ms else None
    redirect_p99 = percentile(redirect_ms, 0.99) if statuses.get(302) else None
    result: dict[str, object] = {
        "reminder_p50_ms": None if reminder_p50 is None else round(reminder_p50, 1),
        "reminder_p99_ms": round(percentile(reminder_ms, 0.99), 1) if reminder_ms else None,
        "reminder_burst_p50_ms": round(percentile(burst_ms, 0.5), 1) if burst_ms else None,
        "reminder_burst_p99_ms": round(percentile(burst_ms, 0.99), 1) if burst_ms else None,
        "reminder_burst_size": BURST,
        # A burst on one channel cannot leave faster than the provider pacing lets it (SWITCHBOARD_SMS_RATE_PER_SECOND).
        "sms_pacing_per_second": Settings().sms_rate_per_second,
        "slot_search_ms": round(slot_ms, 2),
        "redirect_p99_ms": None if redirect_p99 is None else round(redirect_p99, 2),
        "redirect_p50_ms": round(percentile(redirect_ms, 0.5), 2),
        "consultations_per_day": PER_DAY,
        "days": days,
        "consultations": seeded["consultations"],
        "time_claims": seeded["claims"],
        "clinicians": CLINICIANS,
        "reminders_measured": len(reminder_ms),
        "reminder_probes_sent": probes_sent,
        "reminder_probes": probes + BURST,
        "sms_sent_in_run": sms_total,
        "slot_search_days": 14,
        "slot_search_free_slots": slots_found,
        "redirects_measured": len(redirect_ms),
        "redirect_statuses": {str(k): v for k, v in sorted(statuses.items())},
        "open_windows": len(set(links)),
        "baseline_healthz_p50_ms": round(healthz_p50, 2),
        "baseline_healthz_p99_ms": round(healthz_p99, 2),
        "baseline_claims_read_ms": round(bare_ms, 2),
        "redirect_ratio_to_healthz_p99": round(redirect_p99 / healthz_p99, 1)
        if redirect_p99 and healthz_p99
        else None,
        "slot_search_ratio_to_claims_read": round(slot_ms / bare_ms, 1) if bare_ms else None,
        "targets": {"reminder_p50_ms": 1000, "slot_search_ms": 20, "redirect_p99_ms": 20},
        "database": "sqlite",
        "processes": "serve (web, sandbox) + worker",
        "phase_seconds": {name: round(took, 1) for name, took in phases.items()},
    }
    if reminder_p50 is None:
        result["reminder_missing"] = (
            "no probe reminder reached the SMS stand-in (see the serve log lines above)"
        )
    if redirect_p99 is None:
        result["redirect_missing"] = f"no /v/TOKEN answered with a redirect (statuses {statuses})"
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller run, under 60 s")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.quick))))
