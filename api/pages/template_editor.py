"""The template editor (`/communication/templates/{name}/{channel}/{locale}`): edit a variant with a preview
rendered from sample values, the variable check, SMS encoding and segments, the email's HTML part (in a
sandboxed frame), the WhatsApp approved-template mapping; every save goes through the API's validation
(domain.templates.use_cases.save_template_variant); kept versions are compared and restored."""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from litestar import Request, get, post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from markupsafe import Markup

from api.auth import requires_role
from api.pages import notices
from api.pages.common import Formats, StaffPages, container_of, page, staff_of, utc_now
from api.pages.notices import after_change
from domain.messages.segments import sms_shape
from domain.templates.model import (
    SYSTEM_VARIABLES,
    MessageTemplate,
    TemplateChanged,
    TemplateError,
    TemplateRecord,
)
from domain.templates.rendering import render_template
from domain.templates.trial import run_trial
from domain.templates.use_cases import check_template_name, save_template_variant
from domain.templates.validation import validate_template
from domain.templates.variants import variables_apart
from domain.vocabulary import OUTBOUND_CHANNELS, Channel, MessageCategory, Role
from storage.queries.templates import KeptVersion, all_template_variants, template_variant, template_versions

FIELDS = (
    "category",
    "subject",
    "body",
    "html_body",
    "variables",
    "whatsapp_name",
    "whatsapp_language",
    "whatsapp_params",
    "samples",
)
LOCALE = re.compile(r"[a-z]{2,3}(?:[-_][A-Za-z]{2,4})?")


@dataclass(frozen=True)
class Shown:
    subject: str | None
    body: str
    html: str | None
    sms: str | None


def _names(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(w.strip() for w in text.replace("\n", ",").split(",") if w.strip()))


def variant_of(name: str, channel: Channel, locale: str, form: dict[str, str]) -> MessageTemplate:
    try:
        category = MessageCategory(form["category"])
    except ValueError:
        raise TemplateError(
            "Say what the template is for: transactional (reminders, confirmations), marketing (offers, "
            "newsletters) or conversational (answers in a conversation)."
        ) from None
    email = channel is Channel.EMAIL
    whatsapp = channel is Channel.WHATSAPP
    return MessageTemplate(
        name=name,
        channel=channel,
        locale=locale,
        body=form["body"],
        category=category,
        variables=_names(form["variables"]),
        subject=form["subject"] or None if email else None,
        html_body=form["html_body"] or None if email else None,
        whatsapp_name=form["whatsapp_name"] or None if whatsapp else None,
        whatsapp_language=form["whatsapp_language"] or None if whatsapp else None,
        whatsapp_params=_names(form["whatsapp_params"]) if whatsapp else (),
    )


def variant_of_record(record: TemplateRecord) -> MessageTemplate:
    """A stored variant saved before versions were kept (or seeded), as the editor's starting point."""
    return MessageTemplate(
        name=record.name,
        channel=Channel(record.channel),
        locale=record.locale,
        body=record.body,
        category=MessageCategory(record.category),
        variables=tuple(record.variables),
        subject=record.subject,
        html_body=record.html_body,
        whatsapp_name=record.whatsapp_name,
        whatsapp_language=record.whatsapp_language,
        whatsapp_params=tuple(record.whatsapp_params),
    )


#: Each category as the editor offers it: what it is for, and what holds it back.
CATEGORY_WORDS = {
    MessageCategory.TRANSACTIONAL: "transactional: reminders, confirmations",
    MessageCategory.MARKETING: "marketing: offers, newsletters",
    MessageCategory.CONVERSATIONAL: "conversational: answers in a conversation",
}


def form_of_variant(variant: MessageTemplate | None) -> dict[str, str]:
    if variant is None:
        # No category chosen for the writer: a reminder saved as marketing would wait for opt-in and quiet
        # hours, and an offer saved as transactional would skip them. The form asks.
        return dict.fromkeys(FIELDS, "")
    return {
        "category": variant.category.value,
        "subject": variant.subject or "",
        "body": variant.body,
        "html_body": variant.html_body or "",
        "variables": ", ".join(variant.variables),
        "whatsapp_name": variant.whatsapp_name or "",
        "whatsapp_language": variant.whatsapp_language or "",
        "whatsapp_params": ", ".join(variant.whatsapp_params),
        "samples": "\n".join(f"{v} = " for v in variant.variables),
    }


def kept_samples(text: str) -> str:
    """The sample lines that fit in the notice after a save (whole lines only)."""
    lines, size = [], 0
    for line in text.splitlines():
        size += len(line) + 1
        if size > notices.VALUE_LIMIT:
            break
        lines.append(line)
    return "\n".join(lines)


def samples_of(text: str, variant: MessageTemplate) -> dict[str, object]:
    given: dict[str, object] = {}
    for line in text.splitlines():
        key, equals, value = line.partition("=")
        # A line left empty ("first_name = ", as the editor opens) shows the [first_name] placeholder.
        if equals and key.strip() and value.strip():
            given[key.strip()] = value.strip()
    filled = {v: given.get(v) or f"[{v}]" for v in variant.variables}
    return {**filled, **dict.fromkeys(SYSTEM_VARIABLES, "https://example.invalid/unsubscribe"), **given}


def _shown(variant: MessageTemplate, samples: dict[str, object]) -> Shown:
    validate_template(variant)
    rendered = render_template(variant, samples)
    sms = None
    if variant.channel is Channel.SMS:
        shape = sms_shape(rendered.body)
        sms = (
            f"{shape.characters} characters, {shape.encoding}, {shape.segments} segment"
            f"{'s' if shape.segments != 1 else ''}"
            + (" — over the 1,600-character limit" if shape.is_too_long else "")
        )
    return Shown(rendered.subject, rendered.body, rendered.html_body, sms)


def diff_lines(before: MessageTemplate, after: MessageTemplate) -> list[tuple[str, str]]:
    """Every field that differs, line by line: ("add"|"remove"|"same"|"part", text)."""

    def parts(t: MessageTemplate) -> list[str]:
        lines = [f"category: {t.category.value}", f"variables: {', '.join(t.variables)}"]
        if t.subject is not None:
            lines.append(f"subject: {t.subject}")
        lines += ["body:", *t.body.splitlines()]
        if t.html_body:
            lines += ["html:", *t.html_body.splitlines()]
        if t.whatsapp_name:
            lines.append(
                f"whatsapp: {t.whatsapp_name} ({t.whatsapp_language}) {', '.join(t.whatsapp_params)}"
            )
        return lines

    shown: list[tuple[str, str]] = []
    for line in difflib.unified_diff(parts(before), parts(after), lineterm="", n=2):
        if line.startswith(("---", "+++")):
            continue
        kind = {"+": "add", "-": "remove", "@": "part"}.get(line[:1], "same")
        shown.append((kind, line[1:] if kind != "part" else "…"))
    return shown


def opened_at(version: int | None) -> str:
    """What the form remembers of the variant it was opened on: its version, or "new" if there was none."""
    return "new" if version is None else str(version)


class TemplateEditorPages(StaffPages):
    """Managers edit templates; each save is validated, trial-rendered within a time limit, kept and audited."""

    async def _conflict(
        self, request: Request[Any, Any, Any], name: str, chosen: Channel, locale: str, form: dict[str, str]
    ) -> Template:
        """Someone saved this variant since the form was opened: saving now would quietly undo their change.
        The text typed is kept, the difference from their version shown; saving again replaces it."""
        database = container_of(request).database
        record = await template_variant(database, name, chosen.value, locale)
        now_at = opened_at(record.version if record else None)
        who = await template_versions(database, name, chosen.value, locale, limit=1)
        by = f" by {who[0].saved_by}" if who and who[0].saved_by else ""
        return await self._editor(
            request,
            name,
            chosen,
            locale,
            form,
            conflict=f"Version {now_at}{by} was saved while you were editing, so nothing was saved. "
            "Your text is below, with what differs from it under the preview; save again to replace it.",
            status_code=409,
            preview=True,
            opened=now_at,
        )

    async def _editor(
        self,
        request: Request[Any, Any, Any],
        name: str,
        channel: Channel,
        locale: str,
        form: dict[str, str],
        *,
        errors: dict[str, str] | None = None,
        status_code: int = 200,
        preview: bool = False,
        opened: str | None = None,
        conflict: str | None = None,
    ) -> Template:
        container = container_of(request)
        record = await template_variant(container.database, name, channel.value, locale)
        apart = variables_apart(
            name,
            channel.value,
            locale,
            _names(form["variables"]),
            await all_template_variants(container.database, name),
        )
        if opened is None:
            opened = opened_at(record.version if record else None)
        versions = await template_versions(container.database, name, channel.value, locale)
        current = versions[0].template if versions else (variant_of_record(record) if record else None)
        errors = dict(errors or {})
        shown: Shown | None = None
        changes: list[tuple[str, str]] = []
        if preview and "body" not in errors:
            try:
                variant = variant_of(name, channel, locale, form)
                shown = await run_trial(lambda: _shown(variant, samples_of(form["samples"], variant)))
                if current is not None:
                    changes = diff_lines(current, variant)
            except TemplateError as error:
                errors["body"] = str(error)
        compare = request.query_params.get("compare", "")
        compared: tuple[KeptVersion, list[tuple[str, str]]] | None = None
        if compare.isdigit() and versions:
            kept = next((v for v in versions if v.version == int(compare)), None)
            if kept is not None:
                compared = (kept, diff_lines(kept.template, versions[0].template))
        formats = Formats.of(request)
        template = page(
            request,
            "communication/template_editor.html",
            "communication",
            "templates",
            name=name,
            channel=channel.value,
            locale=locale,
            exists=record is not None,
            version=record.version if record else None,
            form=form,
            errors=errors,
            shown=shown,
            html_frame=Markup.escape(shown.html) if shown and shown.html else None,
            changes=changes,
            categories=[(c.value, CATEGORY_WORDS[c]) for c in MessageCategory],
            versions=[(v.version, v.saved_by or "—", formats.moment(v.saved_at)) for v in versions]
            or (
                [(record.version, "— (before versions were kept)", formats.moment(record.updated_at))]
                if record
                else []
            ),
            compared=compared,
            saved=notices.said(request).get("saved", "")[:8],
            opened=opened,
            conflict=conflict,
            apart=apart,
        )
        template.status_code = status_code
        return template

    @get("/communication/templates/new", name="new_template", guards=[requires_role(Role.MANAGER)])
    async def new(self, request: Request[Any, Any, Any]) -> Redirect:
        """The "new template or variant" form's answer: the editor for that name, channel and language."""
        params = request.query_params
        name = template_key(params.get("name") or "")
        if not name and not (params.get("name") or "").strip():
            # Opened without the form (a link, a bookmark): the form is on the templates page.
            return Redirect("/communication/templates#new-variant-heading", status_code=303)
        if not name:
            raise HTTPException(
                status_code=422, detail="Give the template a name of letters or digits, such as winter-offer."
            )
        chosen, locale = _variant_key(name, params.get("channel") or "", (params.get("locale") or "").strip())
        return Redirect(f"/communication/templates/{name}/{chosen.value}/{locale}", status_code=303)

    @get(
        "/communication/templates/{name:str}/{channel:str}/{locale:str}",
        name="edit_template",
        guards=[requires_role(Role.MANAGER)],
    )
    async def edit(
        self,
        request: Request[Any, Any, Any],
        name: FromPath[str],
        channel: FromPath[str],
        locale: FromPath[str],
    ) -> Template:
        chosen, locale = _variant_key(name, channel, locale)
        record = await template_variant(container_of(request).database, name, chosen.value, locale)
        versions = await template_versions(
            container_of(request).database, name, chosen.value, locale, limit=1
        )
        current = versions[0].template if versions else (variant_of_record(record) if record else None)
        form = form_of_variant(current)
        typed = notices.said_by_the_change(request).get("samples", "")  # a link cannot set them
        if typed.strip():  # just saved: the preview shows the samples typed before, not empty ones
            form["samples"] = typed
        return await self._editor(request, name, chosen, locale, form, preview=record is not None)

    @post(
        "/communication/templates/{name:str}/{channel:str}/{locale:str}",
        name="save_template",
        guards=[requires_role(Role.MANAGER)],
        status_code=303,
    )
    async def save(
        self,
        request: Request[Any, Any, Any],
        name: FromPath[str],
        channel: FromPath[str],
        locale: FromPath[str],
    ) -> Redirect | Template:
        chosen, locale = _variant_key(name, channel, locale)
        raw = await request.form()
        # Not cut: validation refuses what is too long, in words, rather than a silently shortened save.
        form = {key: str(raw.get(key, "") or "") for key in FIELDS}
        if raw.get("action") != "save":
            opened_then = str(raw.get("opened_version", "") or "")[:12] or None
            return await self._editor(request, name, chosen, locale, form, preview=True, opened=opened_then)
        staff = staff_of(request)
        opened = str(raw.get("opened_version", "") or "")[:12]
        record = await template_variant(container_of(request).database, name, chosen.value, locale)
        if opened and opened != opened_at(record.version if record else None):
            return await self._conflict(request, name, chosen, locale, form)
        # The version opened is checked again under the write lock, for a save landing in between.
        over = 0 if opened == "new" else int(opened) if opened.isdigit() else None
        try:
            variant = variant_of(name, chosen, locale, form)
            saved = await save_template_variant(
                container_of(request).units.templates(),
                variant,
                actor=staff.email,
                via="web",
                now=utc_now(),
                over=over,
            )
        except TemplateChanged:
            return await self._conflict(request, name, chosen, locale, form)
        except TemplateError as error:
            return await self._editor(
                request,
                name,
                chosen,
                locale,
                form,
                errors={"body": str(error)},
                status_code=422,
                preview=True,
                opened=opened or None,
            )
        return after_change(
            request,
            f"/communication/templates/{name}/{chosen.value}/{locale}",
            saved=saved.version,
            # The sample values typed for the preview come back with the saved page, as whole lines.
            samples=kept_samples(form["samples"]),
        )

    @post(
        "/communication/templates/{name:str}/{channel:str}/{locale:str}/restore/{version:int}",
        name="restore_template",
        guards=[requires_role(Role.MANAGER)],
        status_code=303,
    )
    async def restore(
        self,
        request: Request[Any, Any, Any],
        name: FromPath[str],
        channel: FromPath[str],
        locale: FromPath[str],
        version: FromPath[int],
    ) -> Redirect | Template:
        """An earlier version saved again as the newest (so the restore itself is a version, and audited)."""
        chosen, locale = _variant_key(name, channel, locale)
        versions = await template_versions(container_of(request).database, name, chosen.value, locale)
        kept = next((v for v in versions if v.version == version), None)
        if kept is None:
            raise NotFoundException(f"Template {name} ({chosen.value}, {locale}) has no version {version}.")
        staff = staff_of(request)
        try:
            saved = await save_template_variant(
                container_of(request).units.templates(),
                kept.template,
                actor=staff.email,
                via="web",
                now=utc_now(),
            )
        except TemplateError as error:  # kept before today's rules: it would not pass them now
            return await self._editor(
                request,
                name,
                chosen,
                locale,
                form_of_variant(kept.template),
                status_code=422,
                preview=True,
                errors={"body": f"Version {version} cannot be restored as it is: {error}"},
            )
        return after_change(
            request, f"/communication/templates/{name}/{chosen.value}/{locale}", saved=saved.version
        )


#: How German writes its letters without umlauts (ü: ue): a German name keeps its reading as a key.
GERMAN_LETTERS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})


def template_key(name: str) -> str:
    """A name as people write it, as the key templates are named by: "Flu Jab!" is flu-jab, "Grippe für
    Ältere" grippe-fuer-aeltere (German letters as German writes them without), other accents dropped."""
    spelled = name.lower().translate(GERMAN_LETTERS)
    plain = unicodedata.normalize("NFKD", spelled).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9_-]+", "-", plain).strip("-_")[:64].strip("-_")


def _variant_key(name: str, channel: str, locale: str) -> tuple[Channel, str]:
    try:
        check_template_name(name)
    except TemplateError as error:
        raise NotFoundException(f"There is no template {name!r}: {error}.") from None
    if channel not in {c.value for c in OUTBOUND_CHANNELS}:
        raise NotFoundException("Templates are for sms, email, whatsapp or telegram.")
    if not LOCALE.fullmatch(locale):
        raise NotFoundException(f"{locale!r} is not a language code (such as en or de).")
    return Channel(channel), locale
