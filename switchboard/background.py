"""The background work of a worker process (and of `serve` when it runs one in-process), as a table of jobs.

Each job is a use-case living with its noun (campaigns, notifications, rollups, insights, heartbeats);
this module only says how often each runs and keeps one failed pass from stopping the loop. Every job is
safe to run in several processes at once: outbox claims, campaign planning cursors, event processing
marks and report-delivery claims all live in the database.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from domain.campaigns.use_cases import advance_running_campaigns
from domain.clock import utc_now
from domain.conversations.sla_watch import SlaPassResult
from domain.conversations.use_cases import wake_snoozed_chats
from domain.delivery.pacing import TokenBucket
from domain.delivery.ports import MessageDriver
from domain.notifications.use_cases import process_pending_events
from domain.video.waiting_room import AlertPass
from domain.vocabulary import Channel
from providers.registry import build_drivers, build_pacing
from providers.smtp.driver import relay_from
from reports.business_format import BusinessFormat
from reports.daily_insight import record_daily_insights
from reports.destinations import (
    EmailDestination,
    RenderedReport,
    ReportDestination,
    SlackDestination,
    TelegramDestination,
)
from reports.heartbeats import HEARTBEAT_SECONDS, JobHealth, record_heartbeat
from reports.rollups import RollupRefresh
from reports.scheduled_delivery import render_scheduled_report, report_failure_email
from reports.scheduler import LeaseTooShort, ReportScheduler, ScheduleRunner
from storage.schedules import DueSchedule
from switchboard.delivery import build_dispatcher, process_name
from switchboard.errors import StartupError
from switchboard.sla_watch import SlaWatch
from switchboard.video_watch import NO_SHOW_TICK_SECONDS, REMINDER_TICK_SECONDS, VideoWatch
from switchboard.wiring import Container

log = logging.getLogger(__name__)
#: How long a stopping worker waits for its jobs; systemd's TimeoutStopSec and compose's stop_grace_period
#: leave more.
STOP_WAIT_SECONDS = 30

#: Seconds of campaign planning per worker tick, per campaign (batches are never cut short).
PLANNING_BUDGET = 5.0
#: How often the report scheduler looks for due runs.
REPORT_TICK_SECONDS = 15.0


@dataclass(frozen=True)
class Job:
    """One row of the job table: what runs, how often, and whether its health is tracked."""

    name: str
    every_seconds: float
    run: Callable[[], Awaitable[object]]
    tracked: bool = True
    #: When set, the job runs at once instead of waiting out `every_seconds` (then it is cleared).
    wake: asyncio.Event | None = None


class BackgroundServices:
    """Starts and stops the delivery worker, the report scheduler and the job table below."""

    def __init__(self, container: Container, *, role: str = "worker") -> None:
        self.container = container
        self.role = role
        self.worker_id = process_name(role)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._drivers: dict[Channel, MessageDriver] = {}
        self._pacing: dict[Channel, TokenBucket] = {}
        self._scheduler: ReportScheduler | None = None
        self._destinations: dict[str, ReportDestination] = {}
        settings = container.settings
        self._rollups = RollupRefresh(container.database, settings.business_timezone)
        self._business = BusinessFormat(
            settings.business_timezone,
            settings.business_locale,
            settings.business_currency,
            settings.business_name,
        )
        #: Each job's last success and failure, written out by the heartbeat (never once per pass).
        self.health = JobHealth(utc_now)
        self._sla_watch: SlaWatch | None = None
        self._video_watch = VideoWatch(container.database, settings)

    def jobs(self) -> tuple[Job, ...]:
        """The job table: every periodic pass a worker runs besides delivery and the report scheduler."""
        threads: tuple[Job, ...] = (
            (Job("slack threads", 0.25, self.mirror_slack_threads, wake=self.container.chat_news),)
            if self.container.slack_threads is not None and self.container.slack_threads.posts
            else ()
        )
        if self.container.telegram_conversations is not None:
            threads += (Job("telegram staff chats", 0.5, self.forward_to_telegram),)
        return *threads, *(
            Job("waiting room", 1.0, self.tell_waiting_patients, wake=self.container.patient_waiting),
            Job("campaign planning", 2.0, self.plan_campaigns),
            Job("notifications", 2.0, self.process_events),
            Job("video reminders", REMINDER_TICK_SECONDS, self.send_video_reminders),
            Job("video no-shows", NO_SHOW_TICK_SECONDS, self.mark_video_no_shows),
            Job("snoozed conversations", 30.0, self.wake_snoozed_chats),
            Job("live-chat SLAs", 30.0, self.watch_slas),
            Job("heartbeat", HEARTBEAT_SECONDS, self.heartbeat, tracked=False),
            Job("performance snapshot", 60.0, self.snapshot_metrics),
            Job("rollups", 60.0, self.refresh_rollups),
            Job("daily insight", 3600.0, self.record_insights),
            Job("retention", 600.0, self.apply_retention),
        )

    async def apply_retention(self) -> None:
        """Applied webhooks, message bodies and conversation texts past their retention periods
        (SWITCHBOARD_*_RETENTION_DAYS, storage/retention.py); on PostgreSQL the month partitions ahead, and
        whole months of messages past SWITCHBOARD_MESSAGE_RETENTION_MONTHS (storage/partitions.py)."""
        from storage.partitions import drop_old_messages, keep_month_partitions
        from storage.retention import (
            expire_conversation_texts,
            expire_message_bodies,
            forget_applied_webhooks,
        )

        settings = self.container.settings
        database = self.container.database
        now = utc_now()
        done = await forget_applied_webhooks(database, settings.webhook_retention_days, now)
        if done.webhooks_deleted:
            log.info(
                "retention: forgot %d applied webhooks received before %s", done.webhooks_deleted, done.cutoff
            )
        bodies = await expire_message_bodies(database, settings.message_body_retention_days, now)
        if bodies.blanked:
            log.info("retention: blanked %d message bodies created before %s", bodies.blanked, bodies.cutoff)
        turns = await expire_conversation_texts(database, settings.conversation_retention_days, now)
        if turns.blanked or turns.files_deleted:
            log.info(
                "retention: blanked %d conversation turns and deleted %d files written before %s",
                turns.blanked,
                turns.files_deleted,
                turns.cutoff,
            )
        # Dropping old months makes the partition pass first itself; without a retention it runs alone.
        dropped = await drop_old_messages(
            database, settings.message_retention_months, now, business_tz=settings.business_timezone
        )
        months = dropped.kept or await keep_month_partitions(database, now)
        if months.created or months.moved:
            log.info(
                "partitions: made %s; moved %d rows out of the default partitions",
                ", ".join(months.created) or "none",
                months.moved,
            )
        if dropped.messages:
            log.info("retention: %s", dropped.in_words())
        elif dropped.left_to_drop:
            log.info("retention: emptied tables wait to be dropped: %s", ", ".join(dropped.left_to_drop))
        if dropped.held_back_from and not dropped.messages:  # else the line above says so
            log.info(
                "retention: messages from %s on are kept: one created then is still to be sent",
                f"{dropped.held_back_from:%Y-%m}",
            )
        for skipped in {months.skipped, None if dropped.messages else dropped.skipped} - {None}:
            log.info("partitions: nothing changed this pass: %s", skipped)

    async def start(self) -> None:
        settings = self.container.settings
        # Built first: a claim lease shorter than a destination's time limit refuses to start anything.
        self._scheduler = self._report_scheduler()
        self._drivers = build_drivers(settings)
        self._pacing = build_pacing(settings)
        dispatcher = build_dispatcher(self.container, self._drivers, self._pacing, self.worker_id)
        dispatcher.report_pass = self.health.reporter("delivery", 5.0)
        self.container.dispatcher = dispatcher
        self._tasks.append(asyncio.create_task(dispatcher.run(self._stop), name="delivery"))
        for job in self.jobs():
            self._every(job)
        self._scheduler.start()
        # Telegram without a bot token is off (as `switchboard doctor` says), though its driver is built.
        off = [] if settings.telegram_bot_token.get_secret_value().strip() else ["telegram"]
        log.info(
            "%s started: sending on %s, up to %d provider calls in flight per channel%s",
            self.worker_id,
            ", ".join(sorted(c.value for c in self._drivers if c.value not in off)) or "no channel",
            settings.worker_concurrency,
            "; Telegram is off (no SWITCHBOARD_TELEGRAM_BOT_TOKEN)" if off else "",
        )

    def _report_scheduler(self) -> ReportScheduler:
        self._destinations = report_destinations(self.container)
        try:
            runner = ScheduleRunner(
                database=self.container.database,
                render=self.render_report,
                destinations=self._destinations,
                worker_id=self.worker_id,
                notify_owner=self.tell_owner_report_failed,
                notify_owner_of_bounce=self.tell_owner_report_bounced,
                report_pass=self.health.reporter("report scheduler", REPORT_TICK_SECONDS),
                business_tz=self.container.settings.business_timezone,
            )
        except LeaseTooShort as error:
            raise StartupError(str(error)) from None
        return ReportScheduler(runner, interval_seconds=REPORT_TICK_SECONDS)

    async def stop(self) -> None:
        began = time.monotonic()
        if self._tasks:
            log.info(
                "%s stopping: sends already handed to a provider are seen through and recorded, "
                "the rest go back unsent for another worker",
                self.worker_id,
            )
        self._stop.set()
        if self._scheduler is not None:
            self._scheduler.stop()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=STOP_WAIT_SECONDS)
            await self._say_stopped()
            stats = self.container.dispatcher.stats if self.container.dispatcher is not None else None
            log.info(
                "%s stopped in %.1f s: %s%s",
                self.worker_id,
                time.monotonic() - began,
                (
                    f"{stats.accepted:,} sent and {stats.held:,} put back unsent since it started"
                    if stats is not None
                    else "no sends"
                ),
                f"; still running after {STOP_WAIT_SECONDS} s: {', '.join(sorted(t.get_name() for t in pending))}"
                if pending
                else "",
            )
        for driver in self._drivers.values():
            await driver.close()
        for destination in self._destinations.values():
            close = getattr(destination, "close", None)
            if close is not None:
                await close()

    def _every(self, job: Job) -> None:
        report = self.health.reporter(job.name, job.every_seconds) if job.tracked else lambda _failure: None

        async def loop() -> None:
            while not self._stop.is_set():
                try:
                    await job.run()
                except Exception as error:  # one failed pass must not stop the loop; the next pass retries
                    log.exception("%s failed", job.name)
                    report(error)
                else:
                    report(None)
                await self._pause(job)

        self._tasks.append(asyncio.create_task(loop(), name=job.name))

    async def _pause(self, job: Job) -> None:
        """Wait `every_seconds`, or less when the worker stops or the job's wake event is set."""
        waits = [asyncio.ensure_future(self._stop.wait())]
        if job.wake is not None:
            waits.append(asyncio.ensure_future(job.wake.wait()))
        try:
            await asyncio.wait(waits, timeout=job.every_seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
            if job.wake is not None:
                job.wake.clear()

    # --- the jobs: each one line into its use-case ----------------------------------------------------

    async def plan_campaigns(self) -> int:
        return await advance_running_campaigns(
            self.container.campaign_uow,
            now=utc_now,
            policy=self.container.consent_policy(),
            budget=PLANNING_BUDGET,
            read_uow_factory=lambda: self.container.campaign_uow(read_only=True),
        )

    async def process_events(self) -> None:
        await process_pending_events(
            self.container.notification_uow, utc_now(), policy=self.container.consent_policy()
        )

    async def wake_snoozed_chats(self) -> int:
        return await wake_snoozed_chats(self.container.units.desk(), utc_now())

    async def send_video_reminders(self) -> None:
        await self._video_watch.reminders()

    async def mark_video_no_shows(self) -> None:
        await self._video_watch.no_shows()

    async def watch_slas(self) -> SlaPassResult:
        if self._sla_watch is None:
            self._sla_watch = SlaWatch(self.container.database, self.container.settings)
        return await self._sla_watch.run()

    async def mirror_slack_threads(self) -> None:
        """Customer conversations into their Slack threads, often: agents see a message within a second."""
        threads = self.container.slack_threads
        if threads is not None:
            await threads.mirror()

    async def forward_to_telegram(self) -> None:
        """Customer conversations to the agents' private chats with the staff bot."""
        desk = self.container.telegram_conversations
        if desk is not None:
            await desk.forward()

    async def tell_waiting_patients(self) -> AlertPass:
        """Tells clinicians "your patient is in the waiting room" in Slack or Telegram, once per join."""
        return await self.container.waiting_room.run()

    async def heartbeat(self) -> None:
        await record_heartbeat(
            self.container.unit_of_work, self.worker_id, self.role, utc_now(), self.health, pid=os.getpid()
        )

    async def _say_stopped(self) -> None:
        try:
            await record_heartbeat(
                self.container.unit_of_work,
                self.worker_id,
                self.role,
                utc_now(),
                self.health,
                pid=os.getpid(),
                stopped=True,
            )
        except Exception:  # the heartbeat then just goes stale; stopping must not fail over it
            log.warning("could not record that %s stopped", self.worker_id, exc_info=True)

    async def refresh_rollups(self) -> None:
        await self._rollups.run(utc_now())

    async def record_insights(self) -> int:
        return await record_daily_insights(
            self.container.database, self.container.unit_of_work, utc_now(), self._business
        )

    async def snapshot_metrics(self) -> None:
        await self.container.metrics.record_snapshot(self.container.database, utc_now())

    async def tell_owner_report_failed(self, schedule: DueSchedule, error: str) -> None:
        await self._tell_owner(schedule, error, bounced=False)

    async def tell_owner_report_bounced(self, schedule: DueSchedule, error: str) -> None:
        await self._tell_owner(schedule, error, bounced=True)

    async def _tell_owner(self, schedule: DueSchedule, error: str, *, bounced: bool) -> None:
        settings = self.container.settings
        message = report_failure_email(
            schedule,
            error,
            settings.email_from,
            bounced=bounced,
            public_url=settings.public_url,
            signing_secret=settings.session_secret.get_secret_value(),
        )
        if message is not None:
            await relay_from(settings).send(message)

    async def render_report(self, schedule: DueSchedule, due_at: datetime, late: bool) -> RenderedReport:
        return await render_scheduled_report(self.container.database, schedule, due_at, late, self._business)


def report_destinations(container: Container) -> dict[str, ReportDestination]:
    settings = container.settings
    return {
        "slack": SlackDestination(settings.slack_bot_token.get_secret_value(), settings.slack_base_url),
        "telegram": TelegramDestination(
            settings.telegram_bot_token.get_secret_value(), settings.telegram_base_url
        ),
        "email": EmailDestination(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_username or None,
            settings.smtp_password.get_secret_value() or None,
            settings.email_from,
            signing_secret=settings.session_secret.get_secret_value(),
        ),
    }
