"""The doctor's judgements that need no network: the clock, the report, and the Slack scopes it asks for."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from domain.clock import utc_now
from providers.slack.client import BOT_SCOPES
from switchboard.doctor import Doctor, Finding, fail, ok, report, skip
from switchboard.settings import Settings


def _doctor() -> Doctor:
    database: Any = None  # the clock and the report read no database
    return Doctor(Settings(), database)


def test_a_clock_minutes_off_fails_and_names_who_disagrees() -> None:
    doctor = _doctor()
    now = utc_now()
    doctor.clocks += [
        ("Twilio", now - timedelta(seconds=1), now),
        ("the database", now - timedelta(seconds=95), now),
    ]
    finding = doctor.clock()
    assert finding.outcome == "FAIL"
    assert finding.detail == "this machine is 95 s ahead of the database"
    assert "chrony" in finding.fix


def test_a_clock_within_the_limit_passes_and_without_readings_is_skipped() -> None:
    doctor = _doctor()
    assert doctor.clock().outcome == "skip"
    now = utc_now()
    doctor.clocks.append(("Slack", now + timedelta(seconds=2), now))
    assert doctor.clock() == ok("clock", "within 5 s of Slack")


def test_the_report_puts_each_fix_under_its_failure_and_counts() -> None:
    text = report(
        [ok("database", "fine"), fail("twilio number", "+1 is not ours", "set X"), skip("slack", "off")]
    )
    assert text.splitlines() == [
        "ok    database       fine",
        "FAIL  twilio number  +1 is not ours",
        "                     fix: set X",
        "skip  slack          off",
        "1 check failed",
    ]


def test_the_scopes_the_doctor_wants_are_the_manifests() -> None:
    manifest = yaml.safe_load((Path(__file__).resolve().parents[2] / "slack-app-manifest.yaml").read_text())
    assert sorted(BOT_SCOPES) == sorted(manifest["oauth_config"]["scopes"]["bot"])


async def test_a_request_that_timed_out_says_how_long_it_waited_not_the_limit() -> None:
    """A client's own timeout (aiohttp's connect limit) ended the check after a moment: saying "no answer
    within 10 s" for it sent the operator after a provider that had not been given 10 s."""

    async def timed_out_quickly() -> list[Finding]:
        await asyncio.sleep(0.2)
        raise TimeoutError

    doctor = Doctor(Settings(sandbox=False), None, wait_seconds=10.0)  # type: ignore[arg-type]
    found = await doctor._bounded("twilio", timed_out_quickly)
    assert found[0].outcome == "FAIL" and re.fullmatch(r"no answer within 0\.[2-9] s", found[0].detail), found


async def test_a_provider_left_unset_is_named_as_not_set_not_as_unreachable() -> None:
    settings = Settings(twilio_account_sid="", whatsapp_token="", smtp_host=" ")
    doctor = Doctor(settings, None)  # type: ignore[arg-type]  # returns before any request
    twilio, whatsapp, smtp = await doctor.twilio(), await doctor.whatsapp(), await doctor.smtp()
    assert (twilio[0].outcome, twilio[0].detail) == (
        "FAIL",
        "SWITCHBOARD_TWILIO_ACCOUNT_SID is empty, so no SMS can be sent",
    )
    assert [f.outcome for f in twilio[1:]] == ["skip", "skip"]
    assert whatsapp[0].detail == "SWITCHBOARD_WHATSAPP_TOKEN is empty, so no WhatsApp message can be sent"
    assert smtp[0].detail == "SWITCHBOARD_SMTP_HOST is empty, so no email can be sent"
    assert "SWITCHBOARD_SMTP_HOST to your mail relay" in smtp[0].fix


async def test_a_sandbox_that_does_not_answer_says_where_it_was_looked_for_and_how_to_point_elsewhere() -> (
    None
):
    """The walk ran the demo's sandbox on 8735 and doctor without SWITCHBOARD_SANDBOX_PORT: six checks said
    "HTTP Client says - ClientConnectorError: …" and only how to start a sandbox."""

    async def refused() -> list[Finding]:
        raise RuntimeError(
            "HTTP Client says - ClientConnectorError: Cannot connect to host 127.0.0.1:8025 ssl:default "
            "[Connect call failed ('127.0.0.1', 8025)]"
        )

    doctor = Doctor(Settings(sandbox=True, sandbox_port=8025), None)  # type: ignore[arg-type]
    [found] = await doctor._bounded("telegram", refused)
    assert found.detail == "unreachable: nothing answers at 127.0.0.1:8025 (connection refused)", found.detail
    assert "http://127.0.0.1:8025" in found.fix and "set SWITCHBOARD_SANDBOX_PORT" in found.fix
