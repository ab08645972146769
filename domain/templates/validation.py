"""Checks a template before it is saved, so mistakes surface to its author rather than at send time."""

from __future__ import annotations

import re

from jinja2 import meta, nodes

from domain.messages.segments import MAX_SMS_CHARACTERS
from domain.templates.model import SYSTEM_VARIABLES, MessageTemplate, TemplateError
from domain.templates.rendering import (
    MAX_HTML_BYTES,
    MAX_SOURCE_CHARACTERS,
    parse_template,
    render_template,
    template_globals,
)
from domain.templates.selection import BY_LANGUAGE
from domain.vocabulary import Channel, MessageCategory

_LOCALE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_template(template: MessageTemplate) -> None:
    """validate_template, then a trial render with sample values, which catches what only shows when rendering
    (sandbox refusals, a template that does too much work). Run it off the event loop (trial.run_trial)."""
    validate_template(template)
    samples = dict.fromkeys((*template.variables, *SYSTEM_VARIABLES), "sample")
    render_template(template, samples)


def validate_template(template: MessageTemplate) -> None:
    """Raise TemplateError listing every problem with ``template``; return quietly when it is sound."""
    problems = _shape_problems(template)
    too_long = _length_problems(template)
    if too_long:
        # A source this long is not read at all: reading it is work too.
        raise TemplateError(" ".join(problems + too_long))
    trees = {part: parse_template(source) for part, source in _sources(template).items()}
    try:
        problems += _variable_problems(template, trees)
        if template.channel is Channel.SMS:
            static_length = sum(len(node.data) for node in trees["body"].find_all(nodes.TemplateData))
            if static_length > MAX_SMS_CHARACTERS:
                problems.append(
                    f"The SMS body has {static_length:,} characters of fixed text; "
                    f"the limit is {MAX_SMS_CHARACTERS:,}."
                )
    except RecursionError:
        # A long chain such as 1 + 1 + ... parses, but is too deep to walk.
        raise TemplateError(
            "The template is nested too deeply to read (brackets or expressions inside each other)."
        ) from None
    if problems:
        raise TemplateError(" ".join(problems))


def _sources(template: MessageTemplate) -> dict[str, str]:
    parts = {"body": template.body}
    if template.subject is not None:
        parts["subject"] = template.subject
    if template.html_body is not None:
        parts["HTML body"] = template.html_body
    return parts


def _length_problems(template: MessageTemplate) -> list[str]:
    problems = []
    for part, source in _sources(template).items():
        limit = MAX_HTML_BYTES if part == "HTML body" else MAX_SOURCE_CHARACTERS
        if len(source) > limit:
            problems.append(
                f"The {part} is {len(source):,} characters long; a template's {part} may be at most {limit:,}."
            )
    return problems


def _shape_problems(template: MessageTemplate) -> list[str]:
    problems: list[str] = []
    if not template.name.strip():
        problems.append("The template needs a name.")
    if not _LOCALE.match(template.locale):
        problems.append(f"'{template.locale}' is not a locale such as 'en' or 'de-AT'.")
    if not template.body.strip():
        problems.append("The body is empty.")
    if template.channel is Channel.EMAIL:
        if template.subject is None or not template.subject.strip():
            problems.append("An email template needs a subject.")
        if template.html_body is not None and not template.html_body.strip():
            problems.append("The HTML body is empty; leave it out to send text only.")
    elif template.subject is not None or template.html_body is not None:
        problems.append("Only email templates have a subject or an HTML body.")
    problems += _whatsapp_problems(template)
    bad_names = [name for name in template.variables if not _VARIABLE_NAME.match(name)]
    if bad_names:
        problems.append(f"These variable names are not valid: {_names(bad_names)}.")
    if BY_LANGUAGE in template.variables:
        problems.append(
            f"“{BY_LANGUAGE}” is the name Switchboard gives values per language; call the variable otherwise."
        )
    duplicates = sorted({name for name in template.variables if template.variables.count(name) > 1})
    if duplicates:
        problems.append(f"These variables are declared more than once: {_names(duplicates)}.")
    return problems


def _whatsapp_problems(template: MessageTemplate) -> list[str]:
    if template.channel is not Channel.WHATSAPP:
        if template.whatsapp_name or template.whatsapp_language or template.whatsapp_params:
            return ["Only WhatsApp templates have a WhatsApp template name, language or parameters."]
        return []
    problems: list[str] = []
    # Outside the customer's 24-hour window only a Meta-approved template may be sent; conversational
    # replies go out free-form inside the window and need no approved name.
    needs_approval = template.category is not MessageCategory.CONVERSATIONAL or template.whatsapp_params
    if needs_approval and not template.whatsapp_name:
        problems.append("A WhatsApp template needs the name of its approved WhatsApp template.")
    if needs_approval and not template.whatsapp_language:
        problems.append("A WhatsApp template needs the language code of its approved WhatsApp template.")
    undeclared = [name for name in template.whatsapp_params if name not in template.variables]
    if undeclared:
        problems.append(f"WhatsApp parameters use variables that are not declared: {_names(undeclared)}.")
    return problems


def _variable_problems(template: MessageTemplate, trees: dict[str, nodes.Template]) -> list[str]:
    declared = set(template.variables)
    # A declared variable shadows a built-in such as ``range``; otherwise built-ins, and what Switchboard
    # fills in itself (the unsubscribe link), need no declaring.
    builtins = (template_globals() | SYSTEM_VARIABLES) - declared
    used: set[str] = set()
    problems: list[str] = []
    read: set[str] = set()
    for part, tree in trees.items():
        read |= meta.find_undeclared_variables(tree)
        names = meta.find_undeclared_variables(tree) - builtins
        used |= names
        undeclared = sorted(names - declared)
        if undeclared:
            problems.append(f"The {part} uses variables that are not declared: {_names(undeclared)}.")
    used |= set(template.whatsapp_params)
    unused = [name for name in template.variables if name not in used]
    if unused:
        problems.append(f"These declared variables are never used: {_names(unused)}.")
    if (
        template.channel is Channel.EMAIL
        and template.category is MessageCategory.MARKETING
        and "unsubscribe_url" not in read
    ):
        # Bulk senders must show a visible unsubscribe link (Gmail, Yahoo); the header alone is not enough.
        problems.append(
            "A marketing email needs a visible unsubscribe link: add {{ unsubscribe_url }} to its body "
            "or HTML body (Switchboard fills it in for each recipient)."
        )
    return problems


def _names(names: list[str]) -> str:
    return ", ".join(f"'{name}'" for name in names)
