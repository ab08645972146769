"""Before a schedule is saved: can its destination take a delivery? A Slack channel is told what is coming,
which is also the check (see reports.destinations.announce_in_slack); email and Telegram are not tried."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from domain.dates_said import day_month_time
from reports.destinations import ChannelCheck, announce_in_slack
from reports.schedule_words import cron_in_words
from reports.schedules import ScheduleRequest, next_due


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
