"""How the business reads its numbers: timezone, locale and currency, passed to every analytics job."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BusinessFormat:
    timezone: str
    locale: str
    currency: str
    #: The business's name ("Northwind Clinics"): its first word, shared by its clinics' names, is left
    #: out when answers name them.
    name: str = ""
