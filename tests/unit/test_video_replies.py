"""A patient's "1", "2" and letters, with fakes: what is read as an answer, the offer's words, and the replies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.delivery.outbox import OutboxEntry
from domain.delivery.ports import InboundMessage
from domain.video.booking_ports import VideoBookingUnitOfWork
from domain.video.model import ConsultationStatus
from domain.video.rebooking import (
    NO_TIMES,
    ConsultationFacts,
    RebookingPolicy,
    StoredOffer,
    offer_lines,
    read_pick,
    spread,
)
from domain.video.replies import ReplyHandled, VideoAnswer, VideoReplies, answer_video_reply, read_answer
from domain.vocabulary import Channel
from providers.video.link import PlainLinkRooms

NOW = datetime(2026, 12, 8, 8, 0, tzinfo=UTC)
FACTS = ConsultationFacts(
    consultation_id=5,
    appointment_id=9,
    customer_id=3,
    staff_id=None,  # no clinician: no times can be offered, so nothing here needs the booking use-cases
    service_id=None,
    scheduled_at=NOW + timedelta(hours=20),
    status=ConsultationStatus.SCHEDULED,
    customer_timezone="Europe/Berlin",
    customer_locale="en",
    service="Video skin consultation",
    clinician="Dr Mara Weiss",
    link_token="tok",
)


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("1", VideoAnswer.CONFIRM),
        (" 1 ", VideoAnswer.CONFIRM),
        ("１", VideoAnswer.CONFIRM),  # a full-width digit from a phone keyboard
        ("Confirm!", VideoAnswer.CONFIRM),
        ("2", VideoAnswer.OTHER_TIME),
        ("2.", VideoAnswer.OTHER_TIME),
        ("12", None),
        ("1 or 2?", None),
        ("yes please", None),
        ("", None),
    ],
)
def test_what_counts_as_an_answer(text: str, answer: VideoAnswer | None) -> None:
    assert read_answer(text) is answer


@pytest.mark.parametrize(
    ("text", "index"),
    [("A", 0), ("b", 1), (" C) ", 2), ("(a)", 0), ("B.", 1), ("D", None), ("AB", None), ("a time", None)],
)
def test_what_counts_as_a_pick(text: str, index: int | None) -> None:
    assert read_pick(text) == index


def test_offer_lines_in_the_patients_time() -> None:
    slots = [NOW + timedelta(hours=2), NOW + timedelta(hours=3), NOW + timedelta(days=1)]
    assert offer_lines(slots, "Europe/Berlin") == (
        "A) Tue 8 Dec 11:00 CET; B) Tue 8 Dec 12:00 CET; C) Wed 9 Dec 09:00 CET. Reply A, B or C to book it."
    )
    assert offer_lines(slots[:1], "America/New_York") == "A) Tue 8 Dec 05:00 EST. Reply A to book it."
    assert offer_lines(slots[:2], "UTC").endswith(". Reply A or B to book it.")
    assert offer_lines([], "UTC") == NO_TIMES
    assert offer_lines(slots[:2], "Europe/Berlin", "de").endswith(
        "MEZ. Antworten Sie A oder B, um den Termin zu buchen."
    )
    assert offer_lines(slots[:2], "Europe/Berlin", "de").startswith("A) Di., 8. Dez., 11:00 Uhr MEZ")


def test_offered_times_lie_an_hour_apart() -> None:
    free = [NOW + timedelta(minutes=5 * i) for i in range(40)]
    assert spread(free, 3) == [NOW, NOW + timedelta(hours=1), NOW + timedelta(hours=2)]
    assert spread(free[:3], 3) == [NOW]
    assert spread([], 3) == []


# --- answering, with fakes --------------------------------------------------------------------------------------


class FakeDesk:
    def __init__(self, facts: ConsultationFacts | None, prompted: bool = True) -> None:
        self.facts = facts
        self.prompted = prompted
        self.confirmed: list[int] = []
        self.offers: list[tuple[int, Sequence[datetime]]] = []

    async def consultation(
        self, consultation_id: int, *, for_update: bool = False
    ) -> ConsultationFacts | None:
        return self.facts

    def booking(self) -> VideoBookingUnitOfWork:
        raise AssertionError("no booking is needed here")

    async def add_offer(
        self, consultation_id: int, customer_id: int, channel: str, slots: Sequence[datetime], at: datetime
    ) -> int:
        self.offers.append((consultation_id, slots))
        return len(self.offers)

    async def open_offer(self, customer_id: int, since: datetime) -> StoredOffer | None:
        return None

    async def close_offer(self, offer_id: int, at: datetime, rebooked_id: int | None) -> bool:
        return True

    async def mark_offered(self, consultation_id: int, at: datetime) -> None:
        return None

    async def latest_prompted(self, customer_id: int, since: datetime) -> int | None:
        return self.facts.consultation_id if self.facts is not None and self.prompted else None

    async def confirm(self, consultation_id: int, at: datetime) -> bool:
        self.confirmed.append(consultation_id)
        return True

    async def patient_channel(self, customer_id: int) -> str:
        return "sms"

    async def add_event(
        self, event_type: str, key: str, customer_id: int, payload: Mapping[str, Any], at: datetime
    ) -> None:
        return None


class FakeStore:
    def __init__(self) -> None:
        self.sent: list[OutboxEntry] = []
        self.notes: list[str] = []

    async def enqueue(self, entry: OutboxEntry, at: datetime) -> int | None:
        self.sent.append(entry)
        return len(self.sent)

    async def note_in_open_chat(
        self, customer_id: int, channel: Channel, communication_id: int, body: str, note: str, at: datetime
    ) -> int | None:
        self.notes.append(note)
        return 1


async def answer(
    desk: FakeDesk, body: str, channel: Channel = Channel.SMS
) -> tuple[ReplyHandled | None, FakeStore]:
    replies = VideoReplies(RebookingPolicy(PlainLinkRooms("https://meet.example/{room}"), "https://sb.example"),
                           lambda _uow: desk)  # fmt: skip
    store = FakeStore()
    message = InboundMessage("twilio", channel, "SM1", "+4915100000001", "+15005550006", body, NOW)
    return await answer_video_reply(replies, object(), store, 3, message, 77, NOW), store


async def test_a_1_confirms_and_answers_with_the_link() -> None:
    desk = FakeDesk(FACTS)
    handled, store = await answer(desk, "1")
    assert handled is ReplyHandled.ANSWERED and desk.confirmed == [5]
    [reply] = store.sent
    assert reply.body == (
        "Thanks, you're confirmed for your Video skin consultation with Dr Mara Weiss on Wed 9 Dec 05:00 CET. "
        "Your link: https://sb.example/v/tok"
    )
    assert (reply.channel, reply.to_address, reply.source_ref) == (
        Channel.SMS,
        "+4915100000001",
        "video-reply:SM1",
    )
    assert store.notes == ["The patient confirmed consultation 5 (Wed 9 Dec 05:00 CET) by replying 1."]


async def test_a_2_with_no_time_to_offer_is_answered_and_reaches_an_agent() -> None:
    handled, store = await answer(FakeDesk(FACTS), "2")
    assert handled is ReplyHandled.TO_AGENT and store.notes == []
    assert store.sent[0].body.startswith("We have no free time with Dr Mara Weiss in the next two weeks.")


async def test_a_1_to_a_consultation_that_passed_says_so() -> None:
    passed = replace(FACTS, scheduled_at=NOW - timedelta(hours=1), status=ConsultationStatus.NO_SHOW)
    handled, store = await answer(FakeDesk(passed), "1")
    assert handled is ReplyHandled.TO_AGENT
    assert store.sent[0].body.startswith("That consultation has already passed")


@pytest.mark.parametrize(
    ("desk", "body", "channel"),
    [
        (FakeDesk(FACTS, prompted=False), "1", Channel.SMS),  # no recent reminder
        (FakeDesk(replace(FACTS, status=ConsultationStatus.CANCELLED)), "1", Channel.SMS),
        (FakeDesk(FACTS), "1", Channel.EMAIL),  # email replies are not answered automatically
        (FakeDesk(FACTS), "A", Channel.SMS),  # a letter with no offer open
        (FakeDesk(FACTS), "1 please call me", Channel.WHATSAPP),
    ],
)
async def test_anything_else_is_an_ordinary_message(desk: FakeDesk, body: str, channel: Channel) -> None:
    handled, store = await answer(desk, body, channel)
    assert handled is None and store.sent == [] and desk.confirmed == []


async def test_a_german_patient_is_answered_in_german() -> None:
    desk = FakeDesk(replace(FACTS, customer_locale="de"))
    handled, store = await answer(desk, "1")
    assert handled is ReplyHandled.ANSWERED
    assert store.sent[0].body == (
        "Danke, Ihr Termin (Video skin consultation) mit Dr Mara Weiss am Mi., 9. Dez., 05:00 Uhr MEZ ist bestätigt. "
        "Ihr Link: https://sb.example/v/tok"
    )
    _, store = await answer(FakeDesk(replace(FACTS, customer_locale="de")), "2")
    assert store.sent[0].body.startswith(
        "Bei Dr Mara Weiss ist in den nächsten zwei Wochen kein Termin frei."
    )
