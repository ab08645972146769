"""The ports inbound handling needs: the webhook inbox, the conversation store, the reader, the unit of work."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from domain.audit import AuditTrail
from domain.consent.ledger import ConsentLedger
from domain.conversations.attachments import FileOutcome, KeptFile
from domain.conversations.csat import SurveyAnswers, SurveyDesk
from domain.conversations.desk import AgentLoad, DeskChat
from domain.conversations.model import (
    ChatReplyTarget,
    MailBounce,
    StoredWebhook,
    WebhookContents,
    WebhookDelivery,
)
from domain.conversations.newcomers import Newcomer
from domain.delivery.outbox import OutboxEntry, ReceiptResult
from domain.delivery.ports import DeliveryReceipt, InboundMessage
from domain.messages.sending import SendingUnitOfWork
from domain.transaction import Transaction
from domain.vocabulary import Availability, Channel, ChatStatus


class WebhookInbox(Protocol):
    async def add(self, delivery: WebhookDelivery, at: datetime) -> int | None:
        """Store a received webhook; None when (provider, dedupe_key) is already there."""

    async def seen(self, delivery: WebhookDelivery) -> bool:
        """Whether a webhook with this (provider, dedupe_key) is stored already, in any state."""

    async def mark_applied(self, inbox_id: int, at: datetime) -> None: ...

    async def add_applied_many(self, deliveries: Sequence[WebhookDelivery], at: datetime) -> list[int | None]:
        """Store a batch already marked applied (the caller commits only once it has applied them);
        each delivery's new id, or None when its key is already stored (before, or earlier in the batch)."""

    async def record_failure(self, delivery: WebhookDelivery, error: str, at: datetime) -> None:
        """Store (or update) the webhook as failed with `error`; used in a fresh transaction."""

    async def failed(self, limit: int) -> list[StoredWebhook]: ...

    async def claim_for_replay(self, inbox_id: int) -> bool:
        """Take a failed row for replay; False when someone else already did."""


class ConversationStore(Protocol):
    async def find_customer(self, channel: Channel, address: str) -> int | None: ...

    async def customer_language(self, customer_id: int) -> str | None:
        """The language the customer's record says they read ("de"), if any."""

    async def add_newcomer(self, newcomer: Newcomer, at: datetime) -> int | None:
        """Make the customer a first message from an unknown sender asks for (tagged), unless a concurrent
        first message from the same address made them already (their id either way); None when the address
        is a staff member's (staff are not customers, linked or not, active or not)."""

    async def link_telegram_chat(self, customer_id: int, chat_id: str) -> int | None:
        """Point the customer at this chat (unlinking anyone else); None when no such customer."""

    async def is_staff_telegram_user(self, user_id: int) -> bool: ...

    async def latest_outbound(self, customer_id: int, channel: Channel, since: datetime) -> int | None: ...

    async def record_inbound(
        self, message: InboundMessage, customer_id: int | None, replied_to: int | None
    ) -> int | None:
        """Store the message as received; None when this provider message id is already stored."""

    async def append_to_chat(
        self,
        customer_id: int,
        channel: Channel,
        communication_id: int,
        body: str,
        at: datetime,
        subject: str | None = None,
    ) -> int:
        """Add the customer's turn to their live conversation on `channel` (a snoozed or pending one
        wakes up as open), else reopen one resolved within REOPEN_WITHIN, else open a new one; its id.
        `subject` (an email's) becomes the conversation's when it has none yet."""

    async def attach_files(
        self, chat_id: int, communication_id: int, files: Sequence[FileOutcome], at: datetime
    ) -> None:
        """Store the kept files on the customer's turn for `communication_id`, and add a system turn in
        words for each file that was not kept."""

    async def chat_assignee(self, chat_id: int) -> int | None: ...

    async def agent_loads(self) -> list[AgentLoad]: ...

    async def chat_team(self, chat_id: int) -> str | None:
        """The team (the code of the customer's home clinic) the conversation belongs to, if any."""

    async def assign(self, chat_id: int, staff_id: int | None) -> None: ...

    async def note_in_open_chat(
        self, customer_id: int, channel: Channel, communication_id: int, body: str, note: str, at: datetime
    ) -> int | None:
        """Add the customer's turn and a system note to their open chat on `channel`, if there is one,
        without opening a chat or making it wait for an agent; the chat's id, or None."""

    async def mark_replied(self, communication_id: int, at: datetime) -> bool:
        """Set replied_at (once) and count the reply in the daily figures; False when already replied."""

    async def enqueue(self, entry: OutboxEntry, at: datetime) -> int | None: ...


class ReceiptSink(Protocol):
    async def apply_receipt(self, receipt: DeliveryReceipt) -> ReceiptResult: ...

    async def apply_receipts(self, receipts: Sequence[DeliveryReceipt]) -> list[ReceiptResult]: ...


class BouncedMail(Protocol):
    """Where our own mail that bounced is recorded (a scheduled report's delivery is failed by it)."""

    async def record(self, bounce: MailBounce, now: datetime) -> bool:
        """Whether the bounce was recorded against what sent the mail (False: nothing to record it on)."""


class WebhookReader(Protocol):
    """Turns a stored webhook body into domain values (the provider drivers' parsers, at the edge)."""

    def read(self, delivery: WebhookDelivery) -> WebhookContents: ...


class InboundUnitOfWork(Transaction, Protocol):
    @property
    def inbox(self) -> WebhookInbox: ...

    @property
    def conversations(self) -> ConversationStore: ...

    @property
    def consent(self) -> ConsentLedger: ...

    @property
    def outbox(self) -> ReceiptSink: ...

    @property
    def audit(self) -> AuditTrail: ...

    @property
    def csat(self) -> SurveyAnswers:
        """CSAT: a customer's message may be the answer to a resolved conversation's survey."""

    @property
    def bounced_mail(self) -> BouncedMail:
        """Our own mail to staff that bounced (a report email): recorded where it was sent from."""


class ChatReplies(Protocol):
    """A conversation as a staff reply needs it, and the reply's turn in it."""

    async def reply_target(self, chat_id: int) -> ChatReplyTarget | None: ...

    async def add_staff_turn(
        self,
        chat_id: int,
        staff_id: int,
        communication_id: int,
        body: str,
        at: datetime,
        *,
        external_ref: str | None = None,
        mirrored: bool = False,
    ) -> bool:
        """Add the reply to the conversation and note the first response; False when there is no such chat.
        `mirrored`: the turn was written in its Slack thread, so it is not posted there again."""

    async def keep_staff_file(
        self, chat_id: int, communication_id: int, file: KeptFile, at: datetime
    ) -> None:
        """Keep a file staff sent on the reply's turn (the customer opens it by its signed link)."""


class ChatReplyUnitOfWork(SendingUnitOfWork, Protocol):
    """Sending one message and adding it to the conversation in the same transaction."""

    @property
    def chats(self) -> ChatReplies: ...


class ChatDesk(Protocol):
    """The agent desk's view of conversations and agents (assignment, snooze, resolve, availability)."""

    async def chat(self, chat_id: int, *, for_update: bool = False) -> DeskChat | None: ...

    async def agent_loads(self) -> list[AgentLoad]:
        """Every active staff member who can take conversations (agent and up), with their open count."""

    async def assign(self, chat_id: int, staff_id: int | None) -> None: ...

    async def set_status(
        self,
        chat_id: int,
        status: ChatStatus,
        at: datetime,
        *,
        snoozed_until: datetime | None = None,
        resolved_by: int | None = None,
    ) -> None: ...

    async def add_system_turn(self, chat_id: int, body: str, at: datetime) -> None: ...

    async def add_note(
        self,
        chat_id: int,
        staff_id: int,
        body: str,
        at: datetime,
        *,
        external_ref: str | None = None,
        mirrored: bool = False,
        file: KeptFile | None = None,
    ) -> bool:
        """An internal note by `staff_id`, keeping `file` on it; False when `external_ref` is already stored."""

    async def set_availability(self, staff_id: int, availability: Availability) -> None: ...

    async def snoozes_over(self, now: datetime, limit: int) -> list[int]:
        """Snoozed conversations whose time has come, oldest first."""


class DeskUnitOfWork(Transaction, Protocol):
    @property
    def desk(self) -> ChatDesk: ...

    @property
    def audit(self) -> AuditTrail: ...

    @property
    def surveys(self) -> SurveyDesk | None:
        """CSAT: resolving sends the satisfaction survey through this; None: no surveys are sent."""
