"""A new operator runs `switchboard doctor`: green on a working installation (the demo, whose providers are
the sandbox), and one clear line with a fix for each thing that is wrong: bad credentials, a webhook
registered at another address, unreachable providers, a missing database, production with sandbox secrets."""

from __future__ import annotations

import subprocess
import time

from tests.journeys.conftest import SWITCHBOARD, Demo, free_port


def doctor(demo: Demo, **env: str) -> subprocess.CompletedProcess[str]:
    # A loaded CI machine has taken more than the default 10 s to answer (the demo's sandbox shares two cores
    # with the tests): give each request longer, as an operator on a slow link would.
    return subprocess.run(
        [*SWITCHBOARD, "doctor", "--wait", "30"],
        env={**demo.env, **env},
        cwd=demo.folder,
        capture_output=True,
        text=True,
        timeout=120,
    )


def lines(output: str) -> dict[str, tuple[str, str]]:
    """check -> (outcome, the rest of its line and its fix)."""
    found: dict[str, tuple[str, str]] = {}
    current = ""
    for line in output.splitlines():
        if line.startswith(("ok ", "FAIL ", "skip ")):
            outcome, rest = line.split(None, 1)
            check, _, detail = rest.partition("  ")
            current = check.strip()
            found[current] = (outcome, detail.strip())
        elif line.strip().startswith("fix: ") and current:
            outcome, detail = found[current]
            found[current] = (outcome, f"{detail} | {line.strip()}")
    return found


def test_doctor_is_green_on_a_working_installation(demo: Demo) -> None:
    done = doctor(demo)
    assert done.returncode == 0, done.stdout + done.stderr
    found = lines(done.stdout)
    assert {check for check, (outcome, _) in found.items() if outcome == "ok"} == {
        "database",
        "schema",
        "twilio account",
        "twilio number",
        "twilio webhook",
        "whatsapp token",
        "whatsapp number",
        "telegram bot",
        "telegram webhook",
        "smtp relay",
        "slack token",
        "slack scopes",
        "video",
        "public url",
        "clock",
    }
    assert found["production"][0] == "skip"  # a demo is not production, and says so
    assert found["twilio webhook"][1].endswith(f"{demo.app_url}/webhooks/twilio/inbound")
    assert found["smtp relay"][1].endswith("delivery reports (DSN) offered and asked for")
    assert found["whatsapp number"][1].startswith("+1 555-"), found["whatsapp number"]  # as people write it
    assert found["video"][1].startswith("Jitsi at ") and found["video"][1].endswith(" answers")
    assert done.stdout.rstrip().endswith("all 15 checks passed")


def test_each_problem_is_one_line_with_its_fix(demo: Demo) -> None:
    elsewhere = "https://switchboard.example.org"
    done = doctor(
        demo,
        SWITCHBOARD_TWILIO_AUTH_TOKEN="not-the-token",
        SWITCHBOARD_WHATSAPP_PHONE_NUMBER_ID="999",
        SWITCHBOARD_TELEGRAM_BOT_TOKEN="1:wrong",
        SWITCHBOARD_PUBLIC_URL=elsewhere,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    found = lines(done.stdout)
    assert (
        found["twilio account"][0] == "FAIL" and "SWITCHBOARD_TWILIO_AUTH_TOKEN" in found["twilio account"][1]
    )
    assert found["twilio number"] == ("skip", "not checked: it needs twilio account to pass first")
    assert found["telegram webhook"] == ("skip", "not checked: it needs telegram bot to pass first")
    assert found["whatsapp number"][0] == "FAIL" and "999" in found["whatsapp number"][1]
    assert "SWITCHBOARD_WHATSAPP_PHONE_NUMBER_ID" in found["whatsapp number"][1]
    assert found["telegram bot"][0] == "FAIL" and "@BotFather" in found["telegram bot"][1]
    # The sandbox's webhook still points at the demo: registered at another address than the public URL.
    assert found["public url"][0] == "FAIL" and elsewhere in found["public url"][1]
    assert found["database"][0] == "ok" and found["slack scopes"][0] == "ok"
    assert done.stdout.rstrip().endswith("4 checks failed")


def test_a_webhook_registered_elsewhere_names_where_to_register_it(demo: Demo) -> None:
    # The public URL answers (it is the demo's own, by another name), but the providers call the demo's.
    other = demo.app_url.replace("127.0.0.1", "localhost")
    done = doctor(demo, SWITCHBOARD_PUBLIC_URL=other)
    found = lines(done.stdout)
    assert done.returncode == 1
    assert found["public url"][0] == "ok"
    assert found["twilio webhook"][0] == "FAIL"
    assert f"'A message comes in' → {other}/webhooks/twilio/inbound" in found["twilio webhook"][1]
    assert found["telegram webhook"][0] == "FAIL"
    assert f"setWebhook with url={other}/webhooks/telegram" in found["telegram webhook"][1]


def test_unreachable_providers_fail_fast_and_say_where(demo: Demo) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    done = doctor(
        demo,
        SWITCHBOARD_TWILIO_BASE_URL=closed,
        SWITCHBOARD_WHATSAPP_BASE_URL=closed,
        SWITCHBOARD_TELEGRAM_BASE_URL=closed,
        SWITCHBOARD_SLACK_BASE_URL=closed + "/api/",
        SWITCHBOARD_SMTP_PORT=str(free_port()),
        SWITCHBOARD_DATABASE_URL=f"sqlite+aiosqlite:///{demo.folder / 'typo.db'}",
    )
    took = time.monotonic() - started
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
    found = lines(done.stdout)
    for check in ("twilio", "whatsapp", "telegram", "slack"):
        assert found[check][0] == "FAIL" and "unreachable" in found[check][1], check
    assert found["smtp relay"][0] == "FAIL"
    assert found["database"][0] == "FAIL" and "switchboard migrate" in found["database"][1]
    assert not (demo.folder / "typo.db").exists(), "doctor must not create a database"
    assert took < 40, f"doctor took {took:.0f} s with every provider unreachable"


def test_production_with_the_sandbox_on_is_named(demo: Demo) -> None:
    done = doctor(demo, SWITCHBOARD_ENVIRONMENT="production", SWITCHBOARD_TELEGRAM_BOT_TOKEN="")
    found = lines(done.stdout)
    assert done.returncode == 1
    assert found["production"][0] == "FAIL"
    assert "SWITCHBOARD_SANDBOX must be 0 in production" in found["production"][1]
    # The demo answers over plain HTTP, which no provider calls in production.
    assert found["public url"][0] == "FAIL" and "over plain HTTP" in found["public url"][1]
    assert "SWITCHBOARD_PUBLIC_URL to the https:// address" in found["public url"][1]
    # A business without Telegram leaves the token empty: skipped, not failed.
    assert found["telegram"] == (
        "skip",
        "no SWITCHBOARD_TELEGRAM_BOT_TOKEN: Telegram is off (customers and staff bot)",
    )
