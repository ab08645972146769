"""The background work of a worker process (and of `serve` when it runs one in-process).

Every loop is safe to run in several processes at once: outbox claims, campaign planning cursors,
event processing marks and report-delivery claims all live in the database.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import func, select

from domain.campaigns.use_cases import complete_campaign_if_done, plan_campaign, plan_fallbacks
from domain.clock import utc_now
from domain.delivery.pacing import TokenBucket
from domain.delivery.ports import MessageDriver
from domain.notifications.use_cases import process_pending_events
from domain.vocabulary import CampaignStatus, Channel
from providers.registry import build_drivers, build_pacing
from providers.smtp.driver import relay_from
from reports.destinations import (
    EmailDestination,
    RenderedReport,
    ReportDestination,
    SlackDestination,
    TelegramDestination,
)
from reports.heartbeats import HEARTBEAT_SECONDS, JobHealth, mark_stopped, write_heartbeat
from reports.insight import Insight, campaign_attribution, cohort_retention, cost_vs_revenue, store_insight
from reports.periods import PeriodSpec
from reports.readings import HEADLINE_TRENDS, read_trend
from reports.rollups import TouchedFacts, build_missing_rollups, update_rollups_for
from reports.saved import run_saved_report
from reports.scheduler import LeaseTooShort, ReportScheduler, ScheduleRunner
from reports.trends import store_trend
from storage.analytics.facts import SOURCES
from storage.models import BulkMessaging, MessageStatusEvent, TrendAnalysis
from storage.notifications import SqlNotificationUnitOfWork
from storage.schedules import DueSchedule
from switchboard.delivery import build_dispatcher
from switchboard.errors import StartupError
from switchboard.wiring import Container

log = logging.getLogger(__name__)

#: Seconds of campaign planning per worker tick, per campaign (batches are never cut short).
PLANNING_BUDGET = 5.0
#: How often the report scheduler looks for due runs.
REPORT_TICK_SECONDS = 15.0


class BackgroundServices:
    """Starts and stops the delivery worker, campaign planner, notification processor, report scheduler and heartbeats."""

    def __init__(self, container: Container, *, role: str = "worker") -> None:
        self.container = container
        self.role = role
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{role}"
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._drivers: dict[Channel, MessageDriver] = {}
        self._pacing: dict[Channel, TokenBucket] = {}
        self._scheduler: ReportScheduler | None = None
        self._destinations: dict[str, ReportDestination] = {}
        self._rollups_since: datetime | None = None
        self._events_seen = 0
        #: Each job's last success and failure, written out by the heartbeat (never once per pass).
        self.health = JobHealth(utc_now)

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
        self._every(2.0, self.plan_campaigns, "campaign planning")
        self._every(2.0, self.process_events, "notifications")
        self._every(HEARTBEAT_SECONDS, self.heartbeat, "heartbeat", tracked=False)
        self._every(60.0, self.snapshot_metrics, "performance snapshot")
        self._every(60.0, self.refresh_rollups, "rollups")
        self._every(3600.0, self.record_insights, "daily insight")
        self._scheduler.start()

    def _report_scheduler(self) -> ReportScheduler:
        self._destinations = report_destinations(self.container)
        try:
            runner = ScheduleRunner(
                database=self.container.database,
                render=self.render_report,
                destinations=self._destinations,
                worker_id=self.worker_id,
                notify_owner=self.tell_owner_report_failed,
                report_pass=self.health.reporter("report scheduler", REPORT_TICK_SECONDS),
            )
        except LeaseTooShort as error:
            raise StartupError(str(error)) from None
        return ReportScheduler(runner, interval_seconds=REPORT_TICK_SECONDS)

    async def stop(self) -> None:
        self._stop.set()
        if self._scheduler is not None:
            self._scheduler.stop()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=30)
            await self._say_stopped()
        for driver in self._drivers.values():
            await driver.close()
        for destination in self._destinations.values():
            close = getattr(destination, "close", None)
            if close is not None:
                await close()

    def _every(
        self, seconds: float, job: Callable[[], Awaitable[Any]], name: str, *, tracked: bool = True
    ) -> None:
        report = self.health.reporter(name, seconds) if tracked else lambda _failure: None

        async def loop() -> None:
            while not self._stop.is_set():
                try:
                    await job()
                except Exception as error:  # one failed pass must not stop the loop; the next pass retries
                    log.exception("%s failed", name)
                    report(error)
                else:
                    report(None)
                try:
                    await asyncio.wait_for(self._stop.wait(), timeout=seconds)
                except TimeoutError:
                    pass

        self._tasks.append(asyncio.create_task(loop(), name=name))

    async def plan_campaigns(self) -> int:
        """Plans the next batch of every running campaign, then any channel fallbacks that are due."""
        async with self.container.database.read_sessions() as session:
            running = (
                await session.execute(
                    select(
                        BulkMessaging.id, BulkMessaging.planning_done, BulkMessaging.fallback_after_minutes
                    ).where(BulkMessaging.status == CampaignStatus.RUNNING.value)
                )
            ).all()
        planned = 0
        policy = self.container.consent_policy()
        for campaign_id, planning_done, fallback in running:
            if not planning_done:
                # Whole batches for up to PLANNING_BUDGET seconds a tick (a million recipients take well
                # under a minute), then the fallbacks, completions and other campaigns get their turn.
                before = await self._planned_so_far(campaign_id)
                progress = await plan_campaign(
                    self.container.campaign_uow,
                    campaign_id,
                    now=utc_now,
                    policy=policy,
                    budget=PLANNING_BUDGET,
                    read_uow_factory=lambda: self.container.campaign_uow(read_only=True),
                )
                planned += progress.total_planned - before
            if fallback:
                planned += await plan_fallbacks(
                    self.container.campaign_uow(), campaign_id, utc_now(), policy=policy
                )
            if planning_done:
                await complete_campaign_if_done(self.container.campaign_uow(), campaign_id)
        return planned

    async def _planned_so_far(self, campaign_id: int) -> int:
        async with self.container.database.read_sessions() as session:
            count = await session.scalar(
                select(BulkMessaging.planned_count).where(BulkMessaging.id == campaign_id)
            )
        return int(count or 0)

    async def process_events(self) -> None:
        def open_uow() -> SqlNotificationUnitOfWork:
            return SqlNotificationUnitOfWork(
                self.container.database, business_tz=self.container.settings.business_timezone
            )

        await process_pending_events(open_uow, utc_now(), policy=self.container.consent_policy())

    async def heartbeat(self) -> None:
        """This process's sign of life and each job's last success and failure, in one transaction."""
        async with self.container.unit_of_work() as uow:
            await write_heartbeat(
                uow.session, self.worker_id, self.role, utc_now(), self.health, pid=os.getpid()
            )
            await uow.commit()

    async def _say_stopped(self) -> None:
        try:
            async with self.container.unit_of_work() as uow:
                now, pid = utc_now(), os.getpid()
                await write_heartbeat(uow.session, self.worker_id, self.role, now, self.health, pid=pid)
                await mark_stopped(uow.session, self.worker_id, now, pid=pid)
                await uow.commit()
        except Exception:  # the heartbeat then just goes stale; stopping must not fail over it
            log.warning("could not record that %s stopped", self.worker_id, exc_info=True)

    async def refresh_rollups(self) -> None:
        """Keeps analytics rollups current: buckets of facts recorded since the last pass, and of messages
        whose status changed (a delivery receipt changes the bucket the message was sent in).

        A database without rollups (seeded or restored without `switchboard rollups rebuild`) gets them
        built first; they then hold everything up to now, so the incremental pass starts from there."""
        now = utc_now()
        async with self.container.database.read_sessions() as session:
            events_before = await session.scalar(select(func.max(MessageStatusEvent.id))) or 0
        built = await build_missing_rollups(
            self.container.database, business_tz=self.container.settings.business_timezone
        )
        if built is not None:
            log.info("analytics rollups were missing; built %s rows in %s buckets", built.rows, built.buckets)
            # Status changes that raced the build are read again by the next pass (it starts from before).
            self._rollups_since, self._events_seen = now, events_before
            return
        since = self._rollups_since or now - timedelta(days=1)
        async with self.container.database.read_sessions() as session:
            newest_event = await session.scalar(select(func.max(MessageStatusEvent.id))) or 0
            changed = list(
                await session.scalars(
                    select(MessageStatusEvent.communication_id)
                    .where(MessageStatusEvent.id > self._events_seen)
                    .distinct()
                    .limit(50_000)
                )
            )
        database = self.container.database
        spans = {source: [(since - timedelta(minutes=5), now + timedelta(minutes=1))] for source in SOURCES}
        by_range = await TouchedFacts.from_ranges(database, spans)
        by_id = await TouchedFacts.from_ids(database, messages=changed) if changed else TouchedFacts()
        await update_rollups_for(
            database, TouchedFacts(by_id.times, by_range.later_order_times, by_range.ranges)
        )
        self._rollups_since, self._events_seen = now, newest_event

    async def record_insights(self) -> int:
        """Once a day: trend readings of the headline KPIs and the cross-system analyses, kept for the dashboard.

        Any process may run it; one that finds readings from the last 20 hours leaves it alone.
        """
        now = utc_now()
        database, settings = self.container.database, self.container.settings
        async with database.read_sessions() as session:
            latest = await session.scalar(select(func.max(TrendAnalysis.computed_at)))
        if latest is not None and now - latest < timedelta(hours=20):
            return 0
        tz, currency = settings.business_timezone, settings.business_currency
        readings = [
            await read_trend(
                database,
                metric,
                dimension,
                now=now,
                business_tz=tz,
                locale=settings.business_locale,
                currency=currency,
            )
            for metric, dimension in HEADLINE_TRENDS
        ]
        month = PeriodSpec.last_n_days(30)
        insights: list[Insight[Any]] = [
            await campaign_attribution(database, month, now=now, business_tz=tz, currency=currency),
            await cost_vs_revenue(database, month, now=now, business_tz=tz, currency=currency),
            await cohort_retention(database, PeriodSpec("last_quarter"), now=now, business_tz=tz),
        ]
        async with self.container.unit_of_work() as uow:
            for reading in readings:
                await store_trend(uow.session, reading)
            for insight in insights:
                await store_insight(uow.session, insight)
            await uow.commit()
        return len(readings) + len(insights)

    async def snapshot_metrics(self) -> None:
        await self.container.metrics.record_snapshot(self.container.database, utc_now())

    async def tell_owner_report_failed(self, schedule: DueSchedule, error: str) -> None:
        """After the last retry, the schedule's owner hears about it by email (the delivery log has it too)."""
        if not schedule.owner_email:
            return
        settings = self.container.settings
        message = EmailMessage()
        message["From"], message["To"] = settings.email_from, schedule.owner_email
        message["Subject"] = f"Scheduled report not delivered: {schedule.report_name}"
        message.set_content(
            f'The scheduled report "{schedule.report_name}" could not be delivered to {schedule.destination_kind} '
            f"{schedule.destination} after several attempts.\n\nLast error: {error}\n\n"
            f"Check the destination, then see /analytics/reports for the delivery log."
        )
        await relay_from(settings).send(message)

    async def render_report(self, schedule: DueSchedule, due_at: datetime, late: bool) -> RenderedReport:
        settings = self.container.settings
        output = await run_saved_report(
            self.container.database,
            schedule.report_name,
            schedule.definition,
            now=due_at,
            business_tz=settings.business_timezone,
            locale=settings.business_locale,
            currency=settings.business_currency,
        )
        return RenderedReport(
            title=schedule.report_name,
            summary=output.summary,
            png=output.png,
            csv=output.csv if schedule.attach_csv else None,
            due_at=due_at,
            late=late,
            filename_stem=schedule.report_slug,
        )


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
        ),
    }
