"""The campaign wizard (`/communication/campaigns/new`): audience, channel with fallback, template and its
variables, schedule in the business's timezone; a live count with every exclusion explained, the cost and a
rendered sample; saved as a draft through the same checks as the API (domain.campaigns.use_cases), then
launched from the campaign's page after its preview."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Request, get, post
from litestar.response import Redirect, Template

from api.auth import requires_role
from api.pages.common import Formats, StaffPages, container_of, page, staff_of, utc_now, whole_number
from api.pages.notices import after_change
from domain.campaigns import use_cases
from domain.campaigns.languages import (
    VALUE_NAME,
    not_in_their_language,
    same_in_every_language,
    template_languages,
    template_needs,
    unread_language,
    with_language_values,
)
from domain.campaigns.model import (
    EXCLUSION_WORDS,
    Audience,
    AudienceError,
    CampaignDraft,
    CampaignError,
    CampaignPreview,
)
from domain.campaigns.rules import SendTimeError, local_send_moment
from domain.messages.segments import sms_shape
from domain.templates.model import TemplateRecord
from domain.templates.selection import BY_LANGUAGE
from domain.vocabulary import OUTBOUND_CHANNELS, Channel, MessageCategory, Role
from reports.library import slug_for
from storage.queries.campaigns import audience_size, campaign_id_by_slug
from storage.queries.reports import dimension_names
from storage.queries.templates import active_template_variants
from switchboard.wiring import Container

FIELDS = (
    "name",
    "template",
    "channel",
    "fallback",
    "fallback_after",
    "segments",
    "countries",
    "locations",
    "tags_any",
    "exclude_tags",
    "customers_since",
    "visited_since",
    "not_visited_since",
    "opted_in_on",
    "send_date",
    "send_time",
    "quiet_hours",
    "variables",
)
EMPTY_FORM: dict[str, Any] = {
    **dict.fromkeys(FIELDS, ""),
    "channel": "sms",
    "fallback_after": "60",
    "segments": [],
    "countries": [],
    "locations": [],
    "opted_in_on": [],
    "quiet_hours": "on",
}
#: Why a recipient is left out, as the wizard says it.
CHANNEL_WORDS = {
    Channel.SMS: "SMS",
    Channel.EMAIL: "Email",
    Channel.WHATSAPP: "WhatsApp",
    Channel.TELEGRAM: "Telegram",
}
MAX_VARIABLES = 20


def form_of(raw: Any) -> dict[str, Any]:
    form: dict[str, Any] = {key: str(raw.get(key, "") or "").strip()[:2000] for key in FIELDS}
    form["segments"] = [str(v)[:64] for v in raw.getall("segments", [])][:50]
    form["countries"] = [str(v)[:8] for v in raw.getall("countries", [])][:50]
    form["locations"] = [str(v)[:32] for v in raw.getall("locations", [])][:50]
    form["opted_in_on"] = [str(v)[:16] for v in raw.getall("opted_in_on", [])][:8]
    return form


def _words(text: str) -> list[str]:
    return [w.strip() for w in text.split(",") if w.strip()][:50]


#: The template list's group of templates written for service messages (reminders, confirmations): a campaign
#: may still use one, as its own category (marketing) rules, so they stay offered, apart and last.
SERVICE_GROUP = "Service message templates (reminders, confirmations)"


def _read_values(
    text: str, variants: list[TemplateRecord], template: str, errors: dict[str, str]
) -> dict[str, Any]:
    """The values typed as `name = value`, one a line, and `name[de] = value` for what a template in one
    language reads instead (domain.templates.selection.BY_LANGUAGE): an offer written once in English would
    otherwise sit in the German message too."""
    variables: dict[str, Any] = {}
    by_language: dict[str, dict[str, str]] = {}
    languages = template_languages(variants, template)
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, equals, value = line.partition("=")
        named = VALUE_NAME.fullmatch(key.strip())
        if not equals or named is None:
            errors["variables"] = (
                f"Line {number}: write each value as name = value (names in small letters), or name[de] = value "
                "for the German message."
            )
            return {}
        name, language = named["name"], (named["language"] or "").lower()
        if name == BY_LANGUAGE:
            errors["variables"] = (
                f"Line {number}: “{BY_LANGUAGE}” is Switchboard's own name; write name[de] = value for a "
                "German value."
            )
            return {}
        unread = unread_language(template, name, language, languages) if language else None
        if unread:
            errors["variables"] = f"Line {number}: {unread}"
            return {}
        table = by_language.setdefault(language, {}) if language else variables
        if name in table:
            errors["variables"] = f"Line {number}: {key.strip()} is given twice; keep one line."
            return {}
        table[name] = value.strip()[:500]
    if len(variables.keys() | {n for words in by_language.values() for n in words}) > MAX_VARIABLES:
        errors["variables"] = f"At most {MAX_VARIABLES} values."
    known = any(v.name == template for v in variants)
    try:
        return with_language_values(
            variables,
            by_language,
            template=template,
            needs=template_needs(variants, template) if known else None,
        )
    except CampaignError as error:
        errors["variables"] = str(error)
        return variables


def read_draft(
    form: Mapping[str, Any], variants: list[TemplateRecord], *, business_tz: str, now: datetime
) -> tuple[CampaignDraft | None, dict[str, str]]:
    """The draft the form describes, or each field's mistake."""
    errors: dict[str, str] = {}
    name = " ".join(str(form["name"]).split())
    if not name:
        errors["name"] = "Give the campaign a name."
    elif len(name) > 200:
        errors["name"] = "A campaign name is at most 200 characters."
    templates = {v.name for v in variants}
    if form["template"] not in templates:
        errors["template"] = "Pick a template from the list."
    order: list[Channel] = []
    if form["channel"] not in {c.value for c in OUTBOUND_CHANNELS}:
        errors["channel"] = "Pick a channel from the list."
    else:
        order.append(Channel(form["channel"]))
    fallback_after: int | None = None
    if form["fallback"]:
        if form["fallback"] == form["channel"] or form["fallback"] not in {
            c.value for c in OUTBOUND_CHANNELS
        }:
            errors["fallback"] = "Pick a different channel to fall back to, or none."
        else:
            order.append(Channel(form["fallback"]))
            text = str(form["fallback_after"])
            minutes = whole_number(text)
            if minutes is None or not 1 <= minutes <= 10_080:
                errors["fallback_after"] = "Wait 1 to 10,080 minutes (a week) before falling back."
            else:
                fallback_after = minutes
    variables = _read_values(str(form["variables"]), variants, str(form["template"]), errors)
    if "template" not in errors and "variables" not in errors:
        missing = sorted(template_needs(variants, form["template"]) - set(variables))
        if missing:
            errors["variables"] = (
                f"The template “{form['template']}” needs a value for {', '.join(missing)}; write "
                f"{missing[0]} = … on its own line (first name, name and language fill themselves)."
            )
    scheduled_at = _send_moment(form, business_tz, now, errors)
    audience: dict[str, Any] = {
        "segments": list(form["segments"]),
        "countries": list(form["countries"]),
        "locations": list(form["locations"]),
        "tags_any": _words(str(form["tags_any"])),
        "exclude_tags": _words(str(form["exclude_tags"])),
        "has_channel": [c.value for c in order],
    }
    if form["opted_in_on"]:
        if set(form["opted_in_on"]) - {c.value for c in OUTBOUND_CHANNELS}:
            errors["opted_in_on"] = "Tick channels from the list."
        else:
            audience["opted_in_on"] = list(form["opted_in_on"])
    for field, key in (
        ("customers_since", "created_after"),
        ("visited_since", "visited_since"),
        ("not_visited_since", "not_visited_since"),
    ):
        if not form[field]:
            continue
        try:
            since = date.fromisoformat(str(form[field]))
        except ValueError:
            errors[field] = "Give a date, or leave it empty."
            continue
        if since > now.astimezone(ZoneInfo(business_tz)).date() and field != "customers_since":
            errors[field] = "Give a day that has passed: visits are counted up to today."
            continue
        audience[key] = datetime.combine(since, time(), ZoneInfo(business_tz)).isoformat()
    if (
        "visited_since" in audience
        and "not_visited_since" in audience
        and audience["visited_since"] >= audience["not_visited_since"]
    ):
        errors["not_visited_since"] = (
            "Nobody can have visited since the first day and not since a day before it; move one of the days."
        )
    if errors or not order:
        return None, errors
    slug = slug_for(name) or "campaign"
    if slug in ("new", "new-report"):  # /communication/campaigns/new is the wizard itself
        slug = "new-campaign"
    return (
        CampaignDraft(
            slug=slug,
            name=name,
            template_name=str(form["template"]),
            channel_order=tuple(order),
            audience=audience,
            variables=variables,
            fallback_after_minutes=fallback_after,
            respect_quiet_hours=form["quiet_hours"] == "on",
            scheduled_at=scheduled_at,
        ),
        errors,
    )


def _send_moment(
    form: Mapping[str, Any], business_tz: str, now: datetime, errors: dict[str, str]
) -> datetime | None:
    """The send time typed in the business's timezone, as UTC; refused if past or absent on that day (DST)."""
    if not form["send_date"] and not form["send_time"]:
        return None
    try:
        day = date.fromisoformat(str(form["send_date"]))
        clock = time.fromisoformat(str(form["send_time"]) or "09:00")
    except ValueError:
        errors["send_date"] = "Give the day and the time it should go, or leave both empty to send on launch."
        return None
    try:
        return local_send_moment(day, clock, business_tz, now)
    except SendTimeError as error:
        errors["send_time" if error.field == "time" else "send_date"] = str(error)
        return None


def field_of(error: CampaignError) -> str:
    """Which field a domain refusal belongs beside."""
    text = str(error).lower()
    if isinstance(error, AudienceError):
        return "segments"
    if "fallback" in text:
        return "fallback"
    if "channel" in text:
        return "channel"
    if "variable" in text or "filled in by switchboard" in text:
        return "variables"
    if "template" in text:
        return "template"
    return "name"


def preview_view(preview: CampaignPreview, formats: Formats) -> dict[str, Any]:
    sample = preview.sample
    shape = sms_shape(sample.body) if sample is not None and sample.channel == Channel.SMS else None
    return {
        "recipients": formats.count(preview.recipients),
        "planned": formats.count(preview.planned),
        "deferred": formats.count(preview.deferred) if preview.deferred else None,
        "cost": formats.money_micros(preview.estimated_cost_micros, preview.currency),
        "exclusions": [
            (formats.count(n), EXCLUSION_WORDS.get(reason, reason.replace("_", " ")))
            for reason, n in sorted(preview.exclusions.items(), key=lambda item: -item[1])
        ],
        "per_channel": [
            (CHANNEL_WORDS.get(c, str(c)), formats.count(n)) for c, n in preview.per_channel.items()
        ],
        "sample": sample,
        "sample_channel": CHANNEL_WORDS.get(sample.channel, str(sample.channel))
        if sample is not None
        else None,
        "segments": None
        if shape is None
        else f"{shape.segments} SMS segment{'s' if shape.segments != 1 else ''} "
        f"({shape.encoding}, {shape.characters} characters)",
    }


class CampaignWizardPages(StaffPages):
    """Managers create campaigns (as they launch them); the wizard saves drafts, never sends."""

    async def _wizard(
        self,
        request: Request[Any, Any, Any],
        form: dict[str, Any],
        *,
        errors: dict[str, str] | None = None,
        preview: dict[str, Any] | None = None,
        status_code: int = 200,
    ) -> Template:
        container = container_of(request)
        variants = await active_template_variants(container.database)
        names = await dimension_names(container.database)
        templates: dict[str, set[str]] = {}
        marketing: set[str] = set()
        for v in variants:
            templates.setdefault(v.name, set()).add(CHANNEL_WORDS.get(Channel(v.channel), v.channel))
            if v.category == MessageCategory.MARKETING:
                marketing.add(v.name)
        # Marketing templates first; the ones written for reminders and other service messages after them, apart.
        choices: dict[str, list[tuple[str, str]]] = {"Campaign (marketing) templates": [], SERVICE_GROUP: []}
        needs_of: list[tuple[str, list[str]]] = []  # the list's labels are cut short where a name is long
        for name, channels in sorted(templates.items()):
            needs = sorted(template_needs(variants, name))
            if needs:
                needs_of.append((name, needs))
            label = f"{name} — {', '.join(sorted(channels))}" + (
                f" · needs {', '.join(needs)}" if needs else ""
            )
            choices["Campaign (marketing) templates" if name in marketing else SERVICE_GROUP].append(
                (name, label)
            )
        template = page(
            request,
            "communication/campaign_new.html",
            "communication",
            "campaigns",
            form=form,
            errors=errors or {},
            preview=preview,
            templates=choices,
            needs=needs_of,
            channels=[(c.value, CHANNEL_WORDS[c]) for c in OUTBOUND_CHANNELS],
            segments=[name for _, name in names.get("segment", [])],
            countries=[value for value, _ in names.get("country", [])],
            locations=sorted(names.get("location", []), key=lambda pair: pair[1]),
            business_tz=Formats.of(request).timezone,
            marketing_requires_opt_in=container.settings.marketing_requires_opt_in,
        )
        template.status_code = status_code
        return template

    @get("/communication/campaigns/new", name="new_campaign", guards=[requires_role(Role.MANAGER)])
    async def new_campaign(self, request: Request[Any, Any, Any]) -> Template:
        return await self._wizard(request, dict(EMPTY_FORM))

    @post(
        "/communication/campaigns/new",
        name="create_campaign",
        guards=[requires_role(Role.MANAGER)],
        status_code=303,
    )
    async def create(self, request: Request[Any, Any, Any]) -> Redirect | Template:
        """Preview (the live count) or save the draft; nothing is stored unless every check passes and the
        audience reaches someone."""
        raw = await request.form()
        form = form_of(raw)
        container, formats, staff = container_of(request), Formats.of(request), staff_of(request)
        variants = await active_template_variants(container.database)
        saving = raw.get("action") == "save"
        # Counting needs no name yet: a manager finds out who a campaign reaches before naming it.
        counted = form if saving or form["name"] else {**form, "name": "Count"}
        draft, errors = read_draft(counted, variants, business_tz=formats.timezone, now=utc_now())
        if draft is None:
            return await self._wizard(request, form, errors=errors, status_code=422)
        try:
            preview = await _preview(container, draft)
        except CampaignError as error:
            return await self._wizard(request, form, errors={field_of(error): str(error)}, status_code=422)
        shown = preview_view(preview, formats)
        # Customers the filters match but who have no address on any chosen channel are not "matching":
        # say how many, so a list imported without emails does not vanish from an email campaign unsaid.
        everyone = await audience_size(
            container.database, replace(Audience.from_json(draft.audience), has_channel=())
        )
        missing = everyone - preview.recipients
        one = missing == 1
        shown["no_address"] = (
            None
            if missing <= 0
            else f"{formats.count(missing)} more customer{' matches' if one else 's match'} the filters but "
            f"{'has' if one else 'have'} no address on the chosen channels, so they are not counted."
        )
        shown["not_in_their_language"] = not_in_their_language(
            draft.template_name, preview.in_another_language
        )
        shown["same_in_every_language"] = same_in_every_language(
            draft.variables,
            variants,
            draft.template_name,
            container.settings.business_locale,
            preview.per_language,
        )
        if preview.recipients == 0:
            errors["segments"] = "No customer matches these filters (with an address on the chosen channels)."
        elif preview.planned == 0:
            errors["segments"] = (
                f"All {formats.count(preview.recipients)} matching customers would be left out; see why below."
            )
        if not saving or errors:
            return await self._wizard(
                request, form, errors=errors, preview=shown, status_code=422 if errors else 200
            )
        slug = await _free_slug(container, draft.slug)
        try:
            campaign = await use_cases.create_campaign(
                container.campaign_uow(),
                CampaignDraft(**{**draft.__dict__, "slug": slug, "created_by": staff.id}),
                utc_now(),
                actor=staff.email,
                via="web",
            )
        except CampaignError as error:
            return await self._wizard(
                request, form, errors={field_of(error): str(error)}, preview=shown, status_code=422
            )
        return after_change(request, f"/communication/campaigns/{campaign.slug}", done="created")


async def _preview(container: Container, draft: CampaignDraft) -> CampaignPreview:
    return await use_cases.preview_draft(
        container.campaign_uow(read_only=True), draft, now=utc_now(), policy=container.consent_policy()
    )


async def _free_slug(container: Container, slug: str) -> str:
    """The name's slug, or the first of slug-2, slug-3, … no campaign has."""
    candidate, number = slug[:60], 2
    while await campaign_id_by_slug(container.database, candidate) is not None:
        candidate, number = f"{slug[:56]}-{number}", number + 1
    return candidate
