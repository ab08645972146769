"""The words every part of Switchboard shares: channels, roles and the statuses things move through."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    """A way of reaching a customer."""

    SMS = "sms"
    EMAIL = "email"
    WHATSAPP = "whatsapp"
    TELEGRAM = "telegram"
    CHAT = "chat"
    VIDEO = "video"


#: Channels whose providers say when a message was read: WhatsApp's read receipts and the website's chat widget.
#: SMS, Telegram's Bot API and email (opens are not tracked: no tracking pixel) never do, so their "read"
#: is not a figure at all, and pages show it as not reported rather than as 0.
READ_REPORTED: frozenset[str] = frozenset({"whatsapp", "chat"})

#: Channels that messages can be pushed out on through a provider.
OUTBOUND_CHANNELS: tuple[Channel, ...] = (Channel.SMS, Channel.EMAIL, Channel.WHATSAPP, Channel.TELEGRAM)

#: Channels that carry only replies in a conversation the customer started: the website chat's widget.
REPLY_ONLY_CHANNELS: tuple[Channel, ...] = (Channel.CHAT,)


class Provider(StrEnum):
    TWILIO = "twilio"
    SMTP = "smtp"
    WHATSAPP_CLOUD = "whatsapp_cloud"
    TELEGRAM = "telegram"
    INTERNAL = "internal"


PROVIDER_FOR_CHANNEL: dict[Channel, Provider] = {
    Channel.SMS: Provider.TWILIO,
    Channel.EMAIL: Provider.SMTP,
    Channel.WHATSAPP: Provider.WHATSAPP_CLOUD,
    Channel.TELEGRAM: Provider.TELEGRAM,
    Channel.CHAT: Provider.INTERNAL,
    Channel.VIDEO: Provider.INTERNAL,
}


class Role(StrEnum):
    """A staff member's role; each role can do everything the ones after it can."""

    ADMIN = "admin"
    MANAGER = "manager"
    AGENT = "agent"
    VIEWER = "viewer"


ROLE_RANK: dict[Role, int] = {Role.VIEWER: 0, Role.AGENT: 1, Role.MANAGER: 2, Role.ADMIN: 3}


def role_allows(role: Role, required: Role) -> bool:
    return ROLE_RANK[role] >= ROLE_RANK[required]


class Direction(StrEnum):
    OUTBOUND = "outbound"
    INBOUND = "inbound"


class MessageCategory(StrEnum):
    """Why a message is sent; transactional messages may bypass marketing caps, never an opt-out."""

    MARKETING = "marketing"
    TRANSACTIONAL = "transactional"
    CONVERSATIONAL = "conversational"


class MessageSource(StrEnum):
    MANUAL = "manual"
    CAMPAIGN = "campaign"
    NOTIFICATION = "notification"
    REPLY = "reply"
    CHAT = "chat"
    SYSTEM = "system"


class MessageStatus(StrEnum):
    """Where a message is on its way. Terminal ones never change again except for later provider receipts."""

    PLANNED = "planned"  # in the outbox, waiting for its time
    SENDING = "sending"  # claimed by a worker, provider call under way
    QUEUED = "queued"  # accepted by the provider
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"  # provider reported failure after acceptance
    UNDELIVERED = "undelivered"
    DEAD = "dead"  # we gave up: permanent error or retries exhausted
    SUPPRESSED = "suppressed"  # a rule decided not to send (reason recorded)
    CANCELLED = "cancelled"
    RECEIVED = "received"  # inbound from a customer


#: Order in which provider receipts advance a message; a receipt never moves a message backwards.
STATUS_PROGRESS: dict[MessageStatus, int] = {
    MessageStatus.PLANNED: 0,
    MessageStatus.SENDING: 1,
    MessageStatus.QUEUED: 2,
    MessageStatus.SENT: 3,
    MessageStatus.DELIVERED: 4,
    MessageStatus.READ: 5,
    MessageStatus.UNDELIVERED: 6,
    MessageStatus.FAILED: 6,
}


class ConsentStatus(StrEnum):
    OPTED_IN = "opted_in"
    OPTED_OUT = "opted_out"


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class OrderStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


class AppointmentStatus(StrEnum):
    BOOKED = "booked"
    CONFIRMED = "confirmed"
    COMPLETED = "completed"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"


class AppointmentKind(StrEnum):
    IN_PERSON = "in_person"
    VIDEO = "video"


class ChatStatus(StrEnum):
    """A conversation's state. CLOSED is what staff are shown as "resolved"."""

    OPEN = "open"
    PENDING = "pending"  # answered, waiting on the customer
    SNOOZED = "snoozed"  # set aside until a time; the customer writing wakes it
    CLOSED = "closed"


class Availability(StrEnum):
    """Whether an agent takes new conversations (set with `away`/`back`, in the web inbox or Telegram)."""

    ONLINE = "online"
    AWAY = "away"


class SalesChannel(StrEnum):
    """Where an order came from."""

    WEB = "web"
    IN_CLINIC = "in_clinic"
    PHONE = "phone"
    SMS = "sms"
    EMAIL = "email"
    WHATSAPP = "whatsapp"
    TELEGRAM = "telegram"
    CHAT = "chat"
