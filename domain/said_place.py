"""What a person's app says of them: the language it is set to ("de-AT") and its time zone ("Europe/Vienna").
Telegram sends the first, a browser both; either may be missing or malformed, and then says nothing."""

from __future__ import annotations

import functools
import re
from zoneinfo import available_timezones


def spoken_language(tag: str | None) -> str | None:
    """The language of a tag an app sends ("de-AT" → "de", "en" → "en"); None for none, a malformed one or a
    code that names no language ("zz", "und")."""
    primary = (tag or "").strip().replace("_", "-").split("-")[0].lower()
    return primary if re.fullmatch(r"[a-z]{2,3}", primary) and primary in _languages() else None


def known_zone(name: str | None) -> str | None:
    """`name` if it is one of the world's time zones ("Europe/Vienna"), else None: a browser may send anything,
    and the host's own names ("localtime", "posixrules", "right/UTC") mean nothing to a customer's record."""
    if not name or len(name) > 64:
        return None
    return name if name in _zones() else None


@functools.cache
def _zones() -> frozenset[str]:
    hosts_own = ("right/", "posix", "localtime", "Factory")
    return frozenset(z for z in available_timezones() if not z.startswith(hosts_own))


@functools.cache
def _languages() -> frozenset[str]:
    from babel import Locale  # the language names CLDR knows

    codes = {str(code) for code in Locale("en").languages}
    return frozenset(code for code in codes if re.fullmatch(r"[a-z]{2,3}", code)) - {"und", "zxx"}
