"""`switchboard doctor`: is this installation able to work? One line per check, with a fix for each failure.

Checks the database and its schema, each provider's credentials and webhook registration (Twilio's account
and number, WhatsApp's token and phone number id, Telegram's bot and webhook, the SMTP relay's login, Slack's
token and scopes), whether the public URL reaches this installation, and the clock. Every check has its own
time limit and runs beside the others, so an unreachable provider makes one slow line, not a hung command.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Literal

import aiohttp

from domain.clock import utc_now
from storage import migrate
from storage.database import Database
from switchboard.settings import Settings

Outcome = Literal["ok", "FAIL", "skip"]

#: How long one check may take before it counts as failed (an unreachable host, a firewall dropping packets).
CHECK_SECONDS = 10.0
#: The Graph API version the WhatsApp driver speaks (providers/whatsapp/driver.py).
WHATSAPP_API_VERSION = "v21.0"
#: More clock skew than this breaks signed links and tokens (Slack refuses requests 5 minutes old).
MAX_SKEW_SECONDS = 5.0


@dataclass(frozen=True)
class Finding:
    check: str
    outcome: Outcome
    detail: str
    fix: str = ""

    def line(self, width: int) -> str:
        text = f"{self.outcome:<5} {self.check:<{width}}  {self.detail}"
        return (
            f"{text}\n      {'':<{width}}  fix: {self.fix}" if self.fix and self.outcome == "FAIL" else text
        )


def ok(check: str, detail: str) -> Finding:
    return Finding(check, "ok", detail)


def fail(check: str, detail: str, fix: str) -> Finding:
    return Finding(check, "FAIL", detail, fix)


def skip(check: str, detail: str) -> Finding:
    return Finding(check, "skip", detail)


class Doctor:
    """The checks, each an async method returning its findings; `examine` runs them all."""

    def __init__(
        self, settings: Settings, database: Database, *, wait_seconds: float = CHECK_SECONDS
    ) -> None:
        self.settings = settings
        self.database = database
        #: How long one request to a provider may take before its check fails.
        self.wait_seconds = wait_seconds
        #: Clock readings from provider answers' Date headers: (who, their time, our time).
        self.clocks: list[tuple[str, datetime, datetime]] = []
        self._http: aiohttp.ClientSession | None = None

    async def examine(self) -> list[Finding]:
        # Connecting may take the whole wait: on a busy machine a local process can be seconds late to
        # accept, and a check that failed then would send the operator after a fault that is not there.
        timeout = aiohttp.ClientTimeout(total=self.wait_seconds)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            self._http = http
            # The database first and alone: timed while the providers' checks load their clients, its
            # round trip read seconds on an idle server.
            database = await self._bounded("database", self.database_and_schema)
            checks: list[tuple[str, Callable[[], Awaitable[list[Finding]]]]] = [
                ("configuration", self.configuration),
                ("twilio", self.twilio),
                ("whatsapp", self.whatsapp),
                ("telegram", self.telegram),
                ("smtp", self.smtp),
                ("slack", self.slack),
                ("video", self.video),
                ("public url", self.public_url),
            ]
            found = await asyncio.gather(*(self._bounded(name, check) for name, check in checks))
            findings = database + [finding for group in found for finding in group]
            findings.append(self.clock())
        return findings

    async def _bounded(self, name: str, check: Callable[[], Awaitable[list[Finding]]]) -> list[Finding]:
        started = time.monotonic()
        try:
            # A provider's check makes up to three requests, each bounded by wait_seconds.
            return await asyncio.wait_for(check(), timeout=3 * self.wait_seconds + 2)
        except TimeoutError:
            waited = max(time.monotonic() - started, 0.1)  # the time it took, not the limit it was given
            return [fail(name, f"no answer within {waited:.1f} s", self._unreachable_fix(name))]
        except Exception as error:  # unreachable, refused, an answer no client could read: one line, no trace
            return [fail(name, f"unreachable: {_first_line(error)}", self._unreachable_fix(name))]

    def _unreachable_fix(self, name: str) -> str:
        if self.settings.sandbox and name in {"twilio", "whatsapp", "telegram", "slack", "smtp", "video"}:
            return (
                f"the provider sandbox does not answer at {self.settings.sandbox_base_url}: "
                "`switchboard serve` starts it while SWITCHBOARD_SANDBOX=1 (or run `switchboard sandbox`); "
                "if it runs on another port (`make demo SANDBOX_PORT=8125`), set SWITCHBOARD_SANDBOX_PORT to it"
            )
        return _unreachable_fix(name)

    # --- the database ----------------------------------------------------------------------------------

    async def database_and_schema(self) -> list[Finding]:
        url = self.database.engine.url
        sqlite_file = url.database if url.get_backend_name() == "sqlite" else None
        if sqlite_file and not await asyncio.to_thread(Path(sqlite_file).exists):
            # Connecting would create an empty file there: say what is missing instead.
            return [
                fail(
                    "database",
                    f"there is no SQLite database at {url.database}",
                    "check SWITCHBOARD_DATABASE_URL, or create it with  switchboard migrate",
                ),
                *_not_checked("schema", after="database"),
            ]
        started = time.perf_counter()
        try:
            await self.database.ping()
        except Exception as error:  # any failure to connect is this check's finding
            return [
                fail(
                    "database",
                    f"unreachable: {_first_line(error)}",
                    "check SWITCHBOARD_DATABASE_URL (host, port, user, password, database name) and that "
                    "the server runs",
                ),
                *_not_checked("schema", after="database"),
            ]
        took = (time.perf_counter() - started) * 1000
        engine = "PostgreSQL" if self.database.dialect == "postgresql" else "SQLite"
        findings = [ok("database", f"{engine} reachable in {took:.0f} ms")]
        # The read engine: on SQLite the write engine would queue behind a running import or send.
        current = await migrate.current_revision(self.database.read_engine)
        head = migrate.head_revision()
        if current == head:
            findings.append(ok("schema", f"at head ({head})"))
        elif migrate.is_newer_than_this_release(current):
            findings.append(
                ok(
                    "schema",
                    f"at {current}, newer than this release ({head}): a newer release is rolling out",
                )
            )
        else:
            findings.append(
                fail(
                    "schema",
                    f"at {current or 'no revision (an empty database)'}, this version needs {head}",
                    "run  switchboard migrate",
                )
            )
        if self.database.dialect == "postgresql":
            async with self.database.sessions() as session:
                from sqlalchemy import text

                theirs = (await session.execute(text("SELECT now()"))).scalar_one()
            self.clocks.append(("the database", theirs, utc_now()))
        return findings

    # --- configuration ---------------------------------------------------------------------------------

    async def configuration(self) -> list[Finding]:
        settings = self.settings
        if not settings.is_production:
            where = "the provider sandbox" if settings.sandbox else "the providers"
            return [
                skip(
                    "production",
                    f"SWITCHBOARD_ENVIRONMENT={settings.environment}: not checked for production "
                    f"(talking to {where})",
                )
            ]
        try:
            settings.check_production_ready()
        except Exception as error:  # ConfigurationError: its message lists every problem
            return [fail("production", str(error), "set these in the environment file and restart")]
        return [ok("production", "sandbox off, no sandbox secret or endpoint in use")]

    # --- providers -------------------------------------------------------------------------------------

    async def _get(self, who: str, url: str, **options: Any) -> tuple[int, Any]:
        assert self._http is not None
        async with self._http.get(url, **options) as answer:
            self._note_clock(who, answer.headers.get("Date"))
            try:
                body = await answer.json(content_type=None)
            except ValueError:
                body = None
            return answer.status, body

    def _note_clock(self, who: str, date_header: str | None) -> None:
        if date_header:
            try:
                theirs = parsedate_to_datetime(date_header)
            except (TypeError, ValueError):
                return
            if theirs.tzinfo is None:
                theirs = theirs.replace(tzinfo=UTC)
            self.clocks.append((who, theirs, utc_now()))

    async def twilio(self) -> list[Finding]:
        settings = self.settings
        sid = settings.twilio_account_sid
        empty = _empty(
            SWITCHBOARD_TWILIO_ACCOUNT_SID=sid,
            SWITCHBOARD_TWILIO_AUTH_TOKEN=settings.twilio_auth_token.get_secret_value(),
        )
        if empty:
            return [
                fail(
                    "twilio account",
                    f"{empty} is empty, so no SMS can be sent",
                    "set it from the Twilio Console's Account Info",
                ),
                *_not_checked("twilio number", "twilio webhook", after="twilio account"),
            ]
        base = settings.twilio_base_url.rstrip("/")
        auth = aiohttp.BasicAuth(sid, settings.twilio_auth_token.get_secret_value())
        status, account = await self._get("Twilio", f"{base}/2010-04-01/Accounts/{sid}.json", auth=auth)
        refused: Finding | None = None
        if status == 401:
            refused = fail(
                "twilio account",
                f"Twilio refused the credentials for account {sid} (401)",
                "set SWITCHBOARD_TWILIO_ACCOUNT_SID and SWITCHBOARD_TWILIO_AUTH_TOKEN from the Twilio "
                "Console's Account Info",
            )
        elif status != 200 or not isinstance(account, dict):
            refused = fail(
                "twilio account", f"Twilio answered {status}", "see Twilio's status page; try again"
            )
        elif account.get("status") != "active":
            refused = fail(
                "twilio account",
                f"account {sid} is {account.get('status')}",
                "reactivate the account in the Twilio Console",
            )
        if refused is not None:
            return [refused, *_not_checked("twilio number", "twilio webhook", after="twilio account")]
        assert isinstance(account, dict)  # anything else was refused above
        findings = [ok("twilio account", f"{account.get('friendly_name') or sid} is active")]
        number = settings.twilio_from
        status, listed = await self._get(
            "Twilio",
            f"{base}/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json",
            auth=auth,
            params={"PhoneNumber": number},
        )
        numbers = (listed or {}).get("incoming_phone_numbers", []) if isinstance(listed, dict) else []
        if status != 200 or not numbers:
            findings.append(
                fail(
                    "twilio number",
                    f"{number} is not a number of account {sid}",
                    "set SWITCHBOARD_TWILIO_FROM to one of the account's numbers (Console → Phone Numbers)",
                )
            )
            return [*findings, *_not_checked("twilio webhook", after="twilio number")]
        findings.append(ok("twilio number", f"{number} belongs to the account"))
        expected = self._public("/webhooks/twilio/inbound")
        sms_url = str(numbers[0].get("sms_url") or "")
        if sms_url != expected:
            findings.append(
                fail(
                    "twilio webhook",
                    f"{number}'s incoming messages go to {sms_url or 'nowhere'}",
                    f"Console → Phone Numbers → {number} → Messaging: 'A message comes in' → {expected} "
                    "(HTTP POST)",
                )
            )
        else:
            findings.append(ok("twilio webhook", f"{number} sends incoming messages to {expected}"))
        return findings

    async def whatsapp(self) -> list[Finding]:
        settings = self.settings
        number_id = settings.whatsapp_phone_number_id
        empty = _empty(
            SWITCHBOARD_WHATSAPP_TOKEN=settings.whatsapp_token.get_secret_value(),
            SWITCHBOARD_WHATSAPP_PHONE_NUMBER_ID=number_id,
        )
        if empty:
            return [
                fail(
                    "whatsapp token",
                    f"{empty} is empty, so no WhatsApp message can be sent",
                    "set it from WhatsApp → API Setup in the Meta app (the token: a system user's permanent one)",
                ),
                *_not_checked("whatsapp number", after="whatsapp token"),
            ]
        url = f"{settings.whatsapp_base_url.rstrip('/')}/{WHATSAPP_API_VERSION}/{number_id}"
        headers = {"Authorization": f"Bearer {settings.whatsapp_token.get_secret_value()}"}
        status, answer = await self._get("WhatsApp", url, headers=headers)
        error = (answer or {}).get("error", {}) if isinstance(answer, dict) else {}
        if status == 401 or error.get("code") == 190:
            return [
                fail(
                    "whatsapp token",
                    "Meta refused the access token (expired, or for another app)",
                    "set SWITCHBOARD_WHATSAPP_TOKEN to a system user's permanent token with "
                    "whatsapp_business_messaging (Meta Business Settings → System users)",
                ),
                *_not_checked("whatsapp number", after="whatsapp token"),
            ]
        if status != 200 or not isinstance(answer, dict):
            return [
                fail(
                    "whatsapp number",
                    f"phone number id {number_id}: {error.get('message') or f'Meta answered {status}'}",
                    "set SWITCHBOARD_WHATSAPP_PHONE_NUMBER_ID from WhatsApp → API Setup in the Meta app",
                )
            ]
        name = answer.get("verified_name") or "?"
        quality = answer.get("quality_rating") or "unknown"
        return [
            ok("whatsapp token", "accepted"),
            ok(
                "whatsapp number",
                f"{_phone_shown(answer.get('display_phone_number'))} ({name}), quality {quality}; the webhook itself is "
                f"registered in the Meta app: {self._public('/webhooks/whatsapp')}",
            ),
        ]

    async def telegram(self) -> list[Finding]:
        from aiogram.exceptions import TelegramUnauthorizedError

        from providers.telegram.client import telegram_bot

        settings = self.settings
        if not settings.telegram_bot_token.get_secret_value().strip():
            return [
                skip(
                    "telegram", "no SWITCHBOARD_TELEGRAM_BOT_TOKEN: Telegram is off (customers and staff bot)"
                )
            ]
        bot = telegram_bot(
            settings.telegram_bot_token.get_secret_value(),
            settings.telegram_base_url,
            timeout_seconds=max(1, int(self.wait_seconds - 2)),
        )
        try:
            try:
                me = await bot.get_me()
            except TelegramUnauthorizedError:
                return [
                    fail(
                        "telegram bot",
                        "Telegram refused the bot token",
                        "set SWITCHBOARD_TELEGRAM_BOT_TOKEN to the token @BotFather gave",
                    ),
                    *_not_checked("telegram webhook", after="telegram bot"),
                ]
            findings = [ok("telegram bot", f"@{me.username} ({me.first_name})")]
            info = await bot.get_webhook_info()
        finally:
            await bot.session.close()
        expected = self._public("/webhooks/telegram")
        fix = (
            "call setWebhook with url=" + expected + " and secret_token=SWITCHBOARD_TELEGRAM_WEBHOOK_SECRET "
            "(docs/operations.md, Registering webhooks)"
        )
        if info.url != expected:
            findings.append(
                fail("telegram webhook", f"updates go to {info.url or 'nowhere (no webhook)'}", fix)
            )
        elif info.last_error_message:
            findings.append(
                fail(
                    "telegram webhook",
                    f"{expected}, but Telegram's last delivery failed: {info.last_error_message} "
                    f"({info.pending_update_count} updates waiting)",
                    "check that the public URL answers from the internet (TLS certificate, nginx, firewall)",
                )
            )
        else:
            findings.append(
                ok("telegram webhook", f"{expected}, {info.pending_update_count} updates waiting")
            )
        return findings

    async def smtp(self) -> list[Finding]:
        import aiosmtplib

        settings = self.settings
        username = settings.smtp_username or None
        if not settings.smtp_host.strip():
            return [
                fail(
                    "smtp relay",
                    "SWITCHBOARD_SMTP_HOST is empty, so no email can be sent",
                    "set SWITCHBOARD_SMTP_HOST to your mail relay, with SWITCHBOARD_SMTP_PORT, "
                    "SWITCHBOARD_SMTP_USERNAME and SWITCHBOARD_SMTP_PASSWORD",
                )
            ]
        relay = aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=username,
            password=settings.smtp_password.get_secret_value() or None,
            start_tls=None,
            timeout=max(1.0, self.wait_seconds - 2),
        )
        where = f"{settings.smtp_host}:{settings.smtp_port}"
        try:
            await relay.connect()
        except aiosmtplib.SMTPAuthenticationError as error:
            return [
                fail(
                    "smtp login",
                    f"{where} refused the login of {username}: {error.message}",
                    "check SWITCHBOARD_SMTP_USERNAME and SWITCHBOARD_SMTP_PASSWORD",
                )
            ]
        except (aiosmtplib.SMTPException, OSError) as error:
            return [
                fail(
                    "smtp relay",
                    f"cannot reach {where}: {_first_line(error)}",
                    self._unreachable_fix("smtp"),
                )
            ]
        try:
            tls = "with TLS" if relay.get_transport_info("sslcontext") is not None else "without TLS"
            if relay.is_ehlo_or_helo_needed:
                await relay.ehlo()
            if not relay.supports_extension("dsn"):
                reports = "no delivery reports (DSN), so emails stay 'sent' until one bounces"
            elif settings.smtp_delivery_reports:
                reports = "delivery reports (DSN) offered and asked for"
            else:
                reports = (
                    "delivery reports (DSN) offered, not asked for (SWITCHBOARD_SMTP_DELIVERY_REPORTS=off)"
                )
        except aiosmtplib.SMTPException:
            reports = "could not ask about delivery reports (DSN)"
        finally:
            try:
                await relay.quit()
            except aiosmtplib.SMTPException:
                relay.close()
        login = f"logged in as {username}" if username else "no login (SWITCHBOARD_SMTP_USERNAME is empty)"
        return [ok("smtp relay", f"{where} {tls}, {login}; {reports}")]

    async def slack(self) -> list[Finding]:
        from slack_sdk.errors import SlackApiError

        from providers.slack.client import BOT_SCOPES, slack_client

        settings = self.settings
        token = settings.slack_bot_token.get_secret_value()
        if not token:
            return [skip("slack", "no SWITCHBOARD_SLACK_BOT_TOKEN: the Slack bot is off")]
        if not settings.slack_signing_secret.get_secret_value().strip():
            return [
                fail(
                    "slack",
                    "the bot token is set but SWITCHBOARD_SLACK_SIGNING_SECRET is empty: the bot posts in Slack, "
                    "but staff replies and buttons never arrive (/slack/events answers 503)",
                    "set it to the Signing Secret under Basic Information in the Slack app, or empty the token too",
                )
            ]
        client = slack_client(
            token, settings.slack_base_url, timeout_seconds=max(1, int(self.wait_seconds - 2))
        )
        try:
            answer = await client.auth_test()
        except SlackApiError as error:
            return [
                fail(
                    "slack token",
                    f"Slack refused the bot token: {error.response.get('error')}",
                    "set SWITCHBOARD_SLACK_BOT_TOKEN to the Bot User OAuth Token (xoxb-...) from OAuth & "
                    "Permissions",
                ),
                *_not_checked("slack scopes", after="slack token"),
            ]
        self._note_clock("Slack", answer.headers.get("date") or answer.headers.get("Date"))
        findings = [ok("slack token", f"bot {answer.get('user')} in {answer.get('team')}")]
        granted = {
            scope.strip()
            for scope in str(
                answer.headers.get("x-oauth-scopes") or answer.headers.get("X-OAuth-Scopes") or ""
            ).split(",")
            if scope.strip()
        }
        missing = [scope for scope in BOT_SCOPES if scope not in granted]
        if missing:
            findings.append(
                fail(
                    "slack scopes",
                    f"the token lacks {', '.join(missing)}",
                    "add them under OAuth & Permissions (or recreate the app from slack-app-manifest.yaml) "
                    "and reinstall the app to the workspace",
                )
            )
        else:
            findings.append(ok("slack scopes", f"all {len(BOT_SCOPES)} the app needs"))
        return findings

    async def video(self) -> list[Finding]:
        """Where video consultations happen: the clinic's Jitsi (answering) or its own meeting link."""
        settings = self.settings
        if settings.video_provider == "link":
            link = settings.video_link_url.strip()
            if not link:
                return [
                    fail(
                        "video",
                        "SWITCHBOARD_VIDEO_PROVIDER is link but SWITCHBOARD_VIDEO_LINK_URL is empty",
                        "set it to the clinic's meeting link (or a template with {room})",
                    )
                ]
            return [ok("video", f"consultations use the meeting link {link}")]
        base = settings.jitsi_url.strip()
        if not base:
            return [
                skip(
                    "video",
                    "no SWITCHBOARD_JITSI_URL: video consultations cannot be booked (set your Jitsi's address, "
                    "or SWITCHBOARD_VIDEO_PROVIDER=link with SWITCHBOARD_VIDEO_LINK_URL)",
                )
            ]
        try:
            status, _ = await self._get("Jitsi", base)
        except (aiohttp.ClientError, OSError) as error:
            return [
                fail(
                    "video",
                    f"Jitsi at {base} is unreachable: {_first_line(error)}",
                    self._unreachable_fix("video"),
                )
            ]
        if not 200 <= status < 400:
            return [
                fail(
                    "video",
                    f"{base} answered {status}, not a Jitsi's welcome page",
                    "set SWITCHBOARD_JITSI_URL to the address of your Jitsi itself (https://meet.example.org)",
                )
            ]
        return [ok("video", f"Jitsi at {base} answers")]

    # --- reachability and time ----------------------------------------------------------------------------

    async def public_url(self) -> list[Finding]:
        url = self._public("/healthz")
        try:
            status, body = await self._get("the public URL", url)
        except (aiohttp.ClientError, OSError) as error:
            return [
                fail(
                    "public url",
                    f"{url} is unreachable from here: {_first_line(error)}",
                    "check DNS, the TLS certificate, nginx and the firewall; SWITCHBOARD_PUBLIC_URL must be the "
                    "address the providers call",
                )
            ]
        if status != 200 or not isinstance(body, dict) or body.get("status") != "ok":
            return [
                fail(
                    "public url",
                    f"{url} answered {status}, not Switchboard's health answer",
                    "point the proxy at the web processes (deploy/nginx/switchboard.conf)",
                )
            ]
        if self.settings.is_production and not url.startswith("https://"):
            return [
                fail(
                    "public url",
                    f"{url} answers, but over plain HTTP: Telegram and Meta send webhooks over HTTPS only",
                    "put TLS in front (docs/operations.md, TLS and the public URL) and set "
                    "SWITCHBOARD_PUBLIC_URL to the https:// address",
                )
            ]
        return [ok("public url", f"{url} answers")]

    def clock(self) -> Finding:
        if not self.clocks:
            return skip("clock", "nothing to compare with (no provider or database answered with its time)")
        who, theirs, ours = max(self.clocks, key=lambda c: abs((c[1] - c[2]).total_seconds()))
        skew = (ours - theirs).total_seconds()
        # Date headers have whole seconds: a second of skew is what they can show at best.
        if abs(skew) > MAX_SKEW_SECONDS:
            return fail(
                "clock",
                f"this machine is {abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} {who}",
                "run time synchronisation (systemd-timesyncd or chrony) on this machine",
            )
        compared = ", ".join(sorted({c[0] for c in self.clocks}))
        return ok("clock", f"within {MAX_SKEW_SECONDS:g} s of {compared}")

    def _public(self, path: str) -> str:
        return self.settings.public_url.rstrip("/") + path


def _phone_shown(number: Any) -> str:
    """Meta's display number ("15550783881", or "+1 555-078-3881") as people write it: "+1 555-078-3881"."""
    import phonenumbers

    digits = "".join(ch for ch in str(number or "") if ch.isdigit())
    try:
        parsed = phonenumbers.parse(f"+{digits}", None)
    except phonenumbers.NumberParseException:
        return str(number or "?")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _empty(**settings: str) -> str:
    """The first of `settings` (named as their environment variables) that is empty or blank; "" if none."""
    return next((name for name, value in settings.items() if not value.strip()), "")


#: What client libraries put before the reason ("HTTP Client says - ClientConnectorError: Cannot connect …").
_LIBRARY_PREFIX = re.compile(r"^(?:HTTP Client says - )?(?:[A-Z]\w*(?:Error|Exception): )?")


_REFUSED = re.compile(
    r"Cannot connect to host (?P<where>\S+:\d+)\b.*(?:Connect call failed|Connection refused)"
)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    line = _LIBRARY_PREFIX.sub("", text[0]) if text else ""
    refused = _REFUSED.search(line)
    if refused:  # "Cannot connect to host 127.0.0.1:8025 ssl:default [Connect call failed (…)]"
        return f"nothing answers at {refused['where']} (connection refused)"
    return line[:200] or error.__class__.__name__


def _not_checked(*checks: str, after: str) -> list[Finding]:
    """The checks that need what failed, said as skipped rather than left out of the list."""
    return [skip(check, f"not checked: it needs {after} to pass first") for check in checks]


def _unreachable_fix(name: str) -> str:
    return {
        "twilio": "check SWITCHBOARD_TWILIO_BASE_URL (empty for Twilio itself) and outbound HTTPS from this machine",
        "whatsapp": "check SWITCHBOARD_WHATSAPP_BASE_URL (empty for Meta itself) and outbound HTTPS",
        "telegram": "check SWITCHBOARD_TELEGRAM_BASE_URL (empty for Telegram itself) and outbound HTTPS",
        "slack": "check SWITCHBOARD_SLACK_BASE_URL (empty for Slack itself) and outbound HTTPS",
        "smtp": "check SWITCHBOARD_SMTP_HOST and SWITCHBOARD_SMTP_PORT (587 with STARTTLS is usual) and that "
        "the firewall lets mail out",
        "public url": "check DNS, the certificate, nginx and the firewall",
        "video": "check SWITCHBOARD_JITSI_URL (the address patients open) and that this machine reaches it",
    }.get(name, "check the network and try again")


def report(findings: list[Finding]) -> str:
    width = max(len(f.check) for f in findings)
    failed = sum(f.outcome == "FAIL" for f in findings)
    summary = (
        f"{failed} check{'s' if failed != 1 else ''} failed"
        if failed
        else f"all {sum(f.outcome == 'ok' for f in findings)} checks passed"
    )
    return "\n".join([*(f.line(width) for f in findings), summary])
