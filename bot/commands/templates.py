"""`template list|show|preview`: the message templates, and how one renders for a channel and locale."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from babel.numbers import format_currency

from bot.commands.context import CommandContext
from bot.commands.parsing import ParseError, normalise, split_variables
from bot.replies import Button, Field, Reply, Table
from domain.messages.pricing import DEFAULT_PRICE_BOOK, calling_code, estimate_cost
from domain.messages.segments import sms_shape
from domain.messages.words import channel_words
from domain.staff import StaffIdentity
from domain.templates.model import TemplateError, TemplateRecord
from domain.templates.rendering import render_template
from domain.templates.selection import select_template
from domain.vocabulary import Channel, MessageCategory
from storage.queries.templates import active_template_variants, active_templates_named

SHOW_USAGE = "template show NAME"
PREVIEW_USAGE = "template preview NAME [channel] [locale] [var=value ...]"
_CHANNELS = {c.value for c in Channel}


@dataclass(frozen=True)
class ListTemplates:
    pass


@dataclass(frozen=True)
class ShowTemplate:
    name: str


@dataclass(frozen=True)
class PreviewTemplate:
    name: str
    channel: Channel | None = None
    locale: str | None = None
    variables: dict[str, str] = field(default_factory=dict)


def parse_list(words: list[str], rest: str, today: date) -> ListTemplates:
    return ListTemplates()


def parse_show(words: list[str], rest: str, today: date) -> ShowTemplate:
    if len(words) != 1:
        raise ParseError("Name one template.", SHOW_USAGE)
    return ShowTemplate(words[0])


def parse_preview(words: list[str], rest: str, today: date) -> PreviewTemplate:
    plain, variables = split_variables(words)
    if not plain:
        raise ParseError("Name the template to preview.", PREVIEW_USAGE)
    name, channel, locale = plain[0], None, None
    for word in plain[1:]:
        if normalise(word) in _CHANNELS and channel is None:
            channel = Channel(normalise(word))
        elif locale is None and 2 <= len(word) <= 5:
            locale = word
        else:
            raise ParseError(f"I do not know what {word!r} means here.", PREVIEW_USAGE)
    return PreviewTemplate(name, channel, locale, variables)


async def template_rows(ctx: CommandContext, name: str | None = None) -> list[TemplateRecord]:
    return await active_template_variants(ctx.database, name)


async def unknown_template(ctx: CommandContext, name: str) -> Reply:
    import difflib

    names = sorted({row.name for row in await template_rows(ctx)})
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else f" Templates: {', '.join(names) or 'none yet'}."
    return Reply(
        f"There is no active template named “{name}”.{hint}",
        kind="error",
        buttons=tuple(Button(c, f"template show {c}") for c in close),
    )


async def run_list(command: ListTemplates, who: StaffIdentity, ctx: CommandContext) -> Reply:
    variants: dict[str, list[TemplateRecord]] = defaultdict(list)
    for row in await template_rows(ctx):
        variants[row.name].append(row)
    if not variants:
        return Reply("There are no active templates yet.", title="Templates")
    table = Table(
        ("Template", "Category", "Channels", "Locales"),
        tuple(
            (
                name,
                rows[0].category,
                ", ".join(sorted({r.channel for r in rows})),
                ", ".join(sorted({r.locale for r in rows})),
            )
            for name, rows in sorted(variants.items())
        ),
    )
    return Reply(f"{len(variants)} active templates.", title="Templates", table=table)


async def run_show(command: ShowTemplate, who: StaffIdentity, ctx: CommandContext) -> Reply:
    rows = await template_rows(ctx, command.name)
    if not rows:
        return await unknown_template(ctx, command.name)
    first = rows[0]
    table = Table(
        ("Channel", "Locale", "Text"),
        tuple((r.channel, r.locale, (r.subject + " — " if r.subject else "") + _short(r.body)) for r in rows),
    )
    fields = (
        Field("Category", first.category),
        Field("Variables", ", ".join(first.variables or []) or "none"),
        Field("Variants", str(len(rows))),
    )
    return Reply(
        f"Template {command.name}: {len(rows)} variants.",
        title=f"Template {command.name}",
        fields=fields,
        table=table,
        buttons=(Button("Preview", f"template preview {command.name}"),),
    )


def _short(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


async def run_preview(command: PreviewTemplate, who: StaffIdentity, ctx: CommandContext) -> Reply:
    variants = await active_templates_named(ctx.database, command.name)
    if not variants:
        return await unknown_template(ctx, command.name)
    channel = command.channel or variants[0].channel
    chosen = select_template(variants, command.name, channel, command.locale or "en")
    if chosen is None:
        have = ", ".join(sorted({v.channel.value for v in variants}))
        return Reply(f"Template {command.name} has no {channel.value} variant (it has {have}).", kind="error")
    # Variables not given are shown as placeholders, so a preview never fails for want of sample data.
    values: dict[str, object] = {name: f"[{name}]" for name in chosen.variables}
    values.update(command.variables)
    try:
        rendered = render_template(chosen, values)
    except TemplateError as error:
        return Reply(f"The template does not render: {error}", kind="error")
    fields = [Field("Channel", channel_words(chosen.channel.value)), Field("Language", chosen.locale)]
    if rendered.subject:
        fields.append(Field("Subject", rendered.subject))
    # No recipient yet: an SMS is priced as one to a number in the business's own country.
    home = calling_code(ctx.settings.phone_region)
    fields += shape_fields(
        chosen.channel,
        rendered.body,
        chosen.category,
        chosen.whatsapp_name is not None,
        home,
        typical=True,
        locale=ctx.settings.business_locale,
    )
    missing = [n for n in chosen.variables if n not in command.variables]
    note = f"\n(placeholders for: {', '.join(missing)})" if missing else ""
    return Reply(rendered.body + note, title=f"Preview: {command.name}", fields=tuple(fields), private=True)


def price_words(micros: int, currency: str, locale: str = "en") -> str:
    """A message's price as money is written, to the fraction of a cent it is ("$0.004", "$0.0875")."""
    return format_currency(micros / 1_000_000, currency, locale=locale, decimal_quantization=False)


def shape_fields(
    channel: Channel,
    body: str,
    category: MessageCategory,
    is_template: bool,
    to_address: str | None,
    *,
    typical: bool = False,
    locale: str = "en",
) -> list[Field]:
    """Encoding and segments for SMS, and the estimated cost for every channel: an SMS at the price of
    `to_address`'s country (an SMS to Germany costs eleven times one inside the US). With `typical`, the
    address is only a calling code ("+49") standing for any number there, and the cost says so."""
    fields = []
    cost = estimate_cost(
        channel, body, DEFAULT_PRICE_BOOK, category=category, is_template=is_template, to_address=to_address
    )
    words = price_words(cost, DEFAULT_PRICE_BOOK.currency, locale)
    if channel is Channel.SMS:
        shape = sms_shape(body)
        fields += [Field("Encoding", shape.encoding), Field("Segments", str(shape.segments))]
        if typical and to_address:
            words += f" (to a {to_address} number)"
    fields.append(Field("Estimated cost", words))
    return fields
