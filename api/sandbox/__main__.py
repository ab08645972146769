"""Command line entry: `python -m api.sandbox --port 8025 --smtp-port 8026 --public-url http://127.0.0.1:8000`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from api.sandbox.config import ChaosConfig, SandboxConfig
from api.sandbox.server import run_sandbox


def parse_config(argv: list[str] | None = None) -> SandboxConfig:
    parser = argparse.ArgumentParser(prog="python -m api.sandbox", description="Switchboard provider sandbox")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--smtp-port", type=int, default=None, help="default: the port after --port")
    parser.add_argument(
        "--public-url", default="http://127.0.0.1:8000", help="Switchboard's base URL for webhooks"
    )
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument(
        "--rate-limit", type=float, default=None, help="accepted sends per second per provider"
    )
    parser.add_argument(
        "--rate-limit-burst", type=int, default=10, help="sends allowed at once above the rate"
    )
    parser.add_argument("--chaos-429", type=float, default=0.0)
    parser.add_argument("--chaos-500", type=float, default=0.0)
    parser.add_argument("--chaos-503", type=float, default=0.0)
    parser.add_argument("--chaos-timeout", type=float, default=0.0)
    parser.add_argument(
        "--chaos-hang-seconds", type=float, default=30.0, help="how long a 'timeout' fault holds its answer"
    )
    parser.add_argument(
        "--no-idempotency",
        action="store_true",
        help="take every send as new, as Twilio and Meta do (shows any duplicate Switchboard causes)",
    )
    parser.add_argument("--telegram-webhook-secret", default=None)
    parser.add_argument("--no-status-webhooks", action="store_true")
    parser.add_argument("--no-whatsapp-window", action="store_true", help="allow free-form WhatsApp any time")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    return SandboxConfig(
        port=args.port,
        smtp_port=args.smtp_port if args.smtp_port is not None else (args.port + 1 if args.port else 0),
        public_url=args.public_url,
        failure_rate=args.failure_rate,
        rate_limit_per_second=args.rate_limit,
        rate_limit_burst=args.rate_limit_burst,
        chaos=ChaosConfig(
            rate_429=args.chaos_429,
            rate_500=args.chaos_500,
            rate_503=args.chaos_503,
            rate_timeout=args.chaos_timeout,
            hang_seconds=args.chaos_hang_seconds,
        ),
        honour_idempotency_keys=not args.no_idempotency,
        telegram_webhook_secret=args.telegram_webhook_secret,
        send_status_webhooks=not args.no_status_webhooks,
        whatsapp_enforce_window=not args.no_whatsapp_window,
        seed=args.seed,
    )


async def serve(config: SandboxConfig) -> None:
    async with run_sandbox(config) as sandbox:
        print(f"Provider sandbox on {sandbox.base_url} (console {sandbox.base_url}/_sandbox/)")
        print(f"SMTP on {sandbox.host}:{sandbox.smtp_port}; webhooks to {config.public_url}")
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(parse_config(argv)))


if __name__ == "__main__":
    main()
