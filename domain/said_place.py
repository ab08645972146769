"""What a person's app says of them: the language it is set to ("de-AT") and its time zone ("Europe/Vienna").
Telegram sends the first, a browser both; either may be missing or malformed, and then says nothing."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def spoken_language(tag: str | None) -> str | None:
    """The language of a tag an app sends ("de-AT" → "de", "en" → "en"); None for none or a malformed one."""
    primary = (tag or "").strip().replace("_", "-").split("-")[0].lower()
    return primary if re.fullmatch(r"[a-z]{2,3}", primary) else None


def known_zone(name: str | None) -> str | None:
    """`name` if it is a time zone ("Europe/Vienna"), else None (a browser may send anything)."""
    if not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name
