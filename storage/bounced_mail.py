"""Our own mail to staff that bounced: a scheduled report's email that did not arrive fails its delivery.

A report email's Message-ID is its run's delivery key (reports.scheduler.delivery_key):
"report-{schedule id}-{due time, UTC}-{first 8 hex of the destination's SHA-256}", with "-again{n}" once staff
sent the run again n times. The relay's bounce names it, so the delivery the scheduler recorded as delivered
(the relay took the mail) is failed, in words, with an audit entry: the report's page and the Performance page
then say it did not arrive, Send again is offered, and the scheduler emails the schedule's owner. Only a bounce
carrying back our signed check gets here (providers.smtp.webhooks).
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.audit import AuditEntry
from domain.conversations.model import MailBounce
from storage.models import ReportDelivery
from storage.unit_of_work import SqlAuditTrail

log = logging.getLogger(__name__)

#: A report run's delivery key, as its email's Message-ID carries it.
REPORT_KEY = re.compile(
    r"report-(?P<schedule>\d{1,18})-(?P<due>\d{8}T\d{6}Z)-(?P<where>[0-9a-f]{8})(?:-again(?P<again>\d{1,9}))?"
)


class SqlBouncedMail:
    def __init__(self, session: AsyncSession, audit: SqlAuditTrail) -> None:
        self.session = session
        self.audit = audit

    async def record(self, bounce: MailBounce, now: datetime) -> bool:
        key = REPORT_KEY.fullmatch(bounce.message_id.split("@", 1)[0]) if bounce.kind == "report" else None
        if key is None:
            log.warning("a %s email (%s) bounced: %s", bounce.kind, bounce.message_id, bounce.error)
            return False
        due = datetime.strptime(key["due"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        runs = await self.session.scalars(
            select(ReportDelivery).where(
                ReportDelivery.schedule_id == int(key["schedule"]), ReportDelivery.due_at == due
            )
        )
        run = next(
            (r for r in runs if hashlib.sha256(r.destination.encode()).hexdigest()[:8] == key["where"]), None
        )
        if run is not None and run.sent_again != int(key["again"] or 0):
            # An earlier sending's late bounce: staff sent the run again since, which is another email.
            log.warning(
                "a report email (%s) bounced, but its run was sent again since: %s",
                bounce.message_id,
                bounce.error,
            )
            return False
        if run is None:
            log.warning(
                "a report email (%s) bounced, but its delivery is gone: %s", bounce.message_id, bounce.error
            )
            return False
        said = f"The email did not arrive: the recipient's mail server answered “{bounce.error}”."[:500]
        if run.status == "failed" and run.error == said:
            return True  # the same bounce again (a relay's retry, a replay)
        if run.status != "delivered":
            # Being sent again, or failed already for another reason: this bounce does not undo that.
            log.warning("report delivery %s bounced while %s; left so: %s", run.id, run.status, bounce.error)
            return False
        run.status, run.error, run.claimed_until = "failed", said, None
        run.owner_to_hear = True  # the scheduler emails the schedule's owner (reports.scheduler)
        self.audit.record(
            AuditEntry(
                actor="mail server",
                via="system",
                action="report.delivery_bounced",
                target=f"schedule:{run.schedule_id}",
                detail={"delivery_id": run.id, "destination": run.destination, "error": bounce.error[:300]},
            )
        )
        log.warning("report delivery %s to %s bounced: %s", run.id, run.destination, bounce.error)
        return True
