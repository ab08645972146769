"""What booking video consultations needs from storage: who and what is booked, their hours, and the claims."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from domain.audit import AuditTrail
from domain.notifications.model import RecordedEvent
from domain.transaction import Transaction
from domain.video.model import ConsultationStatus
from domain.video.slots import Busy, WorkingSpan


@dataclass(frozen=True)
class Clinician:
    staff_id: int
    name: str
    email: str
    timezone: str
    active: bool = True
    location_id: int | None = None


@dataclass(frozen=True)
class BookableService:
    service_id: int
    code: str
    name: str
    kind: str  # "video" or "in_person"
    duration_minutes: int
    price_minor: int
    currency: str
    #: The name in other languages ({"de": "Video-Hautsprechstunde"}), for patients who read them.
    names: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Patient:
    customer_id: int
    name: str
    timezone: str
    locale: str = "en"


@dataclass(frozen=True)
class NewBooking:
    """The rows one booking writes: an appointment, its consultation, and its claimed time."""

    customer_id: int
    service_id: int
    staff_id: int
    location_id: int | None
    starts_at: datetime
    duration_minutes: int
    price_minor: int
    currency: str
    room_name: str
    room_url: str
    link_token: str
    clinician_token: str
    created_at: datetime


@dataclass(frozen=True)
class StoredConsultation:
    consultation_id: int
    appointment_id: int | None
    customer_id: int
    staff_id: int | None
    service_id: int | None
    starts_at: datetime
    duration_minutes: int
    status: ConsultationStatus
    version: int
    link_token: str | None
    clinician_token: str | None
    room_name: str | None


@dataclass(frozen=True)
class ConsultationListing:
    """One consultation as a day list shows it."""

    consultation_id: int
    starts_at: datetime
    duration_minutes: int
    status: ConsultationStatus
    customer_id: int
    customer_name: str
    customer_timezone: str
    staff_id: int | None
    staff_name: str
    staff_timezone: str
    service_name: str


class TimeClaimed(Exception):
    """Storage found another booking holding one of the steps asked for (the database refused the claim)."""


class VideoBookingRepository(Protocol):
    async def clinician(self, staff_id: int) -> Clinician | None: ...

    async def clinicians(self) -> list[Clinician]:
        """Active staff with working hours set (the people consultations can be booked with)."""

    async def service(self, service_id: int) -> BookableService | None: ...

    async def video_services(self) -> list[BookableService]: ...

    async def patient(self, customer_id: int) -> Patient | None: ...

    async def working_hours(self, staff_id: int) -> list[WorkingSpan]: ...

    async def busy(
        self, staff_id: int, start: datetime, end: datetime, *, except_appointment: int | None = None
    ) -> list[Busy]:
        """Claimed time and other live appointments of the clinician between `start` and `end`."""

    async def add_booking(self, booking: NewBooking) -> tuple[int, int]:
        """Store the appointment and its consultation; (consultation id, appointment id)."""

    async def claim(self, staff_id: int, appointment_id: int, steps: Sequence[datetime]) -> None:
        """Hold each step for the appointment; raises TimeClaimed when another booking holds one."""

    async def release(self, appointment_id: int) -> None:
        """Free every step the appointment holds."""

    async def consultation(
        self, consultation_id: int, *, for_update: bool = False
    ) -> StoredConsultation | None: ...

    async def move(
        self,
        consultation: StoredConsultation,
        starts_at: datetime,
        version: int,
        *,
        room_name: str,
        room_url: str,
    ) -> None:
        """The consultation and its appointment start at `starts_at`, booked again (status scheduled);
        a consultation without links gets them (its room, and tokens), one with links keeps them."""

    async def cancel(self, consultation: StoredConsultation, at: datetime) -> None:
        """The consultation and its appointment are cancelled."""

    async def listing(
        self, start: datetime, end: datetime, *, staff_id: int | None = None
    ) -> list[ConsultationListing]:
        """Consultations starting in [start, end), by start time."""


class BusinessEvents(Protocol):
    async def add_event(
        self,
        event_type: str,
        idempotency_key: str,
        customer_id: int | None,
        payload: Mapping[str, Any],
        occurred_at: datetime,
    ) -> RecordedEvent: ...

    async def reaching_channel(
        self, event_type: str, customer_id: int, *, at: datetime | None = None
    ) -> tuple[str | None, str]:
        """The channel the rules for `event_type` would reach the customer on, and why
        (domain.notifications.rules.reaching_channel)."""


class VideoBookingUnitOfWork(Transaction, Protocol):
    @property
    def video(self) -> VideoBookingRepository: ...

    @property
    def notifications(self) -> BusinessEvents: ...

    @property
    def audit(self) -> AuditTrail: ...
