"""Tells clinicians their patient is in the waiting room: Slack when they have it linked, else Telegram."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from bot.slack.app import build_slack_client
from bot.slack.threads import shown_fields
from bot.slack.waiting_room import SlackWaitingRoom
from bot.telegram_staff.staff_bot import build_staff_bot
from bot.telegram_staff.waiting_room import TelegramWaitingRoom
from domain.clock import Clock
from domain.video.waiting_room import AlertPass, WaitingPatient, alert_waiting_patients
from storage.units import UnitsOfWork
from switchboard.settings import Settings


@dataclass
class ClinicianChats:
    """domain.video.waiting_room.ClinicianAlerts over the staff chats this process has."""

    slack: SlackWaitingRoom | None
    telegram: TelegramWaitingRoom | None
    #: SWITCHBOARD_SLACK_CUSTOMER_FIELDS without "name": staff chats show no patient names.
    show_names: bool = True

    async def tell(self, patient: WaitingPatient, join_link: str) -> str | None:
        if not self.show_names:
            patient = replace(patient, patient_name="Your patient")
        if self.slack is not None and patient.slack_user_id:
            await self.slack.tell(patient.slack_user_id, patient, join_link)
            return "slack"
        if self.telegram is not None and patient.telegram_user_id:
            await self.telegram.tell(patient.telegram_user_id, patient, join_link)
            return "telegram"
        return None


@dataclass
class WaitingRoomWatch:
    units: UnitsOfWork
    chats: ClinicianChats
    public_url: str
    clock: Clock

    def join_link(self, clinician_token: str) -> str:
        return f"{self.public_url.rstrip('/')}/v/{clinician_token}"

    async def run(self) -> AlertPass:
        return await alert_waiting_patients(self.units.waiting_room, self.chats, self.clock(), self.join_link)


def waiting_room_watch(
    settings: Settings, units: UnitsOfWork, clock: Clock, closers: list[Callable[[], Awaitable[None]]]
) -> WaitingRoomWatch:
    """The watch with this process's staff chats: Slack when a bot token is set, and the staff bot."""
    slack = (
        SlackWaitingRoom(build_slack_client(settings))
        if settings.slack_bot_token.get_secret_value().strip()
        else None
    )
    telegram: TelegramWaitingRoom | None = None
    if settings.telegram_bot_token.get_secret_value().strip():
        bot = build_staff_bot(settings)
        closers.append(bot.session.close)
        telegram = TelegramWaitingRoom(bot)
    shown = shown_fields(settings.slack_customer_fields)
    return WaitingRoomWatch(
        units, ClinicianChats(slack, telegram, "name" in shown), settings.public_url, clock
    )
