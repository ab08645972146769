"""/api/video: free consultation times, and booking, moving, cancelling and listing video consultations."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import msgspec
from litestar import Controller, Request, get, post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_409_CONFLICT

from api.problems import Problem
from api.rest.common import (
    API_SECURITY,
    BodyId,
    RowId,
    Unprocessable,
    api_actor,
    container_of,
    problems,
    require_api_token,
)
from domain.video.booking import (
    BookedConsultation,
    BookingRequest,
    book_consultation,
    booking_choices,
    cancel_consultation,
    consultation_clinician,
    find_free_slots,
    list_consultations,
    patient_link,
    reschedule_consultation,
    time_in,
)
from domain.video.booking_ports import ConsultationListing
from domain.video.model import STATUS_WORDS, ConsultationNotFound, SlotTaken, VideoError
from switchboard.settings import ConfigurationError
from switchboard.wiring import Container

#: The longest span one slot search or listing covers.
MAX_SPAN = timedelta(days=62)
#: Without `to`: this far ahead.
DEFAULT_SPAN = timedelta(days=14)
TIME_HELP = (
    "an ISO date-time; with an offset (2026-12-07T10:30:00+01:00) it is that instant, without one it is "
    "the clinician's own wall-clock time"
)
#: How a double booking is answered (409), in the OpenAPI document.
CONFLICT: dict[int, ResponseSpec] = {
    HTTP_409_CONFLICT: ResponseSpec(
        data_container=Problem,
        description="The clinician's time is taken (another booking overlaps); `detail` names the clash.",
        generate_examples=False,
    )
}


class Conflict(HTTPException):
    status_code = HTTP_409_CONFLICT


class BookingIn(msgspec.Struct, forbid_unknown_fields=True):
    customer_id: BodyId
    service_id: BodyId
    staff_id: BodyId
    starts_at: Annotated[str, msgspec.Meta(min_length=10, max_length=40, description=TIME_HELP)]


class RescheduleIn(msgspec.Struct, forbid_unknown_fields=True):
    starts_at: Annotated[str, msgspec.Meta(min_length=10, max_length=40, description=TIME_HELP)]


class CancelIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(max_length=500)] | None = None


def consultation_json(booked: BookedConsultation, public_url: str) -> dict[str, Any]:
    return {
        "id": booked.consultation_id,
        "appointment_id": booked.appointment_id,
        "status": booked.status.value,
        "status_words": STATUS_WORDS[booked.status],
        "starts_at": booked.starts_at.isoformat(),
        "ends_at": booked.ends_at.isoformat(),
        "duration_minutes": booked.duration_minutes,
        "version": booked.version,
        "service": booked.service_name,
        "customer": {
            "id": booked.customer_id,
            "name": booked.customer_name,
            "timezone": booked.customer_timezone,
            "local_time": time_in(booked.starts_at, booked.customer_timezone),
            # The channel the message about it takes (null: none reaches them), and why (REACH_REASONS).
            "told_on": booked.customer_channel,
            "told_because": booked.customer_channel_why or None,
        },
        "staff": {
            "id": booked.staff_id,
            "name": booked.staff_name,
            "timezone": booked.staff_timezone,
            "local_time": time_in(booked.starts_at, booked.staff_timezone),
        },
        "patient_link": booked.link or patient_link(public_url, booked.link_token),
        "clinician_link": patient_link(public_url, booked.clinician_token),
    }


def listing_json(listed: ConsultationListing) -> dict[str, Any]:
    return {
        "id": listed.consultation_id,
        "status": listed.status.value,
        "status_words": STATUS_WORDS[listed.status],
        "starts_at": listed.starts_at.isoformat(),
        "duration_minutes": listed.duration_minutes,
        "service": listed.service_name,
        "customer": {
            "id": listed.customer_id,
            "name": listed.customer_name,
            "timezone": listed.customer_timezone,
        },
        "staff": {"id": listed.staff_id, "name": listed.staff_name, "timezone": listed.staff_timezone},
        "staff_local_time": time_in(listed.starts_at, listed.staff_timezone),
    }


def _instant(text: str, what: str, zone: str | None) -> datetime:
    """An ISO date-time; one without an offset is read in `zone` (refused when there is none to read it in)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Unprocessable(f"{what} is not an ISO date-time (e.g. 2026-12-07T10:30:00+01:00).") from None
    if moment.tzinfo is None:
        if zone is None:
            raise Unprocessable(f"{what} needs a timezone offset, e.g. 2026-12-07T10:30:00+01:00.")
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment


def _window(container: Container, start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    for moment, name in ((start, "from"), (end, "to")):
        if moment is not None and moment.tzinfo is None:
            raise Unprocessable(f"`{name}` needs a timezone offset, e.g. 2026-12-07T00:00:00+01:00.")
    start = start or container.clock()
    end = end or start + DEFAULT_SPAN
    if end <= start:
        raise Unprocessable("`to` must come after `from`.")
    if end - start > MAX_SPAN:
        raise Unprocessable(f"Ask for at most {MAX_SPAN.days} days at a time.")
    return start, end


async def _clinician_zone(container: Container, staff_id: int) -> str | None:
    choices = await booking_choices(container.units.video_booking(read_only=True))
    return next((c.timezone for c in choices.clinicians if c.staff_id == staff_id), None)


def _answered(error: Exception) -> HTTPException:
    """The domain's refusal as the API's answer: 404 for no such consultation, 409 for taken time, else 422."""
    if isinstance(error, ConsultationNotFound):
        return NotFoundException(str(error))
    if isinstance(error, SlotTaken):
        return Conflict(str(error))
    if isinstance(error, ConfigurationError):
        return Unprocessable(f"Video rooms are not set up: {error}")
    return Unprocessable(str(error))


class VideoController(Controller):
    path = "/api/video"
    guards = [require_api_token]
    security = API_SECURITY
    tags = ["video consultations"]

    @get("/slots", responses=problems())
    async def slots(
        self,
        request: Request[Any, Any, Any],
        staff_id: Annotated[int, QueryParameter(ge=1, le=2**63 - 1)],
        service_id: Annotated[int, QueryParameter(ge=1, le=2**63 - 1)],
        start: Annotated[datetime | None, QueryParameter(name="from", required=False)] = None,
        end: Annotated[datetime | None, QueryParameter(name="to", required=False)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=5000)] = 500,
    ) -> dict[str, Any]:
        """Start times (UTC) at which the service fits the clinician's free working time; `from` defaults
        to now and `to` to two weeks after it (at most 62 days)."""
        container = container_of(request)
        start, end = _window(container, start, end)
        try:
            found = await find_free_slots(
                container.units.video_booking(read_only=True),
                staff_id,
                service_id,
                start,
                end,
                limit=limit,
                now=container.clock(),
            )
        except VideoError as error:
            raise _answered(error) from None
        return {
            "staff_id": staff_id,
            "service_id": service_id,
            "timezone": await _clinician_zone(container, staff_id),
            "slots": [slot.isoformat() for slot in found],
        }

    @post("/consultations", status_code=201, responses={**problems(body=True), **CONFLICT})
    async def book(self, request: Request[Any, Any, Any], data: JSONBody[BookingIn]) -> dict[str, Any]:
        """Book a video consultation; the patient is told in their own time, on the channel `customer.told_on`
        names (why: `told_because`)."""
        container = container_of(request)
        zone = await _clinician_zone(container, data.staff_id)
        starts_at = _instant(data.starts_at, "starts_at", zone)
        try:
            booked = await book_consultation(
                container.units.video_booking(),
                container.video_rooms,
                BookingRequest(data.customer_id, data.service_id, data.staff_id, starts_at),
                actor=api_actor(request),
                via="api",
                now=container.clock(),
                public_url=container.settings.public_url,
            )
        except (VideoError, ConfigurationError) as error:
            raise _answered(error) from None
        return consultation_json(booked, container.settings.public_url)

    @post(
        "/consultations/{consultation_id:int}/reschedule",
        status_code=200,
        responses={**problems(404, body=True), **CONFLICT},
    )
    async def reschedule(
        self, request: Request[Any, Any, Any], consultation_id: FromPath[RowId], data: JSONBody[RescheduleIn]
    ) -> dict[str, Any]:
        """Move a consultation still to come; its link stays the same and the patient is told."""
        container = container_of(request)
        try:
            clinician = await consultation_clinician(
                container.units.video_booking(read_only=True), consultation_id
            )
            starts_at = _instant(data.starts_at, "starts_at", clinician.timezone if clinician else None)
            booked = await reschedule_consultation(
                container.units.video_booking(),
                container.video_rooms,
                consultation_id,
                starts_at,
                actor=api_actor(request),
                via="api",
                now=container.clock(),
                public_url=container.settings.public_url,
            )
        except (VideoError, ConfigurationError) as error:
            raise _answered(error) from None
        return consultation_json(booked, container.settings.public_url)

    @post("/consultations/{consultation_id:int}/cancel", status_code=200, responses=problems(404, body=True))
    async def cancel(
        self, request: Request[Any, Any, Any], consultation_id: FromPath[RowId], data: JSONBody[CancelIn]
    ) -> dict[str, Any]:
        """Cancel a consultation still to come; its time is free again and the patient is told."""
        container = container_of(request)
        try:
            booked = await cancel_consultation(
                container.units.video_booking(),
                consultation_id,
                actor=api_actor(request),
                via="api",
                now=container.clock(),
                reason=data.reason,
                public_url=container.settings.public_url,
            )
        except VideoError as error:
            raise _answered(error) from None
        return consultation_json(booked, container.settings.public_url)

    @get("/consultations", responses=problems())
    async def consultations(
        self,
        request: Request[Any, Any, Any],
        start: Annotated[datetime | None, QueryParameter(name="from", required=False)] = None,
        end: Annotated[datetime | None, QueryParameter(name="to", required=False)] = None,
        staff_id: Annotated[int | None, QueryParameter(ge=1, le=2**63 - 1, required=False)] = None,
    ) -> dict[str, Any]:
        """Consultations starting from `from` (default now) to `to` (default two weeks later), by start."""
        container = container_of(request)
        start, end = _window(container, start, end)
        listed = await list_consultations(
            container.units.video_booking(read_only=True), start, end, staff_id=staff_id
        )
        return {"consultations": [listing_json(c) for c in listed]}
