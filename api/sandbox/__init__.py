"""The provider sandbox: local stand-ins for Twilio, WhatsApp Cloud, Telegram, Slack and SMTP that speak their wire protocols."""

from api.sandbox.app import create_sandbox_app, sandbox_state
from api.sandbox.config import ChaosConfig, SandboxConfig
from api.sandbox.server import RunningSandbox, run_sandbox
from api.sandbox.state import SandboxMessage, SandboxState, StoredEmail

__all__ = [
    "ChaosConfig",
    "RunningSandbox",
    "SandboxConfig",
    "SandboxMessage",
    "SandboxState",
    "StoredEmail",
    "create_sandbox_app",
    "run_sandbox",
    "sandbox_state",
]
