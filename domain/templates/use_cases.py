"""Template use-cases: save a variant once it is valid and renders with sample values, with its audit row."""

from __future__ import annotations

import re
from datetime import datetime

from domain.audit import AuditEntry
from domain.templates.model import MessageTemplate, TemplateError, TemplateRecord
from domain.templates.ports import TemplateUnitOfWork
from domain.templates.trial import run_trial
from domain.templates.validation import check_template
from domain.vocabulary import OUTBOUND_CHANNELS

#: What a template may be called: it appears in commands, URLs and campaign definitions.
NAME_PATTERN = "^[a-z0-9][a-z0-9_-]{0,63}$"


def check_template_name(name: str) -> None:
    if not re.fullmatch(NAME_PATTERN, name):
        raise TemplateError("template names are lower-case letters, digits, '_' and '-' (at most 64)")


async def save_template_variant(
    uow: TemplateUnitOfWork,
    variant: MessageTemplate,
    *,
    actor: str,
    via: str,
    now: datetime,
    over: int | None = None,
) -> TemplateRecord:
    """Creates or replaces one variant after validating it (declared vs used variables, sizes, WhatsApp)."""
    check_template_name(variant.name)
    if variant.channel not in OUTBOUND_CHANNELS:
        raise TemplateError(
            f"templates are for sms, email, whatsapp or telegram, not {variant.channel.value}"
        )
    # Validation and a trial render with sample values, off the event loop and within a time limit.
    await run_trial(lambda: check_template(variant))
    async with uow:
        saved = await uow.templates.save(variant, now, by=actor, over=over)
        uow.audit.record(
            AuditEntry(
                actor=actor,
                via=via,
                action="template.save",
                target=f"template:{variant.name}/{variant.channel.value}/{variant.locale}",
                detail={"version": saved.version},
            )
        )
        await uow.commit()
    return saved
