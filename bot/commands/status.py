"""`status`: is the system healthy — outbox depth, last webhook, and each background job of the workers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from bot.commands.context import CommandContext
from bot.commands.parsing import ParseError
from bot.replies import Field, Reply, Table
from domain.messages.words import provider_words
from domain.staff import StaffIdentity
from domain.vocabulary import MessageStatus
from reports.heartbeats import ago, read_background_health
from storage.queries.status import outbox_status

#: Statuses of messages still on their way out: the queue an operator watches.
IN_FLIGHT = (MessageStatus.PLANNED.value, MessageStatus.SENDING.value, MessageStatus.QUEUED.value)


@dataclass(frozen=True)
class ShowStatus:
    pass


def parse_status(words: list[str], rest: str, today: date) -> ShowStatus:
    if words:
        raise ParseError("`status` takes no arguments.", "status")
    return ShowStatus()


async def run_status(command: ShowStatus, who: StaffIdentity, ctx: CommandContext) -> Reply:
    now = ctx.now()
    status = await outbox_status(ctx.database, (*IN_FLIGHT, MessageStatus.DEAD.value))
    depth, webhook = status.depth, status.last_webhook
    queue = ", ".join(f"{s} {depth.get(s, 0):,}" for s in IN_FLIGHT)
    last_webhook = (
        f"{_webhook_words(webhook.provider, webhook.kind)} {ago(webhook.received_at, now)} ({webhook.status})"
        if webhook
        else "none received yet"
    )
    background = await read_background_health(ctx.database, now)
    fields = (
        Field("Outbox", queue),
        Field("Dead letters", f"{depth.get(MessageStatus.DEAD.value, 0):,}"),
        Field("Last webhook", last_webhook),
        Field("Failed webhooks", f"{status.failed_webhooks:,}"),
        Field("Background work", background.headline()),
        *(Field(job.job[:1].upper() + job.job[1:], job.text) for job in background.jobs),
    )
    table = None
    if background.recent_processes:
        table = Table(
            ("Process", "Role", "State"),
            tuple((p.worker_id, p.role, p.describe(now)) for p in background.recent_processes),
        )
    return Reply(
        f"Outbox: {queue}. Last webhook: {last_webhook}. {background.headline()}",
        title="Status",
        fields=fields,
        table=table,
    )


#: What a provider's webhook brought, where its kind says it ("status": a delivery receipt).
WEBHOOK_KIND_WORDS = {"status": "a delivery receipt", "inbound": "a customer's message", "email": "an email"}


def _webhook_words(provider: str, kind: str) -> str:
    """ "an email from the mail server", "a delivery receipt from Twilio", "from Telegram Bot API"."""
    what = WEBHOOK_KIND_WORDS.get(kind)
    return f"{what + ' ' if what else ''}from {provider_words(provider)}"
