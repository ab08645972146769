"""Video consultation pages: a day's or a week's consultations per clinician, one consultation's story."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_skeleton, format_time
from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template

from api.auth import requires_role
from api.pages import notices
from api.pages.common import PERIODS, Formats, StaffPages, container_of, now_of, page, staff_of, whole_number
from api.pages.notices import after_change
from domain.notifications.rules import told_sentence
from domain.video.booking import cancel_consultation, patient_link, reschedule_consultation
from domain.video.model import (
    ACTIVE_STATUSES,
    STATUS_WORDS,
    ConsultationNotFound,
    ConsultationStatus,
    VideoError,
)
from domain.video.no_shows import AppointmentNotFound, mark_attended, mark_no_show
from domain.video.rebooking import offer_rebooking
from domain.video.reminders import lead_time_words
from domain.vocabulary import Role
from reports.query import MetricQuery, run_query
from storage.queries.reports import dimension_names
from storage.queries.video import (
    ConsultationLine,
    clinicians_with_consultations,
    consultation_detail,
    consultation_line,
    consultations_between,
    reminder_logs,
)
from storage.queries.video_reminders import FEED_VERSION, ReminderLogLine, ToldLine
from switchboard.settings import ConfigurationError
from switchboard.wiring import Container

#: The spans the list offers; a week is any week, named by a day in it (``week=YYYY-MM-DD``).
SPANS = {"today": "Today", "week": "This week"}
CHANNEL_WORDS = {"sms": "SMS", "whatsapp": "WhatsApp", "telegram": "Telegram", "email": "email"}
#: What the booking's redirect may say the patient is told on ("none": no channel reaches them).
TOLD_ON = frozenset({*CHANNEL_WORDS, "none"})
#: A reminder's message status, in words.
REMINDER_WORDS = {
    "planned": "due",
    "sending": "being sent",
    "queued": "handed to the provider",
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
    "undelivered": "not delivered",
    "dead": "failed",
    "suppressed": "not sent",
    "cancelled": "cancelled",
    "skipped": "skipped",
    "not sent": "not sent",
}
WHO_WORDS = {"patient": "Patient", "clinician": "Clinician"}
#: A consultation's audited changes, in words ("booked by …").
CHANGE_WORDS = {
    "video.book": "booked",
    "video.reschedule": "moved",
    "video.cancel": "cancelled",
    "video.completed": "marked done",
    "video.clinician_absent": "marked “clinician did not join”",
    "video.no_show": "marked a no-show",
    "video.no_show_corrected": "corrected: the patient attended",
    "video.rebook_offer": "new times offered",
    "appointment.no_show": "marked a no-show",
    "appointment.attended": "marked attended",
}


def _clinician_when(line: ConsultationLine, clock: BusinessClock) -> str:
    """The time in the clinician's own zone when it is not the business's ("10:00 in Emma Rodriguez's time,
    America/New_York"): the time staff picked when they booked, as the booking form and the bot say it."""
    zone = line.staff_timezone
    if not zone or zone == clock.formats.timezone or line.staff is None:
        return ""
    theirs = line.scheduled_at.astimezone(ZoneInfo(zone))
    return f"{theirs:%H:%M} in {line.staff}'s time, {zone}"


def actor_words(actor: str, patient_id: int, patient: str, staff_name: str | None = None) -> str:
    """Who made a change: staff by their name (their email when no longer on staff), the patient by name
    (their reply did it), the system."""
    if staff_name:
        return staff_name
    if actor == f"customer:{patient_id}":
        return f"{patient} (the patient, by their reply)"
    if actor.startswith("customer:"):
        return f"customer #{actor.removeprefix('customer:')}"
    if actor == "system" or actor.startswith("system:"):
        why = actor.removeprefix("system").lstrip(": ")
        return f"Switchboard (automatically{': ' + why if why else ''})"
    return actor


#: The no-show rate's breakouts on the page: (dimension, heading), over the last 30 days.
NO_SHOW_BREAKOUTS = (
    ("staff", "By clinician"),
    ("service", "By service"),
    ("location", "By clinic"),
    ("reminder_channel", "By reminder channel"),
)
NO_SHOW_PERIOD = "last_30_days"
#: What an action did, for the notice on the consultation's page after it.
DONE = {
    "rescheduled": "The consultation was moved; the patient is told the new time on their channel.",
    "cancelled": "The consultation was cancelled; its time is free again and the patient is told.",
    "no-show": "Marked as a no-show.",
    "no-show-offered": "Marked as a no-show; the patient is offered new times on their channel.",
    "attended": "Marked as attended: the patient came.",
    "offered": "New times were offered to the patient on their channel.",
    "offered-none": "The patient was asked to reply for a new time: the clinician has no free times soon.",
}


def status_word(status: str) -> str:
    try:
        return STATUS_WORDS[ConsultationStatus(status)]
    except ValueError:
        return status.replace("_", " ")


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


#: How far from today the week pager reaches, either way (consultations are booked months, not decades, ahead).
WEEKS_REACH = timedelta(days=5 * 366)


def week_asked(text: str | None, today: date) -> tuple[date | None, str | None]:
    """The day whose week the list shows (``week=2026-12-07``), or a sentence saying why it is not one."""
    if not text:
        return None, None
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        return (
            None,
            f"“{text[:40]}” is not a day (write it as YYYY-MM-DD, e.g. 2026-12-14), so this is this week.",
        )
    if abs(day - today) > WEEKS_REACH:
        return None, f"{day.isoformat()} is more than five years from today, so this is this week."
    return day, None


def in_another_year(monday: date, today: date) -> bool:
    """Whether the week from `monday` has a day outside today's year, so its days must say their year."""
    return {monday.year, (monday + timedelta(days=6)).year} != {today.year}


def week_links(monday: date, today: date, clock: BusinessClock) -> dict[str, Any]:
    """The list's way to the week before and after, and what to call the week shown."""
    this_monday, week = monday_of(today), timedelta(days=7)
    before, after = monday - week, monday + week
    names = {this_monday: "This week", this_monday + week: "Next week", this_monday - week: "Last week"}
    return {
        "previous": before.isoformat(),
        "previous_label": names.get(
            before, f"Week of {clock.day(clock.day_start(before), year=in_another_year(before, today))}"
        ),
        "next": after.isoformat(),
        "next_label": names.get(
            after, f"Week of {clock.day(clock.day_start(after), year=in_another_year(after, today))}"
        ),
        "name": names.get(monday, "Week"),
        "shown": monday.isoformat(),
        "this": this_monday.isoformat(),
        "next_week": (this_monday + week).isoformat(),
        "is_this": monday == this_monday,
        "is_next": monday == this_monday + week,
    }


def span_words(span: str, week_name: str, first_day: str, last_day: str) -> str:
    """ "Today, Mon 7 Dec"; "This week, Mon 7 Dec to Sun 13 Dec"; "The week of Mon 29 Mar 2027 to Sun 4 Apr
    2027" (a week with no name of its own; not "Week, Mon, 29 Mar 2027")."""
    if span == "today":
        return f"{SPANS['today']}, {first_day}"
    if week_name == "Week":
        return f"The week of {first_day} to {last_day}"
    return f"{week_name}, {first_day} to {last_day}"


def _empty_words(span: str, week_name: str, first_day: str) -> str:
    """ "today", "next week", "in the week of Mon, 14 Dec": the end of "No video consultations …"."""
    if span == "today":
        return "today"
    return f"in the week of {first_day}" if week_name == "Week" else week_name.lower()


@dataclass(frozen=True)
class BusinessClock:
    """Moments as the business reads them (its timezone named on the page)."""

    formats: Formats

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.formats.timezone)

    def today(self, now: datetime) -> date:
        return now.astimezone(self.zone).date()

    def day_start(self, day: date) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=self.zone)

    def span(self, name: str, now: datetime, week_of: date | None = None) -> tuple[datetime, datetime]:
        """[start, end) of today, or of the week (Monday to Sunday) holding ``week_of`` (default: this
        week), in the business timezone."""
        today = self.today(now)
        if name == "week":
            monday = monday_of(week_of or today)
            return self.day_start(monday), self.day_start(monday + timedelta(days=7))
        return self.day_start(today), self.day_start(today + timedelta(days=1))

    def clock(self, value: datetime | None) -> str:
        if value is None:
            return "—"
        return str(format_time(value.astimezone(self.zone), "short", locale=self.formats.locale))

    def day(self, value: datetime, *, year: bool = False) -> str:
        """ "Mon 14 Dec"; with the year ("Mon 28 Dec 1998") where the day could be of another year."""
        skeleton = "yMMMEd" if year else "MMMEd"
        return str(format_skeleton(skeleton, value.astimezone(self.zone), locale=self.formats.locale))


def reminder_view(reminder: ReminderLogLine, clock: BusinessClock) -> dict[str, Any]:
    when = reminder.sent_at or reminder.planned_at
    return {
        # The clinic system's own reminder says whose it is; its lead time is the clinic's to set.
        "rule": "the clinic system's reminder"
        if reminder.version == FEED_VERSION
        else f"{lead_time_words(reminder.minutes_before)} before",
        # A skipped reminder never had a channel; its reason (in "why") says what happened.
        "channel": CHANNEL_WORDS.get(reminder.channel, reminder.channel) if reminder.channel else "—",
        "status": reminder.status.replace(" ", "-"),
        "word": REMINDER_WORDS.get(reminder.status, reminder.status),
        "when": f"{clock.day(when)} {clock.clock(when)}",
        "why": reminder.reason if reminder.status not in ("sent", "delivered", "read", "queued") else "",
        "message_id": reminder.message_id,
        "version": reminder.version,
    }


def told_view(told: ToldLine, clock: BusinessClock) -> dict[str, Any]:
    """One message that told the patient of their consultation, as the reminders are shown."""
    if told.message is None:
        why = "Waiting for the notification rules." if told.waiting else "No rule turned it into a message."
        return {
            "what": told.what,
            "when": f"{clock.day(told.at)} {clock.clock(told.at)}",
            "channel": "—",
            "status": "not-sent",
            "word": "not sent" if not told.waiting else "due",
            "why": why,
            "message_id": None,
        }
    return {"what": told.what, **reminder_view(told.message, clock)}


def line_view(
    line: ConsultationLine, reminders: Sequence[ReminderLogLine], clock: BusinessClock, now: datetime
) -> dict[str, Any]:
    joins = []
    if line.patient_joined_at:
        joins.append(f"patient {clock.clock(line.patient_joined_at)}")
    if line.clinician_joined_at:
        joins.append(f"clinician {clock.clock(line.clinician_joined_at)}")
    ends_at = line.scheduled_at + timedelta(minutes=line.duration_minutes)
    return {
        "id": line.id,
        "day": clock.day(line.scheduled_at),
        "time": f"{clock.clock(line.scheduled_at)}–{clock.clock(ends_at)}",
        "patient": line.customer,
        "service": line.service or "video consultation",
        "status": line.status,
        "status_word": status_word(line.status),
        "reminders": [reminder_view(r, clock) for r in reminders],
        "joins": ", ".join(joins) or ("nobody yet" if line.status in ACTIVE_STATUSES else "—"),
        "past": ends_at < now,
        # Without reminders: one still to come may get some; one over or called off will not.
        "no_reminders": "none yet"
        if line.status in ACTIVE_STATUSES and line.scheduled_at > now
        else "none sent",
    }


def by_clinician(rows: Sequence[tuple[ConsultationLine, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Rows grouped per clinician (the list is already ordered by clinician name, then time)."""
    groups: list[dict[str, Any]] = []
    for line, view in rows:
        name = line.staff or "No clinician"
        if not groups or groups[-1]["name"] != name:
            groups.append({"name": name, "rows": [], "counts": {}})
        groups[-1]["rows"].append(view)
        counts = groups[-1]["counts"]
        counts[view["status_word"]] = counts.get(view["status_word"], 0) + 1
    for group in groups:
        group["summary"] = ", ".join(f"{n} {word}" for word, n in group["counts"].items())
    return groups


def _breakout_value(dimension: str, value: str | None) -> str:
    if dimension == "reminder_channel":
        # A table's cell: "Email" beside "SMS" and "WhatsApp" (sentences keep "by email").
        word = CHANNEL_WORDS.get(value or "", value or "—")
        return "no reminder" if value == "none" else word[:1].upper() + word[1:]
    return "not set" if value in (None, "(none)") else value


async def no_show_breakouts(container: Container, formats: Formats, now: datetime) -> list[dict[str, Any]]:
    """The no-show rate over the last 30 days split each way (the analytics rollups answer these)."""
    label, period = PERIODS[NO_SHOW_PERIOD]
    # Clinics and services by the names people know them by, as clinicians are (not LON, SKIN-CONSULT).
    names = {
        dimension: dict(pairs) for dimension, pairs in (await dimension_names(container.database)).items()
    }
    tables = []
    for dimension, heading in NO_SHOW_BREAKOUTS:
        result = await run_query(
            container.database,
            MetricQuery(("no_show_rate",), period, dimensions=(dimension,)),
            now=now,
            business_tz=formats.timezone,
        )
        rows = [
            {
                "value": _breakout_value(
                    dimension, names.get(dimension, {}).get(s.dimension_value or "", s.dimension_value)
                ),
                "rate": formats.percent(s.total),
                "due": formats.count(s.total_basis),
            }
            for s in result.series
            if s.total is not None
        ]
        tables.append({"dimension": dimension, "heading": heading, "rows": rows, "period": label})
    return tables


def _slot_words(value: str, clock: BusinessClock) -> str:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        return value
    return f"{clock.day(moment)} {clock.clock(moment)}"


def booked_words(line: ConsultationLine, channel: str | None, why: str, clock: BusinessClock) -> str:
    """The notice after booking on the dashboard: who, what, when, and where the patient's link goes."""
    # From the booking's redirect: a channel, or "none" when no channel reaches them; anything else is
    # not ours to repeat.
    told = (
        told_sentence("the patient", "the link", None if channel == "none" else channel, why)
        if channel in TOLD_ON
        else "The patient is sent the link."
    )
    return (
        f"Booked {line.customer} for {line.service or 'a video consultation'} with {line.staff or 'no clinician'} "
        f"on {clock.day(line.scheduled_at)} {clock.clock(line.scheduled_at)} ({clock.formats.timezone})"
        + (f": {theirs}" if (theirs := _clinician_when(line, clock)) else "")
        + f". {told}"
    )


class VideoPages(StaffPages):
    @get("/communication/video", name="video")
    async def consultations(self, request: Request[Any, Any, Any]) -> Template:
        container, clock, now = container_of(request), BusinessClock(Formats.of(request)), now_of(request)
        span = request.query_params.get("span")
        span = span if span in SPANS else "today"
        staff_id = whole_number(request.query_params.get("staff"))
        today = clock.today(now)
        asked = request.query_params.get("week") if span == "week" else None
        week_of, week_problem = week_asked(asked, today)
        start, end = clock.span(span, now, week_of)
        monday = monday_of(start.astimezone(clock.zone).date())
        weeks = week_links(monday, today, clock)
        # A week in another year says its year ("Mon 28 Dec 1998"), so it is never taken for this one.
        far = span == "week" and in_another_year(monday, today)
        lines = await consultations_between(container.database, start, end, staff_id=staff_id)
        reminders = await reminder_logs(container.database, lines)
        rows = [(line, line_view(line, reminders.get(line.id, []), clock, now)) for line in lines]
        clinicians = await clinicians_with_consultations(container.database, start, end)
        no_shows = await no_show_breakouts(container, clock.formats, now)
        return page(
            request,
            "communication/video.html",
            "communication",
            "video",
            span=span,
            spans=SPANS,
            span_label=span_words(
                span,
                weeks["name"],
                clock.day(start, year=far),
                clock.day(end - timedelta(seconds=1), year=far),
            ),
            weeks=weeks,
            week_problem=week_problem,
            empty_words=_empty_words(span, weeks["name"], clock.day(start, year=far)),
            timezone=clock.formats.timezone,
            groups=by_clinician(rows),
            total=len(rows),
            clinicians=clinicians,
            staff_id=staff_id,
            may_act=staff_of(request).may(Role.AGENT),
            may_name=staff_of(request).may(Role.MANAGER),
            no_shows=no_shows,
        )

    @get("/communication/video/{consultation_id:int}", name="video_consultation")
    async def consultation(self, request: Request[Any, Any, Any], consultation_id: FromPath[int]) -> Template:
        return await self._detail(request, consultation_id)

    async def _detail(self, request: Request[Any, Any, Any], consultation_id: int, **extra: Any) -> Template:
        said = notices.said(request)
        done = said.get("done", "")
        if done in DONE and "error" not in extra:
            extra["done"] = DONE[done]
        container, clock, now = container_of(request), BusinessClock(Formats.of(request)), now_of(request)
        found = await consultation_detail(container.database, consultation_id)
        if found is None:
            raise NotFoundException(f"There is no video consultation {consultation_id}.")
        line = found.line
        told_on = said.get("told")
        if done == "booked" and "error" not in extra:
            extra["done"] = booked_words(line, told_on, said.get("why", ""), clock)
            if told_on == "none":  # booked, but no message carries the link: a warning, not a success
                extra["warn"] = f"{extra.pop('done')} Give them the link shown below yourself."
        may_act = staff_of(request).may(Role.AGENT)
        patient_zone = ZoneInfo(line.customer_timezone)
        patient_time = line.scheduled_at.astimezone(patient_zone)
        return page(
            request,
            "communication/video_consultation.html",
            "communication",
            "video",
            c=line_view(line, found.reminders, clock, now),
            line=line,
            when=f"{clock.day(line.scheduled_at)} {clock.clock(line.scheduled_at)}",
            patient_when=f"{format_skeleton('MMMEd', patient_time, locale=clock.formats.locale)} "
            f"{format_time(patient_time, 'short', locale=clock.formats.locale)} ({line.customer_timezone})",
            timezone=clock.formats.timezone,
            clinician_when=_clinician_when(line, clock),
            clinician=line.staff or "No clinician",
            location=line.location or "online",
            joins=[
                {
                    "who": WHO_WORDS.get(j.who, j.who),
                    "when": f"{clock.day(j.joined_at)} {clock.clock(j.joined_at)}",
                    "alerted": clock.clock(j.alerted_at) if j.alerted_at else "",
                }
                for j in found.joins
            ],
            offers=[
                {
                    "when": f"{clock.day(o.offered_at)} {clock.clock(o.offered_at)}",
                    "channel": "no message (nothing reaches them)"
                    if o.channel == "none"
                    else CHANNEL_WORDS.get(o.channel, o.channel),
                    "slots": ", ".join(_slot_words(s, clock) for s in o.slots),
                    "answer": "not answered yet"
                    if o.answered_at is None
                    else (f"rebooked as #{o.rebooked_id}" if o.rebooked_id else "answered"),
                    "rebooked_id": o.rebooked_id,
                }
                for o in found.offers
            ],
            told=[told_view(t, clock) for t in found.told],
            # Once the patient took an offered time, offering more would double-book them.
            rebooked_as=next((o.rebooked_id for o in reversed(found.offers) if o.rebooked_id), None),
            # For staff to give a patient no message reaches; the patient's alone, so agents and up only.
            patient_link=patient_link(container.settings.public_url, found.link_token) if may_act else "",
            audit=[
                {
                    "when": f"{clock.day(a.occurred_at)} {clock.clock(a.occurred_at)}",
                    "actor": actor_words(a.actor, line.customer_id, line.customer, a.staff_name),
                    "via": a.via,
                    "action": CHANGE_WORDS.get(a.action, a.action.replace("_", " ").replace(".", " ")),
                }
                for a in found.audit
            ],
            no_show_by=None
            if not line.no_show_by
            else "marked automatically: the patient did not join"
            if line.no_show_by == "system" or line.no_show_by.startswith("system:")
            else "marked by "
            + actor_words(
                line.no_show_by,
                line.customer_id,
                line.customer,
                next((a.staff_name for a in found.audit if a.actor == line.no_show_by), None),
            ),
            may_act=may_act,
            active=line.status in ACTIVE_STATUSES,
            # A no-show can be marked only once the consultation has begun (domain/video/no_shows.py).
            begun=line.scheduled_at <= now,
            **extra,
        )

    async def _act(
        self, request: Request[Any, Any, Any], consultation_id: int, action: str
    ) -> Redirect | Template:
        """Run one of the page's actions through its use-case; a refusal comes back on the page, in words."""
        container, staff, now = container_of(request), staff_of(request), now_of(request)
        tz = container.settings.business_timezone
        form = await request.form()
        try:
            done = await _run_action(container, consultation_id, action, form, staff.email, now, tz)
        except (ConsultationNotFound, AppointmentNotFound) as error:
            raise NotFoundException(str(error)) from None
        except (VideoError, ConfigurationError) as error:
            # The time tried stays in its box, so the next try changes it rather than types it again.
            tried = str(form.get("starts_at", "")).strip()[:16] if action == "reschedule" else ""
            template = await self._detail(request, consultation_id, error=str(error), tried_time=tried)
            template.status_code = 409
            return template
        return after_change(request, f"/communication/video/{consultation_id}", done=done)

    @post(
        "/communication/video/{consultation_id:int}/{action:str}",
        name="video_action",
        guards=[requires_role(Role.AGENT)],
        status_code=303,
    )
    async def action(
        self, request: Request[Any, Any, Any], consultation_id: FromPath[int], action: FromPath[str]
    ) -> Redirect | Template:
        """Reschedule, cancel, mark no-show or attended, offer new times (agents and up; audited)."""
        if action not in ACTIONS:
            raise NotFoundException(f"Consultations cannot {action!r}; use {', '.join(ACTIONS)}.")
        return await self._act(request, consultation_id, action)


#: The page's actions, as their paths name them.
ACTIONS = ("reschedule", "cancel", "no-show", "attended", "offer")


def _new_start(form: Any, tz: str) -> datetime:
    """The form's "YYYY-MM-DDTHH:MM" in the business timezone (a time the clocks skip is refused by booking)."""
    text = str(form.get("starts_at", "")).strip()
    try:
        wall = datetime.fromisoformat(text)
    except ValueError:
        raise VideoError("Give the new time as a date and a time, such as 2026-12-07 10:30.") from None
    if wall.tzinfo is not None:
        return wall
    return wall.replace(tzinfo=ZoneInfo(tz))


async def _run_action(
    container: Container, consultation_id: int, action: str, form: Any, actor: str, now: datetime, tz: str
) -> str:
    """The action's use-case; the key of what it did (DONE)."""
    public_url = container.settings.public_url
    if action == "reschedule":
        await reschedule_consultation(
            container.units.video_booking(),
            container.video_rooms,
            consultation_id,
            _new_start(form, tz),
            actor=actor,
            via="web",
            now=now,
            public_url=public_url,
        )
        return "rescheduled"
    if action == "cancel":
        await cancel_consultation(
            container.units.video_booking(),
            consultation_id,
            actor=actor,
            via="web",
            now=now,
            public_url=public_url,
        )
        return "cancelled"
    if action == "offer":
        slots = await offer_rebooking(
            container.units.video_no_shows(), consultation_id, actor=actor, via="web", now=now
        )
        return "offered" if slots else "offered-none"
    line = await consultation_line(container.database, consultation_id)
    if line is None:
        raise ConsultationNotFound(f"There is no video consultation {consultation_id}.")
    if line.appointment_id is None:
        raise VideoError(f"Consultation {consultation_id} has no appointment to mark.")
    if action == "no-show":
        marked = await mark_no_show(
            container.units.video_no_shows(),
            line.appointment_id,
            actor=actor,
            via="web",
            now=now,
            timezone=tz,
        )
        return "no-show-offered" if marked.offer_sent else "no-show"
    await mark_attended(
        container.units.video_no_shows(), line.appointment_id, actor=actor, via="web", now=now, timezone=tz
    )
    return "attended"
