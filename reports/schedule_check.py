"""Saving a schedule and telling its Slack channel what is coming, which is also the check that deliveries
there can work (see reports.destinations.announce_in_slack); email and Telegram are not tried.

The schedule is stored first, under the report's lock, so two presses of Save at once make one schedule and
one announcement; a channel that refuses takes it back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from domain.dates_said import day_month_time
from domain.report_schedule import ScheduleRequest
from reports.destinations import ChannelCheck, announce_in_slack
from reports.schedule_words import cron_in_words
from reports.schedules import (
    ScheduledReport,
    SchedulingUnitOfWork,
    next_due,
    schedule_report,
    withdraw_schedule,
)

if TYPE_CHECKING:
    from reports.library import SavedReport


def schedule_announcement(who: str, report_name: str, request: ScheduleRequest, now: datetime) -> str:
    """ "Markus Brandt scheduled the report “Revenue by clinic” here, every Monday at 08:00 (Europe/Berlin);
    the first comes 14 Dec 08:00." """
    first = next_due(request.cron, request.timezone, now).astimezone(ZoneInfo(request.timezone))
    return (
        f"{slack_text(who)} scheduled the report “{slack_text(report_name)}” here, {cron_in_words(request.cron)} "
        f"({request.timezone}); the first comes {day_month_time(first)}."
    )


def slack_text(words: str) -> str:
    """Words as Slack's text shows them, never as its markup: a report named "<!channel>" pings nobody."""
    return words.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


async def check_destination(
    request: ScheduleRequest, announcement: str, *, slack_token: str, slack_base_url: str
) -> ChannelCheck:
    """Whether the schedule's destination can take its deliveries (only a Slack channel is tried)."""
    if request.destination_kind != "slack":
        return ChannelCheck()
    return await announce_in_slack(slack_token, slack_base_url, request.destination, announcement)


@dataclass(frozen=True)
class ScheduleSaved:
    """What saving a schedule came to: `scheduled` is None when its channel refused it (`check.refused` says
    why, and nothing stays scheduled)."""

    scheduled: ScheduledReport | None
    check: ChannelCheck


async def schedule_and_announce(
    units: Callable[[], SchedulingUnitOfWork],
    report: SavedReport,
    request: ScheduleRequest,
    *,
    owner_id: int,
    owner_name: str,
    actor: str,
    via: str,
    now: datetime,
    slack_token: str,
    slack_base_url: str,
) -> ScheduleSaved:
    """Schedule the report, then tell its Slack channel; take it back if the channel refuses.

    Raises ScheduleError or AlreadyScheduled (reports.schedules.schedule_report) before anyone is told.
    """
    scheduled = await schedule_report(
        units(),
        report_id=report.id,
        report_slug=report.slug,
        owner_id=owner_id,
        request=request,
        actor=actor,
        via=via,
        now=now,
    )
    check = await check_destination(
        request,
        schedule_announcement(owner_name, report.name, request, now),
        slack_token=slack_token,
        slack_base_url=slack_base_url,
    )
    if check.refused is None:
        return ScheduleSaved(scheduled, check)
    await withdraw_schedule(
        units(), schedule_id=scheduled.id, report_slug=report.slug, reason=check.refused, actor=actor, via=via
    )
    return ScheduleSaved(None, check)
