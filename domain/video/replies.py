"""A patient's answers by message: "1" confirms the consultation they were reminded of, "2" asks for other
times, and "A", "B" or "C" books one of the times offered.

Answered automatically on SMS, WhatsApp and Telegram, in the inbound transaction, like a CSAT score: the
reply goes back on the channel the patient wrote on, the answer is noted in an open conversation, and no
agent gets work, except when no time could be offered (then an agent sees the "2" as an ordinary message).
A "1" or "2" answers the consultation the patient was last reminded of (or told was booked or moved) within
ANSWER_WITHIN; a "2" after it has passed is offered new times too. Anything else is an ordinary message.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from domain.delivery.outbox import OutboxEntry
from domain.delivery.ports import InboundMessage
from domain.video.booking import patient_link, time_in
from domain.video.model import ACTIVE_STATUSES, ConsultationStatus
from domain.video.rebooking import (
    OFFER_VALID,
    ConsultationFacts,
    RebookingDesk,
    RebookingPolicy,
    make_offer,
    offer_lines,
    patient_says,
    read_pick,
    take_pick,
)
from domain.vocabulary import Channel, MessageCategory, MessageSource

#: A "1" or "2" answers a reminder (or booking message) sent this recently.
ANSWER_WITHIN = timedelta(days=2)
ANSWERING_CHANNELS = (Channel.SMS, Channel.WHATSAPP, Channel.TELEGRAM)
CONFIRM_WORDS = frozenset({"1", "1.", "1)", "confirm"})
OTHER_TIME_WORDS = frozenset({"2", "2.", "2)"})


class VideoAnswer(StrEnum):
    CONFIRM = "confirm"
    OTHER_TIME = "other_time"


def read_answer(text: str) -> VideoAnswer | None:
    """ "1" (or "confirm") confirms; "2" asks for another time; anything else is no answer."""
    folded = unicodedata.normalize("NFKC", text).strip().casefold().rstrip("!")
    if folded in CONFIRM_WORDS:
        return VideoAnswer.CONFIRM
    if folded in OTHER_TIME_WORDS:
        return VideoAnswer.OTHER_TIME
    return None


class ReplyHandled(StrEnum):
    """What the caller does with the message after the automatic reply."""

    #: Answered; no agent work (the message and a note sit in an open conversation, if there is one).
    ANSWERED = "answered"
    #: Answered, and an agent should see it too (no time could be offered).
    TO_AGENT = "to_agent"


class ReplyOutbox(Protocol):
    """The inbound transaction's conversation store, as far as answering needs it."""

    async def enqueue(self, entry: OutboxEntry, at: datetime) -> int | None: ...

    async def note_in_open_chat(
        self, customer_id: int, channel: Channel, communication_id: int, body: str, note: str, at: datetime
    ) -> int | None: ...


@dataclass(frozen=True)
class VideoReplies:
    """What answering needs: the rooms and public address (booking), and the rebooking desk of the inbound
    transaction (built by the composition root from the inbound unit of work)."""

    policy: RebookingPolicy
    desk_for: Callable[[Any], RebookingDesk]


@dataclass(frozen=True)
class _Answer:
    text: str
    note: str
    handled: ReplyHandled = ReplyHandled.ANSWERED


async def answer_video_reply(
    replies: VideoReplies,
    inbound_uow: Any,
    store: ReplyOutbox,
    customer_id: int,
    message: InboundMessage,
    communication_id: int,
    now: datetime,
) -> ReplyHandled | None:
    """Answers the message when it is a patient's "1", "2" or offered letter (see the module); None: it is
    not one, and goes the ordinary way."""
    if message.channel not in ANSWERING_CHANNELS:
        return None
    answer = read_answer(message.body)
    pick = read_pick(message.body) if answer is None else None
    if answer is None and pick is None:
        return None
    desk = replies.desk_for(inbound_uow)
    found: _Answer | None
    if pick is not None:
        found = await _answer_pick(desk, replies.policy, customer_id, pick, message.channel, now)
    else:
        assert answer is not None
        found = await _answer_reminder(desk, replies.policy, customer_id, answer, message.channel, now)
    if found is None:
        return None
    await store.enqueue(
        OutboxEntry(
            customer_id=customer_id,
            channel=message.channel,
            source=MessageSource.SYSTEM,
            source_ref=f"video-reply:{message.provider_message_id}"[:64],
            category=MessageCategory.TRANSACTIONAL,
            to_address=message.from_address,
            body=found.text,
            send_at=now,
            payload={"explanation": "answers the patient's reply about their video consultation"},
        ),
        now,
    )
    if found.handled is ReplyHandled.ANSWERED:
        await store.note_in_open_chat(
            customer_id, message.channel, communication_id, message.body, found.note, now
        )
    return found.handled


async def _answer_reminder(
    desk: RebookingDesk,
    policy: RebookingPolicy,
    customer_id: int,
    answer: VideoAnswer,
    channel: Channel,
    now: datetime,
) -> _Answer | None:
    consultation_id = await desk.latest_prompted(customer_id, now - ANSWER_WITHIN)
    facts = None if consultation_id is None else await desk.consultation(consultation_id, for_update=True)
    if facts is None or facts.status is ConsultationStatus.CANCELLED:
        return None  # nothing to answer: an ordinary message
    ahead = facts.status in ACTIVE_STATUSES and facts.scheduled_at > now
    when = time_in(facts.scheduled_at, facts.customer_timezone, facts.customer_locale)
    locale = facts.customer_locale
    if answer is VideoAnswer.CONFIRM:
        if not ahead:
            return _Answer(
                patient_says(locale, "passed"),
                f"The patient answered {answer.value} to the consultation of {when}, which has passed.",
                ReplyHandled.TO_AGENT,
            )
        await desk.confirm(facts.consultation_id, now)
        link = patient_link(policy.public_url, facts.link_token)
        text = patient_says(locale, "confirmed", service=facts.service, clinician=facts.clinician, when=when)
        return _Answer(
            text + (patient_says(locale, "link", link=link) if link else ""),
            f"The patient confirmed consultation {facts.consultation_id} ({when}) by replying 1.",
        )
    return await _offer_other_times(desk, facts, channel, ahead, when, now)


async def _offer_other_times(
    desk: RebookingDesk, facts: ConsultationFacts, channel: Channel, ahead: bool, when: str, now: datetime
) -> _Answer:
    offer_id, slots = await make_offer(desk, facts, channel.value, now)
    locale = facts.customer_locale
    lines = offer_lines(slots, facts.customer_timezone, locale)
    if offer_id is None:
        return _Answer(
            patient_says(locale, "no_times", clinician=facts.clinician, lines=lines),
            f"The patient asked for another time than {when} (replied 2); no free time could be offered.",
            ReplyHandled.TO_AGENT,
        )
    return _Answer(
        patient_says(
            locale, "other_times" if ahead else "passed_times", clinician=facts.clinician, lines=lines
        ),
        f"The patient asked for another time than {when} (replied 2) and was offered {len(slots)} new times.",
    )


async def _answer_pick(
    desk: RebookingDesk,
    policy: RebookingPolicy,
    customer_id: int,
    index: int,
    channel: Channel,
    now: datetime,
) -> _Answer | None:
    offer = await desk.open_offer(customer_id, now - OFFER_VALID)
    if offer is None:
        return None  # a bare letter with no offer open: an ordinary message
    outcome = await take_pick(desk, offer, index, channel.value, policy, now)
    handled = (
        ReplyHandled.ANSWERED if outcome.booked_id is not None or outcome.slots else ReplyHandled.TO_AGENT
    )
    return _Answer(outcome.text, outcome.note, handled)
