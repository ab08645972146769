"""Builds the delivery side from settings: the dispatcher workers over the providers registry's drivers."""

from __future__ import annotations

import os
import secrets
import socket
from datetime import timedelta
from typing import TYPE_CHECKING

from domain.delivery.dispatch import Dispatcher
from domain.delivery.outbox import ClaimedMessage, RetryPolicy
from domain.delivery.pacing import TokenBucket
from domain.delivery.ports import MessageDriver
from domain.vocabulary import Channel, MessageCategory
from storage.database import is_transient
from storage.queries.chat_attachments import sent_file
from switchboard.settings import Settings

if TYPE_CHECKING:
    from api.sandbox.config import SandboxConfig
    from switchboard.wiring import Container


#: What claims (customer_communications.claimed_by) and heartbeats keep of a process's name.
NAME_LENGTH = 64


def process_name(role: str) -> str:
    """This process's name in claims and heartbeats: its host, pid and role, and a token of its own.

    The name must be this run's alone. Two processes that shared one could each pass the check that lets
    only a claim's holder send (storage/outbox.py), so both would send. The host and the pid alone repeat:
    every container's main process is pid 1, containers on the host's network take its hostname, and a
    container started again keeps both. The hostname is cut so the name fits the 64 characters it is kept in.
    """
    tail = f":{os.getpid()}:{role}:{secrets.token_hex(3)}"
    return socket.gethostname()[: NAME_LENGTH - len(tail)] + tail


def build_dispatcher(
    container: Container,
    drivers: dict[Channel, MessageDriver],
    pacing: dict[Channel, TokenBucket],
    worker_id: str | None = None,
) -> Dispatcher:
    settings = container.settings

    links = container.unsubscribe_links()

    def unsubscribe_link(message: ClaimedMessage) -> str | None:
        # Marketing only: a mailbox's "Unsubscribe" button on an appointment's email would opt the patient out
        # of email altogether, their reminders with it. A service email tells how to change it in its words.
        if (
            message.channel != Channel.EMAIL.value
            or message.customer_id is None
            or message.category != MessageCategory.MARKETING.value
        ):
            return None
        return links.url(message.customer_id, Channel.EMAIL)

    async def kept_file(chat_id: int, sha256: str) -> bytes | None:
        found = await sent_file(container.database, chat_id, sha256)
        return None if found is None else found.content

    return Dispatcher(
        open_uow=container.unit_of_work,
        drivers=drivers,
        pacing=pacing,
        worker_id=worker_id or process_name("dispatcher"),
        concurrency=settings.worker_concurrency,
        policy=RetryPolicy(
            max_attempts=settings.worker_max_attempts,
            lease=timedelta(seconds=settings.worker_lease_seconds),
            in_doubt_grace=timedelta(seconds=settings.worker_in_doubt_grace_seconds),
        ),
        unsubscribe_url=unsubscribe_link,
        kept_file=kept_file,
        transient=is_transient,
        observe=container.metrics.observe_send,
    )


def sandbox_config(settings: Settings, **overrides: object) -> SandboxConfig:
    """The sandbox set up to accept exactly the credentials Switchboard is configured with."""
    from dataclasses import replace

    from api.sandbox.config import SandboxConfig

    config = SandboxConfig(
        port=settings.sandbox_port,
        smtp_port=settings.sandbox_smtp_port,
        public_url=settings.public_url,
        twilio_account_sid=settings.twilio_account_sid,
        twilio_auth_token=settings.twilio_auth_token.get_secret_value(),
        twilio_phone_number=settings.twilio_from,
        whatsapp_token=settings.whatsapp_token.get_secret_value(),
        whatsapp_app_secret=settings.whatsapp_app_secret.get_secret_value(),
        whatsapp_phone_number_id=settings.whatsapp_phone_number_id,
        telegram_bot_token=settings.telegram_bot_token.get_secret_value(),
        telegram_webhook_secret=settings.telegram_webhook_secret.get_secret_value(),
        email_webhook_token=settings.api_token.get_secret_value(),
        slack_bot_token=settings.slack_bot_token.get_secret_value(),
        slack_signing_secret=settings.slack_signing_secret.get_secret_value(),
        slack_command=settings.slack_command,
        jitsi_app_id=settings.jitsi_app_id,
        jitsi_app_secret=settings.jitsi_app_secret.get_secret_value(),
        jitsi_domain=settings.jitsi_domain,
        webhook_queue_size=settings.sandbox_webhook_queue,
    )
    return replace(config, **overrides)  # type: ignore[arg-type]
