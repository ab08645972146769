"""`make smoke`: the first-day journeys at a glance, through the public commands, in well under a minute.

migrate, seed a small demo, rebuild the rollups and `serve` it with the sandbox (as `make demo` does); ask
twenty typical questions through `switchboard console`; run one campaign per channel through the JSON API
until every message reaches the sandbox. One line per journey; exit 1 on any traceback, error or miss.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.journeys.conftest import SWITCHBOARD, Demo, start_demo, stop_demo, wait_for

QUESTIONS = (
    "revenue last 30 days by channel",
    "revenue this month vs last month",
    "orders last week",
    "average order value last quarter by location",
    "new customers this month",
    "how many appointments did Berlin have last month",
    "no-show rate last quarter by service",
    "video consultations last 30 days by staff",
    "messages sent yesterday by channel",
    "delivery rate last 7 days by provider",
    "reply rate this month by campaign",
    "opt-out rate last month by channel",
    "communication cost last month",
    "cost per message last 30 days by channel",
    "what is our chat resolution time this month",
    "first response time last 7 days by staff",
    "kpi csat this month",
    "churn rate last quarter",
    "top 5 customers by revenue",
    "campaign revenue last month by campaign",
)
#: Questions no metric can answer faithfully: the bot says why and offers the closest answer, no chart.
DECLINED = frozenset({"top 5 customers by revenue"})
CHANNELS = ("sms", "email", "whatsapp", "telegram")
PROVIDER = {"sms": "twilio", "whatsapp": "whatsapp_cloud", "telegram": "telegram"}
PROMPT = "switchboard> "
BAD = re.compile(r"Traceback|something went wrong|SAWarning|\(error\)")


def line(ok: bool, journey: str, detail: str, seconds: float) -> bool:
    print(f"{'ok  ' if ok else 'FAIL'} {journey:<58} {seconds:5.1f} s  {detail[:110]}", flush=True)
    return ok


def ask_questions(demo: Demo) -> bool:
    started = time.monotonic()
    done = subprocess.run(
        [
            *SWITCHBOARD,
            "console",
            "--as",
            "markus.brandt@northwind.example",
            "--out",
            str(demo.folder / "out"),
        ],
        input="\n".join(QUESTIONS) + "\n",
        env=demo.env,
        cwd=demo.folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - started
    replies = done.stdout.split(PROMPT)[1:]
    all_ok = done.returncode == 0 and not BAD.search(done.stderr)
    for question, reply in zip(QUESTIONS, replies, strict=False):
        text = reply.strip().splitlines()
        said = [t for t in text[2:] if t.strip() and t.strip() != "(suggestion)"]
        summary = next(iter(said), text[0] if text else "no answer")
        if question in DECLINED:
            ok = "(suggestion)" in reply and "[Show the closest answer]" in reply and "[image]" not in reply
            summary = f"declined: {summary.strip()}"
        else:
            ok = bool(text) and not BAD.search(reply) and "[image]" in reply
        all_ok &= line(ok, f"question: {question}", summary.strip(), elapsed / len(QUESTIONS))
    if len(replies) < len(QUESTIONS):
        all_ok = line(False, "questions", f"only {len(replies)} answers", elapsed)
    if BAD.search(done.stderr):
        line(False, "questions", done.stderr.strip().splitlines()[-1], elapsed)
    return all_ok


def sent_for(demo: Demo, channel: str, code: str) -> list[Any]:
    if channel == "email":
        return [e["rcpt_tos"][0] for e in demo.sandbox_emails() if code in e["text"]]
    return [
        m["to"]
        for m in demo.sandbox_messages(PROVIDER[channel])
        if m.get("direction", "outbound") == "outbound" and code in (m.get("body") or "")
    ]


def run_campaign(demo: Demo, channel: str) -> bool:
    started = time.monotonic()
    slug, code = f"smoke-{channel}", f"SMOKE{channel.upper()}"
    try:
        demo.api(
            "POST",
            "/api/campaigns",
            {
                "slug": slug,
                "name": f"Smoke test ({channel})",
                "template": "seasonal_offer",
                "channels": [channel],
                "variables": {"offer": "a free skin check", "code": code},
                "respect_quiet_hours": False,
            },
        )
        preview = demo.api("GET", f"/api/campaigns/{slug}/preview")
        planned = int(preview["planned"])
        if planned == 0 or "template_error" in preview["exclusions"]:
            return line(False, f"campaign: {channel}", f"preview plans {planned}: {preview['exclusions']}", 0)
        demo.api("POST", f"/api/campaigns/{slug}/launch")
        sent = wait_for(
            lambda: found if len(found := sent_for(demo, channel, code)) >= planned else None,
            60,
            f"{planned} {channel} messages",
        )
    except AssertionError as error:
        return line(False, f"campaign: {channel}", str(error).splitlines()[0], time.monotonic() - started)
    doubled = [to for to, times in Counter(sent).items() if times > 1]
    detail = f"{planned} planned, {len(sent)} reached the sandbox, {len(doubled)} twice"
    return line(
        not doubled and len(sent) == planned, f"campaign: {channel}", detail, time.monotonic() - started
    )


def main() -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="switchboard-smoke-") as folder:
        path = Path(folder)
        try:
            demo = start_demo(path, f"sqlite+aiosqlite:///{path / 'switchboard.db'}")
        except AssertionError as error:
            line(False, "demo: migrate, seed, rollups rebuild, serve", str(error), time.monotonic() - started)
            return 1
        line(True, "demo: migrate, seed, rollups rebuild, serve", demo.app_url, time.monotonic() - started)
        try:
            ok = ask_questions(demo)
            for channel in CHANNELS:
                ok &= run_campaign(demo, channel)
            log = demo.server_log()
            clean = "Traceback" not in log
            ok &= line(clean, "server log: no traceback", "clean" if clean else log[-300:], 0)
        finally:
            stop_demo(demo)
    total = time.monotonic() - started
    print(f"{'smoke passed' if ok else 'SMOKE FAILED'} in {total:.1f} s", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
