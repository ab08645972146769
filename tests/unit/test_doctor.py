"""The doctor's judgements that need no network: the clock, the report, and the Slack scopes it asks for."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from domain.clock import utc_now
from providers.slack.client import BOT_SCOPES
from switchboard.doctor import Doctor, fail, ok, report, skip
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
