"""The language a browser asks for (Accept-Language), for public pages that name no customer."""

from __future__ import annotations

from collections.abc import Collection


def preferred_language(accept_language: str, spoken: Collection[str]) -> str | None:
    """The language among `spoken` ("en", "de") the browser prefers most: Accept-Language by q value, ties
    in the header's order, a tag we do not speak passed over ("de-AT" is German). None: none of them."""
    ranked: list[tuple[float, int, str]] = []
    for order, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if tag.strip() and tag.strip() != "*" and weight > 0:
            ranked.append((-weight, order, tag.strip()))
    for _, _, tag in sorted(ranked):
        language = tag.replace("_", "-").split("-")[0].lower()
        if language in spoken:
            return language
    return None
