""" "Your patient is in the waiting room": each patient join told to the clinician once, with a one-tap join."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from domain.transaction import Transaction
from domain.video.links import clock_time
from domain.video.model import ConsultationStatus, Window

log = logging.getLogger(__name__)

#: A patient who rejoins (a dropped call, a reloaded page) is told about again only after this long.
ALERT_REPEAT = timedelta(minutes=5)
#: Patient joins older than this are never told (the consultation is long over); bounds each pass's search.
ALERT_LOOKBACK = timedelta(hours=12)
#: Joins one pass claims at most.
ALERT_BATCH = 100


@dataclass(frozen=True)
class WaitingPatient:
    """A patient's join, with what the clinician's message needs."""

    join_id: int
    consultation_id: int
    joined_at: datetime
    status: ConsultationStatus
    window: Window
    patient_name: str
    clinician_name: str
    clinician_timezone: str
    clinician_token: str | None
    slack_user_id: str | None = None
    telegram_user_id: int | None = None
    service_name: str | None = None


class WaitingRoomStore(Protocol):
    async def claim_patient_joins(self, now: datetime, since: datetime, limit: int) -> list[int]:
        """Marks untold patient joins (consultations starting after `since`) told; the ids this call took,
        none taken by another process too."""

    async def waiting_patients(self, join_ids: Sequence[int]) -> list[WaitingPatient]: ...

    async def alerted_since(
        self, consultation_ids: Sequence[int], since: datetime, claimed: Sequence[int]
    ) -> set[int]:
        """Consultations with a patient join told after `since`, other than the joins just claimed."""

    async def release(self, join_ids: Sequence[int], claimed_at: datetime) -> None:
        """Untold again (the message could not be sent): the next pass tries once more."""


class WaitingRoomUnitOfWork(Transaction, Protocol):
    @property
    def waiting_room(self) -> WaitingRoomStore: ...


class ClinicianAlerts(Protocol):
    """Tells a clinician in their staff chat; the name of the chat used, or None when they have none linked.
    Raises when the chat could not be reached (the join is then tried again)."""

    async def tell(self, patient: WaitingPatient, join_link: str) -> str | None: ...


@dataclass
class AlertPass:
    told: list[tuple[int, str]] = field(default_factory=list)  # (consultation id, chat)
    skipped: int = 0
    unreachable: int = 0
    failed: int = 0


def waiting_words(patient: WaitingPatient) -> str:
    """ "Anna Meyer is in the waiting room for your 10:30 (Europe/Berlin time) consultation (Skin check)."."""
    what = f" ({patient.service_name})" if patient.service_name else ""
    starts = clock_time(patient.window.starts_at, patient.clinician_timezone)
    return f"{patient.patient_name} is in the waiting room for your {starts} consultation{what}."


def worth_telling(patient: WaitingPatient, now: datetime, recently_told: set[int]) -> bool:
    """Tell while the patient waits alone inside the window, not again within ALERT_REPEAT."""
    return (
        patient.status is ConsultationStatus.WAITING
        and patient.window.is_open(now)
        and patient.clinician_token is not None
        and patient.consultation_id not in recently_told
    )


async def alert_waiting_patients(
    uow: Callable[[], WaitingRoomUnitOfWork],
    alerts: ClinicianAlerts,
    now: datetime,
    join_link: Callable[[str], str],
) -> AlertPass:
    """Claims untold patient joins (a conditional update, so one process tells each), then tells each
    waiting patient's clinician once; a join that cannot be told is released for the next pass."""
    done = AlertPass()
    async with uow() as claim:
        claimed = await claim.waiting_room.claim_patient_joins(now, now - ALERT_LOOKBACK, ALERT_BATCH)
        if not claimed:
            return done
        patients = await claim.waiting_room.waiting_patients(claimed)
        recently = await claim.waiting_room.alerted_since(
            sorted({p.consultation_id for p in patients}), now - ALERT_REPEAT, claimed
        )
        await claim.commit()
    latest: dict[int, WaitingPatient] = {}
    for patient in sorted(patients, key=lambda p: p.joined_at):
        latest[patient.consultation_id] = patient  # several joins in one pass: one message
    done.skipped = len(patients) - len(latest)
    failed: list[int] = []
    for patient in latest.values():
        if not worth_telling(patient, now, recently) or patient.clinician_token is None:
            done.skipped += 1
            continue
        try:
            chat = await alerts.tell(patient, join_link(patient.clinician_token))
        except Exception:  # a chat that is down must not lose the alert: the next pass tries again
            log.warning(
                "could not tell the clinician of consultation %s", patient.consultation_id, exc_info=True
            )
            failed.append(patient.join_id)
            continue
        if chat is None:
            done.unreachable += 1
        else:
            done.told.append((patient.consultation_id, chat))
    if failed:
        done.failed = len(failed)
        async with uow() as retry:
            await retry.waiting_room.release(failed, now)
            await retry.commit()
    return done
