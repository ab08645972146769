"""Booking a video consultation on the dashboard: find the patient, pick a clinician's free start time, book."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from babel.dates import format_skeleton, format_time
from litestar import Request, get, post
from litestar.response import Redirect, Template

from api.auth import requires_role
from api.pages.common import Formats, StaffPages, container_of, now_of, page, staff_of, whole_number
from api.pages.notices import after_change
from domain.customers.importing import phones_typed
from domain.notifications.rules import NOT_REACHED, told_words
from domain.video.booking import (
    BookingChoices,
    BookingRequest,
    book_consultation,
    booking_choices,
    find_free_slots,
    zone_name,
)
from domain.video.booking_ports import Clinician
from domain.video.model import VideoError
from domain.video.slots import zone_of
from domain.vocabulary import Role
from storage.queries.customers import CustomerSummary, customers_matching, search_regions
from storage.queries.video import booking_reaches
from switchboard.settings import ConfigurationError
from switchboard.wiring import Container

#: How many customers a patient search offers to choose from.
MATCH_LIMIT = 8


@dataclass
class BookingForm:
    """What the form was given, and what was found from it (the patient, the free times) or refused."""

    patient: str = ""
    customer_id: int | None = None
    service_id: int | None = None
    staff_id: int | None = None
    day: str = ""
    chosen: CustomerSummary | None = None
    matches: list[CustomerSummary] = field(default_factory=list)
    slots: list[dict[str, str]] = field(default_factory=list)
    slots_label: str = ""
    searched: bool = False
    error: str = ""
    #: More customers match than the choice lists (type more of the name, a number or an email).
    more: bool = False
    #: Where the booking's message will go, in words ("on SMS, a channel they opted in on"), and whether
    #: none reaches them (then staff are warned before they book, and pass the link on themselves).
    told: str = ""
    unreachable: bool = False
    why_not: str = ""


def _number(value: Any) -> int | None:
    return whole_number(str(value or "").strip().lstrip("#"))


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise VideoError("Give the day as a date, such as 2026-12-07.") from None


def customer_words(customer: CustomerSummary) -> str:
    contact = customer.phone_e164 or customer.email or "no phone or email"
    return f"{customer.name} (#{customer.id}, {contact})"


async def find_patient(container: Container, form: BookingForm) -> None:
    """The patient the form names: its chosen id among the typed search's matches, or the only match."""
    text = form.patient.strip() or (f"#{form.customer_id}" if form.customer_id else "")
    if not text:
        raise VideoError("Say who the patient is: a customer number, a name, a phone number or an email.")
    # A number typed as people say it ("0171 2345678") is read in the business's country, as on Customers.
    phones = phones_typed(text, await search_regions(container.database, container.settings.phone_region))
    found = await customers_matching(container.database, text, limit=MATCH_LIMIT + 1, phones=phones)
    form.matches, form.more = found[:MATCH_LIMIT], len(found) > MATCH_LIMIT
    chosen = [c for c in form.matches if c.id == form.customer_id]
    if chosen:
        form.chosen = chosen[0]
    elif len(form.matches) == 1:
        form.chosen = form.matches[0]
    elif not form.matches:
        raise VideoError(
            f"No customer matches “{text}”; try their number (#12), your patient number, phone number or email."
        )


async def told_on(container: Container, form: BookingForm, customer_id: int) -> None:
    """Where the booking's message would go, said before booking (the rule's choice, reaching_channel)."""
    channel, why = await booking_reaches(container.database, customer_id)
    form.told, form.unreachable = (told_words(channel, why) if channel else ""), channel is None
    form.why_not = NOT_REACHED.get(why, NOT_REACHED["unreachable"]) if channel is None else ""


def _clinician(choices: BookingChoices, staff_id: int | None) -> Clinician:
    found = next((c for c in choices.clinicians if c.staff_id == staff_id), None)
    if found is None:
        raise VideoError("Pick a clinician with working hours.")
    return found


async def find_times(container: Container, form: BookingForm, choices: BookingChoices, locale: str) -> None:
    """The clinician's free start times on the day, in their own timezone."""
    clinician = _clinician(choices, form.staff_id)
    if form.service_id not in {s.service_id for s in choices.services}:
        raise VideoError("Pick a video service.")
    assert form.service_id is not None
    day = _day(form.day)
    zone = zone_of(clinician.timezone)
    start = datetime.combine(day, time(0), zone)
    end = datetime.combine(day + timedelta(days=1), time(0), zone)
    now = container.clock()
    if end <= now:
        said = format_skeleton("MMMMEEEEd", start, locale=locale)
        raise VideoError(f"{said} has passed in {clinician.name}'s time; pick today or a later day.")
    found = await find_free_slots(
        container.units.video_booking(read_only=True),
        clinician.staff_id,
        form.service_id,
        start,
        end,
        now=now,
    )
    form.slots = [
        {"value": slot.isoformat(), "time": str(format_time(slot.astimezone(zone), "HH:mm", locale=locale))}
        for slot in found
    ]
    short = zone_name(start + timedelta(hours=12))
    named = clinician.timezone if short == clinician.timezone else f"{clinician.timezone}, {short}"
    form.slots_label = (
        f"{format_skeleton('MMMMEEEEd', start, locale=locale)}, {clinician.name}'s time ({named})"
    )


def read_form(values: Any) -> BookingForm:
    return BookingForm(
        patient=str(values.get("patient") or "")[:200],
        customer_id=_number(values.get("customer_id")),
        service_id=_number(values.get("service_id")),
        staff_id=_number(values.get("staff_id")),
        day=str(values.get("day") or "")[:20],
    )


class VideoBookingPages(StaffPages):
    @get("/communication/video/new", name="video_new")
    async def new(self, request: Request[Any, Any, Any]) -> Template:
        """The booking form; with a patient, service, clinician and day, that day's free start times."""
        form = read_form(request.query_params)
        if not form.day:
            business_zone = zone_of(container_of(request).settings.business_timezone)
            form.day = now_of(request).astimezone(business_zone).date().isoformat()
        # The form sent (its patient field there, even empty): a patient left out is said, not ignored.
        return await self._page(request, form, search="patient" in request.query_params)

    async def _page(self, request: Request[Any, Any, Any], form: BookingForm, *, search: bool) -> Template:
        container, formats = container_of(request), Formats.of(request)
        may_book = staff_of(request).may(Role.AGENT)
        choices = await booking_choices(container.units.video_booking(read_only=True))
        if search and may_book:
            try:
                await find_patient(container, form)
                if form.chosen is not None:
                    await told_on(container, form, form.chosen.id)
                    await find_times(container, form, choices, formats.locale)
                    form.searched = True
            except VideoError as error:
                form.error = form.error or str(error)
        template = page(
            request,
            "communication/video_new.html",
            "communication",
            "video",
            form=form,
            choices=choices,
            may_book=may_book,
            customer_words=customer_words,
        )
        if form.error:
            template.status_code = 409 if request.method == "POST" else 200
        return template

    @post("/communication/video/new", name="video_book", guards=[requires_role(Role.AGENT)], status_code=303)
    async def book(self, request: Request[Any, Any, Any]) -> Redirect | Template:
        """Book the chosen time through the same use-case as the bot and the API (agents and up; audited)."""
        container, staff = container_of(request), staff_of(request)
        values = await request.form()
        form = read_form(values)
        try:
            if form.customer_id is None:
                raise VideoError("Find the patient first.")
            if form.service_id is None or form.staff_id is None:
                raise VideoError("Pick a video service and a clinician.")
            try:
                starts_at = datetime.fromisoformat(str(values.get("starts_at") or ""))
            except ValueError:
                raise VideoError("Pick one of the free start times.") from None
            if starts_at.tzinfo is None:
                raise VideoError("Pick one of the free start times.")
            booked = await book_consultation(
                container.units.video_booking(),
                container.video_rooms,
                BookingRequest(form.customer_id, form.service_id, form.staff_id, starts_at),
                actor=staff.email,
                via="web",
                now=now_of(request),
                public_url=container.settings.public_url,
            )
        except ConfigurationError as error:
            form.error = f"Video rooms are not set up: {error}"
            return await self._page(request, form, search=True)
        except VideoError as error:
            form.error = str(error)
            return await self._page(request, form, search=True)
        told = {"told": booked.customer_channel or "none", "why": booked.customer_channel_why}
        return after_change(request, f"/communication/video/{booked.consultation_id}", done="booked", **told)
