"""What a scheduled report run sends: the rendered report, or the owner's alert when it cannot be delivered."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage

from providers.smtp.client import MAIL_KIND_HEADER
from reports.business_format import BusinessFormat
from reports.destinations import RenderedReport
from reports.redraw import redraws
from reports.saved import run_saved_report
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


def report_failure_email(schedule: DueSchedule, error: str, sender: str) -> EmailMessage | None:
    """After the last retry the schedule's owner hears about it by email (the delivery log has it too);
    None when the schedule has no owner address."""
    if not schedule.owner_email:
        return None
    message = EmailMessage()
    message["From"], message["To"] = sender, schedule.owner_email
    message["Subject"] = f"Scheduled report not delivered: {schedule.report_name}"
    message[MAIL_KIND_HEADER] = "alert"
    message.set_content(
        f'The scheduled report "{schedule.report_name}" could not be delivered to {schedule.destination_kind} '
        f"{schedule.destination} after several attempts.\n\nLast error: {error}\n\n"
        f"Check the destination, then see /analytics/reports for the delivery log."
    )
    return message
