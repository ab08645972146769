"""Receiving webhooks exactly once, handling what customers write, and replaying webhooks that failed."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from domain.audit import AuditEntry
from domain.clock import utc_now
from domain.consent.keywords import KeywordAction, interpret_keyword, keyword_language, keyword_reply
from domain.consent.ledger import ConsentChange
from domain.consent.model import ConsentPolicy
from domain.conversations.attachments import (
    AttachmentRules,
    FileOutcome,
    KeptFile,
    MediaLinks,
    MediaSource,
    with_file_link,
)
from domain.conversations.csat import SurveyReply, capture_survey_answer, request_survey
from domain.conversations.desk import (
    DeskChat,
    check_assignee,
    check_reopen,
    check_resolve,
    check_snooze,
    choose_agent,
    find_agent,
)
from domain.conversations.incoming_files import FilesByMessage, fetch_customer_files
from domain.conversations.model import (
    ERASED_CHAT,
    KEYWORD_SOURCE,
    OUTBOX_REPLY_CHANNELS,
    REPLY_WINDOW,
    ChatNotFound,
    ChatReplyTarget,
    CustomerMessage,
    InboundResult,
    ReplyRoute,
    UnknownMessage,
    WebhookDelivery,
    WebhookOutcome,
)
from domain.conversations.newcomers import newcomer, placed, sender_language
from domain.conversations.ports import ChatReplyUnitOfWork, DeskUnitOfWork, InboundUnitOfWork, WebhookReader
from domain.delivery.outbox import OutboxEntry
from domain.delivery.ports import OutboundFile
from domain.messages.sending import (
    MessagePreview,
    MessageRequest,
    MessageRequestError,
    SendingUnitOfWork,
    SendResult,
    preview_in_transaction,
    preview_message,
    queue_message,
)
from domain.messages.words import CHAT_CHANNEL_WORDS
from domain.said_place import spoken_language
from domain.video.replies import ReplyHandled, VideoReplies, answer_video_reply
from domain.vocabulary import (
    OUTBOUND_CHANNELS,
    REPLY_ONLY_CHANNELS,
    Availability,
    Channel,
    ChatStatus,
    ConsentStatus,
    MessageCategory,
    MessageSource,
    MessageStatus,
)

log = logging.getLogger(__name__)

CONSENT_FOR: dict[KeywordAction, ConsentStatus] = {
    KeywordAction.OPT_OUT: ConsentStatus.OPTED_OUT,
    KeywordAction.OPT_IN: ConsentStatus.OPTED_IN,
}


@dataclass(frozen=True)
class InboundPolicy:
    """What inbound handling needs to know about the business."""

    business_name: str
    #: The files customers send: how large they may be, and how long fetching one may take.
    attachments: AttachmentRules = field(default_factory=AttachmentRules)
    fetch_timeout_seconds: float = 8.0
    #: Video consultations: how a patient's "1", "2" or offered letter is answered; None: it is not.
    video: VideoReplies | None = None
    #: A first message from an unknown address makes a customer and opens a conversation
    #: (SWITCHBOARD_CHAT_WELCOME_NEWCOMERS); off: it is stored unowned, as before, and reaches no agent.
    welcome_newcomers: bool = True
    #: Where a first contact is taken to be, and what they read, when their address does not tell.
    business_timezone: str = "UTC"
    customer_language: str = "en"


async def receive_webhook(
    open_uow: Callable[[], InboundUnitOfWork],
    delivery: WebhookDelivery,
    reader: WebhookReader,
    policy: InboundPolicy,
    clock: Callable[[], datetime] = utc_now,
    media: MediaSource | None = None,
) -> WebhookOutcome:
    """Stores a verified webhook and applies it in one transaction, once per (provider, dedupe key).

    When applying fails, the transaction rolls back and the webhook is kept as failed in a fresh one,
    so the provider gets its 2xx (and stops retrying) and `replay_failed_webhooks` can try again.
    Files the customers sent are fetched from `media` first, outside the transaction, each within the
    policy's time limit.
    """
    now = clock()

    async def stored_already() -> bool:
        async with open_uow() as uow:
            return await uow.inbox.seen(delivery)

    files = await _files_of(delivery, reader, policy, media, stored_already)
    try:
        async with open_uow() as uow:
            inbox_id = await uow.inbox.add(delivery, now)
            if inbox_id is None:
                return WebhookOutcome(duplicate=True)
            outcome = await apply_webhook(uow, delivery, reader, policy, now, files)
            await uow.inbox.mark_applied(inbox_id, now)
            await uow.commit()
            return outcome
    except Exception as error:  # whatever went wrong, keep the webhook for replay rather than lose it
        reason = describe(error)
        log.exception(
            "webhook %s/%s %s failed: %s", delivery.provider, delivery.kind, delivery.dedupe_key, reason
        )
        async with open_uow() as uow:
            await uow.inbox.record_failure(delivery, reason, now)
            await uow.commit()
        return WebhookOutcome(failed=True, error=reason)


async def replay_failed_webhooks(
    open_uow: Callable[[], InboundUnitOfWork],
    reader: WebhookReader,
    policy: InboundPolicy,
    limit: int = 100,
    clock: Callable[[], datetime] = utc_now,
    media: MediaSource | None = None,
) -> tuple[int, int]:
    """Applies failed inbox rows again; returns (replayed, still failing)."""
    async with open_uow() as uow:
        pending = await uow.inbox.failed(limit)
    replayed = still_failing = 0
    for stored in pending:
        now = clock()
        try:
            files = await _files_of(stored.delivery, reader, policy, media)
            async with open_uow() as uow:
                if not await uow.inbox.claim_for_replay(stored.id):
                    continue
                await apply_webhook(uow, stored.delivery, reader, policy, now, files)
                await uow.inbox.mark_applied(stored.id, now)
                await uow.commit()
            replayed += 1
        except Exception as error:  # keep it failed, with the latest reason
            still_failing += 1
            log.warning("replay of webhook %s still fails: %s", stored.id, describe(error))
            async with open_uow() as uow:
                await uow.inbox.record_failure(stored.delivery, describe(error), now)
                await uow.commit()
    return replayed, still_failing


async def apply_webhook(
    uow: InboundUnitOfWork,
    delivery: WebhookDelivery,
    reader: WebhookReader,
    policy: InboundPolicy,
    now: datetime,
    files: FilesByMessage | None = None,
) -> WebhookOutcome:
    """Applies what one webhook says inside the caller's transaction (no commit here); `files` are the
    fetched (or refused) files of its messages, by provider message id."""
    contents = reader.read(delivery)
    outcome = WebhookOutcome()
    if contents.sender_user_id is not None and await uow.conversations.is_staff_telegram_user(
        contents.sender_user_id
    ):
        outcome.staff_update = True
        return outcome
    for receipt in contents.receipts:
        result = await uow.outbox.apply_receipt(receipt)
        if result.message_id is None:
            raise UnknownMessage(
                f"{receipt.provider} receipt for unknown message {receipt.provider_message_id}"
            )
        outcome.receipts_applied += int(result.applied)
    for bounce in contents.mail_bounces:
        await uow.bounced_mail.record(bounce, now)
    for message in contents.messages:
        found = (files or {}).get(message.message.provider_message_id, ())
        outcome.inbound.append(await handle_customer_message(uow, message, policy, now, found))
    return outcome


async def _files_of(
    delivery: WebhookDelivery,
    reader: WebhookReader,
    policy: InboundPolicy,
    media: MediaSource | None,
    stored_already: Callable[[], Awaitable[bool]] | None = None,
) -> dict[str, tuple[FileOutcome, ...]]:
    """The files a webhook's messages carry, fetched before the transaction opens (a download never holds
    database locks); a body that cannot be read fetches nothing (applying it fails and keeps it). A
    provider's retry of a webhook we already hold fetches nothing either: its files were kept the first
    time (or, if it failed, its replay fetches them), and it is recognised as a duplicate when applied."""
    try:
        contents = reader.read(delivery)
    except Exception:  # the same error surfaces when the webhook is applied, and is recorded there
        return {}
    if not any(message.media for message in contents.messages):
        return {}
    if stored_already is not None and await stored_already():
        return {}
    return await fetch_customer_files(
        contents.messages, media, policy.attachments, policy.fetch_timeout_seconds
    )


async def handle_customer_message(
    uow: InboundUnitOfWork,
    incoming: CustomerMessage,
    policy: InboundPolicy,
    now: datetime,
    files: tuple[FileOutcome, ...] = (),
) -> InboundResult:
    """Records what a customer wrote, acts on consent keywords, and notes it as a reply to us."""
    message = incoming.message
    store = uow.conversations
    customer_id: int | None = None
    if incoming.link_customer_id is not None:
        customer_id = await store.link_telegram_chat(incoming.link_customer_id, message.from_address)
    if customer_id is None:
        customer_id = await store.find_customer(message.channel, message.from_address)
    action = interpret_keyword(message.body)
    first_contact = False
    if (
        customer_id is None
        and action is not KeywordAction.OPT_OUT
        and policy.welcome_newcomers
        and not message.automated
    ):
        # A first message from someone we do not know makes them a customer, so an agent sees it (or, for
        # Telegram's Start button or a first START, so their opt-in is recorded and they are welcomed); a
        # STOP from a stranger does not, nor does a machine's mail (domain/conversations/newcomers.py).
        found = newcomer(message.channel, message.from_address, message.sender_name)
        if found is not None:
            found = placed(
                found,
                policy.business_timezone,
                policy.customer_language,
                said_language=message.sender_language,
            )
            customer_id = await store.add_newcomer(found, now)
            first_contact = customer_id is not None
    replied_to = None
    if customer_id is not None and action is None:
        replied_to = await store.latest_outbound(customer_id, message.channel, now - REPLY_WINDOW)
    communication_id = await store.record_inbound(message, customer_id, replied_to)
    if communication_id is None:
        return InboundResult(None, customer_id)  # already recorded: a provider retry in a new envelope
    # CSAT (domain/conversations/csat.py): a score answering a resolved conversation's survey is stored
    # there, and reopens nothing and gives no agent work; a comment is stored and still reaches an agent.
    answered_survey = (
        customer_id is not None
        and action is None
        and not message.automated  # an out-of-office is no score and no comment
        and await capture_survey_answer(uow, customer_id, message, communication_id, now)
    )
    # Video consultations (domain/video/replies.py): "1" or "2" to a reminder, or a letter picking an offered
    # time, is answered automatically and, like a score, gives no agent work.
    video_reply = (
        None
        if customer_id is None
        or action is not None
        or answered_survey
        or policy.video is None
        or message.automated
        else await answer_video_reply(policy.video, uow, store, customer_id, message, communication_id, now)
    )
    if customer_id is not None and action is None and message.automated:
        # An out-of-office reply (or a list's, or a bounce) from a known customer opens no agent work: a
        # campaign's thousands of auto-replies must not fill the queue. An open conversation shows it.
        await store.note_in_open_chat(
            customer_id, message.channel, communication_id, message.body, AUTOMATED_NOTE, now
        )
    elif (
        customer_id is not None
        and action is None
        and answered_survey is not SurveyReply.SCORE
        and video_reply is not ReplyHandled.ANSWERED
    ):
        chat_id = await store.append_to_chat(
            customer_id, message.channel, communication_id, message.body, now, message.subject
        )
        if files:
            # Kept files hang off the customer's turn; a refused one is said in a system turn after it.
            await store.attach_files(chat_id, communication_id, files, now)
        await _assign_if_unassigned(uow, chat_id)
    elif customer_id is not None and action is not None:
        # A keyword is answered automatically and is no agent's work; an agent already talking with the
        # customer sees it in the conversation, with what it changed.
        note = KEYWORD_NOTES[action].format(channel=CHANNEL_NAMES.get(message.channel, message.channel.value))
        await store.note_in_open_chat(customer_id, message.channel, communication_id, message.body, note, now)
    if replied_to is not None:
        await store.mark_replied(replied_to, now)
    if action is None:
        return InboundResult(communication_id, customer_id)
    status = CONSENT_FOR.get(action)
    if status is not None and customer_id is not None:
        await uow.consent.record(
            ConsentChange(
                customer_id=customer_id,
                channel=message.channel,
                status=status,
                source=KEYWORD_SOURCE.get(message.channel, "keyword"),
                detail=keyword_word(message.body),
                at=now,
            )
        )
    reply = keyword_reply(
        action,
        policy.business_name,
        message.channel,
        first_contact=first_contact,
        language=keyword_language(
            message.body,
            # What their record says they read, else what their number or app says (a first contact).
            spoken_language(await store.customer_language(customer_id) if customer_id is not None else None)
            or sender_language(
                message.channel, message.from_address, message.sender_language, policy.customer_language
            ),
        ),
    )
    if message.channel in OUTBOX_REPLY_CHANNELS:
        await store.enqueue(
            OutboxEntry(
                customer_id=customer_id,
                channel=message.channel,
                source=MessageSource.SYSTEM,
                source_ref=f"keyword:{message.provider_message_id}"[:64],
                category=MessageCategory.TRANSACTIONAL,
                to_address=message.from_address,
                body=reply,
                send_at=now,
                payload={"explanation": f"confirms the {action.value} keyword the customer sent"},
            ),
            now,
        )
    return InboundResult(communication_id, customer_id, action, reply)


#: An automatic reply from a known customer's mailbox, as a note in their open conversation.
AUTOMATED_NOTE = (
    "That was an automatic reply (out of office, a mailing list or a bounce), so it opened no agent work."
)
#: What a keyword did, as a note in the customer's open conversation.
KEYWORD_NOTES: dict[KeywordAction, str] = {
    KeywordAction.OPT_OUT: "The customer opted out of {channel} with a keyword; nothing more goes to them on "
    "{channel} until they opt in again. The confirmation was sent automatically.",
    KeywordAction.OPT_IN: "The customer opted in to {channel} again with a keyword; the confirmation was sent "
    "automatically.",
    KeywordAction.HELP: "The customer asked for help with a keyword; the standard help reply was sent automatically.",
}
CHANNEL_NAMES = {
    Channel.SMS: "SMS",
    Channel.WHATSAPP: "WhatsApp",
    Channel.TELEGRAM: "Telegram",
    Channel.EMAIL: "email",
}


def keyword_word(text: str) -> str:
    """The keyword as the customer sent it, normalised: "STOP", "/start"."""
    words = unicodedata.normalize("NFKC", text).split()
    if not words:
        return ""
    word = words[0]
    return (word.split("@", 1)[0].casefold() if word.startswith("/") else word.upper().rstrip(".!?"))[:255]


def describe(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{error.__class__.__name__}: {text}"[:500]


#: A conversation's channel as an agent reads it.


def reply_request(
    chat: ChatReplyTarget,
    channel: Channel | None,
    body: str,
    request_id: str,
    business_name: str,
    attachment: OutboundFile | None = None,
) -> MessageRequest:
    subject = f"Re: {chat.subject}" if chat.subject else f"Your message to {business_name}"
    return MessageRequest(
        customer_id=chat.customer_id,
        channel=channel,
        body=body,
        subject=subject,
        category=MessageCategory.CONVERSATIONAL,
        request_id=request_id,
        attachment=attachment,
        in_reply_to=chat.answers_email if channel is Channel.EMAIL else None,
    )


async def reply_route(
    uow: SendingUnitOfWork,
    chat: ChatReplyTarget,
    customer_name: str,
    business_name: str,
    now: datetime,
    policy: ConsentPolicy,
) -> ReplyRoute:
    """The channel the customer wrote on (the website chat's replies go to its widget); for a channel that
    cannot take replies, the one a conversational message to them would use. Decided as the send is."""
    request = reply_request(chat, _own_channel(chat), "…", "preview", business_name)
    try:
        preview = await preview_message(uow, request, now, policy)
    except MessageRequestError as error:
        return _unsendable(chat, error)
    return _route(chat, customer_name, preview)


async def reply_in_chat(
    uow: ChatReplyUnitOfWork,
    chat_id: int,
    *,
    staff_id: int,
    staff_email: str,
    body: str,
    request_key: str,
    business_name: str,
    now: datetime,
    policy: ConsentPolicy,
    route_uow: ChatReplyUnitOfWork | None = None,
    via: str = "web",
    external_ref: str | None = None,
    file: KeptFile | None = None,
    media_links: MediaLinks | None = None,
) -> SendResult:
    """Sends a staff reply by the conversation's reply route and adds it to the conversation, in one
    transaction with its audit row; re-sending the same form (`request_key`) sends and adds nothing new.

    `via` says where the agent wrote it (web, slack, telegram); `external_ref` names the message there
    ("slack:C1:1700000000.000100"), so a retried event is recognised and an edit or delete can be traced.

    A `file` (checked by the attachment rules) is kept on the staff turn and reaches the customer as a
    signed, expiring link from `media_links` after the words, on every channel.

    The route is decided first on `route_uow` (a read-only one in production): its preview may wait for
    a render thread, and must not hold the write transaction (on SQLite, every writer's turn) meanwhile.
    Raises ChatNotFound, or MessageRequestError when no channel can take the reply now.
    """
    async with route_uow or uow:
        chat = await _reply_target(route_uow or uow, chat_id)
        if chat.customer_erased:
            raise MessageRequestError(ERASED_CHAT)
        request = reply_request(chat, _own_channel(chat), "…", "preview", business_name)
        try:
            preview = await preview_in_transaction(route_uow or uow, request, now, policy)
        except MessageRequestError as error:
            route = _unsendable(chat, error)
        else:
            route = _route(chat, chat.customer_name or "the customer", preview)
    if not route.can_send or route.channel is None:
        raise MessageRequestError(route.note)
    outbound_file = None
    if file is not None:
        if media_links is None:
            raise MessageRequestError("Files cannot be sent from here.")
        link = media_links.link(chat_id, file.sha256, now)
        # Every channel gets the link in the words; WhatsApp also sends the file itself by that link.
        body = with_file_link(body, file, link)
        outbound_file = OutboundFile(link, file.filename, file.content_type, chat_id, file.sha256)
    async with uow:
        chat = await _reply_target(uow, chat_id)
        request = reply_request(
            chat,
            route.channel,
            body,
            f"{via}-chat-{chat_id}-{request_key}",
            business_name,
            outbound_file,
        )
        result = await queue_message(uow, request, actor=staff_email, via=via, now=now, policy=policy)
        # The queued reply joins the conversation once, however often the form is re-sent.
        if not (result.duplicate or result.status is MessageStatus.SUPPRESSED or result.message_id is None):
            await uow.chats.add_staff_turn(
                chat_id,
                staff_id,
                result.message_id,
                body,
                now,
                external_ref=external_ref,
                mirrored=via == "slack",
            )
            if file is not None:
                await uow.chats.keep_staff_file(chat_id, result.message_id, file, now)
        await uow.commit()
    return result


async def _reply_target(uow: ChatReplyUnitOfWork, chat_id: int) -> ChatReplyTarget:
    chat = await uow.chats.reply_target(chat_id)
    if chat is None:
        raise ChatNotFound(f"There is no chat {chat_id}.")
    return chat


def _own_channel(chat: ChatReplyTarget) -> Channel | None:
    # The website chat answers through its widget (REPLY_ONLY_CHANNELS), never by another channel.
    replies_on = [c.value for c in (*OUTBOUND_CHANNELS, *REPLY_ONLY_CHANNELS)]
    return Channel(chat.channel) if chat.channel in replies_on else None


def _unsendable(chat: ChatReplyTarget, error: MessageRequestError) -> ReplyRoute:
    return ReplyRoute(_own_channel(chat), f"A reply cannot be sent: {error}.", can_send=False)


def _route(chat: ChatReplyTarget, customer_name: str, preview: MessagePreview) -> ReplyRoute:
    own = _own_channel(chat)
    decision = preview.decision
    words = CHAT_CHANNEL_WORDS.get(preview.channel.value, preview.channel.value)
    if decision is not None and decision.verdict == "suppress":
        return ReplyRoute(None, f"A reply cannot go by {words} now: {decision.explanation}", can_send=False)
    if own is not None:
        note = f"Your reply goes by {words}, the channel {customer_name} wrote on."
    else:
        came_from = CHAT_CHANNEL_WORDS.get(chat.channel, chat.channel)
        note = (
            f"This conversation came from the {came_from}, which cannot take replies yet; "
            f"your reply goes by {words} to {preview.to_address}."
        )
    if decision is not None and decision.verdict == "defer" and decision.send_at is not None:
        note += f" {decision.explanation}"
    return ReplyRoute(preview.channel, note, can_send=True)


# --- the agent desk: assignment, snooze, resolve, reopen, availability --------------------------------------


async def _assign_if_unassigned(uow: InboundUnitOfWork, chat_id: int) -> None:
    """A customer's conversation nobody holds goes to the free online agent with the fewest, one of the
    customer's clinic first (audited)."""
    store = uow.conversations
    if await store.chat_assignee(chat_id) is not None:
        return
    team = await store.chat_team(chat_id)
    agent = choose_agent(await store.agent_loads(), team)
    if agent is None:
        return  # stays in the unassigned queue
    await store.assign(chat_id, agent.staff_id)
    uow.audit.record(
        AuditEntry(
            "system",
            "system",
            "chat.assign",
            f"chat:{chat_id}",
            {"staff_id": agent.staff_id, "automatic": True, "team": team, "in_team": agent.team == team},
        )
    )


@dataclass(frozen=True)
class DeskActor:
    """The staff member acting on the desk, and where they did it (slack, telegram, web, cli)."""

    staff_id: int
    email: str
    via: str


async def _desk_chat(uow: DeskUnitOfWork, chat_id: int) -> DeskChat:
    chat = await uow.desk.chat(chat_id, for_update=True)
    if chat is None:
        raise ChatNotFound(f"There is no conversation {chat_id}.")
    return chat


def _audit(uow: DeskUnitOfWork, actor: DeskActor, action: str, chat_id: int, **detail: object) -> None:
    uow.audit.record(AuditEntry(actor.email, actor.via, action, f"chat:{chat_id}", dict(detail)))


async def assign_chat(
    uow: DeskUnitOfWork, chat_id: int, actor: DeskActor, *, to: str | None = None, now: datetime
) -> DeskChat:
    """Give the conversation to `to` (an agent's email or name; None or "me": the actor), noted in the
    conversation and audited; returns it as assigned."""
    async with uow:
        chat = await _desk_chat(uow, chat_id)
        agent = check_assignee(
            chat, find_agent(await uow.desk.agent_loads(), to, actor.staff_id), to or actor.email
        )
        await uow.desk.assign(chat_id, agent.staff_id)
        await uow.desk.add_system_turn(chat_id, f"Assigned to {agent.name}.", now)
        _audit(uow, actor, "chat.assign", chat_id, staff_id=agent.staff_id)
        assigned = await _desk_chat(uow, chat_id)
        await uow.commit()
    return assigned


async def resolve_chat(uow: DeskUnitOfWork, chat_id: int, actor: DeskActor, *, now: datetime) -> DeskChat:
    async with uow:
        check_resolve(await _desk_chat(uow, chat_id))
        await uow.desk.set_status(chat_id, ChatStatus.CLOSED, now, resolved_by=actor.staff_id)
        await uow.desk.add_system_turn(chat_id, "Resolved.", now)
        _audit(uow, actor, "chat.resolve", chat_id)
        await request_survey(uow.surveys, chat_id, now)  # CSAT: the survey, in this transaction
        resolved = await _desk_chat(uow, chat_id)
        await uow.commit()
    return resolved


async def reopen_chat(uow: DeskUnitOfWork, chat_id: int, actor: DeskActor, *, now: datetime) -> DeskChat:
    async with uow:
        check_reopen(await _desk_chat(uow, chat_id))
        await uow.desk.set_status(chat_id, ChatStatus.OPEN, now)
        await uow.desk.add_system_turn(chat_id, "Reopened.", now)
        _audit(uow, actor, "chat.reopen", chat_id)
        reopened = await _desk_chat(uow, chat_id)
        await uow.commit()
    return reopened


async def snooze_chat(
    uow: DeskUnitOfWork,
    chat_id: int,
    actor: DeskActor,
    *,
    until: datetime,
    now: datetime,
    timezone: str = "UTC",
) -> DeskChat:
    """Set the conversation aside until `until`; the customer writing wakes it sooner. The note in the
    conversation gives the time in `timezone` (the business's)."""
    async with uow:
        check_snooze(await _desk_chat(uow, chat_id), until, now)
        await uow.desk.set_status(chat_id, ChatStatus.SNOOZED, now, snoozed_until=until)
        local = until.astimezone(ZoneInfo(timezone))
        # As the pages write a moment ("7 Dec 2026, 06:21"), with the zone for a thread read elsewhere.
        await uow.desk.add_system_turn(chat_id, f"Snoozed until {local.day} {local:%b %Y, %H:%M %Z}.", now)
        _audit(uow, actor, "chat.snooze", chat_id, until=until.isoformat())
        snoozed = await _desk_chat(uow, chat_id)
        await uow.commit()
    return snoozed


async def take_if_unassigned(uow: DeskUnitOfWork, chat_id: int, actor: DeskActor, *, now: datetime) -> bool:
    """The agent who answered a conversation nobody held now holds it (noted and audited); False when it was
    held already, or is resolved."""
    async with uow:
        chat = await _desk_chat(uow, chat_id)
        if chat.assigned_staff_id is not None or chat.status is ChatStatus.CLOSED:
            return False
        agent = find_agent(await uow.desk.agent_loads(), None, actor.staff_id)
        if agent is None:
            return False
        await uow.desk.assign(chat_id, actor.staff_id)
        await uow.desk.add_system_turn(chat_id, f"{agent.name} took the conversation by answering it.", now)
        _audit(uow, actor, "chat.assign", chat_id, staff_id=actor.staff_id, by_answering=True)
        await uow.commit()
    return True


async def add_note(
    uow: DeskUnitOfWork,
    chat_id: int,
    actor: DeskActor,
    body: str,
    *,
    now: datetime,
    external_ref: str | None = None,
    file: KeptFile | None = None,
) -> bool:
    """An internal note in the conversation, with a `file` kept on it if given (checked by the attachment
    rules before): staff see it in the inbox and the Slack thread, the customer never does. False when
    `external_ref` is already stored (a retried Slack event): nothing is added."""
    text = body.strip()
    if not text and file is None:
        raise MessageRequestError("A note needs some text or a file.")
    # A file alone reads as its name, as a customer's file alone does.
    shown = text or (f"[file: {file.filename}]" if file is not None else "")
    async with uow:
        if (await _desk_chat(uow, chat_id)).customer_erased:
            raise MessageRequestError(ERASED_CHAT)
        added = await uow.desk.add_note(
            chat_id,
            actor.staff_id,
            shown,
            now,
            external_ref=external_ref,
            mirrored=actor.via == "slack",
            file=file,
        )
        if not added:
            return False
        _audit(uow, actor, "chat.note", chat_id, **({"file": file.filename} if file else {}))
        await uow.commit()
    return True


async def set_availability(uow: DeskUnitOfWork, actor: DeskActor, availability: Availability) -> None:
    """`away` / `back`: whether automatic assignment gives this agent new conversations."""
    async with uow:
        await uow.desk.set_availability(actor.staff_id, availability)
        uow.audit.record(
            AuditEntry(
                actor.email,
                actor.via,
                "staff.availability",
                f"staff:{actor.staff_id}",
                {"availability": availability.value},
            )
        )
        await uow.commit()


async def wake_snoozed_chats(uow: DeskUnitOfWork, now: datetime, *, limit: int = 500) -> int:
    """The worker's pass: snoozed conversations whose time has come are open again (noted, not audited:
    nobody acted); returns how many woke."""
    async with uow:
        due = await uow.desk.snoozes_over(now, limit)
        for chat_id in due:
            await uow.desk.set_status(chat_id, ChatStatus.OPEN, now)
            await uow.desk.add_system_turn(chat_id, "The snooze is over.", now)
        await uow.commit()
    return len(due)
