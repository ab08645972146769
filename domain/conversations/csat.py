"""CSAT: the satisfaction survey a resolved conversation sends, and the customer's score (and comment) coming back.

On resolve the survey goes out on the conversation's own channel, in the resolving transaction, through the
normal send path (`queue_message`: consent, quiet hours and dedupe apply):
- SMS, Telegram and the website chat: the text "How did we do? Reply 1 (poor) to 5 (great)."; WhatsApp inside
  the 24-hour window: the same words as an interactive list message whose "Rate us" list offers 5 (Great) to
  1 (Poor) to tap (a tapped row comes back as its number; typing one works too); WhatsApp outside the window:
  the approved template `chat_csat_survey`;
- email: five one-click links to `/csat/{token}/{score}` (the token, signed with the app secret, names the
  conversation; the latest click counts while the survey is open).

The category is conversational: the survey is the last turn of a conversation the customer started, so an
opt-out stops it but marketing opt-in and caps do not apply, it may go by free-form WhatsApp inside the
window, and it is the one category the website chat carries. At most one survey per conversation.

A conversation staff opened that the customer never wrote in gets no survey.

A customer's next message on that channel that is a bare score (1-5, "5/5", "four", "⭐⭐⭐⭐") within
ANSWER_WITHIN of the survey, while the conversation is still resolved, is the answer: it is stored with the
conversation (which keeps who resolved it) and neither reopens it nor gives an agent work. A score with words
after it, standing apart or saying its scale ("4 - sehr nett, aber lange Wartezeit am Telefon", "5 stars, thanks")
is the score and its comment at once; the words then go the ordinary way, as a comment after the score does. A
number inside a sentence ("3 tablets left, please send a refill") is no score. A free-text message
within COMMENT_WITHIN after the score is kept as its comment and is also an ordinary message (it reopens the
conversation and reaches an agent: "5" then "Can I also move my appointment?" is work). Once staff have
written in the conversation after the survey (not a note), the customer is answering them, not the survey:
"2" to "1) Monday or 2) Tuesday?" is an ordinary message. Anything else is an ordinary message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from domain.audit import AuditEntry, AuditTrail
from domain.consent.model import ConsentPolicy
from domain.delivery.ports import Choice, Choices, InboundMessage
from domain.messages.sending import (
    MessageRequest,
    MessageRequestError,
    SendingUnitOfWork,
    queue_message,
)
from domain.transaction import Transaction
from domain.vocabulary import Channel, MessageCategory, MessageStatus

#: A score counts as the survey's answer within this time of the survey (the email links close then too).
ANSWER_WITHIN = timedelta(days=7)
#: A free-text message this soon after the score is the score's comment; later, an ordinary message.
COMMENT_WITHIN = timedelta(minutes=10)
#: A WhatsApp window closing sooner than this is treated as closed: the outbox may send a little later.
WINDOW_MARGIN = timedelta(minutes=5)
#: How a survey's message is known in the outbox (its request id): sent by Switchboard, not written by staff,
#: so a patient's "1" to a video reminder after it still answers the reminder (storage/video_no_shows.py).
SURVEY_REQUEST_PREFIX = "csat-chat-"
SURVEY_TEXT = "How did we do? Reply 1 (poor) to 5 (great)."
SURVEY_SUBJECT = "How did we do?"
#: Inside WhatsApp's window the survey is also a list to tap (an interactive list message); a tapped row comes
#: back as its title, a bare number that `read_score` reads like a typed one.
SURVEY_CHOICES = Choices(
    "Rate us",
    tuple(
        Choice(f"csat:{score}", str(score), words)
        for score, words in ((5, "Great"), (4, "Good"), (3, "Okay"), (2, "Not good"), (1, "Poor"))
    ),
)


#: The scale's ends in words, as the English survey says them (the email's links and the link page).
SCORE_WORDS = {1: "poor", 5: "great"}


@dataclass(frozen=True)
class SurveyPageWords:
    """The email links' page (api/csat.py) in one language. `{business}` and `{score}` are filled in."""

    language: str
    #: "4 of 5"; with a word for the scale's ends, "5 of 5 (great)".
    score: str
    score_with_word: str
    thanks: str
    rated: str
    change_hint: str
    comment_label: str
    send_comment: str
    comment_saved: str
    closed: str
    kept: str
    closed_thanks: str
    closed_title: str
    not_valid: str
    not_valid_title: str


@dataclass(frozen=True)
class SurveyWords:
    """The survey in one language: the customer's, as the WhatsApp template's variants are."""

    text: str
    subject: str
    choices: Choices
    score_words: dict[int, str]
    email_opening: str
    email_closing: str
    page: SurveyPageWords

    def score_said(self, score: int) -> str:
        """ "5 of 5 (great)", "4 of 5": a score as the page says it."""
        word = self.score_words.get(score)
        if word is None:
            return self.page.score.format(score=score)
        return self.page.score_with_word.format(score=score, word=word)


def _choices(title: str, words: tuple[str, str, str, str, str]) -> Choices:
    return Choices(
        title,
        tuple(
            Choice(f"csat:{score}", str(score), w) for score, w in zip(range(5, 0, -1), words, strict=True)
        ),
    )


SURVEY_WORDS = {
    "en": SurveyWords(
        SURVEY_TEXT,
        SURVEY_SUBJECT,
        SURVEY_CHOICES,
        SCORE_WORDS,
        "How did we do? One click is enough:",
        "The page that opens lets you add a comment if you like.",
        SurveyPageWords(
            language="en",
            score="{score} of 5",
            score_with_word="{score} of 5 ({word})",
            thanks="Thank you!",
            rated="You rated your conversation with {business} {score}.",
            change_hint="Changed your mind? Click another score in the email; the latest one counts.",
            comment_label="Anything you would like to add? (optional)",
            send_comment="Send comment",
            comment_saved="Your comment is saved. Thank you for taking the time.",
            closed="This survey has closed.",
            kept="We kept your answer, {score}.",
            closed_thanks="Thank you all the same.",
            closed_title="Survey closed",
            not_valid="This survey link is not valid.",
            not_valid_title="Link not valid",
        ),
    ),
    "de": SurveyWords(
        "Wie zufrieden waren Sie mit uns? Antworten Sie mit 1 (schlecht) bis 5 (sehr gut).",
        "Wie war es?",
        _choices("Bewerten", ("Sehr gut", "Gut", "Okay", "Nicht gut", "Schlecht")),
        {1: "schlecht", 5: "sehr gut"},
        "Wie zufrieden waren Sie mit uns? Ein Klick genügt:",
        "Auf der Seite, die sich öffnet, können Sie gern noch einen Kommentar schreiben.",
        SurveyPageWords(
            language="de",
            score="{score} von 5",
            score_with_word="{score} von 5 ({word})",
            thanks="Vielen Dank!",
            rated="Sie haben Ihr Gespräch mit {business} mit {score} bewertet.",
            change_hint=(
                "Doch anders entschieden? Klicken Sie in der E-Mail eine andere Bewertung an; "
                "es zählt die letzte."
            ),
            comment_label="Möchten Sie noch etwas hinzufügen? (freiwillig)",
            send_comment="Kommentar senden",
            comment_saved="Ihr Kommentar ist gespeichert. Danke, dass Sie sich die Zeit genommen haben.",
            closed="Diese Umfrage ist geschlossen.",
            kept="Ihre Antwort, {score}, haben wir behalten.",
            closed_thanks="Trotzdem vielen Dank.",
            closed_title="Umfrage geschlossen",
            not_valid="Dieser Link zur Umfrage ist nicht gültig.",
            not_valid_title="Link nicht gültig",
        ),
    ),
}


def survey_words(locale: str | None) -> SurveyWords:
    """The survey in the customer's language (`de`, `de_AT`), else in English."""
    return SURVEY_WORDS.get((locale or "en").replace("-", "_").split("_")[0].lower(), SURVEY_WORDS["en"])


#: The approved WhatsApp template sent when the customer's 24-hour window has closed.
SURVEY_TEMPLATE = "chat_csat_survey"
#: The public path of the email links: /csat/{token}/{score}.
CSAT_PATH = "/csat/"
MAX_COMMENT = 2000
SCORES = range(1, 6)


# --- the signed link ------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signature(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), f"csat:{payload}".encode(), hashlib.sha256).digest())


def csat_token(secret: str, chat_id: int) -> str:
    """base64url(chat id) + "." + base64url(HMAC-SHA256): names one conversation, unguessable."""
    payload = _b64(str(chat_id).encode())
    return f"{payload}.{_signature(secret, payload)}"


def read_csat_token(secret: str, token: str) -> int | None:
    """The conversation a token names, or None when it is not one we signed."""
    payload, _, signature = token.partition(".")
    if not payload or not signature or not token.isascii():
        return None
    if not hmac.compare_digest(signature, _signature(secret, payload)):
        return None
    try:
        return int(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode())
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


@dataclass(frozen=True)
class CsatLinks:
    """Makes the one-click answer links of a conversation's survey, under the app's public URL."""

    public_url: str
    secret: str = field(repr=False)

    def url(self, chat_id: int, score: int) -> str:
        return f"{self.public_url.rstrip('/')}{CSAT_PATH}{csat_token(self.secret, chat_id)}/{score}"


@dataclass(frozen=True)
class CsatPolicy:
    """Whether surveys go out (SWITCHBOARD_CSAT_SURVEYS), and what sending one needs."""

    consent: ConsentPolicy
    links: CsatLinks | None
    enabled: bool = True


# --- reading a score ------------------------------------------------------------------------------------

_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "eins": 1, "zwei": 2, "drei": 3, "vier": 4, "fünf": 5, "fuenf": 5,
    "poor": 1, "great": 5,
    "schlecht": 1, "sehr gut": 5,  # the German survey's own words for its ends
}  # fmt: skip
_STARS = frozenset("⭐★🌟")
#: A score as people write it: "4", "4/5", "4 von 5", "4 stars", "4 Sternen".
_SCALE = r"(?P<scale>\s*(?:/|of|von)\s*5)?"
_UNIT = r"(?P<unit>\s*(?:stars?|sternen?|points?|punkten?))?"
_SCORE = re.compile(rf"(?P<score>[1-5]){_SCALE}{_UNIT}")
#: A score with words after it, in one message: "4 - sehr nett, aber lange Wartezeit", "5! Thanks so much".
_SCORED_COMMENT = re.compile(
    rf"\s*{_SCORE.pattern}(?P<separator>\s*[-–—:,;!)]+\s*|\s+)(?P<comment>\S.*)",
    re.IGNORECASE | re.DOTALL,
)


def read_score(text: str) -> int | None:
    """The score a bare answer gives ("5", "4/5", "3 stars", "four", "5️⃣", "⭐⭐⭐⭐"), else None."""
    folded = unicodedata.normalize("NFKC", text).casefold().replace("\ufe0f", "").replace("\u20e3", "")
    folded = folded.strip().strip(".!?,;:)(").strip()
    if not folded or len(folded) > 20:
        return None
    if folded in _NUMBER_WORDS:
        return _NUMBER_WORDS[folded]
    stars = folded.replace(" ", "")
    if stars and set(stars) <= _STARS:
        return len(stars) if len(stars) in SCORES else None
    found = _SCORE.fullmatch(folded)
    return int(found.group(1)) if found else None


def read_scored_comment(text: str) -> tuple[int, str] | None:
    """A score followed by the customer's words in one message ("4 - sehr nett, aber lange Wartezeit am
    Telefon"): the score and the words, else None (a bare score is `read_score`'s)."""
    found = _SCORED_COMMENT.fullmatch(unicodedata.normalize("NFKC", text))
    if found is None:
        return None
    if not found["separator"].strip() and not (found["scale"] or found["unit"]):
        # "3 tablets left, please send a refill", "2 Kinder brauchen einen Termin": a number in a sentence,
        # not a score. A score stands apart ("4 - …", "5! …") or says its scale ("4/5 …", "5 stars …").
        return None
    comment = found["comment"].strip()
    if not any(character.isalpha() for character in comment):
        return None  # "4 / 5 / 3": no words, no comment
    return int(found.group(1)), comment


# --- the ports ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SurveyTarget:
    """A conversation as sending its survey needs it."""

    chat_id: int
    customer_id: int
    channel: str
    requested_at: datetime | None
    #: Whether the customer wrote in the conversation at all (one staff opened and nobody answered: no).
    customer_wrote: bool = True


@dataclass(frozen=True)
class Survey:
    """A conversation's survey and its answer so far."""

    chat_id: int
    customer_id: int
    requested_at: datetime
    score: int | None
    answered_at: datetime | None
    comment: str | None
    #: Whether staff wrote to the customer in the conversation after the survey (notes do not count).
    staff_wrote_since: bool = False
    #: The customer's language (the email links' page speaks it, as the survey did).
    locale: str | None = None


class SurveyAnswers(Protocol):
    """Surveys and their answers, in the caller's transaction (nothing here commits)."""

    async def open_survey(self, customer_id: int, channel: Channel, since: datetime) -> Survey | None:
        """The customer's latest survey on `channel` sent at or after `since` whose conversation is still
        resolved (with whether staff wrote since it went); None when there is none."""

    async def survey(self, chat_id: int) -> Survey | None:
        """The conversation's survey; None when none was sent."""

    async def record_score(self, chat_id: int, score: int, at: datetime) -> None: ...

    async def record_comment(self, chat_id: int, comment: str, at: datetime) -> None: ...

    async def add_answer_turn(
        self, chat_id: int, communication_id: int | None, body: str, note: str, at: datetime
    ) -> None:
        """The customer's answer (when it came as a message) and a system note, added to the conversation
        without reopening it or touching its status."""


class SurveyDesk(Protocol):
    """What sending a survey on resolve needs, in the resolving transaction."""

    @property
    def policy(self) -> CsatPolicy: ...

    @property
    def sending(self) -> SendingUnitOfWork:
        """The resolving transaction as a sending unit of work (the survey goes through `queue_message`)."""

    async def survey_target(self, chat_id: int) -> SurveyTarget | None: ...

    async def mark_requested(self, chat_id: int, message_id: int, body: str, at: datetime) -> None:
        """Set csat_requested_at and add the survey to the conversation as the bot's turn."""

    async def note(self, chat_id: int, body: str, at: datetime) -> None:
        """A system note in the conversation."""


class AnsweringUnitOfWork(Protocol):
    """The part of a unit of work that records answers: the surveys and the audit trail."""

    @property
    def csat(self) -> SurveyAnswers: ...

    @property
    def audit(self) -> AuditTrail: ...


class CsatUnitOfWork(AnsweringUnitOfWork, Transaction, Protocol):
    """A transaction of its own, for the email links."""


# --- sending the survey on resolve ----------------------------------------------------------------------


async def request_survey(surveys: SurveyDesk | None, chat_id: int, now: datetime) -> bool:
    """Queues the conversation's survey in the caller's transaction; False when none went (surveys off,
    one already sent, or no channel could take it, which is noted in the conversation)."""
    if surveys is None or not surveys.policy.enabled:
        return False
    target = await surveys.survey_target(chat_id)
    if target is None or target.requested_at is not None:
        return False  # one survey per conversation, however often it is resolved
    if not target.customer_wrote:
        return False  # staff opened it and the customer never answered: there is nothing to rate
    try:
        request = await _survey_request(surveys, target, now)
        result = await queue_message(
            surveys.sending, request, actor="system", via="csat", now=now, policy=surveys.policy.consent
        )
    except MessageRequestError as error:
        await surveys.note(chat_id, f"No satisfaction survey was sent: {error}.", now)
        return False
    if result.duplicate or result.message_id is None:
        return False
    if result.status is MessageStatus.SUPPRESSED:
        why = result.explanation.removeprefix("Not sent: ")
        await surveys.note(chat_id, f"No satisfaction survey was sent: {why}", now)
        return False
    await surveys.mark_requested(chat_id, result.message_id, result.preview.text, now)
    return True


async def _survey_request(surveys: SurveyDesk, target: SurveyTarget, now: datetime) -> MessageRequest:
    # The channel's own rules decide whether it can take the survey (queue_message says why not).
    channel = next((c for c in Channel if c.value == target.channel), None)
    if channel is None:
        raise MessageRequestError(f"messages cannot be sent on the {target.channel} channel")
    request_id = f"{SURVEY_REQUEST_PREFIX}{target.chat_id}"
    if channel is Channel.WHATSAPP and not await _window_open(surveys, target.customer_id, now):
        # Outside the 24-hour window only an approved template may go; it keeps its own category (utility
        # at Meta), which the row and its price take.
        return MessageRequest(target.customer_id, channel, template=SURVEY_TEMPLATE, request_id=request_id)
    found = await surveys.sending.recipients.by_ids([target.customer_id], channels=(channel,), now=now)
    words = survey_words(found[0].locale if found else None)
    body, subject = words.text, None
    if channel is Channel.EMAIL:
        links = surveys.policy.links
        if links is None:
            raise MessageRequestError(
                "the email links cannot be made (the public URL and secret are not set)"
            )
        body, subject = email_survey(links, target.chat_id, words), words.subject
    return MessageRequest(
        target.customer_id,
        channel,
        body=body,
        subject=subject,
        category=MessageCategory.CONVERSATIONAL,
        request_id=request_id,
        choices=words.choices if channel is Channel.WHATSAPP else None,
    )


async def _window_open(surveys: SurveyDesk, customer_id: int, now: datetime) -> bool:
    """Whether a free-form WhatsApp message may still go: the customer wrote within the window."""
    found = await surveys.sending.recipients.by_ids([customer_id], channels=(Channel.WHATSAPP,), now=now)
    last = found[0].last_inbound_whatsapp_at if found else None
    return last is not None and last + surveys.policy.consent.whatsapp_window - WINDOW_MARGIN > now


def email_survey(links: CsatLinks, chat_id: int, words: SurveyWords = SURVEY_WORDS["en"]) -> str:
    """The email survey: one link per score; the page that opens takes an optional comment."""
    named = words.score_words
    lines = [
        f"{score}{f' ({named[score]})' if score in named else ''}: {links.url(chat_id, score)}"
        for score in SCORES
    ]
    return f"{words.email_opening}\n\n" + "\n".join(lines) + f"\n\n{words.email_closing}"


# --- answers by message ---------------------------------------------------------------------------------


class SurveyReply(StrEnum):
    """What a customer's message was to their open survey."""

    #: The score: stored, and the message is no agent's work (nothing reopens).
    SCORE = "score"
    #: The score's comment: stored, and the message still goes the ordinary way (reopens, reaches an agent).
    COMMENT = "comment"


async def capture_survey_answer(
    uow: AnsweringUnitOfWork, customer_id: int, message: InboundMessage, communication_id: int, now: datetime
) -> SurveyReply | None:
    """Records the message as the answer to the customer's open survey on its channel. SCORE: the caller
    neither reopens nor assigns anything (the customer's turn is added here). COMMENT: only a system note is
    added here; the caller adds the customer's turn the ordinary way, which reopens and assigns. None: not
    an answer (no open survey, staff have written since it went, or not a score nor a comment)."""
    survey = await uow.csat.open_survey(customer_id, message.channel, now - ANSWER_WITHIN)
    if survey is None or survey.staff_wrote_since:
        return None
    score = read_score(message.body)
    recent = survey.answered_at is not None and now - survey.answered_at <= COMMENT_WITHIN
    scored = read_scored_comment(message.body) if score is None else None
    if scored is not None and (survey.score is None or recent):
        # The score and its comment in one message: both kept, and the words go the ordinary way (reopen,
        # reach an agent), as a comment sent after the score does: they may ask for something.
        score, comment = scored
        await uow.csat.record_score(survey.chat_id, score, now)
        await uow.csat.record_comment(survey.chat_id, comment[:MAX_COMMENT], now)
        note = f"The customer rated this conversation {score} of 5, with a comment."
        await uow.csat.add_answer_turn(survey.chat_id, None, message.body, note, now)
        reply = SurveyReply.COMMENT
    elif score is not None and (survey.score is None or recent):
        # A first score, or the customer correcting it straight away.
        await uow.csat.record_score(survey.chat_id, score, now)
        note = f"The customer rated this conversation {score} of 5."
        await uow.csat.add_answer_turn(survey.chat_id, communication_id, message.body, note, now)
        reply = SurveyReply.SCORE
    elif score is None and recent and survey.comment is None and message.body.strip():
        await uow.csat.record_comment(survey.chat_id, message.body.strip()[:MAX_COMMENT], now)
        note = "The customer added a comment to their rating."
        await uow.csat.add_answer_turn(survey.chat_id, None, message.body, note, now)
        reply = SurveyReply.COMMENT
    else:
        return None
    _audit(uow, survey, message.channel.value, score=score)
    return reply


# --- answers by the email links -------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkAnswer:
    """What a click on a survey link did: `recorded` (or changed), `unchanged`, `closed` or `unknown`.
    `locale` is the customer's (the page answers in the survey's language)."""

    outcome: str
    score: int | None = None
    comment: str | None = None
    locale: str | None = None


async def answer_by_link(uow: CsatUnitOfWork, chat_id: int, score: int, now: datetime) -> LinkAnswer:
    """A click on the email's score link: the latest click counts while the survey is open (a second click
    on the same score changes nothing; on another score, it replaces the first)."""
    if score not in SCORES:
        return LinkAnswer("unknown")
    async with uow:
        survey = await uow.csat.survey(chat_id)
        if survey is None:
            return LinkAnswer("unknown")
        if now - survey.requested_at > ANSWER_WITHIN:
            return LinkAnswer("closed", survey.score, survey.comment, survey.locale)
        if survey.score == score:
            return LinkAnswer("unchanged", score, survey.comment, survey.locale)
        await uow.csat.record_score(chat_id, score, now)
        changed = "changed their rating to" if survey.score is not None else "rated this conversation"
        await uow.csat.add_answer_turn(
            chat_id, None, "", f"The customer {changed} {score} of 5 (email link).", now
        )
        _audit(uow, survey, Channel.EMAIL.value, score=score)
        await uow.commit()
    return LinkAnswer("recorded", score, survey.comment, survey.locale)


async def comment_by_link(uow: CsatUnitOfWork, chat_id: int, comment: str, now: datetime) -> LinkAnswer:
    """The optional comment from the thank-you page; a later one replaces it while the survey is open."""
    text = comment.strip()[:MAX_COMMENT]
    async with uow:
        survey = await uow.csat.survey(chat_id)
        if survey is None or survey.score is None:
            return LinkAnswer("unknown")
        if now - survey.requested_at > ANSWER_WITHIN:
            return LinkAnswer("closed", survey.score, survey.comment, survey.locale)
        if not text or text == survey.comment:
            return LinkAnswer("unchanged", survey.score, survey.comment, survey.locale)
        await uow.csat.record_comment(chat_id, text, now)
        await uow.csat.add_answer_turn(
            chat_id, None, "", "The customer added a comment to their rating.", now
        )
        _audit(uow, survey, Channel.EMAIL.value, comment=True)
        await uow.commit()
    return LinkAnswer("recorded", survey.score, text, survey.locale)


def _audit(uow: AnsweringUnitOfWork, survey: Survey, via: str, **detail: object) -> None:
    uow.audit.record(
        AuditEntry(f"customer:{survey.customer_id}", via, "chat.csat", f"chat:{survey.chat_id}", dict(detail))
    )
