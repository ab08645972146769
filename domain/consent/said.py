"""The business's consent rules and a customer's own, in the words the customer's page and the bots say them."""

from __future__ import annotations

from datetime import time

from domain.consent.model import ConsentPolicy


def _clock(value: time) -> str:
    return value.strftime("%H:%M")


def business_cap_words(policy: ConsentPolicy) -> str:
    """The business's own marketing limit per channel: "at most 1 a day and 3 a week on a channel"."""
    cap = policy.channel_cap
    if 0 in (cap.per_24h, cap.per_7d):
        return "no marketing"
    parts = [f"{n} a {period}" for n, period in ((cap.per_24h, "day"), (cap.per_7d, "week")) if n is not None]
    return f"at most {' and '.join(parts)} on a channel" if parts else "no limit"


def cap_words(own: int | None, business: str) -> str:
    """The weekly marketing limit that holds for a customer, theirs and the business's, in words."""
    if business == "no marketing":
        return "no marketing (the business sends none)"
    if own == 0:
        return "no marketing"
    if own is None:
        return (
            "none of their own, nor the business's"
            if business == "no limit"
            else (f"none of their own; the business sends {business}")
        )
    return f"at most {own} a week" + ("" if business == "no limit" else f" (and the business's {business})")


def business_quiet_hours_words(policy: ConsentPolicy) -> str | None:
    """The business's quiet hours ("21:00–08:00"), or None when it has none (SWITCHBOARD_QUIET_HOURS=off)."""
    default = policy.default_quiet_hours
    return None if default.start == default.end else f"{_clock(default.start)}–{_clock(default.end)}"
