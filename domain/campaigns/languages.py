"""A campaign's values per language: `offer[de] = …` gives a template's German message its own value, and a
value typed once is flagged where the audience's messages in another language would read it as typed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from domain.campaigns.model import CampaignError
from domain.campaigns.rules import missing_values
from domain.services import NAMEABLE_LANGUAGES
from domain.templates.model import TemplateRecord
from domain.templates.selection import BY_LANGUAGE, language_of


def template_needs(variants: Iterable[TemplateRecord], name: str) -> set[str]:
    """What a template reads that no customer record and no system value fills in: the campaign supplies it."""
    return set(
        missing_values((v for variant in variants if variant.name == name for v in variant.variables), {})
    )


def template_languages(variants: Iterable[TemplateRecord], name: str) -> set[str]:
    return {language_of(v.locale) for v in variants if v.name == name}


def unread_language(template: str, name: str, language: str, languages: set[str]) -> str | None:
    """Why `name[language]` would never be read (the template has no message in that language), or None."""
    if not languages or language in languages:
        return None
    written = ", ".join(sorted(languages))
    return (
        f"the template “{template}” has no {language} message (it is written in {written}), so "
        f"{name}[{language}] would never be read."
    )


def with_language_values(
    variables: dict[str, Any], by_language: Mapping[str, Mapping[str, str]]
) -> dict[str, Any]:
    """The campaign's values with the per-language ones under BY_LANGUAGE; a value given only for one language
    is refused, since the template's other messages would have none."""
    for language, words in sorted(by_language.items()):
        alone = sorted(set(words) - set(variables))
        if alone:
            raise CampaignError(
                f"{alone[0]}[{language}] has no value for the other languages: write {alone[0]} = … as well."
            )
    if by_language:
        return {**variables, BY_LANGUAGE: {code: dict(words) for code, words in by_language.items()}}
    return variables


def same_in_every_language(
    variables: Mapping[str, Any],
    variants: list[TemplateRecord],
    template: str,
    business_locale: str,
    reached: Mapping[str, int],
) -> list[str]:
    """A sentence per language the template is written in, other than the business's, whose messages to this
    audience (``reached``: planned messages by the recipient's language) read a value as typed (no
    `name[de] = …`): "20% off" in a German sentence, unless that is meant (a code). A language nobody in the
    audience reads gets none."""
    languages = template_languages(variants, template) - {language_of(business_locale)}
    table = variables.get(BY_LANGUAGE)
    given = table if isinstance(table, Mapping) else {}
    needs = template_needs(variants, template)
    names = [n for n in variables if n in needs]  # in the order typed
    notes = []
    for code in sorted(languages):
        count = reached.get(code, 0)
        alike = [n for n in names if n not in given.get(code, {})]
        if alike and count:
            language = NAMEABLE_LANGUAGES.get(code, code)
            listed = ", ".join(f"{n} (“{str(variables[n])[:40]}”)" for n in alike)
            messages = "message" if count == 1 else "messages"
            notes.append(
                f"The {count:,} {language} {messages} read{'s' if count == 1 else ''} {listed} as written "
                f"here: add {alike[0]}[{code}] = … on its own line for a {language} value."
            )
    return notes
