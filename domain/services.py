"""Services by the names patients read: one name the staff use, and a translation per language.

A service (a consultation, a treatment) is named once for the dashboard and the bots, in the business's
own language, and may carry its name in other languages (`{"de": "Video-Hautsprechstunde"}`). A patient
is told the name in their language when it has one, and the staff name otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from domain.audit import AuditEntry, AuditTrail
from domain.templates.selection import language_of
from domain.transaction import Transaction

#: The languages a service can be named in besides its staff name, with their names in English.
NAMEABLE_LANGUAGES: dict[str, str] = {
    "de": "German",
    "en": "English",
    "fr": "French",
    "it": "Italian",
    "es": "Spanish",
    "nl": "Dutch",
    "pl": "Polish",
    "tr": "Turkish",
}

#: The longest a service's name may be, in any language (the column's width).
NAME_LENGTH = 120


def service_name_in(name: str, names: Mapping[str, str] | None, locale: str) -> str:
    """The service's name for a reader of `locale`: their language's name if it has one, else `name`."""
    if not names:
        return name
    translated = names.get(language_of(locale))
    return (translated.strip() or name) if isinstance(translated, str) else name


def cleaned_names(given: Mapping[str, str]) -> dict[str, str]:
    """The names to store from a form or feed: known languages only, trimmed, empty ones dropped.

    Raises ValueError with a sentence for staff when a language is unknown or a name too long."""
    names: dict[str, str] = {}
    for language, name in given.items():
        code = language_of(language)
        if code not in NAMEABLE_LANGUAGES:
            known = ", ".join(sorted(NAMEABLE_LANGUAGES))
            raise ValueError(f"'{language}' is not a language a service can be named in ({known}).")
        text = " ".join(name.split())
        if len(text) > NAME_LENGTH:
            raise ValueError(
                f"The {NAMEABLE_LANGUAGES[code]} name is {len(text)} characters long; "
                f"at most {NAME_LENGTH} fit."
            )
        if text:
            names[code] = text
    return names


#: What a consultation booked without a service is called, by language.
UNNAMED_CONSULTATION = {"en": "video consultation", "de": "Videosprechstunde"}


def consultation_name_in(name: str | None, names: Mapping[str, str] | None, locale: str) -> str:
    """A video consultation's service as its patient reads it; a generic name when it has no service."""
    if name is None:
        return UNNAMED_CONSULTATION.get(language_of(locale), UNNAMED_CONSULTATION["en"])
    return service_name_in(name, names, locale)


class NamingError(ValueError):
    """A name staff gave that cannot be stored; its message is a sentence for them."""


@dataclass(frozen=True)
class NamedService:
    service_id: int
    code: str
    name: str
    kind: str
    duration_minutes: int
    names: Mapping[str, str] = field(default_factory=dict)


class ServiceBook(Protocol):
    async def services(self) -> list[NamedService]: ...

    async def service(self, service_id: int, *, for_update: bool = False) -> NamedService | None: ...

    async def rename(self, service_id: int, name: str, names: Mapping[str, str]) -> None: ...


class ServiceNamingUnitOfWork(Transaction, Protocol):
    @property
    def services(self) -> ServiceBook: ...

    @property
    def audit(self) -> AuditTrail: ...


async def name_service(
    uow: ServiceNamingUnitOfWork,
    service_id: int,
    name: str,
    names: Mapping[str, str],
    *,
    actor: str,
    via: str,
) -> NamedService:
    """Give a service its staff name and its names in other languages, audited; LookupError when unknown."""
    staff_name = " ".join(name.split())
    if not staff_name:
        raise NamingError("A service needs a name.")
    if len(staff_name) > NAME_LENGTH:
        raise NamingError(f"The name is {len(staff_name)} characters long; at most {NAME_LENGTH} fit.")
    try:
        translated = cleaned_names(names)
    except ValueError as error:
        raise NamingError(str(error)) from None
    async with uow:
        before = await uow.services.service(service_id, for_update=True)
        if before is None:
            raise LookupError(f"There is no service {service_id}.")
        await uow.services.rename(service_id, staff_name, translated)
        uow.audit.record(
            AuditEntry(
                actor=actor,
                via=via,
                action="service.named",
                target=f"service:{service_id}",
                detail={
                    "code": before.code,
                    "name": staff_name,
                    "names": dict(translated),
                    "before": {"name": before.name, "names": dict(before.names)},
                },
            )
        )
        await uow.commit()
    return NamedService(
        before.service_id, before.code, staff_name, before.kind, before.duration_minutes, translated
    )
