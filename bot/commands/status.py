"""`status`: is the system healthy — outbox depth, last webhook, workers and the scheduler."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from bot.commands.context import CommandContext
from bot.commands.identity import StaffIdentity
from bot.commands.parsing import ParseError
from bot.replies import Field, Reply, Table
from domain.vocabulary import MessageStatus
from storage.models import CustomerCommunication, WebhookInbox, WorkerHeartbeat

#: Statuses of messages still on their way out: the queue an operator watches.
IN_FLIGHT = (MessageStatus.PLANNED.value, MessageStatus.SENDING.value, MessageStatus.QUEUED.value)
#: A worker silent for longer than this is reported as stale.
STALE_AFTER = timedelta(minutes=2)


@dataclass(frozen=True)
class ShowStatus:
    pass


def parse_status(words: list[str], rest: str, today: date) -> ShowStatus:
    if words:
        raise ParseError("`status` takes no arguments.", "status")
    return ShowStatus()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _ago(moment: datetime, now: datetime) -> str:
    seconds = int((now - _aware(moment)).total_seconds())
    if seconds < 90:
        return f"{max(seconds, 0)} s ago"
    if seconds < 90 * 60:
        return f"{seconds // 60} min ago"
    if seconds < 48 * 3600:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


async def run_status(command: ShowStatus, who: StaffIdentity, ctx: CommandContext) -> Reply:
    now = ctx.now()
    async with ctx.database.read_sessions() as session:
        depth: dict[str, int] = dict(
            (
                await session.execute(
                    select(CustomerCommunication.status, func.count())
                    .where(CustomerCommunication.status.in_((*IN_FLIGHT, MessageStatus.DEAD.value)))
                    .group_by(CustomerCommunication.status)
                )
            ).all()
        )
        webhook = await session.scalar(
            select(WebhookInbox).order_by(WebhookInbox.received_at.desc()).limit(1)
        )
        failed_webhooks = await session.scalar(
            select(func.count()).select_from(WebhookInbox).where(WebhookInbox.status == "failed")
        )
        heartbeats = list(
            await session.scalars(
                select(WorkerHeartbeat).order_by(WorkerHeartbeat.role, WorkerHeartbeat.worker_id)
            )
        )
    queue = ", ".join(f"{s} {depth.get(s, 0):,}" for s in IN_FLIGHT)
    last_webhook = (
        f"{webhook.provider} {webhook.kind} {_ago(webhook.received_at, now)} ({webhook.status})"
        if webhook
        else "none received yet"
    )
    workers = [h for h in heartbeats if h.role != "scheduler"]
    schedulers = [h for h in heartbeats if h.role == "scheduler"]

    def state(h: WorkerHeartbeat) -> str:
        return "stale" if now - _aware(h.seen_at) > STALE_AFTER else "alive"

    scheduler_state = (
        ", ".join(f"{h.worker_id} {state(h)} (seen {_ago(h.seen_at, now)})" for h in schedulers)
        if schedulers
        else "no scheduler has reported in"
    )
    fields = (
        Field("Outbox", queue),
        Field("Dead letters", f"{depth.get(MessageStatus.DEAD.value, 0):,}"),
        Field("Last webhook", last_webhook),
        Field("Failed webhooks", f"{failed_webhooks or 0:,}"),
        Field(
            "Workers",
            f"{sum(state(h) == 'alive' for h in workers)} alive of {len(workers)}"
            if workers
            else "none reporting",
        ),
        Field("Scheduler", scheduler_state),
    )
    table = None
    if heartbeats:
        table = Table(
            ("Process", "Role", "State", "Last seen"),
            tuple((h.worker_id, h.role, state(h), _ago(h.seen_at, now)) for h in heartbeats),
        )
    return Reply(
        f"Outbox: {queue}. Last webhook: {last_webhook}.", title="Status", fields=fields, table=table
    )
