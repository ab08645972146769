"""docs/operations.md names only what exists: settings, files, commands and metrics."""

from __future__ import annotations

import re
from pathlib import Path

import click

from reports.performance import OperationalMetrics
from switchboard.cli import main as cli
from switchboard.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "docs" / "operations.md").read_text()
#: Compose's own variables (deploy/compose.yaml), not Switchboard's settings.
COMPOSE_VARIABLES = {"SWITCHBOARD_HOSTNAME", "SWITCHBOARD_TLS_DIR"}
#: What the guide tells the operator to create (and .gitignore keeps out of the repository).
MADE_BY_THE_OPERATOR = {"deploy/tls/", "deploy/switchboard.env"}


def test_the_readme_links_the_guide() -> None:
    assert "(docs/operations.md)" in (ROOT / "README.md").read_text()


def test_every_setting_the_guide_names_exists() -> None:
    named = set(re.findall(r"SWITCHBOARD_[A-Z][A-Z0-9_]*[A-Z0-9]", GUIDE)) - COMPOSE_VARIABLES
    known = {f"SWITCHBOARD_{name.upper()}" for name in Settings.model_fields}
    # `SWITCHBOARD_TWILIO_*` and the like name a family of settings.
    families = {name for name in named if GUIDE.count(f"{name}_*")}
    assert not (named - known - families), sorted(named - known - families)
    for family in families:
        assert any(setting.startswith(family + "_") for setting in known), family


def test_every_file_the_guide_names_is_in_the_repository() -> None:
    for path in (
        set(re.findall(r"`((?:deploy|tests|storage|bench)/[\w./@-]+)`", GUIDE)) - MADE_BY_THE_OPERATOR
    ):
        assert (ROOT / path.rstrip("/")).exists(), path
    ignored = (ROOT / ".gitignore").read_text().split()
    assert all(path in ignored for path in MADE_BY_THE_OPERATOR), "secrets must stay out of git"


def test_every_command_the_guide_runs_exists() -> None:
    context = click.Context(cli)
    for line in re.findall(r"switchboard ((?:[a-z-]+)(?: [a-z-]+)?)", GUIDE):
        words = line.split()
        command = cli.get_command(context, words[0])
        if command is None:
            continue  # "switchboard-web@8001", prose
        if isinstance(command, click.Group) and len(words) > 1:
            assert command.get_command(context, words[1]) is not None, line


def test_every_metric_the_guide_names_is_exported() -> None:
    exported = {
        sample.name.removesuffix("_total").removesuffix("_bucket")
        for metric in OperationalMetrics().registry.collect()
        for sample in [*metric.samples, type("S", (), {"name": metric.name})()]
    }
    # (Not the compose volume `switchboard_acme-challenges`.)
    named = set(re.findall(r"\b(switchboard_[a-z_]+[a-z])\b(?!-)", GUIDE))
    named = {name.removesuffix("_total") for name in named}
    assert named, "the guide's alerts name metrics"
    assert not (named - exported), sorted(named - exported)
