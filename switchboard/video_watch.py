"""The worker's video jobs, wired: reminders as they come due, and no-shows with their rebooking offers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from domain.clock import utc_now
from domain.notifications.use_cases import process_pending_events
from domain.video.no_shows import mark_missed_consultations
from domain.video.ports import VideoRooms
from domain.video.rebooking import RebookingPolicy
from domain.video.reminders import ReminderPass, send_due_reminders
from domain.video.replies import VideoReplies
from storage.database import Database
from storage.notifications import SqlNotificationUnitOfWork
from storage.video_no_shows import SqlNoShowUnitOfWork, inbound_rebooking_desk
from storage.video_reminders import SqlReminderUnitOfWork
from switchboard.policies import business_consent_policy
from switchboard.settings import ConfigurationError, Settings

log = logging.getLogger(__name__)

#: Reminders are looked for every second: the bench's target is a reminder with the provider within a second
#: of its time (a pass with nothing due is one indexed read).
REMINDER_TICK_SECONDS = 1.0
NO_SHOW_TICK_SECONDS = 30.0
#: The every-second pass looks only at reminders whose time came this recently ...
NARROW_LOOKBACK = timedelta(minutes=2)
#: ... and a full pass this often finds the rest (a reschedule whose reminder is already due, a late booking).
FULL_SCAN_EVERY = timedelta(seconds=30)


class VideoWatch:
    """`VideoWatch(database, settings)`: `reminders()` and `no_shows()` are one pass of each job."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self._database = database
        self._settings = settings
        self._full_scan_at: datetime | None = None

    def _tz(self) -> str:
        return self._settings.business_timezone

    async def _process_events(self, now: datetime) -> None:
        """Turn the events just recorded into outbox rows now rather than on the notifications job's tick."""
        await process_pending_events(
            lambda: SqlNotificationUnitOfWork(self._database, business_tz=self._tz()),
            now,
            policy=business_consent_policy(self._settings),
        )

    async def reminders(self, now: datetime | None = None) -> ReminderPass:
        """Each second only reminders whose time came in the last NARROW_LOOKBACK (cheap: a few rows of the
        scheduled_at index); every FULL_SCAN_EVERY all of them, which also finds consultations rescheduled
        or booked since (a reminder already due for them goes then)."""
        moment = now or utc_now()
        full = self._full_scan_at is None or moment - self._full_scan_at >= FULL_SCAN_EVERY
        done = await send_due_reminders(
            lambda: SqlReminderUnitOfWork(self._database, business_tz=self._tz()),
            moment,
            public_url=self._settings.public_url,
            process_events=lambda: self._process_events(moment),
            read_uow=lambda: SqlReminderUnitOfWork(self._database, read_only=True, business_tz=self._tz()),
            since=None if full else moment - NARROW_LOOKBACK,
        )
        if full:
            self._full_scan_at = moment
        return done

    async def no_shows(self, now: datetime | None = None) -> list[int]:
        moment = now or utc_now()
        return await mark_missed_consultations(
            lambda: SqlNoShowUnitOfWork(self._database, business_tz=self._tz()),
            moment,
            after=timedelta(minutes=self._settings.video_no_show_minutes),
            process_events=lambda: self._process_events(moment),
        )


#: Why video replies are not answered, as already logged by this process.
_ALREADY_SAID: set[str] = set()


def video_replies(settings: Settings, rooms: Callable[[], VideoRooms]) -> VideoReplies | None:
    """How the inbound handler answers "1", "2" and offered letters: booking with the clinic's rooms, on the
    inbound transaction's session; None while the rooms are not set up (those are then ordinary messages)."""
    try:
        built = rooms()
    except ConfigurationError as error:
        # Said once per process: a clinic without video consultations would otherwise read it per message.
        said = str(error)
        if said not in _ALREADY_SAID:
            _ALREADY_SAID.add(said)
            log.warning("video replies are not answered: %s", said)
        return None
    return VideoReplies(RebookingPolicy(built, settings.public_url), inbound_rebooking_desk)
