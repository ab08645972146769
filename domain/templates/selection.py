"""Picks the right variant of a named template for a customer's locale, and shapes WhatsApp parameters."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from domain.templates.model import DEFAULT_LOCALE, MessageTemplate, TemplateError
from domain.templates.rendering import plain_value
from domain.vocabulary import Channel

_MAX_PARAM_SPACES = re.compile(r" {5,}")


def select_template(
    templates: Iterable[MessageTemplate], name: str, channel: Channel, locale: str
) -> MessageTemplate | None:
    """The variant for ``locale``, falling back to its language, then to English, then to any variant.

    Ties are broken by locale and body so that the same list always yields the same variant.
    """
    variants = [t for t in templates if t.name == name and t.channel is channel]
    if not variants:
        return None
    wanted = _normalised(locale)
    return min(
        variants, key=lambda t: (_closeness(_normalised(t.locale), wanted), _normalised(t.locale), t.body)
    )


#: A payload key whose value says some variables again per language: `{"de": {"service": "Hautsprechstunde"},
#: "*": {"service": "Skin consultation"}}`. The values outside it are the patient's language's; a template in
#: another language (an English WhatsApp template where only the SMS one is German) reads its own language's
#: entry, else the "*" one, so a message never mixes two languages.
BY_LANGUAGE = "by_language"


def said_in(variables: Mapping[str, object], locale: str) -> dict[str, object]:
    """``variables`` as a template written in ``locale`` reads them (see BY_LANGUAGE), without the table."""
    values = dict(variables)
    table = values.pop(BY_LANGUAGE, None)
    if not isinstance(table, Mapping):
        return values
    words = table.get(language_of(locale))
    if not isinstance(words, Mapping):
        words = table.get("*")
    if isinstance(words, Mapping):
        values.update({name: value for name, value in words.items() if isinstance(name, str)})
    return values


def whatsapp_components(
    template: MessageTemplate, variables: Mapping[str, object]
) -> list[dict[str, object]]:
    """The Cloud API ``components`` array: the body parameters {{1}}, {{2}}, ... in ``whatsapp_params`` order."""
    if not template.whatsapp_params:
        return []
    missing = [name for name in template.whatsapp_params if variables.get(name) is None]
    if len(missing) > 1:  # all at once, not one per try
        listed = ", ".join(f"“{name}”" for name in missing[:-1]) + f" and “{missing[-1]}”"
        raise TemplateError(f"No value was given for the WhatsApp parameters {listed}.")
    parameters: list[dict[str, object]] = [
        {"type": "text", "text": _parameter_text(name, variables)} for name in template.whatsapp_params
    ]
    return [{"type": "body", "parameters": parameters}]


def _closeness(candidate: str, wanted: str) -> int:
    language = language_of(wanted)
    if candidate == wanted:
        return 0
    if candidate == language:
        return 1
    if language_of(candidate) == language:
        return 2
    if candidate == DEFAULT_LOCALE:
        return 3
    if language_of(candidate) == DEFAULT_LOCALE:
        return 4
    return 5


def _normalised(locale: str) -> str:
    return locale.strip().replace("_", "-").lower()


def language_of(locale: str) -> str:
    """'de-AT', 'de_DE' and 'DE' are all German: the part before any region, lower case."""
    return _normalised(locale).split("-", 1)[0]


def _parameter_text(name: str, variables: Mapping[str, object]) -> str:
    if name not in variables or variables[name] is None:
        raise TemplateError(f"No value was given for the WhatsApp parameter '{name}'.")
    value = plain_value(name, variables[name])
    if isinstance(value, dict | list):
        raise TemplateError(f"The WhatsApp parameter '{name}' must be text or a number, not a list or dict.")
    text = str(value)
    # Meta rejects parameters that are empty, contain newlines or tabs, or have more than four
    # consecutive spaces (error 132018), so catch it before the provider does.
    if not text.strip():
        raise TemplateError(f"The WhatsApp parameter '{name}' is empty.")
    if "\n" in text or "\t" in text or _MAX_PARAM_SPACES.search(text):
        raise TemplateError(
            f"The WhatsApp parameter '{name}' may not contain line breaks, tabs or more than four spaces in a row."
        )
    return text
