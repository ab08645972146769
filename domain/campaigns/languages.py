"""A campaign's values per language: `offer[de] = …` gives a template's German message its own value, and a
value typed once is flagged where the audience's messages in another language would read it as typed."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from domain.campaigns.model import CampaignError
from domain.campaigns.rules import missing_values
from domain.messages.send_decision import RECIPIENT_FIELDS
from domain.services import NAMEABLE_LANGUAGES
from domain.templates.model import SYSTEM_VARIABLES, TemplateRecord
from domain.templates.selection import BY_LANGUAGE, language_of

#: A campaign value's name as typed, and the language of the message it is for: offer, offer[de].
VALUE_NAME = re.compile(r"(?P<name>[a-z_][a-z0-9_]{0,39})(?:\[(?P<language>[A-Za-z]{2})\])?")


def template_needs(variants: Iterable[TemplateRecord], name: str) -> set[str]:
    """What a template reads that no customer record and no system value fills in: the campaign supplies it."""
    return set(
        missing_values((v for variant in variants if variant.name == name for v in variant.variables), {})
    )


def template_languages(variants: Iterable[TemplateRecord], name: str) -> set[str]:
    return {language_of(v.locale) for v in variants if v.name == name}


def language_names(codes: Iterable[str]) -> str:
    """Languages as people name them: "English and German"."""
    names = sorted(NAMEABLE_LANGUAGES.get(code, code) for code in codes)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def unread_language(template: str, name: str, language: str, languages: set[str]) -> str | None:
    """Why `name[language]` would never be read (the template has no message in that language), or None."""
    if not languages or language in languages:
        return None
    return (
        f"the template “{template}” has no {NAMEABLE_LANGUAGES.get(language, language)} message (it is written "
        f"in {language_names(languages)}), so {name}[{language}] would never be read."
    )


def with_language_values(
    variables: dict[str, Any],
    by_language: Mapping[str, Mapping[str, str]],
    *,
    template: str = "",
    needs: set[str] | None = None,
    in_chat: bool = False,
) -> dict[str, Any]:
    """The campaign's values with the per-language ones under BY_LANGUAGE, refused in words when one is
    empty, is one each customer's record fills (first_name), is not a value the template reads (``needs``, when known: a misspelt name would be ignored), or is
    given only for one language (the template's other messages would have none)."""
    typed = [(name, value) for name, value in variables.items()] + [
        (f"{name}[{code}]", value) for code, words in by_language.items() for name, value in words.items()
    ]
    problems: list[str] = []  # every one at once: a form with three mistakes is not sent back three times
    for name, value in typed:
        if not str(value).strip():
            needed = needs is not None and name.partition("[")[0] in needs
            problems.append(
                f"{name} has no value: give it one"
                + (" (the template reads it)." if needed else ", or leave it out.")
            )
    own = [n for n, _ in typed if n.partition("[")[0] in RECIPIENT_FIELDS]
    problems += [f"{name} fills itself from each customer's record; leave it out." for name in own]
    if needs is not None:
        # Switchboard's own values (unsubscribe_url) are refused in their own words when the campaign is checked.
        unknown = [
            n
            for n, _ in typed
            if n.partition("[")[0] not in needs | SYSTEM_VARIABLES
            and n.partition("[")[0] not in RECIPIENT_FIELDS
        ]
        if unknown:
            reads = " and ".join(sorted(needs)) if needs else "no values of its own"
            names = list(dict.fromkeys(n.partition("[")[0] for n in unknown))
            said = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
            problems.append(f"The template “{template}” reads {reads}, not {said}.")
    for language, words in sorted(by_language.items()):
        alone = sorted(set(words) - set(variables))
        if alone:
            plain = f"{alone[0]}=…" if in_chat else f"{alone[0]} = …"
            problems.append(
                f"{alone[0]}[{language}] has no value for the other languages: write {plain} as well."
            )
    if problems:
        raise CampaignError(" ".join(problems))
    if by_language:
        return {**variables, BY_LANGUAGE: {code: dict(words) for code, words in by_language.items()}}
    return variables


#: Values that read the same in every language: a link, an email address or a domain, and a code (one token of
#: letters and digits with a digit in it, or in capitals: WINTER20, winter20, BDAY).
_LINK = re.compile(r"(?:https?://|www\.)\S+|[^\s@]+@[^\s@]+\.\w+|[\w-]+(?:\.[\w-]+)+(?:/\S*)?")
_CODE = re.compile(r"[A-Za-z0-9_-]+")


def reads_alike(value: object) -> bool:
    """Whether a value reads the same in every language: no letters at all (20%, 49.90), a link, or a code.
    Words do not ("10% off", "FREE SHIPPING"), nor does text in a script without capitals."""
    text = str(value).strip()
    if not any(c.isalpha() for c in text) or _LINK.fullmatch(text):
        return True
    return bool(_CODE.fullmatch(text)) and (any(c.isdigit() for c in text) or text.isupper())


def same_in_every_language(
    variables: Mapping[str, Any],
    variants: list[TemplateRecord],
    template: str,
    business_locale: str,
    reached: Mapping[str, int],
    *,
    in_chat: bool = False,
) -> list[str]:
    """A sentence per language the template is written in, other than the business's, whose messages to this
    audience (``reached``: planned messages by the recipient's language) read a value as typed (no
    `name[de] = …`): "20% off" in a German sentence. A value that reads alike in every language (a code, a
    number, a link) is not named, and a language nobody in the audience reads gets no sentence."""
    languages = template_languages(variants, template) - {language_of(business_locale)}
    table = variables.get(BY_LANGUAGE)
    given = table if isinstance(table, Mapping) else {}
    needs = template_needs(variants, template)
    names = [n for n in variables if n in needs and not reads_alike(variables[n])]  # in the order typed
    notes = []
    for code in sorted(languages):
        count = reached.get(code, 0)
        alike = [n for n in names if n not in given.get(code, {})]
        if alike and count:
            language = NAMEABLE_LANGUAGES.get(code, code)
            listed = ", ".join(f"{n} (“{str(variables[n])[:40]}”)" for n in alike)
            messages = "message" if count == 1 else "messages"
            add = (
                f"{alike[0]}[{code}]=… to the command"
                if in_chat
                else f"{alike[0]}[{code}] = … on its own line"
            )
            notes.append(
                f"The {count:,} {language} {messages} read{'s' if count == 1 else ''} {listed} as written "
                f"here: add {add} for a {language} value."
            )
    return notes


def not_in_their_language(
    template: str, in_another_language: Mapping[tuple[str, str], int], *, in_chat: bool = False
) -> list[str]:
    """A sentence per language some recipients read that the template has no message in: "12 recipients read
    German, but “winter_checkup” has no German message, so they would get the English one; add …"."""
    by_reader: dict[str, Counter[str]] = {}
    for (theirs, got), count in in_another_language.items():
        by_reader.setdefault(theirs, Counter())[got] += count
    where = "the dashboard's Templates page" if in_chat else "the Templates page"
    notes = []
    for code, gets in sorted(by_reader.items()):
        count = sum(gets.values())
        if not count:
            continue
        language = NAMEABLE_LANGUAGES.get(code, code)
        instead = NAMEABLE_LANGUAGES.get(gets.most_common(1)[0][0], gets.most_common(1)[0][0])
        who = "recipient reads" if count == 1 else "recipients read"
        notes.append(
            f"{count:,} {who} {language}, but “{template}” has no {language} message, so they would get the "
            f"{instead} one; add a {language} version of it on {where} to write to them in {language}."
        )
    return notes


def values_words(variables: Mapping[str, Any]) -> str:
    """A campaign's values as its page lists them: "code = WINTER; offer = 10% off · German: offer = 10 % Rabatt"."""
    # By name: PostgreSQL's JSON keeps its own key order, so the order typed cannot be shown on both engines.
    plain = "; ".join(f"{name} = {value}" for name, value in sorted(variables.items()) if name != BY_LANGUAGE)
    table = variables.get(BY_LANGUAGE)
    parts = [plain] if plain else []
    if isinstance(table, Mapping):
        for code, words in sorted(table.items()):
            if isinstance(words, Mapping) and words:
                listed = "; ".join(f"{name} = {value}" for name, value in sorted(words.items()))
                parts.append(f"{NAMEABLE_LANGUAGES.get(code, code)}: {listed}")
    return " · ".join(parts)
