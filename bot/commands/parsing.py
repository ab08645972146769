"""Tokenising and forgiving matching for staff commands: quotes, key=value pairs, typos and recipients."""

from __future__ import annotations

import difflib
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: Words people put in front of a question that carry no meaning for the parser.
FILLER_WORDS = frozenset(
    {
        "show",
        "me",
        "what",
        "was",
        "is",
        "were",
        "are",
        "the",
        "our",
        "get",
        "give",
        "tell",
        "please",
        "how",
        "many",
    }
)
_VARIABLE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]{0,63})=(.*)$", re.DOTALL)
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CUSTOMER_ID = re.compile(r"^#?(\d{1,18})$")


class ParseError(ValueError):
    """The input names a command but cannot be read; `usage` shows how it is written."""

    def __init__(self, message: str, usage: str | None = None) -> None:
        super().__init__(message)
        self.usage = usage


def tokenise(text: str) -> list[str]:
    """Words of `text`, keeping "quoted text" together; an unbalanced quote is read as if closed."""
    cleaned = text.replace("“", '"').replace("”", '"').replace("‘", "'").replace("’", "'").strip()
    try:
        return shlex.split(cleaned)
    except ValueError:
        try:
            return shlex.split(cleaned + '"')
        except ValueError:
            return cleaned.split()


def normalise(word: str) -> str:
    """Lower-case without surrounding punctuation, so "Revenue?" and "revenue" match."""
    return word.strip().strip("?!.,;:").lower()


def closest(word: str, choices: Iterable[str], cutoff: float = 0.75) -> str | None:
    """The choice `word` most likely means (exact, singular/plural, or a small typo), else None."""
    options = list(choices)
    key = normalise(word)
    if key in options:
        return key
    if key.endswith("s") and key[:-1] in options:
        return key[:-1]
    found = difflib.get_close_matches(key, options, n=1, cutoff=cutoff)
    return found[0] if found else None


def same_start(name: str, typed: str) -> bool:
    """Whether `typed` could be a typo of `name` at its start: the same first letter, the first two swapped
    ("hcat"), one letter too many before it ("tchat") or its first letter missing ("ancel")."""
    if name[:1] == typed[:1]:
        return True
    return (len(typed) > 1 and name[:2] in (typed[1::-1], typed[1:3])) or name[1:3] == typed[:2]


def suggestions(text: str, choices: Sequence[str], n: int = 3) -> list[str]:
    """Up to `n` choices that look like `text` (whole input or its first words), best first."""
    key = " ".join(normalise(w) for w in text.split()[:2])
    first = normalise(text.split()[0]) if text.split() else ""
    # A typo keeps its first letter or swaps the first two: "show me …" does not suggest `noshow`, "what
    # templates …" does `template`.
    words = key.split()
    found = difflib.get_close_matches(
        key, [c for c in choices if any(same_start(c, word) for word in words)], n=n, cutoff=0.5
    )
    typed = [c.split()[0] for c in choices if same_start(c, first)]
    for choice in difflib.get_close_matches(first, typed, n=n, cutoff=0.6):
        found += [c for c in choices if c.split()[0] == choice and c not in found]
    return found[:n]


def split_variables(words: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """Separate `name=value` pairs from the other words (values may have been quoted)."""
    rest: list[str] = []
    variables: dict[str, str] = {}
    for word in words:
        match = _VARIABLE.match(word)
        if match:
            variables[match.group(1)] = match.group(2)
        else:
            rest.append(word)
    return rest, variables


def take_flag(words: list[str], *names: str) -> bool:
    """Remove every `names` word (e.g. "--full", "confirm") from `words`; whether one was there."""
    found = False
    for name in names:
        while name in [normalise(w) for w in words]:
            index = [normalise(w) for w in words].index(name)
            words.pop(index)
            found = True
    return found


@dataclass(frozen=True)
class RecipientRef:
    """Who a staff member means: one of id, phone, email, or a name to look up."""

    kind: str  # "id", "phone", "email" or "name"
    value: str

    @property
    def text(self) -> str:
        return f"#{self.value}" if self.kind == "id" else self.value


def recipient_ref(text: str) -> RecipientRef:
    """Read a recipient as written: "#123", "+4915112345678", "jane@example.com" or "Jane Doe"."""
    value = text.strip()
    compact = re.sub(r"[\s()\-]", "", value)
    if _CUSTOMER_ID.match(value):
        return RecipientRef("id", value.lstrip("#"))
    if _E164.match(compact):
        return RecipientRef("phone", compact)
    if _EMAIL.match(value):
        return RecipientRef("email", value.lower())
    if not value:
        raise ParseError("Say who the message is for: #customer-id, +phone, email or name.")
    return RecipientRef("name", value)


def customer_id(text: str, usage: str) -> int:
    match = _CUSTOMER_ID.match(text.strip())
    if not match:
        raise ParseError(f"{text!r} is not a customer id (a number such as 12 or #12).", usage)
    return int(match.group(1))
