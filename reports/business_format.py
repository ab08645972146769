"""How the business reads its numbers: timezone, locale and currency, passed to every analytics job."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BusinessFormat:
    timezone: str
    locale: str
    currency: str
