"""The widget's rules with fakes: which pages may use a key, what a message may be, and receipts that only
move the visitor's own replies."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import pytest

from domain.audit import AuditEntry
from domain.delivery.outbox import ReceiptResult
from domain.delivery.ports import DeliveryReceipt
from domain.vocabulary import MessageStatus
from domain.widget.model import (
    Visitor,
    WidgetKey,
    WidgetRefused,
    check_contact,
    check_key,
    check_message,
    check_origin,
    client_id_of,
    token_hash,
    visitor_place,
    widget_message_ref,
)
from domain.widget.use_cases import confirm_replies, create_widget_key, start_visit

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
KEY = WidgetKey(1, "k1", "Clinic website", ("https://clinic.example",), None, True)


def test_only_the_keys_origins_and_our_own_pages_may_use_it() -> None:
    check_origin(KEY, "https://clinic.example")
    check_origin(KEY, "HTTPS://Clinic.Example")
    check_origin(KEY, None)  # no Origin: not a cross-site browser request
    check_origin(KEY, "http://127.0.0.1:8000", own_origins=["http://127.0.0.1:8000/"])
    for stranger in ("https://evil.example", "http://clinic.example", "https://clinic.example:8443", "null"):
        with pytest.raises(WidgetRefused, match="may not be used on") as refused:
            check_origin(KEY, stranger)
        assert refused.value.status == 403


def test_an_unknown_key_is_404_and_a_switched_off_one_403() -> None:
    with pytest.raises(WidgetRefused) as unknown:
        check_key(None)
    assert unknown.value.status == 404
    with pytest.raises(WidgetRefused) as off:
        check_key(WidgetKey(2, "k2", "Old", (), None, False))
    assert off.value.status == 403
    assert check_key(KEY) is KEY


def test_a_message_is_trimmed_and_at_most_4000_characters() -> None:
    assert check_message("  hello \n") == "hello"
    assert check_message("x" * 4000) == "x" * 4000
    with pytest.raises(WidgetRefused, match="4,001 characters") as too_long:
        check_message("x" * 4001)
    assert too_long.value.status == 413
    with pytest.raises(WidgetRefused, match="empty"):
        check_message(" \t ")


def test_contact_details_are_cleaned_and_a_bad_email_refused() -> None:
    assert check_contact("  Ada   Lovelace ", " Ada@Example.COM ") == ("Ada Lovelace", "ada@example.com")
    assert check_contact(None, "") == (None, None)
    with pytest.raises(WidgetRefused, match="email"):
        check_contact("Ada", "not-an-email")


def test_a_message_reference_carries_the_widgets_own_id() -> None:
    ref = widget_message_ref(7, "abc12345")
    assert ref == "widget:7:abc12345"
    assert client_id_of(ref) == "abc12345"
    assert client_id_of("wamid.1") is None


class FakeWidgetUow:
    """Visitors, keys and receipts in memory; `committed` counts commits."""

    def __init__(self) -> None:
        self.visitors_by_hash: dict[str, Visitor] = {}
        self.customers: dict[int, tuple[str, str | None]] = {}
        self.homes: dict[int, int | None] = {}  # customer id -> home location id
        self.placed: dict[int, tuple[str, str, str | None]] = {}  # customer id -> (zone, language, tag)
        self.replies: dict[int, int] = {}  # reply id -> customer id
        self.receipts: list[DeliveryReceipt] = []
        self.entries: list[AuditEntry] = []
        self.keys_added: list[tuple[str, str, tuple[str, ...]]] = []
        self.committed = 0

    async def __aenter__(self) -> Self:
        self.visitors = self.keys = self.outbox = self.audit = self
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        pass

    async def commit(self) -> None:
        self.committed += 1

    def record(self, entry: AuditEntry) -> None:
        self.entries.append(entry)

    async def visitor(self, token_hash: str) -> Visitor | None:
        found = self.visitors_by_hash.get(token_hash)
        if found is None or found.customer_id is None:
            return found
        name, email = self.customers[found.customer_id]
        return Visitor(found.id, found.key_id, found.customer_id, name, email)

    async def add_customer(
        self,
        name: str,
        email: str | None,
        home_location_id: int | None,
        at: datetime,
        *,
        timezone: str = "UTC",
        locale: str = "en",
        tag: str | None = None,
    ) -> int:
        self.customers[len(self.customers) + 1] = (name, email)
        self.homes[len(self.customers)] = home_location_id
        self.placed[len(self.customers)] = (timezone, locale, tag)
        return len(self.customers)

    async def add_visitor(self, key_id: int, token_hash: str, at: datetime) -> Visitor:
        visitor = Visitor(len(self.visitors_by_hash) + 1, key_id, None, "Website visitor", None)
        self.visitors_by_hash[token_hash] = visitor
        return visitor

    async def customer_of(self, visitor_id: int) -> int | None:
        return next(v.customer_id for v in self.visitors_by_hash.values() if v.id == visitor_id)

    async def link_customer(self, visitor_id: int, customer_id: int) -> None:
        for hashed, v in self.visitors_by_hash.items():
            if v.id == visitor_id:
                self.visitors_by_hash[hashed] = Visitor(v.id, v.key_id, customer_id, v.name, v.email)

    async def set_contact(self, customer_id: int, name: str | None, email: str | None) -> None:
        old_name, old_email = self.customers[customer_id]
        self.customers[customer_id] = (name or old_name, email or old_email)

    async def seen(self, visitor_id: int, at: datetime) -> None:
        pass

    async def own_replies(self, customer_id: int, message_ids: Sequence[int]) -> list[int]:
        return [i for i in message_ids if self.replies.get(i) == customer_id]

    async def apply_receipts(self, receipts: Sequence[DeliveryReceipt]) -> list[ReceiptResult]:
        self.receipts.extend(receipts)
        return [ReceiptResult(True, r.our_message_id, r.status.value, "applied") for r in receipts]

    async def add(
        self, key: str, name: str, origins: Sequence[str], location_id: int | None, at: datetime
    ) -> int | None:
        self.keys_added.append((key, name, tuple(origins)))
        return len(self.keys_added)

    async def location_id(self, code: str) -> int | None:
        return {"BER": 7}.get(code)


async def test_opening_the_chat_makes_no_customer_until_the_visitor_writes() -> None:
    uow: Any = FakeWidgetUow()
    first = await start_visit(uow, KEY, None, now=NOW)
    assert first.created and first.visitor.customer_id is None and uow.customers == {}
    assert token_hash(first.token) in uow.visitors_by_hash and first.token not in uow.visitors_by_hash
    assert [e.action for e in uow.entries] == ["widget.visitor"]
    returning = await start_visit(uow, KEY, first.token, now=NOW)
    assert not returning.created and returning.token == first.token and uow.customers == {}
    # Telling us who they are is writing to us: now they are a customer, once.
    again = await start_visit(uow, KEY, first.token, now=NOW, name="Ada", email="ada@example.com")
    assert not again.created and again.token == first.token and again.visitor.customer_id == 1
    await start_visit(uow, KEY, first.token, now=NOW, name="Ada L.")
    assert uow.customers == {1: ("Ada L.", "ada@example.com")}
    assert [e.action for e in uow.entries] == ["widget.visitor", "widget.customer"]
    # The same token on another key's site is a new visitor there (and no customer yet).
    elsewhere = await start_visit(uow, WidgetKey(9, "k9", "Other", (), None, True), first.token, now=NOW)
    assert elsewhere.created and elsewhere.visitor.customer_id is None and len(uow.customers) == 1


async def test_a_visitor_through_a_clinics_key_becomes_a_customer_of_that_clinic() -> None:
    uow: Any = FakeWidgetUow()
    berlin = WidgetKey(2, "k2", "Berlin website", (), 7, True)
    visit = await start_visit(uow, berlin, None, now=NOW, email="bo@example.com")
    assert visit.visitor.customer_id == 1 and uow.homes == {1: 7}
    assert uow.customers == {1: ("Website visitor", "bo@example.com")}


async def test_a_visitor_who_writes_is_placed_by_their_browser_else_the_business() -> None:
    """A website visitor became a customer in UTC, in English and untagged, unlike every other first contact:
    a Munich visitor's quiet hours were an hour off, and the survey asked a German writer in English."""
    uow: Any = FakeWidgetUow()
    vienna = visitor_place("Europe/Vienna", "de-AT", "Europe/Berlin", "en")
    await start_visit(uow, KEY, None, now=NOW, email="a@example.com", place=vienna)
    nothing_said = visitor_place(None, None, "Europe/Berlin", "de")
    await start_visit(uow, KEY, None, now=NOW, email="b@example.com", place=nothing_said)
    nonsense = visitor_place("../../etc/passwd", "<script>", "Europe/Berlin", "de")
    await start_visit(uow, KEY, None, now=NOW, email="c@example.com", place=nonsense)
    assert uow.placed == {
        1: ("Europe/Vienna", "de", "first-contact:chat"),
        2: ("Europe/Berlin", "de", "first-contact:chat"),
        3: ("Europe/Berlin", "de", "first-contact:chat"),
    }


async def test_receipts_move_only_the_visitors_own_replies() -> None:
    uow: Any = FakeWidgetUow()
    uow.replies = {10: 1, 11: 2}
    visitor = Visitor(1, 1, 1, "Ada", None)
    applied = await confirm_replies(uow, visitor, delivered=[10, 11], read=[10], now=NOW)
    assert applied == 2
    assert [(r.our_message_id, r.status) for r in uow.receipts] == [
        (10, MessageStatus.DELIVERED),
        (10, MessageStatus.READ),
    ]
    assert await confirm_replies(uow, visitor, delivered=[11], read=[], now=NOW) == 0
    stranger = Visitor(2, 1, None, "Website visitor", None)  # has not written: has no replies
    assert await confirm_replies(uow, stranger, delivered=[10, 11], read=[], now=NOW) == 0


async def test_a_key_needs_a_name_and_real_origins() -> None:
    uow: Any = FakeWidgetUow()
    key = await create_widget_key(
        uow,
        name="Clinic",
        origins=["https://www.clinic.example/", "https://www.clinic.example"],
        actor="a",
        via="cli",
        now=NOW,
    )
    assert key.allowed_origins == ("https://www.clinic.example",) and key.key.startswith("wk_")
    assert [e.action for e in uow.entries] == ["widget.key.create"]
    with pytest.raises(WidgetRefused):
        await create_widget_key(
            uow, name="Clinic", origins=["www.clinic.example"], actor="a", via="cli", now=NOW
        )
    with pytest.raises(WidgetRefused):
        await create_widget_key(uow, name=" ", origins=["https://a.example"], actor="a", via="cli", now=NOW)


async def test_a_key_for_a_clinic_names_it_by_code_and_an_unknown_code_is_refused() -> None:
    uow: Any = FakeWidgetUow()
    key = await create_widget_key(
        uow, name="Berlin", origins=["https://b.example"], actor="a", via="cli", now=NOW, location="BER"
    )
    assert key.location_id == 7 and uow.entries[-1].detail["location_id"] == 7
    with pytest.raises(WidgetRefused, match="no clinic with the code 'XYZ'"):
        await create_widget_key(
            uow, name="X", origins=["https://x.example"], actor="a", via="cli", now=NOW, location="XYZ"
        )
    assert len(uow.keys_added) == 1


def test_only_real_zones_and_languages_are_taken_from_a_browser() -> None:
    from domain.said_place import known_zone, spoken_language

    assert [known_zone(z) for z in ("Europe/Vienna", "localtime", "posixrules", "right/UTC", "Factory")] == [
        "Europe/Vienna",
        None,
        None,
        None,
        None,
    ]
    assert [spoken_language(t) for t in ("de-AT", "zz", "und", "en_GB", "")] == ["de", None, None, "en", None]
