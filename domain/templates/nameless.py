"""How a message reads to someone whose name we do not know (a first contact saved as "SMS contact …4321").

Their ``first_name`` and ``name`` are `NAMELESS`: a marker that is false in a template's ``{% if %}`` (so
``{{ first_name or "there" }}`` gives the author's own word), and that `without_name` removes from what was
rendered with the space and punctuation that only the name needed: "Hi {{ first_name }}," reads "Hi,",
"Thank you, {{ first_name }}!" reads "Thank you!", and "🌸 {{ first_name }}, spring is here" reads
"🌸 Spring is here".

An approved WhatsApp template is the exception: Meta fills its parameters into text it approved and refuses an
empty one, so the name parameter reads a word that greets anyone (`NAMELESS_WORDS`), and the body we keep says
the same.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from domain.templates.model import TemplateError

#: A character from Unicode's private use area: no real name or template text holds it.
_MARK = "\ue000"

#: What an approved WhatsApp template's name parameter reads for someone without a name, per language.
NAMELESS_WORDS: Mapping[str, str] = {"en": "there", "de": "zusammen"}


class _Nameless(str):
    """The name of someone whose name we do not know: text that is false, like an empty name."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return False


NAMELESS: str = _Nameless(_MARK)


def is_nameless(value: object) -> bool:
    return type(value) is _Nameless


#: A space as text or HTML writes it.
_SPACE = r"(?:[ \t\u00a0]|&nbsp;)"
#: The marker as filters write it: URL-encoded (`urlencode`) and as JSON (`tojson`).
_ENCODED = re.compile(r"%EE%80%80|\\ue000", re.IGNORECASE)
#: The marker inside an HTML element of its own ("<b>{name}</b>"), or twice in a row ("{first_name} {name}").
_WRAPPED = re.compile(rf"<(\w+)[^<>]*>{_MARK}</\1>")
_REPEATED = re.compile(rf"{_MARK}(?:{_SPACE}*{_MARK})+")
#: "Hi {name}," / "Thank you, {name}!" / "Hallo {name}" at the end: the name and the space (and a comma) before it.
_AFTER_WORDS = re.compile(rf"(?<=\w),?{_SPACE}+{_MARK}(?={_SPACE}*(?:[.!?,:;)<]|$))", re.MULTILINE)
#: "{name}, spring is here" at a line's start or after an emoji: the name and what follows it up to the next word.
_OPENING = re.compile(rf"(^|[^\w\s,;&][ \t\u00a0]*){_MARK}{_SPACE}*[,:;!]?{_SPACE}*(\w?)", re.MULTILINE)
#: Anywhere else ("Dear {name} and family"): the name and one space.
_ELSEWHERE = re.compile(rf"{_SPACE}?{_MARK}")


def without_name(text: str) -> str:
    """``text`` rendered for someone without a name, read as if it had been written for them."""
    if _MARK not in text:
        if not _ENCODED.search(text):
            return text
    text = _ENCODED.sub(_MARK, text)
    text = _REPEATED.sub(_MARK, _WRAPPED.sub(_MARK, text))
    text = _AFTER_WORDS.sub("", text)
    text = _OPENING.sub(_opening, text)
    return _ELSEWHERE.sub("", text)


def _opening(match: re.Match[str]) -> str:
    before, word = match.group(1), match.group(2)
    return before + word.upper() if word else before.rstrip(" \t\u00a0")


def named_for_whatsapp(
    variables: Mapping[str, object], parameters: Sequence[str], locale: str, language: str
) -> Mapping[str, object]:
    """``variables`` with each nameless one the approved template's ``parameters`` take said as `NAMELESS_WORDS`
    says it in ``language`` (``locale``'s); the others keep the marker, for the kept body to be tidied."""
    names = [name for name in parameters if is_nameless(variables.get(name))]
    if not names:
        return variables
    word = NAMELESS_WORDS.get(language)
    if word is None:
        raise TemplateError(
            "This customer has no name on record, and the WhatsApp template greets them by name: "
            f"WhatsApp refuses an empty parameter, and there is no greeting word for “{locale}”."
        )
    return {**variables, **dict.fromkeys(names, word)}
