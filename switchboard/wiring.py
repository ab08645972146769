"""The one place that builds the running system from settings: every part a process needs, typed.

Edges (`api/`, `bot/`) receive the `Container` and ask it for units of work, policies and the parts
built here once (chart cache, receipt batcher, staff front ends, dispatcher); nothing else builds them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property

from slack_bolt.async_app import AsyncApp

from bot.command_runner import StaffCommandRunner
from bot.commands.context import CommandContext
from bot.slack.app import build_slack_app, build_slack_client
from bot.telegram_staff.staff_bot import TelegramStaffBot, build_staff_bot, build_telegram_staff
from domain.clock import Clock, utc_now
from domain.consent.model import ConsentPolicy
from domain.consent.unsubscribe import UnsubscribeLinks
from domain.conversations.attachments import AttachmentRules
from domain.conversations.csat import CsatPolicy
from domain.conversations.receipt_batches import ReceiptBatcher
from domain.conversations.use_cases import InboundPolicy
from domain.delivery.dispatch import Dispatcher
from domain.video.ports import VideoRooms
from providers.media import ProviderMedia, media_source_from
from providers.registry import ProviderWebhookReader
from providers.video.rooms import video_rooms_from
from reports.charts.cache import ChartCache
from reports.performance import OperationalMetrics
from storage.campaigns import SqlCampaignUnitOfWork
from storage.database import Database
from storage.inbox import ConversationUnitOfWork
from storage.messages import SqlMessagingUnitOfWork
from storage.notifications import SqlNotificationUnitOfWork
from storage.unit_of_work import SqlUnitOfWork
from storage.units import UnitsOfWork
from switchboard.chat_threads import SlackThreadDesk, TelegramConversationDesk
from switchboard.policies import business_consent_policy, business_csat_policy, business_unsubscribe_links
from switchboard.settings import Settings
from switchboard.video_watch import video_replies
from switchboard.waiting_room import WaitingRoomWatch, waiting_room_watch


@dataclass
class Container:
    """Everything a process needs, built once at start-up and closed at shutdown."""

    settings: Settings
    database: Database
    metrics: OperationalMetrics = field(default_factory=OperationalMetrics)
    #: The one cache of rendered charts: the bots and the dashboard draw the same KPIs.
    chart_cache: ChartCache = field(default_factory=ChartCache)
    clock: Clock = utc_now
    #: The staff chat front ends, once `install_staff_front_ends` ran (POST /slack/events, /webhooks/telegram).
    slack_app: AsyncApp | None = None
    front_ends_installed: bool = False
    telegram_staff: TelegramStaffBot | None = None
    #: The delivery dispatcher of this process's background worker, when it runs one.
    dispatcher: Dispatcher | None = None
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    #: Set when a conversation has something new (a customer wrote): the Slack thread pass runs at once.
    chat_news: asyncio.Event = field(default_factory=asyncio.Event)
    #: Set when a patient enters a consultation's waiting room: the clinician is told at once.
    patient_waiting: asyncio.Event = field(default_factory=asyncio.Event)

    # --- units of work: one per kind of transaction, all in the business's timezone ----------------

    @cached_property
    def units(self) -> UnitsOfWork:
        """Every kind of unit of work, for this database in the business's timezone."""
        return UnitsOfWork(self.database, self.settings.business_timezone, csat_policy=self.csat_policy())

    def unit_of_work(self, *, read_only: bool = False) -> SqlUnitOfWork:
        return self.units.general(read_only=read_only)

    def messaging_uow(self) -> SqlMessagingUnitOfWork:
        return self.units.messaging()

    def campaign_uow(self, *, read_only: bool = False) -> SqlCampaignUnitOfWork:
        return self.units.campaigns(read_only=read_only)

    def notification_uow(self, *, read_only: bool = False) -> SqlNotificationUnitOfWork:
        return self.units.notifications(read_only=read_only)

    def conversation_uow(self) -> ConversationUnitOfWork:
        return self.units.conversations()

    # --- the business's rules -----------------------------------------------------------------------

    def consent_policy(self) -> ConsentPolicy:
        return business_consent_policy(self.settings)

    def unsubscribe_links(self) -> UnsubscribeLinks:
        return business_unsubscribe_links(self.settings)

    def csat_policy(self) -> CsatPolicy:
        """CSAT surveys on resolve (SWITCHBOARD_CSAT_SURVEYS), their email links signed with the session secret."""
        return business_csat_policy(self.settings)

    def inbound_policy(self) -> InboundPolicy:
        return InboundPolicy(
            self.settings.business_name,
            AttachmentRules(self.settings.attachment_max_bytes),
            self.settings.attachment_fetch_timeout_seconds,
            video=video_replies(self.settings, lambda: self.video_rooms),
            welcome_newcomers=self.settings.chat_welcome_newcomers,
            business_timezone=self.settings.business_timezone,
            customer_language=self.settings.customer_language,
        )

    @cached_property
    def webhook_reader(self) -> ProviderWebhookReader:
        """Built once: every webhook request reads through it."""
        return ProviderWebhookReader(self.settings.session_secret)

    # --- parts built once ---------------------------------------------------------------------------

    @cached_property
    def media_source(self) -> ProviderMedia:
        """Downloads the files customers send (WhatsApp, Telegram, MMS) while their webhook is handled."""
        media = media_source_from(self.settings)
        self.closers.append(media.close)
        return media

    @cached_property
    def video_rooms(self) -> VideoRooms:
        """The clinic's video rooms (SWITCHBOARD_VIDEO_PROVIDER); a ConfigurationError names what is missing."""
        return video_rooms_from(self.settings)

    @cached_property
    def waiting_room(self) -> WaitingRoomWatch:
        """Tells clinicians, in Slack or Telegram, that their patient is in the waiting room."""
        return waiting_room_watch(self.settings, self.units, self.clock, self.closers)

    @cached_property
    def receipt_batcher(self) -> ReceiptBatcher:
        """Receipt-only webhooks arriving at the same moment share one transaction (group commit)."""
        return ReceiptBatcher(self.conversation_uow, self.webhook_reader, self.inbound_policy())

    @cached_property
    def slack_threads(self) -> SlackThreadDesk | None:
        """Live chat in Slack threads: replies in existing threads are taken whenever Slack is set up, so
        clearing the channel setting orphans no conversation; new ones are posted while a channel is set."""
        if not self.settings.slack_bot_token.get_secret_value().strip():
            return None
        return SlackThreadDesk(
            self.settings,
            self.database,
            self.units,
            build_slack_client(self.settings),
            self.clock,
            on_reply=self._reply_queued,
            files=self.media_source,
        )

    @cached_property
    def telegram_conversations(self) -> TelegramConversationDesk | None:
        """Live chat in the staff bot's private chats, when SWITCHBOARD_TELEGRAM_STAFF_CHATS is on."""
        if not self.settings.telegram_staff_chats:
            return None
        bot = build_staff_bot(self.settings)
        self.closers.append(bot.session.close)
        return TelegramConversationDesk(
            self.settings,
            self.database,
            self.units,
            bot,
            self.clock,
            on_reply=self._reply_queued,
            files=self.media_source,
        )

    def _reply_queued(self) -> None:
        """An agent's reply is in the outbox: this process's worker (if it runs one) sends it now."""
        if self.dispatcher is not None:
            self.dispatcher.nudge()

    def command_context(self) -> CommandContext:
        return CommandContext(
            self.settings, self.database, chart_cache=self.chart_cache, clock=self.clock, units=self.units
        )

    def install_staff_front_ends(self) -> StaffCommandRunner:
        """Builds the Slack app and the Telegram staff bot over one command runner (once, at start-up)."""
        runner = StaffCommandRunner(self.command_context())
        self.front_ends_installed = True
        if self.settings.slack_configured:
            # Without a bot token and signing secret the Slack bot is off: /slack/events answers 503.
            self.slack_app = build_slack_app(self.settings, runner, threads=self.slack_threads)
        self.telegram_staff = build_telegram_staff(self.settings, runner, self.telegram_conversations)
        self.closers.append(self.telegram_staff.close)
        return runner

    async def close(self) -> None:
        for closer in reversed(self.closers):
            await closer()
        await self.database.dispose()


def build_container(settings: Settings) -> Container:
    """Builds (without connecting) the container for `settings`."""
    settings.check_production_ready()
    return Container(
        settings=settings,
        database=Database.connect(
            settings.database_url,
            read_url=settings.database_read_url or None,
            transaction_pooling=settings.database_transaction_pooling,
        ),
    )
