"""Settings: every name is documented, secrets never print, production refuses sandbox defaults."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from switchboard.settings import SANDBOX_SECRETS, ConfigurationError, Settings

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


def test_a_read_replica_is_postgresql_beside_postgresql() -> None:
    primary = "postgresql+asyncpg://switchboard@db-primary/switchboard"
    replica = "postgresql+asyncpg://switchboard@db-replica/switchboard"
    assert Settings(database_url=primary, database_read_url=f" {replica} ").database_read_url == replica
    assert Settings(database_url=primary).database_read_url == ""
    with pytest.raises(ValueError, match="SQLite has no replicas"):
        Settings(database_url="sqlite+aiosqlite:///switchboard.db", database_read_url=replica)
    with pytest.raises(ValueError, match="SWITCHBOARD_DATABASE_READ_URL is a PostgreSQL read replica"):
        Settings(database_url=primary, database_read_url="mysql://db-replica/switchboard")


def test_transaction_pooling_is_for_postgresql_and_prepares_statements_unnamed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from storage import engine

    given: dict[str, Any] = {}
    monkeypatch.setattr(engine, "create_async_engine", lambda url, **options: given.update(options))
    bouncer = "postgresql+asyncpg://switchboard@pgbouncer:6432/switchboard"
    assert Settings(database_url=bouncer, database_transaction_pooling=True).database_transaction_pooling
    with pytest.raises(ValueError, match="the database is SQLite: leave it unset"):
        Settings(database_url="sqlite+aiosqlite:///switchboard.db", database_transaction_pooling=True)
    # What asyncpg is given for each connection.
    engine.create_engine(bouncer, transaction_pooling=True)
    options = given["connect_args"]
    assert (options["statement_cache_size"], options["prepared_statement_cache_size"]) == (0, 0)
    assert options["prepared_statement_name_func"]() == ""  # PostgreSQL's unnamed statement


PROVIDER_ENDPOINTS = ("twilio_base_url", "whatsapp_base_url", "telegram_base_url")
PRODUCTION_SECRETS = {name: f"real-{name}" for name in SANDBOX_SECRETS}


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SWITCHBOARD_* variable from the shell or a .env decides these tests."""
    for name in list(os.environ):
        if name.startswith("SWITCHBOARD_"):
            monkeypatch.delenv(name)


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type, call-arg]


@pytest.mark.usefixtures("clean_environment")
def test_provider_endpoints_follow_the_sandbox_ports() -> None:
    moved = settings(sandbox_port=8125)
    assert {getattr(moved, name) for name in PROVIDER_ENDPOINTS} == {"http://127.0.0.1:8125"}
    assert (moved.sandbox_smtp_port, moved.smtp_host, moved.smtp_port) == (8126, "127.0.0.1", 8126)
    both = settings(sandbox_port=8125, sandbox_smtp_port=9126)
    assert (both.sandbox_smtp_port, both.smtp_port) == (9126, 9126)
    default = settings()
    assert (default.twilio_base_url, default.smtp_port) == ("http://127.0.0.1:8025", 8026)


@pytest.mark.usefixtures("clean_environment")
def test_the_environment_moves_the_endpoints_and_empty_values_count_as_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SWITCHBOARD_SANDBOX_PORT", "8125")
    monkeypatch.setenv("SWITCHBOARD_TELEGRAM_BASE_URL", "")
    monkeypatch.setenv("SWITCHBOARD_SMTP_PORT", "")
    monkeypatch.setenv("SWITCHBOARD_SANDBOX_SMTP_PORT", " ")
    moved = settings()
    assert (moved.telegram_base_url, moved.whatsapp_base_url) == ("http://127.0.0.1:8125",) * 2
    assert (moved.sandbox_smtp_port, moved.smtp_port) == (8126, 8126)


@pytest.mark.usefixtures("clean_environment")
def test_an_endpoint_that_is_set_always_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_WHATSAPP_BASE_URL", "https://graph.example.test")
    chosen = settings(sandbox_port=8125, twilio_base_url="http://10.0.0.5:9999", smtp_port=2525)
    assert chosen.twilio_base_url == "http://10.0.0.5:9999"
    assert chosen.whatsapp_base_url == "https://graph.example.test"
    assert chosen.telegram_base_url == "http://127.0.0.1:8125"
    assert (chosen.smtp_port, chosen.sandbox_smtp_port) == (2525, 8126)
    off = settings(sandbox=False, telegram_base_url="http://127.0.0.1:8081")
    assert off.telegram_base_url == "http://127.0.0.1:8081"


@pytest.mark.usefixtures("clean_environment")
def test_with_the_sandbox_off_unset_endpoints_are_the_real_providers() -> None:
    off = settings(sandbox=False, sandbox_port=8125)
    assert off.twilio_base_url == "https://api.twilio.com"
    assert off.whatsapp_base_url == "https://graph.facebook.com"
    assert off.telegram_base_url == "https://api.telegram.org"
    assert off.smtp_port == 587
    settings(environment="production", sandbox=False, **PRODUCTION_SECRETS).check_production_ready()


@pytest.mark.usefixtures("clean_environment")
def test_production_refuses_endpoints_left_at_the_sandbox() -> None:
    copied_from_a_demo = settings(
        environment="production",
        sandbox=False,
        twilio_base_url="http://127.0.0.1:8725",  # a demo whose sandbox ran on another port
        telegram_base_url="http://localhost:8025/",
        smtp_port=8026,
        **PRODUCTION_SECRETS,
    )
    with pytest.raises(ConfigurationError) as refused:
        copied_from_a_demo.check_production_ready()
    message = str(refused.value)
    for name in ("SWITCHBOARD_TWILIO_BASE_URL", "SWITCHBOARD_TELEGRAM_BASE_URL", "SWITCHBOARD_SMTP_PORT"):
        assert f"{name} points at this machine, where only the provider sandbox answers" in message
    assert "WHATSAPP" not in message
    # A mail relay on this machine (a local postfix) is common, and is no sandbox.
    local_relay = settings(
        environment="production", sandbox=False, smtp_host="127.0.0.1", smtp_port=25, **PRODUCTION_SECRETS
    )
    local_relay.check_production_ready()
    # Nor is Telegram's own Bot API server on this machine.
    settings(
        environment="production",
        sandbox=False,
        telegram_base_url="http://127.0.0.1:8081",
        **PRODUCTION_SECRETS,
    ).check_production_ready()


def test_a_lease_shorter_than_a_send_is_refused_in_words() -> None:
    from pydantic import ValidationError

    with pytest.raises(
        ValidationError,
        match=re.escape("SWITCHBOARD_WORKER_LEASE_SECONDS is 20 s, but it must be at least 48 s"),
    ):
        Settings(worker_lease_seconds=20, email_rate_per_second=20, worker_concurrency=32)
    fine = Settings(worker_lease_seconds=60)
    assert fine.longest_send_seconds() < 60
    quick = Settings(
        worker_lease_seconds=4,
        provider_timeout_seconds=0.5,
        smtp_timeout_seconds=0.5,
        **{f"{channel}_rate_per_second": 400 for channel in ("sms", "whatsapp", "email", "telegram")},
    )
    assert quick.worker_lease_seconds >= quick.longest_send_seconds()


def test_the_log_level_is_one_logging_knows() -> None:
    assert Settings(log_level="info").log_level == "INFO"
    with pytest.raises(ValueError, match="'verbose' is not a log level: say DEBUG, INFO, WARNING"):
        Settings(log_level="verbose")


@pytest.mark.usefixtures("clean_environment")
def test_numbers_without_a_country_code_are_read_as_the_business_country_else_its_timezones() -> None:
    """A Berlin clinic group whose staff read the dashboard in British English imports German numbers."""
    assert settings(business_timezone="Europe/Berlin", business_locale="en_GB").phone_region == "DE"
    assert settings(business_timezone="Europe/Zurich", business_locale="de_DE").phone_region == "CH"
    assert settings(business_country="at", business_timezone="Europe/Berlin").phone_region == "AT"
    # A timezone of no country: the locale's territory.
    assert settings(business_timezone="UTC", business_locale="en_GB").phone_region == "GB"
    # An old name is read as the zone it now links to, not passed over for the locale.
    assert settings(business_timezone="Europe/Kiev", business_locale="en_GB").phone_region == "UA"
    assert settings(business_timezone="US/Eastern", business_locale="en_GB").phone_region == "US"
    assert settings(business_timezone="Asia/Calcutta", business_locale="en_GB").phone_region == "IN"


@pytest.mark.usefixtures("clean_environment")
def test_imported_customers_speak_the_business_country_s_language_not_the_dashboard_s() -> None:
    assert settings(business_timezone="Europe/Berlin", business_locale="en_GB").customer_language == "de"
    assert settings(business_country="ES", business_locale="en_GB").customer_language == "es"
    assert settings(business_timezone="UTC", business_locale="fr_FR").customer_language == "fr"
