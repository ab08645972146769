"""Every kind of unit of work, built in one place: one database, the business's timezone.

The container holds one `UnitsOfWork` and so does the staff chat's command context; edges ask them for
the transaction a use-case needs instead of constructing storage classes themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.conversations.csat import CsatPolicy
from storage.campaigns import SqlCampaignUnitOfWork
from storage.canned_replies import SqlCannedReplyUnitOfWork
from storage.chat_opening import SqlChatOpeningUnitOfWork
from storage.conversations import SqlChatReplyUnitOfWork
from storage.csat import SqlCsatUnitOfWork
from storage.dashboards import SqlDashboardUnitOfWork
from storage.database import Database
from storage.desk import SqlDeskUnitOfWork
from storage.inbox import ConversationUnitOfWork
from storage.messages import SqlMessagingUnitOfWork
from storage.notifications import SqlNotificationUnitOfWork
from storage.preferences import SqlPreferencesUnitOfWork
from storage.schedules import ReportSchedulingUnitOfWork
from storage.services import SqlServiceNamingUnitOfWork
from storage.sign_in import SqlSignInUnitOfWork
from storage.sla_policies import SqlSlaPolicyUnitOfWork
from storage.slack_threads import SqlSlackThreadUnitOfWork
from storage.telegram_desk import SqlTelegramDeskUnitOfWork
from storage.templates import SqlTemplateUnitOfWork
from storage.unit_of_work import SqlUnitOfWork
from storage.video_booking import SqlVideoBookingUnitOfWork
from storage.video_links import SqlVideoLinkUnitOfWork, SqlWaitingRoomUnitOfWork
from storage.video_no_shows import SqlNoShowUnitOfWork


@dataclass(frozen=True)
class UnitsOfWork:
    database: Database
    business_tz: str
    #: CSAT: the survey policy resolving sends with; None (a bare UnitsOfWork, in tests): no surveys.
    csat_policy: CsatPolicy | None = None

    def general(self, *, read_only: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.database, read_only=read_only, business_tz=self.business_tz)

    def messaging(self) -> SqlMessagingUnitOfWork:
        return SqlMessagingUnitOfWork(self.database, business_tz=self.business_tz)

    def campaigns(self, *, read_only: bool = False) -> SqlCampaignUnitOfWork:
        return SqlCampaignUnitOfWork(self.database, read_only=read_only, business_tz=self.business_tz)

    def notifications(self, *, read_only: bool = False) -> SqlNotificationUnitOfWork:
        return SqlNotificationUnitOfWork(self.database, read_only=read_only, business_tz=self.business_tz)

    def conversations(self) -> ConversationUnitOfWork:
        return ConversationUnitOfWork(self.general())

    def desk(self) -> SqlDeskUnitOfWork:
        return SqlDeskUnitOfWork(self.database, business_tz=self.business_tz, csat=self.csat_policy)

    def chat_replies(self, *, read_only: bool = False) -> SqlChatReplyUnitOfWork:
        return SqlChatReplyUnitOfWork(self.database, read_only=read_only, business_tz=self.business_tz)

    def templates(self) -> SqlTemplateUnitOfWork:
        return SqlTemplateUnitOfWork(self.database, business_tz=self.business_tz)

    def preferences(self) -> SqlPreferencesUnitOfWork:
        return SqlPreferencesUnitOfWork(self.database, business_tz=self.business_tz)

    def sign_ins(self) -> SqlSignInUnitOfWork:
        return SqlSignInUnitOfWork(self.database, business_tz=self.business_tz)

    def dashboards(self) -> SqlDashboardUnitOfWork:
        return SqlDashboardUnitOfWork(self.database, business_tz=self.business_tz)

    def report_schedules(self) -> ReportSchedulingUnitOfWork:
        return ReportSchedulingUnitOfWork(self.database, business_tz=self.business_tz)

    def sla_policies(self) -> SqlSlaPolicyUnitOfWork:
        return SqlSlaPolicyUnitOfWork(self.database, business_tz=self.business_tz)

    def service_naming(self, *, read_only: bool = False) -> SqlServiceNamingUnitOfWork:
        """Naming services (and, read only, listing them with their names)."""
        return SqlServiceNamingUnitOfWork(self.database, read_only=read_only, business_tz=self.business_tz)

    def canned_replies(self) -> SqlCannedReplyUnitOfWork:
        return SqlCannedReplyUnitOfWork(self.database, business_tz=self.business_tz)

    def chat_opening(self) -> SqlChatOpeningUnitOfWork:
        return SqlChatOpeningUnitOfWork(self.database, business_tz=self.business_tz)

    def slack_threads(self, *, read_only: bool = False) -> SqlSlackThreadUnitOfWork:
        return SqlSlackThreadUnitOfWork(self.database, read_only=read_only, business_tz=self.business_tz)

    def telegram_desk(self, *, read_only: bool = False) -> SqlTelegramDeskUnitOfWork:
        return SqlTelegramDeskUnitOfWork(self.database, read_only=read_only, business_tz=self.business_tz)

    def csat(self) -> SqlCsatUnitOfWork:
        return SqlCsatUnitOfWork(self.database, business_tz=self.business_tz)

    def video_booking(self, *, read_only: bool = False) -> SqlVideoBookingUnitOfWork:
        return SqlVideoBookingUnitOfWork(self.database, read_only=read_only, business_tz=self.business_tz)

    def video_links(self, *, read_only: bool = False) -> SqlVideoLinkUnitOfWork:
        """Following `/v/` links (read only: where a link leads) and recording joins."""
        return SqlVideoLinkUnitOfWork(self.database, read_only=read_only, business_tz=self.business_tz)

    def waiting_room(self) -> SqlWaitingRoomUnitOfWork:
        return SqlWaitingRoomUnitOfWork(self.database, business_tz=self.business_tz)

    def video_no_shows(self) -> SqlNoShowUnitOfWork:
        """Marking no-shows and attended visits, and offering new times."""
        return SqlNoShowUnitOfWork(self.database, business_tz=self.business_tz)
