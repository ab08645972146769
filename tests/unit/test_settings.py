"""Settings: every name is documented, secrets never print, production refuses sandbox defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchboard.settings import ConfigurationError, Settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_documented_in_env_example_and_readme() -> None:
    names = {f"SWITCHBOARD_{name.upper()}" for name in Settings.model_fields}
    example = (ROOT / ".env.example").read_text()
    readme = (ROOT / "README.md").read_text()
    assert [n for n in sorted(names) if f"{n}=" not in example] == []
    assert [n for n in sorted(names) if n not in readme] == []


def test_secrets_do_not_print() -> None:
    settings = Settings(twilio_auth_token="very-secret-token")  # type: ignore[arg-type]
    assert "very-secret-token" not in repr(settings)
    assert "very-secret-token" not in str(settings.model_dump())


def test_production_refuses_sandbox_and_its_secrets() -> None:
    with pytest.raises(ConfigurationError, match="SWITCHBOARD_SANDBOX must be 0"):
        Settings(environment="production").check_production_ready()
    Settings(environment="development").check_production_ready()


def test_unknown_database_schemes_are_refused() -> None:
    with pytest.raises(ValueError, match="must start with"):
        Settings(database_url="mysql://x")
