"""Customers on the dashboard: the list (search by name, email, phone or #id, and by segment) and one
customer's page: who they are, what they agreed to and when, their preferences, their latest messages,
conversations, appointments and orders. Agents record what a customer said about hearing from us and change
their preferences; managers download everything held about them; admins erase them at their request."""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Sequence
from datetime import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import anyio
import phonenumbers
from babel import Locale, UnknownLocaleError
from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template

from api.auth import requires_role
from api.pages import notices
from api.pages.common import (
    Formats,
    StaffPages,
    container_of,
    page,
    staff_of,
    utc_now,
    whole_number,
)
from api.pages.customer_card import CONSENT_WORDS, business_rules, card_view
from api.pages.messages import MessageFilters, latest_messages
from api.pages.notices import after_change
from bot.commands.masking import mask_email, mask_phone, spaced_phone
from domain.consent.ledger import CustomerErased, record_consent
from domain.consent.preferences import MAX_MARKETING_PER_WEEK, PreferencesError, UnknownCustomer
from domain.consent.sources import TOLD_US, source_words
from domain.consent.use_cases import set_preferences
from domain.conversations.desk import STATUS_WORDS
from domain.customers.importing import phones_typed
from domain.messages.words import channel_words
from domain.vocabulary import OUTBOUND_CHANNELS, Channel, ConsentStatus, Role
from storage.customer_erasure import (
    COPIES_ACTION,
    ERASE_ACTION,
    WEBHOOKS_ACTION,
    Erasure,
    ErasureRefused,
    erase_customer,
    last_erasure,
)
from storage.customer_export import NoSuchCustomer, customer_bundle, record_export, write_bundle
from storage.database import Database
from storage.queries.customer_directory import (
    PAGE_SIZE,
    CustomerRecord,
    DirectorySearch,
    customer_list,
    customer_record,
    customer_segments,
)
from storage.queries.customers import customer_erased, search_regions
from switchboard.erasure_copies import CopiesErased, erase_copies

PATH = "/communication/customers"
#: The latest messages the customer page shows; the message log has them all.
MESSAGES_SHOWN = 10
#: Said when a change is asked for a customer erased at their request.
ERASED = "This customer was erased at their request; nothing more is recorded about them."
#: What the page says after an action (the `done` parameter of the redirect back to it).
DONE_WORDS = {
    "consent": "Recorded in the consent ledger.",
    "preferences": "Preferences saved.",
}


def search_of(text: str, segment: str, regions: Sequence[str], *, whole_emails: bool) -> DirectorySearch:
    """What was typed, read as a name or email part, a phone number (of the business's country or a clinic's)
    or #id."""
    text = " ".join(text.split())[:100]
    customer_id = whole_number(text.replace(" ", "").lstrip("#"))
    return DirectorySearch(text, phones_typed(text, regions), customer_id, segment or None, whole_emails)


def phone_examples(region: str) -> str:
    """A mobile number of the business's country written both ways, for the search's hint."""
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    if example is None:
        return "+49 151 23456789"
    national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
    international = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return f"{national} or {international}"


def country_words(country: str | None, business_locale: str) -> str:
    """A customer's country by its name in the business's language ("Switzerland"), or the code if unknown."""
    if not country:
        return "—"
    try:
        name = Locale.parse(business_locale).territories.get(country.upper())
    except (ValueError, TypeError, UnknownLocaleError):
        name = None
    return str(name) if name else country


def language_words(locale: str, business_locale: str) -> str:
    """A customer's locale as the business reads it ("German", "English (United Kingdom)")."""
    try:
        name = Locale.parse(locale.replace("-", "_")).get_display_name(Locale.parse(business_locale))
    except (ValueError, TypeError, UnknownLocaleError):
        return locale
    return f"{name[:1].upper()}{name[1:]}" if name else locale


class CustomerPages(StaffPages):
    @get(PATH, name="customer_list")
    async def customers(self, request: Request[Any, Any, Any]) -> Template:
        container, staff = container_of(request), staff_of(request)
        params = request.query_params
        segments = await customer_segments(container.database)
        segment = params.get("segment") or ""
        segment = segment if segment in segments else ""
        full = staff.may(Role.AGENT)
        region = container.settings.phone_region
        regions = await search_regions(container.database, region)
        search = search_of(params.get("q") or "", segment, regions, whole_emails=full)
        before = whole_number(params.get("before") or "")
        found = await customer_list(container.database, search, before=before, limit=PAGE_SIZE)
        formats = Formats.of(request)
        rows = [
            {
                "id": c.id,
                "name": c.name,
                "phone": spaced_phone(c.phone_e164) if full else mask_phone(c.phone_e164),
                "email": (c.email if full else mask_email(c.email)) or "—",
                "segment": c.segment,
                "since": formats.day(c.created_at.astimezone(ZoneInfo(formats.timezone)).date()),
                "erased": c.erased_at is not None,
                "reference": c.external_ref or "—",
            }
            for c in found.rows
        ]
        kept = {k: v for k, v in {"q": search.text, "segment": segment}.items() if v}
        return page(
            request,
            "communication/customers.html",
            "communication",
            "customers",
            rows=rows,
            # The practice's numbers get a column when the page shows any (a business without them sees none).
            show_references=any(c.external_ref for c in found.rows),
            total=found.total,
            more_than_counted=found.more_than_counted,
            phone_examples=phone_examples(region),
            # Numbers of the clinics' countries are read as theirs too ("07700 162625" for London).
            other_countries=", ".join(
                country_words(code, container.settings.business_locale) for code in regions[1:]
            ),
            q=search.text,
            segment=segment,
            segments=segments,
            paged=before is not None,
            first_query=urlencode(kept),
            next_query=urlencode({**kept, "before": found.next_before}) if found.next_before else None,
            masked=not full,
            may_import=staff.may(Role.MANAGER),
        )

    @get(f"{PATH}/{{customer_id:int}}", name="customer_page")
    async def customer(self, request: Request[Any, Any, Any], customer_id: FromPath[int]) -> Template:
        done = notices.said(request).get("done") or ""
        if done == "erased":
            return await self._customer(request, customer_id, erasure_outcome=True)
        return await self._customer(request, customer_id, notice=DONE_WORDS.get(done), notice_at=done)

    @get(
        [f"{PATH}/{{customer_id:int}}/{action}" for action in ("consent", "preferences", "export", "erase")],
        name="customer_action_address",
        include_in_schema=False,
    )
    async def action_address(self, customer_id: FromPath[int]) -> Redirect:
        """An action's address opened or reloaded (after a refused form): the customer's page, not a 405."""
        return Redirect(f"{PATH}/{customer_id}", status_code=303)

    async def _erasure_outcome(self, database: Database, record: CustomerRecord) -> tuple[list[str], bool]:
        """What the latest erasure did, from its audit entries, in sentences; and whether a step failed."""
        customer_id = record.id
        found = await last_erasure(database, customer_id)
        erased = found.get(ERASE_ACTION)
        if erased is None:
            return [], False
        webhooks = found.get(WEBHOOKS_ACTION, {})
        counts = Counter({k: v for k, v in erased.items() if type(v) is int})
        # Webhooks are blanked after the erasure's own entry is written; their step has its own entry.
        counts["webhooks"] = int(webhooks.get("blanked", 0))
        erasure = Erasure(
            customer_id,
            record.erased_at or erased["_at"],
            again=bool(erased.get("again")),
            counts=counts,
            unapplied_webhooks_kept=int(webhooks.get("kept", 0)),
        )
        copies = CopiesErased.from_counts(found.get(COPIES_ACTION, {}))
        lines = [
            *erasure.summary().splitlines(),
            *copies.lines(customer_id, retry="Erase again below to try those again."),
        ]
        return [_sentence(line) for line in lines], bool(copies.failures)

    async def _customer(
        self,
        request: Request[Any, Any, Any],
        customer_id: int,
        *,
        notice: str | None = None,
        notice_at: str = "",
        error: str | None = None,
        erasure_outcome: bool = False,
        submitted: dict[str, str] | None = None,
        typed_preferences: dict[str, str] | None = None,
        open_form: str | None = None,
        status_code: int = 200,
    ) -> Template:
        container, staff = container_of(request), staff_of(request)
        record = await customer_record(container.database, customer_id)
        if record is None:
            raise NotFoundException(f"There is no customer #{customer_id}.")
        erased_lines, erasure_failed = (
            await self._erasure_outcome(container.database, record) if erasure_outcome else ([], False)
        )
        formats = Formats.of(request)
        messages, more = await latest_messages(
            container.database,
            MessageFilters(
                channel=None, status=None, direction=None, customer_id=customer_id, customer="", before=None
            ),
            formats,
            limit=MESSAGES_SHOWN,
        )
        template = page(
            request,
            "communication/customer.html",
            "communication",
            "customers",
            customer=_profile(
                record, formats, container.settings.business_locale, full=staff.may(Role.AGENT)
            ),
            card=card_view(record.card, formats, container.consent_policy()),
            consent_rows=_consent_rows(record, formats),
            marketing_requires_opt_in=container.settings.marketing_requires_opt_in,
            ledger=_ledger(record, formats),
            conversations=[
                {
                    "id": c.id,
                    "channel": channel_words(c.channel),
                    "status": c.status,
                    "status_label": STATUS_WORDS.get(c.status, c.status),
                    "started": formats.moment(c.started_at),
                    "last_message": formats.moment(c.last_message_at) if c.last_message_at else "—",
                }
                for c in record.conversations
            ],
            messages=messages,
            more_messages=more is not None,
            channels=[(c.value, channel_words(c.value)) for c in OUTBOUND_CHANNELS],
            told_us=TOLD_US,
            preferences=typed_preferences or _preferences_form(record),
            max_per_week=MAX_MARKETING_PER_WEEK,
            business_rules=business_rules(container.consent_policy()),
            may_change=staff.may(Role.AGENT) and record.erased_at is None,
            may_export=staff.may(Role.MANAGER),
            may_erase=staff.may(Role.ADMIN),
            notice=notice,
            notice_at=notice_at,
            error=error,
            erased_lines=erased_lines,
            erasure_failed=erasure_failed,
            submitted=submitted or {},
            open_form=open_form,
        )
        template.status_code = status_code
        return template

    @post(f"{PATH}/{{customer_id:int}}/consent", name="customer_consent", guards=[requires_role(Role.AGENT)])
    async def consent(self, request: Request[Any, Any, Any], customer_id: FromPath[int]) -> Response[Any]:
        container, staff = container_of(request), staff_of(request)
        form = await request.form()
        channel, status = str(form.get("channel", "")), str(form.get("status", ""))
        how, note = str(form.get("how", "")), " ".join(str(form.get("note", "")).split())
        problem = None
        if channel not in {c.value for c in OUTBOUND_CHANNELS}:
            problem = "Choose the channel they spoke about."
        elif status not in (ConsentStatus.OPTED_IN.value, ConsentStatus.OPTED_OUT.value):
            problem = "Choose whether they opted in or out."
        elif how not in TOLD_US:
            problem = "Choose how they told you: in person, on the phone or in writing."
        elif len(note) > 200:
            problem = "Keep the note to 200 characters."
        erased = await customer_erased(container.database, customer_id)
        if erased is None:
            raise NotFoundException(f"There is no customer #{customer_id}.")
        if erased:
            problem = ERASED
        if problem:
            submitted = {"channel": channel, "status": status, "how": how, "note": note}
            return await self._customer(
                request, customer_id, error=problem, open_form="consent", submitted=submitted, status_code=400
            )
        detail = f"recorded by {staff.email}" + (f": {note}" if note else "")
        try:
            await record_consent(
                container.conversation_uow(),
                customer_id,
                Channel(channel),
                ConsentStatus(status),
                how,
                detail[:255],
                utc_now(),
            )
        except CustomerErased:  # erased between the check above and the write
            return await self._customer(
                request, customer_id, error=ERASED, open_form="consent", submitted={}, status_code=400
            )
        return after_change(request, f"{PATH}/{customer_id}#consent", done="consent")

    @post(
        f"{PATH}/{{customer_id:int}}/preferences",
        name="customer_preferences",
        guards=[requires_role(Role.AGENT)],
    )
    async def preferences(self, request: Request[Any, Any, Any], customer_id: FromPath[int]) -> Response[Any]:
        container, staff = container_of(request), staff_of(request)
        form = await request.form()
        preferred = str(form.get("preferred_channel", "")) or None
        start = str(form.get("quiet_start", "")).strip() or None
        end = str(form.get("quiet_end", "")).strip() or None
        cap_text = str(form.get("marketing_cap", "")).strip()
        problem = None
        cap: int | None = None
        erased = await customer_erased(container.database, customer_id)
        if erased is None:
            raise NotFoundException(f"There is no customer #{customer_id}.")
        if erased:
            problem = ERASED
        elif preferred is not None and preferred not in {c.value for c in OUTBOUND_CHANNELS}:
            problem = "Choose a preferred channel from the list, or no preference."
        elif (start is None) != (end is None):
            problem = "Give quiet hours both a start and an end, or leave both empty."
        elif start is not None and end is not None and not (_clock(start) and _clock(end)):
            problem = "Quiet hours are times of day, like 21:00 and 08:00."
        elif start is not None and _clock(start) == _clock(end):
            problem = (
                "Quiet hours from and until are the same time; leave both empty for the business's default."
            )
        elif cap_text and whole_number(cap_text, MAX_MARKETING_PER_WEEK) is None:
            problem = (
                f"Marketing messages a week is a whole number from 0 to {MAX_MARKETING_PER_WEEK}, "
                "or empty for the business's limit."
            )
        else:
            cap = int(cap_text) if cap_text else None
        if problem is None:
            try:
                await set_preferences(
                    container.units.preferences(),
                    customer_id,
                    preferred_channel=preferred,
                    quiet_hours_start=start,
                    quiet_hours_end=end,
                    marketing_max_per_week=cap,
                    actor=staff.email,
                    via="dashboard",
                    now=utc_now(),
                )
            except PreferencesError:
                problem = "Quiet hours are times of day, like 21:00 and 08:00."
            except UnknownCustomer:
                raise NotFoundException(f"There is no customer #{customer_id}.") from None
        if problem:
            typed = {
                "preferred_channel": preferred or "",
                "quiet_start": start or "",
                "quiet_end": end or "",
                "marketing_cap": cap_text,
            }
            return await self._customer(
                request,
                customer_id,
                error=problem,
                open_form="preferences",
                typed_preferences=typed,
                status_code=400,
            )
        return after_change(request, f"{PATH}/{customer_id}#preferences", done="preferences")

    @post(
        f"{PATH}/{{customer_id:int}}/export",
        name="customer_export",
        guards=[requires_role(Role.MANAGER)],
        status_code=200,
    )
    async def export(self, request: Request[Any, Any, Any], customer_id: FromPath[int]) -> Response[bytes]:
        """Everything held about the customer as a ZIP (the same as `switchboard customer export`), audited."""
        container, staff = container_of(request), staff_of(request)
        try:
            bundle = await customer_bundle(container.database, customer_id)
        except NoSuchCustomer:
            raise NotFoundException(f"There is no customer #{customer_id}.") from None
        with tempfile.TemporaryDirectory(prefix="switchboard-export-") as folder:
            path = Path(folder) / f"customer-{customer_id}.zip"
            # Compressing a patient's files takes a while: off the event loop, so other requests go on.
            await anyio.to_thread.run_sync(write_bundle, bundle, path)
            content = await anyio.Path(path).read_bytes()
        await record_export(container.database, customer_id, staff.email, bundle.counts(), via="dashboard")
        return Response(
            content,
            media_type="application/zip",
            headers={
                "Content-Disposition": f'attachment; filename="customer-{customer_id}.zip"',
                "Cache-Control": "no-store",
            },
        )

    @post(
        f"{PATH}/{{customer_id:int}}/erase",
        name="customer_erase",
        guards=[requires_role(Role.ADMIN)],
        status_code=303,
    )
    async def erase(self, request: Request[Any, Any, Any], customer_id: FromPath[int]) -> Response[Any]:
        """Erases the customer at their request once the admin has typed their number; says what was done."""
        container, staff = container_of(request), staff_of(request)
        form = await request.form()
        if str(form.get("confirm", "")).strip().lstrip("#") != str(customer_id):
            return await self._customer(
                request,
                customer_id,
                error=f"Nothing was erased: type the customer's number, {customer_id}, to confirm.",
                open_form="erase",
                status_code=400,
            )
        try:
            erasure = await erase_customer(
                container.database, customer_id, actor=staff.email, now=utc_now(), via="dashboard"
            )
        except NoSuchCustomer:
            raise NotFoundException(f"There is no customer #{customer_id}.") from None
        except ErasureRefused:
            return await self._customer(
                request,
                customer_id,
                error="Nothing was erased: a message to this customer is being handed to a provider right now. "
                "Try again in a minute.",
                status_code=409,
            )
        await erase_copies(
            container.settings, container.database, erasure, actor=staff.email, via="dashboard"
        )
        # To the customer's page, which says what was done from the audit entries: a reload erases nothing.
        return after_change(request, f"{PATH}/{customer_id}#erasure-result", done="erased")


def _clock(text: str | None) -> time | None:
    try:
        return time.fromisoformat(text) if text else None
    except ValueError:
        return None


def _sentence(line: str) -> str:
    line = line.strip()
    return (line[:1].upper() + line[1:]).rstrip(".") + "." if line else line


def _profile(record: CustomerRecord, formats: Formats, business_locale: str, *, full: bool) -> dict[str, Any]:
    zone = ZoneInfo(formats.timezone)
    reachable = [
        words
        for words, present in (
            ("SMS", record.phone_e164),
            ("email", record.email),
            ("WhatsApp", record.whatsapp or record.phone_e164),  # WhatsApp reaches their phone number
            ("Telegram", record.telegram),
        )
        if present
    ]
    return {
        "id": record.id,
        "name": record.name,
        "phone": spaced_phone(record.phone_e164) if full else mask_phone(record.phone_e164),
        "email": (record.email if full else mask_email(record.email)) or "—",
        "reference": record.external_ref or "—",
        "on_file": ", ".join(reachable) or "none",
        "language": language_words(record.locale, business_locale),
        "timezone": record.timezone,
        "country": country_words(record.country, business_locale),
        "segment": record.segment,
        "clinic": record.home_clinic or "—",
        "since": formats.day(record.created_at.astimezone(zone).date()),
        "erased": formats.day(record.erased_at.astimezone(zone).date()) if record.erased_at else None,
        "masked": not full,
    }


def _consent_rows(record: CustomerRecord, formats: Formats) -> list[dict[str, str]]:
    """Every channel we send on, with what the customer last said about it ("not asked" when nothing)."""
    zone = ZoneInfo(formats.timezone)
    current = {c.channel: c for c in record.card.preferences.consents}
    rows = []
    for channel in OUTBOUND_CHANNELS:
        said = current.get(channel.value)
        rows.append(
            {
                "channel": channel_words(channel.value),
                "status": said.status if said else "unknown",
                "words": CONSENT_WORDS.get(said.status, said.status) if said else CONSENT_WORDS["unknown"],
                "since": formats.day(said.changed_at.astimezone(zone).date()) if said else "—",
                "how": source_words(said.source) if said else "—",
            }
        )
    return rows


def _ledger(record: CustomerRecord, formats: Formats) -> list[dict[str, str]]:
    """The consent ledger, newest first, as staff read it."""
    return [
        {
            "when": formats.moment(r.recorded_at),
            "channel": channel_words(r.channel),
            "status": r.status,
            "words": CONSENT_WORDS.get(r.status, r.status.replace("_", " ")),
            "how": source_words(r.source),
            "detail": r.detail or "",
        }
        for r in reversed(record.ledger)
    ]


def _preferences_form(record: CustomerRecord) -> dict[str, str]:
    preferences = record.card.preferences
    cap = preferences.marketing_max_per_week
    return {
        "preferred_channel": preferences.preferred_channel or "",
        "quiet_start": preferences.quiet_hours_start.strftime("%H:%M")
        if preferences.quiet_hours_start
        else "",
        "quiet_end": preferences.quiet_hours_end.strftime("%H:%M") if preferences.quiet_hours_end else "",
        "marketing_cap": "" if cap is None else str(cap),
    }
