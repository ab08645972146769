"""How a template's variants stand to each other: a send gives one set of values to whichever variant a
customer gets (their channel and language), so every variant of a name should use the same variables."""

from __future__ import annotations

from collections.abc import Iterable

from domain.messages.words import channel_words
from domain.templates.model import TemplateRecord


def variables_apart(
    name: str, channel: str, locale: str, variables: Iterable[str], others: Iterable[TemplateRecord]
) -> list[str]:
    """One sentence per other variant of `name` that declares other variables than this one: what each has
    that the other does not. Empty when they agree."""
    mine = set(variables)
    said: list[str] = []
    for other in others:
        if (other.channel, other.locale) == (channel, locale) or other.name != name:
            continue
        theirs = set(other.variables)
        if theirs == mine:
            continue
        where = f"{channel_words(other.channel)} {other.locale}"
        parts = []
        if theirs - mine:
            parts.append(f"the {where} variant uses {_names(theirs - mine)}, which this one does not")
        if mine - theirs:
            parts.append(f"this one uses {_names(mine - theirs)}, which the {where} variant does not")
        said.append(
            f"{'; '.join(parts)[:1].upper()}{'; '.join(parts)[1:]}. A send gives one set of values to whichever "
            "variant a customer gets, so one of them would fail for want of a value: use the same names in both."
        )
    return said


def _names(names: set[str]) -> str:
    listed = [f"“{n}”" for n in sorted(names)]
    return listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + f" and {listed[-1]}"
