"""The whole product as a user runs it: `switchboard serve` with the provider sandbox, a campaign over the API,
signed delivery receipts coming back, and a customer replying STOP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

SWITCHBOARD = [sys.executable, "-m", "switchboard.cli"]
TOKEN = "e2e-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call(method: str, url: str, body: Any = None, token: str | None = TOKEN) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def wait_for(check: Any, limit: float, what: str) -> Any:
    deadline = time.monotonic() + limit
    while True:
        try:
            result = check()
            if result:
                return result
        except (OSError, urllib.error.URLError):
            pass
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


@pytest.fixture
def running(tmp_path: Path) -> Any:
    web, sandbox, smtp = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'e2e.db'}",
        "SWITCHBOARD_PUBLIC_URL": f"http://127.0.0.1:{web}",
        "SWITCHBOARD_API_TOKEN": TOKEN,
        "SWITCHBOARD_SANDBOX": "1",
        "SWITCHBOARD_SANDBOX_PORT": str(sandbox),
        "SWITCHBOARD_SANDBOX_SMTP_PORT": str(smtp),
        "SWITCHBOARD_SMTP_PORT": str(smtp),
        "SWITCHBOARD_TWILIO_BASE_URL": f"http://127.0.0.1:{sandbox}",
        "SWITCHBOARD_WHATSAPP_BASE_URL": f"http://127.0.0.1:{sandbox}",
        "SWITCHBOARD_TELEGRAM_BASE_URL": f"http://127.0.0.1:{sandbox}",
        "SWITCHBOARD_WORKER_IN_PROCESS": "1",
        "SWITCHBOARD_SMS_RATE_PER_SECOND": "200",
    }
    for step in (["migrate"], ["seed", "--customers", "40", "--days", "10"]):
        done = subprocess.run([*SWITCHBOARD, *step], env=env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
    server = subprocess.Popen(
        [*SWITCHBOARD, "serve", "--port", str(web)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(lambda: call("GET", f"http://127.0.0.1:{web}/healthz", token=None), 60, "serve")
        wait_for(lambda: call("GET", f"http://127.0.0.1:{sandbox}/_sandbox/stats", token=None), 60, "sandbox")
        yield f"http://127.0.0.1:{web}", f"http://127.0.0.1:{sandbox}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.mark.slow
def test_a_campaign_flows_out_receipts_flow_back_and_stop_opts_out(running: tuple[str, str]) -> None:
    app, sandbox = running
    call(
        "POST",
        f"{app}/api/campaigns",
        {
            "slug": "e2e-survey",
            "name": "How did we do?",
            "template": "csat_survey",
            "channels": ["sms"],
            "variables": {"clinic": "Northwind"},
            "category": "transactional",
            "respect_quiet_hours": False,
        },
    )
    preview = call("GET", f"{app}/api/campaigns/e2e-survey/preview")
    assert preview["recipients"] == 40 and preview["planned"] > 0
    call("POST", f"{app}/api/campaigns/e2e-survey/launch")

    def settled() -> dict[str, int] | None:
        by_status = call("GET", f"{app}/api/campaigns/e2e-survey/progress")["by_status"]
        waiting = sum(by_status.get(s, 0) for s in ("planned", "sending", "queued", "sent"))
        total = sum(by_status.get(s, 0) for s in ("delivered", "failed", "undelivered", "read"))
        return by_status if waiting == 0 and total else None

    by_status = wait_for(settled, 90, "every message to reach a final status")
    reached = by_status.get("delivered", 0) + by_status.get("failed", 0) + by_status.get("undelivered", 0)
    assert reached == preview["planned"]

    accepted = call("GET", f"{sandbox}/_sandbox/messages?provider=twilio", token=None)["messages"]
    outbound = [m for m in accepted if m.get("direction", "outbound") == "outbound"]
    per_recipient = Counter(m["to"] for m in outbound)
    assert len(outbound) == preview["planned"] and set(per_recipient.values()) == {1}

    messages = call("GET", f"{app}/api/messages?campaign_id=0&limit=1")  # listing works with filters
    assert "messages" in messages
    one = call("GET", f"{app}/api/messages?status=delivered&limit=1")["messages"][0]
    history = [h["status"] for h in call("GET", f"{app}/api/messages/{one['id']}")["history"]]
    assert history[0] == "queued" and "delivered" in history

    customer_phone = one["to"]
    call("POST", f"{sandbox}/_sandbox/customer/sms", {"from": customer_phone, "body": "STOP"}, token=None)
    customer = one["customer_id"]

    def opted_out() -> bool:
        prefs = call("GET", f"{app}/api/customers/{customer}/preferences")
        return prefs["consent"].get("sms", {}).get("status") == "opted_out"

    wait_for(opted_out, 30, "the STOP reply to opt the customer out")
    metrics = urllib.request.urlopen(f"{app}/metrics", timeout=10).read().decode()
    assert 'switchboard_provider_calls_total{channel="sms",outcome="accepted",provider="twilio"}' in metrics
