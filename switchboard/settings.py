"""The one typed settings object, read from SWITCHBOARD_* environment variables (and an optional .env)."""

from __future__ import annotations

import functools
import math
import re
from datetime import time
from importlib import resources
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Secrets the sandbox uses; production refuses to start while any of these is still in place.
SANDBOX_SECRETS = {
    "twilio_auth_token": "sandbox-twilio-auth-token",
    "whatsapp_token": "sandbox-whatsapp-token",
    "whatsapp_app_secret": "sandbox-whatsapp-app-secret",
    "whatsapp_verify_token": "sandbox-whatsapp-verify-token",
    "telegram_bot_token": "123456:sandbox-telegram-bot-token",
    "telegram_webhook_secret": "sandbox-telegram-webhook-secret",
    "api_token": "sandbox-api-token",
    "slack_signing_secret": "sandbox-slack-signing-secret",
    "slack_bot_token": "xoxb-sandbox-slack-bot-token",
    "session_secret": "sandbox-session-secret-change-me-0123456789",
    "jitsi_app_secret": "sandbox-jitsi-app-secret-change-me-0123456789",
}

#: Where the sandbox listens; it never leaves this machine.
SANDBOX_HOST = "127.0.0.1"
#: The real providers, for a base URL left unset while the sandbox is off.
PROVIDER_BASE_URLS = {
    "twilio_base_url": "https://api.twilio.com",
    "whatsapp_base_url": "https://graph.facebook.com",
    "telegram_base_url": "https://api.telegram.org",
    "slack_base_url": "https://slack.com/api/",
}
#: Where a provider's stand-in answers under the sandbox's base URL (the root unless listed).
SANDBOX_PATHS = {"slack_base_url": "/slack/api/"}
#: The sandbox's video room stand-in (it checks room tokens as Jitsi does).
SANDBOX_VIDEO_PATH = "/video"
#: Mail submission (RFC 6409), for an SMTP port left unset while the sandbox is off.
SMTP_SUBMISSION_PORT = 587
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class Settings(BaseSettings):
    """Everything Switchboard can be configured with. Secrets are SecretStr so they never print."""

    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_", env_file=".env", extra="ignore")

    #: "production" turns on the production checks (no sandbox, no sandbox secrets, HTTPS public URL);
    #: "staging" is production's set-up against the sandbox. Anything else is refused: a typo ("prod")
    #: would silently turn the checks off.
    environment: Literal["development", "test", "staging", "production"] = "development"
    database_url: str = "sqlite+aiosqlite:///switchboard.db"
    #: A PostgreSQL read replica for KPI answers and the dashboards' figures ("" = read the primary).
    database_read_url: str = ""
    #: The database URLs point at a pooler in transaction mode (PgBouncer): no prepared statement may outlive
    #: its transaction, because the next one may run on another server connection.
    database_transaction_pooling: bool = False
    public_url: str = "http://127.0.0.1:8000"
    #: Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto `serve` believes: addresses or networks,
    #: comma-separated, or "*" when only the proxy can reach the web processes.
    forwarded_allow_ips: str = "127.0.0.1"
    business_name: str = "Northwind Clinics"
    business_timezone: str = "Europe/Berlin"
    business_currency: str = "EUR"
    business_locale: str = "en_GB"
    #: Two-letter country whose numbers a customer list may write without +country code (import); empty:
    #: the country of business_timezone, else the territory of business_locale (`phone_region`).
    business_country: str = ""
    #: Marketing goes only to customers who opted in on that channel (EU clinics: ePrivacy, UWG §7); off:
    #: marketing also reaches customers never asked, until they opt out (where the law allows it).
    marketing_requires_opt_in: bool = True
    #: Local hours, in each customer's time zone, in which marketing waits ("21:00-08:00"; "off": none).
    #: A customer's own quiet hours replace them; reminders and other service messages do not wait.
    quiet_hours: str = "21:00-08:00"
    #: Marketing messages one customer may get on one channel in 24 hours and in 7 days ("" or "none":
    #: no limit; 0: none at all). A customer's own weekly limit applies on top.
    marketing_per_day: int | None = Field(default=1, ge=0)
    marketing_per_week: int | None = Field(default=3, ge=0)
    #: Campaigns of one type (a "recall", a "newsletter") one customer may get in 7 days ("" or "none": no limit).
    campaign_type_per_week: int | None = Field(default=1, ge=0)
    log_level: str = "INFO"
    #: "text" for a terminal, "json" for one JSON object per line with the request id (switchboard/logs.py).
    log_format: Literal["text", "json"] = "text"

    api_token: SecretStr = SecretStr(SANDBOX_SECRETS["api_token"])
    session_secret: SecretStr = SecretStr(SANDBOX_SECRETS["session_secret"])
    #: When set, GET /metrics needs `Authorization: Bearer <token>` (Prometheus: `authorization` in the
    #: scrape config); empty leaves it open, for a scraper on a private network.
    metrics_token: SecretStr = SecretStr("")

    sandbox: bool = True
    sandbox_port: int = 8025
    #: Unset (or 0): the port after sandbox_port, so moving one port moves both.
    sandbox_smtp_port: int = 0
    #: How many signed webhooks the sandbox holds for a receiver that falls behind; past that it drops them
    #: (counted as webhooks_dropped). Providers queue for days; load benchmarks raise it.
    sandbox_webhook_queue: int = Field(default=1000, ge=1)

    twilio_account_sid: str = "ACsandbox00000000000000000000000000"
    twilio_auth_token: SecretStr = SecretStr(SANDBOX_SECRETS["twilio_auth_token"])
    twilio_from: str = "+15005550006"
    #: The provider endpoints below, when unset (empty), follow the sandbox while it is on and are the
    #: real providers while it is off; a value that is set always wins.
    twilio_base_url: str = ""
    whatsapp_token: SecretStr = SecretStr(SANDBOX_SECRETS["whatsapp_token"])
    whatsapp_app_secret: SecretStr = SecretStr(SANDBOX_SECRETS["whatsapp_app_secret"])
    whatsapp_verify_token: SecretStr = SecretStr(SANDBOX_SECRETS["whatsapp_verify_token"])
    whatsapp_phone_number_id: str = "100000000000001"
    whatsapp_base_url: str = ""
    telegram_bot_token: SecretStr = SecretStr(SANDBOX_SECRETS["telegram_bot_token"])
    telegram_webhook_secret: SecretStr = SecretStr(SANDBOX_SECRETS["telegram_webhook_secret"])
    telegram_base_url: str = ""
    smtp_host: str = "127.0.0.1"
    #: Unset (or 0): sandbox_smtp_port while the sandbox is on, else 587.
    smtp_port: int = 0
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    email_from: str = "Northwind Clinics <hello@northwind.example>"
    #: Ask a relay that offers DSN (RFC 3461) for a report when a customer email is delivered, as well as when
    #: it fails. The reports go to the From address's mailbox, which must reach /webhooks/email/inbound (as
    #: customers' replies do); off leaves emails "sent" until one bounces.
    smtp_delivery_reports: bool = True

    slack_signing_secret: SecretStr = SecretStr(SANDBOX_SECRETS["slack_signing_secret"])
    slack_bot_token: SecretStr = SecretStr(SANDBOX_SECRETS["slack_bot_token"])
    slack_app_token: SecretStr = SecretStr("")
    #: Unset: the sandbox's Slack stand-in (http://127.0.0.1:SANDBOX_PORT/slack/api/) while the sandbox is
    #: on, https://slack.com/api/ while it is off.
    slack_base_url: str = ""
    slack_command: str = "/sb"
    #: Where every live-chat SLA warning and breach is posted (a channel id or #name); empty: each team's
    #: live-chat channel (slack_chat_channels, else slack_chat_channel); none: stored but not posted.
    slack_sla_channel: str = ""
    #: Where each new customer conversation gets a thread agents answer in (a channel id like C0123ABCD
    #: or a #name); empty: conversations are not posted to Slack.
    slack_chat_channel: str = ""
    #: Teams with their own channel: "BER=C0BERLIN,LON=#london-chat" (clinic code = channel); a customer's
    #: conversation goes to their home clinic's channel, others to SWITCHBOARD_SLACK_CHAT_CHANNEL.
    slack_chat_channels: str = ""
    #: A thread reply starting with this stays an internal note and never reaches the customer.
    slack_note_prefix: str = "note:"
    #: Which customer details the Slack thread shows in full (name, phone, email); the rest are masked
    #: and staff open the full record by the dashboard link.
    slack_customer_fields: str = "name"
    #: Live chat in Telegram: the staff bot forwards each conversation's turns to the agent holding it
    #: (while nobody does, to every online agent with Telegram linked); replying to one answers the customer.
    telegram_staff_chats: bool = False
    #: A first message from an address no customer has (a new patient's WhatsApp, SMS, Telegram or email)
    #: makes a customer tagged first-contact:CHANNEL and opens their conversation; off: it is kept unowned.
    chat_welcome_newcomers: bool = True

    #: Video consultations: "jitsi" (a self-hosted Jitsi checking a JWT per join) or "link" (the clinic's
    #: own meeting link, no token).
    video_provider: Literal["jitsi", "link"] = "jitsi"
    #: The self-hosted Jitsi's address (https://meet.example.org); unset: the sandbox's room stand-in
    #: (http://127.0.0.1:SANDBOX_PORT/video) while the sandbox is on.
    jitsi_url: str = ""
    #: The token's `aud` and `iss`: prosody's app_id.
    jitsi_app_id: str = "switchboard"
    #: prosody's app_secret: every room token is signed with it (HS256).
    jitsi_app_secret: SecretStr = SecretStr(SANDBOX_SECRETS["jitsi_app_secret"])
    #: The token's `sub`: the Jitsi domain (or tenant) the rooms live on.
    jitsi_domain: str = "meet.jitsi"
    #: With SWITCHBOARD_VIDEO_PROVIDER=link: the clinic's meeting URL, or a template with {room}.
    video_link_url: str = ""
    #: A booked consultation whose patient has not joined this many minutes after its start is a no-show
    #: (marked by the worker, and the patient offered new times).
    video_no_show_minutes: int = Field(default=10, ge=1, le=240)

    #: CSAT: resolving a live-chat conversation sends the customer a satisfaction survey (on|off).
    csat_surveys: bool = True
    #: Live chat: the largest file (an image or a PDF) a conversation keeps, in bytes; larger ones are refused.
    attachment_max_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    #: How long fetching one file a customer sent (WhatsApp, Telegram, MMS) may take before it is given up.
    attachment_fetch_timeout_seconds: float = Field(default=8.0, gt=0)

    #: How long a provider call may take before it counts as in doubt (SMTP conversations take longer).
    provider_timeout_seconds: float = Field(default=15.0, gt=0)
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)

    worker_in_process: bool = True
    worker_concurrency: int = Field(default=32, ge=1)
    #: Applied webhooks older than this many days are deleted (0 keeps them; at least 8: Meta retries for 7).
    webhook_retention_days: int = Field(default=30, ge=0)
    #: Message bodies, subjects and payloads older than this many days read "(expired)" (0 keeps them).
    message_body_retention_days: int = Field(default=0, ge=0)
    #: Conversation turns older than this many days read "(expired)" and their files go (0 keeps them).
    conversation_retention_days: int = Field(default=0, ge=0)
    #: Whole months of messages, with their status history, go once older than this many months (0 keeps
    #: them); on PostgreSQL their month partitions are dropped (storage/partitions.py).
    message_retention_months: int = Field(default=0, ge=0)
    #: "host:port" where `switchboard worker` serves its own provider-call metrics to Prometheus ("" = none).
    worker_metrics_address: str = ""
    worker_lease_seconds: float = 60.0
    worker_in_doubt_grace_seconds: float = 120.0
    worker_max_attempts: int = 8
    sms_rate_per_second: float = 50.0
    whatsapp_rate_per_second: float = 80.0
    email_rate_per_second: float = 20.0
    telegram_rate_per_second: float = 25.0
    confirm_above_recipients: int = 1

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "SWITCHBOARD_DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg:// "
                f"(got {value.split('://', 1)[0]}://...)"
            )
        return value

    @model_validator(mode="after")
    def _replica_beside_postgresql(self) -> Self:
        read_url = self.database_read_url.strip()
        if read_url and not (
            read_url.startswith("postgresql+asyncpg://")
            and self.database_url.startswith("postgresql+asyncpg://")
        ):
            raise ValueError(
                "SWITCHBOARD_DATABASE_READ_URL is a PostgreSQL read replica (postgresql+asyncpg://...) beside a "
                "PostgreSQL SWITCHBOARD_DATABASE_URL; SQLite has no replicas: leave it empty"
            )
        self.database_read_url = read_url
        if self.database_transaction_pooling and not self.database_url.startswith("postgresql+asyncpg://"):
            raise ValueError(
                "SWITCHBOARD_DATABASE_TRANSACTION_POOLING is for PostgreSQL behind PgBouncer in transaction mode; "
                "the database is SQLite: leave it unset"
            )
        return self

    @field_validator("log_level")
    @classmethod
    def _a_logging_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"{value!r} is not a log level: say {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("webhook_retention_days")
    @classmethod
    def _outlast_provider_retries(cls, value: int) -> int:
        if 0 < value < 8:
            raise ValueError(
                "keep applied webhooks at least 8 days (providers retry for up to 7, and a retry of a forgotten "
                "webhook would be applied again), or 0 to keep them all"
            )
        return value

    @field_validator("worker_metrics_address")
    @classmethod
    def _host_and_port(cls, value: str) -> str:
        value = value.strip()
        host, colon, port = value.rpartition(":")
        if value and not (colon and host and port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"give host:port, such as 127.0.0.1:9461 or 0.0.0.0:9464 (got {value!r})")
        return value

    @field_validator("environment", mode="before")
    @classmethod
    def _environment_in_any_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("quiet_hours")
    @classmethod
    def _two_times_of_day(cls, value: str) -> str:
        quiet_hours_window(value)
        return value

    @field_validator("marketing_per_day", "marketing_per_week", "campaign_type_per_week", mode="before")
    @classmethod
    def _empty_limit_is_none(cls, value: object) -> object:
        # `SWITCHBOARD_MARKETING_PER_DAY=` or `=none` means no limit; 0 means no marketing at all.
        if isinstance(value, str) and value.strip().lower() in ("", "none"):
            return None
        return value

    @field_validator("sandbox_smtp_port", "smtp_port", mode="before")
    @classmethod
    def _empty_port_is_unset(cls, value: object) -> object:
        # `SWITCHBOARD_SMTP_PORT=` in a .env means "not set", not "not a number".
        return 0 if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _endpoints_follow_the_sandbox(self) -> Self:
        """Fill unset provider endpoints: the sandbox's ports while it runs, the real providers otherwise."""
        if not self.sandbox_smtp_port:
            self.sandbox_smtp_port = self.sandbox_port + 1
        for name, provider_url in PROVIDER_BASE_URLS.items():
            if not getattr(self, name).strip():
                sandbox_url = self.sandbox_base_url + SANDBOX_PATHS.get(name, "")
                setattr(self, name, sandbox_url if self.sandbox else provider_url)
        if not self.smtp_port:
            self.smtp_port = self.sandbox_smtp_port if self.sandbox else SMTP_SUBMISSION_PORT
        if not self.jitsi_url.strip() and self.sandbox:
            self.jitsi_url = self.sandbox_base_url + SANDBOX_VIDEO_PATH
        return self

    @model_validator(mode="after")
    def _lease_outlasts_a_send(self) -> Self:
        """A claim must outlast the longest send: waiting its turn behind the calls in flight at the
        slowest pace, then the slowest provider's timeout. A shorter lease would let a second worker take
        a message still being sent as in doubt, and send it again."""
        longest = self.longest_send_seconds()
        if self.worker_lease_seconds < longest:
            slowest = min(self.send_rates())
            raise ValueError(
                f"SWITCHBOARD_WORKER_LEASE_SECONDS is {self.worker_lease_seconds:g} s, but it must be at least "
                f"{math.ceil(longest)} s: a claim must outlast the slowest provider call "
                f"({max(self.provider_timeout_seconds, self.smtp_timeout_seconds):g} s) with room to renew it, "
                f"and the wait behind the messages claimed ahead of it at {slowest:g}/s"
            )
        return self

    def send_rates(self) -> list[float]:
        return [
            self.sms_rate_per_second,
            self.whatsapp_rate_per_second,
            self.email_rate_per_second,
            self.telegram_rate_per_second,
        ]

    def longest_send_seconds(self) -> float:
        """How long a claimed message may take to be sent, at worst (see the delivery worker's pipeline)."""
        slowest = min(self.send_rates())
        # Claimed ahead: the calls in flight plus a waiting room of about a second at the slowest pace.
        waiting = (self.worker_concurrency + max(self.worker_concurrency, slowest)) / slowest
        call = max(self.provider_timeout_seconds, self.smtp_timeout_seconds)
        # Claims are renewed once a third of a lease has passed (looked at every second), so two thirds
        # of a lease, less a second, must cover a call and half a second more.
        renewed = (call + 1.5) * 3 / 2
        return max(call + waiting + 1.0, renewed)

    @property
    def secure_cookies(self) -> bool:
        """Whether the dashboard's cookies (sign-in, CSRF, notices) go over HTTPS only: when it is served so."""
        return self.public_url.startswith("https://")

    @property
    def phone_region(self) -> str:
        """The country of phone numbers written without +code: business_country, else the country of the
        business's timezone (Europe/Berlin: DE), else the territory of its locale (en_GB: GB); "" if none."""
        if self.business_country:
            return self.business_country.upper()
        from domain.customers.importing import region_of  # phonenumbers: loaded only when numbers are read

        return country_of_timezone(self.business_timezone) or region_of(self.business_locale)

    @property
    def customer_language(self) -> str:
        """The language of an imported customer whose row names none: the first official language of the
        business's country (DE: de), not the dashboard's locale (en_GB is how staff read numbers)."""
        from domain.customers.importing import language_of_country  # babel: loaded only when asked

        return language_of_country(self.phone_region) or self.business_locale.split("_")[0]

    @property
    def sandbox_base_url(self) -> str:
        return f"http://{SANDBOX_HOST}:{self.sandbox_port}"

    @property
    def slack_configured(self) -> bool:
        """Whether the Slack bot is on: a bot token and a signing secret (a business without Slack leaves them
        empty; /slack/events then answers 503)."""
        return bool(
            self.slack_bot_token.get_secret_value().strip()
            and self.slack_signing_secret.get_secret_value().strip()
        )

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    def sandbox_secrets_in_use(self) -> list[str]:
        """Names of secrets still at their sandbox default (production must set every one)."""
        in_use = []
        for name, default in SANDBOX_SECRETS.items():
            value = getattr(self, name)
            if name == "jitsi_app_secret" and self.video_provider != "jitsi":
                continue  # a clinic on its own meeting link signs no room tokens
            if isinstance(value, SecretStr) and value.get_secret_value() == default:
                in_use.append(f"SWITCHBOARD_{name.upper()}")
        return in_use

    def sandbox_endpoints_in_use(self) -> list[str]:
        """Provider endpoints on this machine (a .env copied from a demo, say, on whatever port its sandbox
        ran): no provider and no video room a patient can reach answers at 127.0.0.1. A mail relay on this
        machine is common (a local postfix), and so is Telegram's own Bot API server, so those count only on
        the sandbox's own ports."""
        in_use = []
        for name in (*PROVIDER_BASE_URLS, "jitsi_url"):
            host, port = _host_and_port(getattr(self, name))
            # Telegram's own Bot API server may run on this machine (telegram-bot-api): only the sandbox's
            # port is taken for the sandbox there.
            if host in _LOOPBACK and (name != "telegram_base_url" or port == self.sandbox_port):
                in_use.append(f"SWITCHBOARD_{name.upper()}")
        if self.smtp_host in _LOOPBACK and self.smtp_port == self.sandbox_smtp_port:
            in_use.append("SWITCHBOARD_SMTP_PORT")
        return in_use

    def check_production_ready(self) -> None:
        """Refuse to run in production with the sandbox on or with sandbox secrets."""
        if not self.is_production:
            return
        problems = []
        if self.sandbox:
            problems.append("SWITCHBOARD_SANDBOX must be 0 in production")
        problems += [f"{name} still has its sandbox default" for name in self.sandbox_secrets_in_use()]
        problems += [
            f"SWITCHBOARD_{name.upper()} is empty: give it a long random value (openssl rand -hex 32)"
            for name in ("api_token", "session_secret")
            if not getattr(self, name).get_secret_value().strip()
        ]
        problems += [
            f"{name} points at this machine, where only the provider sandbox answers; leave it unset to reach "
            "the real provider"
            for name in self.sandbox_endpoints_in_use()
        ]
        if problems:
            raise ConfigurationError("; ".join(problems))


def quiet_hours_window(value: str) -> tuple[time, time] | None:
    """SWITCHBOARD_QUIET_HOURS read: ("21:00", "08:00") as times, or None for "off"; ValueError in words."""
    text = value.strip().lower()
    if text in ("off", "none"):
        return None
    # "21:00-08:00", "21.30–08.15" (as Germans write times), "9:00 - 7:30"; hours and minutes both given.
    found = re.fullmatch(r"(\d{1,2})[:.](\d{2})\s*[-–]\s*(\d{1,2})[:.](\d{2})", text)
    try:
        if found is None:
            raise ValueError(text)
        hours = [int(part) for part in found.groups()]
        window = (time(hours[0], hours[1]), time(hours[2], hours[3]))
    except ValueError:
        raise ValueError(
            f"quiet hours are two times of day like 21:00-08:00, or off; got {value!r}"
        ) from None
    if window[0] == window[1]:
        raise ValueError(f"quiet hours start and end at the same time ({value!r}); to have none, say off")
    return window


@functools.cache
def _zone_countries() -> dict[str, str]:
    """timezone -> country, from the IANA zone table tzdata carries (zone.tab: one country per zone)."""
    try:
        table = resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text(encoding="utf-8")
    except (ModuleNotFoundError, OSError):
        return {}
    countries = {}
    for line in table.splitlines():
        fields = line.split("\t")
        if len(fields) >= 3 and not line.startswith("#"):
            countries[fields[2]] = fields[0]
    return countries


def country_of_timezone(timezone: str) -> str:
    """The country a timezone is kept for ("Europe/Zurich" -> "CH"); "" for one of no country (UTC).
    An old name ("Europe/Kiev", "US/Eastern", "Asia/Calcutta") is read as the zone it now links to."""
    countries = _zone_countries()
    return countries.get(timezone) or countries.get(_zone_links().get(timezone, ""), "")


@functools.cache
def _zone_links() -> dict[str, str]:
    """Old timezone name -> the zone it links to, from tzdata's compiled source (its `L TARGET NAME` lines)."""
    try:
        source = resources.files("tzdata").joinpath("zoneinfo", "tzdata.zi").read_text(encoding="utf-8")
    except (ModuleNotFoundError, OSError):
        return {}
    return {
        fields[2]: fields[1]
        for fields in (line.split() for line in source.splitlines() if line.startswith("L "))
        if len(fields) == 3
    }


def _host_and_port(url: str) -> tuple[str | None, int | None]:
    try:
        parts = urlsplit(url)
        return parts.hostname, parts.port
    except ValueError:  # a port that is not a number: not the sandbox's, at any rate
        return None, None


class ConfigurationError(RuntimeError):
    """Configuration that cannot work; the CLI shows it as one line and exits non-zero."""
