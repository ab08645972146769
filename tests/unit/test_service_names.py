"""Services named in the patient's language: choosing the name, cleaning what staff type, and the naming
use-case against an in-memory book."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import pytest

from domain.services import (
    NamedService,
    NamingError,
    cleaned_names,
    consultation_name_in,
    name_service,
    service_name_in,
)
from tests.fakes.transaction import FakeTransaction

GERMAN = {"de": "Hautsprechstunde per Video"}


@pytest.mark.parametrize("locale", ["de", "de-DE", "de_AT", "DE", " de-CH "])
def test_a_german_reader_reads_the_german_name_whatever_their_region(locale: str) -> None:
    assert service_name_in("Video skin consultation", GERMAN, locale) == "Hautsprechstunde per Video"


@pytest.mark.parametrize("locale", ["en", "en-GB", "fr", ""])
def test_a_reader_of_another_language_reads_the_staff_name(locale: str) -> None:
    assert service_name_in("Video skin consultation", GERMAN, locale) == "Video skin consultation"


def test_no_names_or_a_blank_one_read_the_staff_name() -> None:
    assert service_name_in("Skin check", None, "de") == "Skin check"
    assert service_name_in("Skin check", {"de": "  "}, "de") == "Skin check"


def test_a_consultation_without_a_service_is_a_video_consultation_in_the_patients_language() -> None:
    assert consultation_name_in(None, None, "de-DE") == "Videosprechstunde"
    assert consultation_name_in(None, None, "fr") == "video consultation"
    assert consultation_name_in("Video follow-up", GERMAN, "de") == "Hautsprechstunde per Video"


def test_names_are_trimmed_empty_ones_dropped_and_unknown_languages_refused() -> None:
    assert cleaned_names({"de-DE": "  Haut  sprechstunde ", "fr": " "}) == {"de": "Haut sprechstunde"}
    with pytest.raises(ValueError, match="'klingon' is not a language a service can be named in"):
        cleaned_names({"klingon": "x"})
    with pytest.raises(ValueError, match="The German name is 121 characters long; at most 120 fit"):
        cleaned_names({"de": "x" * 121})


class FakeBook:
    def __init__(self, *services: NamedService) -> None:
        self.rows = {s.service_id: s for s in services}

    async def services(self) -> list[NamedService]:
        return list(self.rows.values())

    async def service(self, service_id: int, *, for_update: bool = False) -> NamedService | None:
        return self.rows.get(service_id)

    async def rename(self, service_id: int, name: str, names: Mapping[str, str]) -> None:
        self.rows[service_id] = replace(self.rows[service_id], name=name, names=dict(names))


class FakeUnitOfWork(FakeTransaction):
    def __init__(self, book: FakeBook) -> None:
        super().__init__()
        self.services = book


SKIN = NamedService(5, "SKIN-VIDEO", "Video skin consultation", "video", 30)


async def test_naming_a_service_stores_the_names_and_audits_before_and_after() -> None:
    uow = FakeUnitOfWork(FakeBook(SKIN))
    named = await name_service(
        uow, 5, " Video  skin consultation", {"de": " Hautsprechstunde "}, actor="m", via="web"
    )
    assert named.names == {"de": "Hautsprechstunde"} and uow.services.rows[5] == named and uow.commits
    [entry] = uow.audit.entries
    assert entry.action == "service.named" and entry.target == "service:5"
    assert entry.detail["before"] == {"name": "Video skin consultation", "names": {}}


async def test_an_unknown_service_or_an_empty_name_is_refused_and_nothing_is_written() -> None:
    uow = FakeUnitOfWork(FakeBook(SKIN))
    with pytest.raises(LookupError, match="There is no service 6"):
        await name_service(uow, 6, "X", {}, actor="m", via="web")
    with pytest.raises(NamingError, match="A service needs a name"):
        await name_service(uow, 5, " \t", {}, actor="m", via="web")
    with pytest.raises(NamingError, match="'xx' is not a language"):
        await name_service(uow, 5, "Video", {"xx": "?"}, actor="m", via="web")
    assert uow.services.rows[5] == SKIN and not uow.audit.entries and not uow.commits
