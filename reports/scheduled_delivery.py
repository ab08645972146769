"""What a scheduled report run sends: the rendered report, or the owner's alert when it cannot be delivered."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.utils import parseaddr

from providers.smtp.client import mark_own_mail
from reports.business_format import BusinessFormat
from reports.destinations import RenderedReport
from reports.redraw import redraws
from reports.saved import run_saved_report
from reports.scheduler import REPORT_CANNOT_BE_MADE
from storage.database import Database
from storage.schedules import DueSchedule


async def render_scheduled_report(
    database: Database, schedule: DueSchedule, due_at: datetime, late: bool, business: BusinessFormat
) -> RenderedReport:
    """The saved report answered as of the run's due time, with its chart and (when asked) its CSV."""
    output = await run_saved_report(
        database,
        schedule.report_name,
        schedule.definition,
        now=due_at,
        business_tz=business.timezone,
        locale=business.locale,
        currency=business.currency,
        business_name=business.name,
    )
    return RenderedReport(
        title=schedule.report_name,
        summary=output.summary,
        png=output.png,
        csv=output.csv if schedule.attach_csv else None,
        figures=output.figures,
        redraws=redraws(schedule.report_slug, schedule.definition, schedule.recipient_filters),
        due_at=due_at,
        late=late,
        filename_stem=schedule.report_slug,
        timezone=schedule.timezone,
    )


def report_failure_email(
    schedule: DueSchedule,
    error: str,
    sender: str,
    *,
    bounced: bool = False,
    public_url: str = "",
    signing_secret: str = "",
) -> EmailMessage | None:
    """The schedule's owner hears by email that a run was not delivered after the last retry, or (`bounced`)
    that its email bounced after the relay took it; the report's page has it too. None when the schedule has
    no owner address, or when that address is the one that bounced (it would bounce again)."""
    owner = schedule.owner_email
    if not owner or (bounced and owner.strip().lower() == schedule.destination.strip().lower()):
        return None
    message = EmailMessage()
    message["From"], message["To"] = sender, owner
    page = f"{public_url.rstrip('/')}/analytics/reports/{schedule.report_slug}"
    if bounced:
        message["Subject"] = f"Scheduled report did not arrive: {schedule.report_name}"
        text = (
            f'The scheduled report "{schedule.report_name}" was handed to the mail relay for '
            f"{schedule.destination}, but it bounced.\n\n{error}\n\n"
            f"Check the address, then send it again or change the schedule on the report's page: {page}"
        )
    elif error.startswith(REPORT_CANNOT_BE_MADE):
        message["Subject"] = f"Scheduled report not delivered: {schedule.report_name}"
        text = (
            f'The scheduled report "{schedule.report_name}" was not sent to {schedule.destination_kind} '
            f"{schedule.destination}: {error}.\n\n"
            "Sending it again cannot help. Change the report, or remove this schedule and make one that fits "
            f"the report as it is now, on the report's page: {page}"
        )
    else:
        message["Subject"] = f"Scheduled report not delivered: {schedule.report_name}"
        text = (
            f'The scheduled report "{schedule.report_name}" could not be delivered to '
            f"{schedule.destination_kind} {schedule.destination}.\n\n"
            f"Last error: {error}\n\n"
            f"Check the destination, then send it again on the report's page, where its delivery log is: {page}"
        )
    message.set_content(text)
    mark_own_mail(message, "alert", signing_secret, parseaddr(sender)[1].rpartition("@")[2] or "localhost")
    return message
