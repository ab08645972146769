"""Moving the sandbox's ports moves the senders with it, and `make demo` can move every port it opens."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from api.sandbox import run_sandbox
from api.sandbox.__main__ import parse_config
from api.sandbox.server import free_port
from domain.delivery.ports import OutboundMessage, WhatsAppTemplateCall
from domain.vocabulary import Channel
from providers.registry import build_drivers
from switchboard.delivery import sandbox_config
from switchboard.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SWITCHBOARD_"):
            monkeypatch.delenv(name)


@pytest.mark.usefixtures("clean_environment")
async def test_every_sender_reaches_a_sandbox_on_moved_ports() -> None:
    settings = Settings(_env_file=None, sandbox_port=free_port(), sandbox_smtp_port=free_port())  # type: ignore[call-arg]
    welcome = WhatsAppTemplateCall(
        "nw_welcome",
        "en_US",
        (
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "Ada"}, {"type": "text", "text": "Camden"}],
            },
        ),
    )
    messages = {
        Channel.SMS: OutboundMessage(1, "ports-sms", Channel.SMS, "+15551230001", "Your order shipped"),
        Channel.WHATSAPP: OutboundMessage(
            2, "ports-wa", Channel.WHATSAPP, "+15551230001", "Welcome", whatsapp_template=welcome
        ),
        Channel.TELEGRAM: OutboundMessage(3, "ports-tg", Channel.TELEGRAM, "424242", "Hello"),
        Channel.EMAIL: OutboundMessage(
            4, "ports-mail", Channel.EMAIL, "ada@example.com", "Spring offers", subject="Spring"
        ),
    }
    async with run_sandbox(sandbox_config(settings, send_status_webhooks=False)) as sandbox:
        assert (sandbox.port, sandbox.smtp_port) == (settings.sandbox_port, settings.sandbox_smtp_port)
        drivers = build_drivers(settings)
        try:
            for channel, message in messages.items():
                await drivers[channel].send(message)
        finally:
            for driver in drivers.values():
                await driver.close()
        providers = sorted(message.provider for message in sandbox.state.messages)
        recipients = [rcpt for email in sandbox.state.emails for rcpt in email.rcpt_tos]
    assert providers == ["telegram", "twilio", "whatsapp_cloud"]
    assert recipients == ["ada@example.com"]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_moves_the_web_app_the_sandbox_and_the_sign_in_hint() -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    planned = subprocess.run(
        ["make", "-n", "demo", "PORT=8100", "SANDBOX_PORT=8125", "SANDBOX_SMTP_PORT=8127"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    moved = "SWITCHBOARD_PUBLIC_URL=http://127.0.0.1:8100 SWITCHBOARD_SANDBOX_PORT=8125 SWITCHBOARD_SANDBOX_SMTP_PORT=8127"
    (serve,) = [line for line in planned.splitlines() if "switchboard serve" in line]
    assert serve.startswith(moved) and serve.endswith("--port 8100")
    (hint,) = [line for line in planned.splitlines() if "Sign in at" in line]
    assert "http://127.0.0.1:8100/login" in hint and f"{moved} .venv/bin/switchboard login-link" in hint
    default = subprocess.run(
        ["make", "-n", "demo"], cwd=ROOT, env=environment, capture_output=True, text=True, check=True
    ).stdout
    (serve,) = [line for line in default.splitlines() if "switchboard serve" in line]
    # Only the demo's live chat is set (the sandbox Slack's #live-chat, agents' Telegram chats); ports and the
    # rest are left to .env or the defaults.
    live_chat = "SWITCHBOARD_SLACK_CHAT_CHANNEL=C0LIVECHAT SWITCHBOARD_TELEGRAM_STAFF_CHATS=1"
    assert serve.startswith(live_chat + " .venv/bin/switchboard serve") and serve.endswith("--port 8000")
    assert serve.count("SWITCHBOARD_") == 2


def test_the_standalone_sandbox_moves_its_smtp_port_with_its_http_port() -> None:
    assert (parse_config([]).port, parse_config([]).smtp_port) == (8025, 8026)
    assert parse_config(["--port", "8125"]).smtp_port == 8126
    assert parse_config(["--port", "8125", "--smtp-port", "9000"]).smtp_port == 9000


@pytest.mark.usefixtures("clean_environment")
def test_serve_on_a_taken_port_says_so_and_never_that_it_is_running(tmp_path: Path) -> None:
    """It printed "Switchboard is running at http://127.0.0.1:8000/" and then failed to bind."""
    import socket

    database = f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}"
    env = {**os.environ, "SWITCHBOARD_DATABASE_URL": database, "SWITCHBOARD_SANDBOX": "false"}
    switchboard = [sys.executable, "-m", "switchboard.cli"]
    subprocess.run([*switchboard, "migrate"], env=env, check=True, capture_output=True, timeout=120)
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        started = subprocess.run(
            [*switchboard, "serve", "--port", str(port)], env=env, capture_output=True, text=True, timeout=120
        )
    assert started.returncode == 2
    assert "running" not in started.stdout
    assert started.stderr.strip() == (
        f"switchboard: error: port {port} on 127.0.0.1 is already in use (another Switchboard, or another "
        "program); stop it, or choose another port with --port"
    )
