"""What the provider sandbox expects, where it sends webhooks, and how badly it misbehaves."""

from __future__ import annotations

from dataclasses import dataclass, field

from api.sandbox.slack_people import SlackChannelSpec, SlackPerson, northwind_channels, northwind_slack_staff
from api.sandbox.whatsapp_templates import ApprovedTemplate, northwind_templates


@dataclass(frozen=True)
class ChaosConfig:
    """Fractions of provider send requests answered with a fault instead of the real outcome.

    Each fraction is drawn independently per request, in the order 429, 500, 503, timeout. A
    timeout accepts the message and then holds the answer for `hang_seconds`, longer than a
    client's timeout, because that is the case that makes naive retries send twice.
    """

    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_503: float = 0.0
    rate_timeout: float = 0.0
    hang_seconds: float = 30.0
    retry_after_seconds: int = 1


@dataclass(frozen=True)
class SandboxConfig:
    """Everything the sandbox needs: ports, the credentials it accepts, and its behaviour."""

    port: int = 8025
    smtp_port: int = 8026
    host: str = "127.0.0.1"
    #: Switchboard's public base URL; provider webhooks go to the paths below under it.
    public_url: str = "http://127.0.0.1:8000"
    twilio_status_path: str = "/webhooks/twilio/status"
    twilio_inbound_path: str = "/webhooks/twilio/inbound"
    whatsapp_webhook_path: str = "/webhooks/whatsapp"
    telegram_webhook_path: str = "/webhooks/telegram"
    email_inbound_path: str = "/webhooks/email/inbound"
    slack_events_path: str = "/slack/events"

    # Well-known fake credentials: the sandbox only ever listens on 127.0.0.1.
    twilio_account_sid: str = "AC00000000000000000000000000000000"
    twilio_auth_token: str = "sandbox-twilio-auth-token"  # noqa: S105
    twilio_phone_number: str = "+15005550006"

    whatsapp_token: str = "sandbox-whatsapp-token"  # noqa: S105
    whatsapp_app_secret: str = "sandbox-whatsapp-app-secret"  # noqa: S105
    whatsapp_phone_number_id: str = "106540352242922"
    whatsapp_display_phone_number: str = "15550783881"
    whatsapp_business_account_id: str = "102290129340398"
    #: Refuse free-form text to a customer who has not written in the last 24 h (error 131047).
    whatsapp_enforce_window: bool = True
    #: Real Meta accepts such requests and reports 131047 (window) or 131026 (undeliverable) in a
    #: failed status webhook; the default answers them synchronously with a 400, which is what
    #: drivers are easiest to test against.
    whatsapp_async_errors: bool = False
    #: The templates Meta has approved for this account; a send naming another is refused (132001).
    #: More can be submitted through POST /{version}/{waba-id}/message_templates, approved at once.
    whatsapp_templates: tuple[ApprovedTemplate, ...] = field(default_factory=northwind_templates)

    telegram_bot_token: str = "123456789:AAHsandboxSANDBOXsandboxSANDBOXsandbox"  # noqa: S105
    telegram_bot_username: str = "switchboard_sandbox_bot"
    #: Treat Switchboard's /webhooks/telegram as registered with this secret even before anyone
    #: calls setWebhook; None means customer updates queue for getUpdates until setWebhook is called.
    telegram_webhook_secret: str | None = None
    telegram_max_long_poll_seconds: float = 2.0

    slack_bot_token: str = "xoxb-sandbox-slack-bot-token"  # noqa: S105
    slack_signing_secret: str = "sandbox-slack-signing-secret"  # noqa: S105
    slack_command: str = "/sb"
    slack_team_id: str = "T0NORTHWIND"
    slack_team_domain: str = "northwind-sandbox"
    #: The workspace's people (the demo seed's staff Slack ids, and one stranger) and its channels.
    slack_people: tuple[SlackPerson, ...] = field(default_factory=northwind_slack_staff)
    slack_channels: tuple[SlackChannelSpec, ...] = field(default_factory=northwind_channels)
    #: Slack gives up on a slash command that is not acknowledged within 3 seconds.
    slack_ack_timeout_seconds: float = 3.0

    #: The video room stand-in checks room tokens with these, as a Jitsi with token authentication does.
    jitsi_app_id: str = "switchboard"
    jitsi_app_secret: str = "sandbox-jitsi-app-secret-change-me-0123456789"  # noqa: S105
    jitsi_domain: str = "meet.jitsi"

    email_domain: str = "sandbox.switchboard.test"
    #: The bearer token our inbound-email endpoint expects (SWITCHBOARD_API_TOKEN); mail relays post
    #: inbound mail and bounces with a shared secret like this one.
    email_webhook_token: str = "sandbox-api-token"  # noqa: S105

    def email_webhook_headers(self) -> dict[str, str]:
        return {"Content-Type": "message/rfc822", "Authorization": f"Bearer {self.email_webhook_token}"}

    #: Fraction of accepted messages that end failed/undelivered with a realistic error code.
    failure_rate: float = 0.0
    #: Seconds between status steps (queued -> sent -> delivered), drawn uniformly from this range.
    status_latency: tuple[float, float] = (0.05, 0.25)
    chaos: ChaosConfig = field(default_factory=ChaosConfig)
    #: Accepted sends per second per provider (token bucket); None means unlimited.
    rate_limit_per_second: float | None = None
    rate_limit_burst: int = 10
    send_status_webhooks: bool = True
    #: Webhooks waiting to be delivered; past this a delivery is dropped, counted (`webhooks_dropped`) and logged
    #: as a warning. Meta and Twilio queue and retry for hours to days instead. Raising this to 100,000 (so a
    #: bench's minute of 50 customer messages a second is never dropped) slowed the fault suite's chaos run past
    #: its bound on 2026-12-02 (every status webhook then arrives), so it stays at 1,000 until that is looked at.
    webhook_queue_size: int = 1000
    #: Webhooks in flight at once. Meta and Twilio deliver many concurrently; four made a burst of 50 customer
    #: messages a second queue up in the sandbox and overflow, which no real provider does.
    webhook_workers: int = 16
    webhook_max_attempts: int = 4
    webhook_timeout_seconds: float = 5.0
    #: Seed for the sandbox's randomness, so a failing run can be repeated exactly.
    seed: int | None = None
    #: Drop a repeated send carrying the same idempotency key, as a kind provider would. Twilio and Meta
    #: document no such key, so the fault suite turns this off to see every duplicate we would cause.
    honour_idempotency_keys: bool = True

    def webhook_url(self, path: str) -> str:
        return f"{self.public_url.rstrip('/')}{path}"
