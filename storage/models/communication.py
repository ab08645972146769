"""Communication tables: channels, templates, the message outbox and history, chats, consent, campaigns."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from domain.vocabulary import (
    CampaignStatus,
    Channel,
    ChatStatus,
    ConsentStatus,
    Direction,
    MessageCategory,
    MessageSource,
    MessageStatus,
    Provider,
)
from storage.models.base import Base, BigId, Json, one_of, utcnow

CHANNELS = [c.value for c in Channel]


class CommunicationChannel(Base):
    """A configured channel and the provider behind it, with its pacing and price."""

    __tablename__ = "communication_channels"
    __table_args__ = (
        CheckConstraint(one_of("channel", CHANNELS), name="channel_known"),
        CheckConstraint(one_of("provider", [p.value for p in Provider]), name="provider_known"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), unique=True)
    provider: Mapped[str] = mapped_column(String(32))
    display_name: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    rate_limit_per_second: Mapped[float] = mapped_column(default=10.0)
    unit_cost_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    settings: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MessageTemplate(Base):
    """One variant (channel + locale) of a named template; variables are declared and validated on save."""

    __tablename__ = "message_templates"
    __table_args__ = (
        UniqueConstraint("name", "channel", "locale"),
        CheckConstraint(one_of("channel", CHANNELS), name="channel_known"),
        CheckConstraint(one_of("category", [c.value for c in MessageCategory]), name="category_known"),
        CheckConstraint(one_of("status", ["draft", "active", "archived"]), name="status_known"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    locale: Mapped[str] = mapped_column(String(16), default="en")
    category: Mapped[str] = mapped_column(String(16), default=MessageCategory.TRANSACTIONAL.value)
    status: Mapped[str] = mapped_column(String(16), default="active")
    subject: Mapped[str | None] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)
    variables: Mapped[list[Any]] = mapped_column(Json, default=list)
    whatsapp_name: Mapped[str | None] = mapped_column(String(128))
    whatsapp_language: Mapped[str | None] = mapped_column(String(16))
    whatsapp_params: Mapped[list[Any]] = mapped_column(Json, default=list)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MessageTemplateVersion(Base):
    """What a template variant said at each version, kept on every save so an edit can be compared and undone."""

    __tablename__ = "message_template_versions"
    __table_args__ = (UniqueConstraint("template_id", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("message_templates.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    category: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str | None] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)
    variables: Mapped[list[Any]] = mapped_column(Json, default=list)
    whatsapp_name: Mapped[str | None] = mapped_column(String(128))
    whatsapp_language: Mapped[str | None] = mapped_column(String(16))
    whatsapp_params: Mapped[list[Any]] = mapped_column(Json, default=list)
    saved_by: Mapped[str | None] = mapped_column(String(254))
    saved_at: Mapped[datetime] = mapped_column(default=utcnow)


#: Messages that did not reach the customer (the channel pages list the latest; storage.queries.channels).
FAILED_MESSAGES = "status IN ('failed', 'undelivered', 'dead')"


class CustomerCommunication(Base):
    """Every message in or out: the durable outbox for outbound ones and the history of all.

    Sized for tens of millions of rows: narrow columns, and indexes only for the claim query,
    the per-customer timeline, per-campaign progress and the provider-receipt lookup. On PostgreSQL it is
    partitioned by month of `created_at` (migration 0020, storage/partitions.py), and its two unique keys
    are kept in key tables by a trigger, since a partitioned table's unique keys must hold `created_at`.
    """

    __tablename__ = "customer_communications"
    __table_args__ = (
        CheckConstraint(one_of("channel", CHANNELS), name="channel_known"),
        CheckConstraint(one_of("direction", [d.value for d in Direction]), name="direction_known"),
        CheckConstraint(one_of("status", [s.value for s in MessageStatus]), name="status_known"),
        CheckConstraint(one_of("source", [s.value for s in MessageSource]), name="source_known"),
        CheckConstraint(one_of("category", [c.value for c in MessageCategory]), name="category_known"),
        UniqueConstraint("idempotency_key"),
        UniqueConstraint("provider", "provider_message_id"),
        Index("ix_customer_communications_due", "status", "next_attempt_at"),
        Index("ix_customer_communications_customer", "customer_id", "created_at"),
        Index("ix_customer_communications_campaign", "campaign_id", "status"),
        Index("ix_customer_communications_created_at", "created_at"),
        # Retries (an in-doubt send waiting for its receipt, a backed-off error) are claimed before the
        # backlog; this small index finds them without walking a million planned campaign rows.
        # The channel pages' latest failures: the failed messages alone, by channel and when they failed.
        Index(
            "ix_customer_communications_failures",
            "channel",
            text("coalesce(failed_at, created_at)"),
            sqlite_where=text(FAILED_MESSAGES),
            postgresql_where=text(FAILED_MESSAGES),
        ),
        Index(
            "ix_customer_communications_retry_due",
            "next_attempt_at",
            sqlite_where=text("status = 'planned' AND attempts > 0"),
            postgresql_where=text("status = 'planned' AND attempts > 0"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    channel: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(32))
    direction: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(String(16))
    source_ref: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(16), default=MessageCategory.TRANSACTIONAL.value)
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    template_id: Mapped[int | None] = mapped_column(ForeignKey("message_templates.id"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("bulk_messaging.id"))
    to_address: Mapped[str] = mapped_column(String(254))
    from_address: Mapped[str | None] = mapped_column(String(254))
    subject: Mapped[str | None] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any] | None] = mapped_column(Json)
    status: Mapped[str] = mapped_column(String(16))
    status_reason: Mapped[str | None] = mapped_column(String(255))
    error_code: Mapped[str | None] = mapped_column(String(32))
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    #: Which daily figures this message is counted in (storage.message_feed.FIGURE_BITS), so each once.
    counted: Mapped[int] = mapped_column(SmallInteger, default=0, server_default=text("0"))
    next_attempt_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None]
    #: When the claim's worker began the provider call (set only where receipts cannot confirm a send:
    #: email, Telegram). A claim that ran out without it was never sent, so it goes back to the outbox.
    handed_over_at: Mapped[datetime | None]
    segments: Mapped[int | None] = mapped_column(SmallInteger)
    encoding: Mapped[str | None] = mapped_column(String(8))
    cost_micros: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    replied_at: Mapped[datetime | None]


class MessageStatusEvent(Base):
    """The status history of one message, one row per change (a provider receipt or our own step).

    On PostgreSQL it is partitioned by month of its message's creation time, like the messages (migration
    0020), and refers to its message without a foreign key (one would have to name (id, created_at)).
    """

    __tablename__ = "message_status_events"
    __table_args__ = (
        Index("ix_message_status_events_message", "communication_id", "occurred_at"),
        # One row per (message, status, source): a retried receipt is applied once. The message's creation
        # time adds nothing to the key but is the column PostgreSQL partitions by.
        UniqueConstraint(
            "communication_id", "message_created_at", "status", "source", name="uq_message_status_events_once"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    communication_id: Mapped[int] = mapped_column(
        ForeignKey("customer_communications.id", ondelete="CASCADE")
    )
    #: The message's `created_at` (storage.outbox fills it from the message).
    message_created_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(32), default="outbox")
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    error_code: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(String(500))


class AutomatedNotification(Base):
    """A rule: when EVENT happens, send TEMPLATE on the customer's preferred channel."""

    __tablename__ = "automated_notifications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    event_type: Mapped[str] = mapped_column(String(64), index=True)
    template_name: Mapped[str] = mapped_column(String(64))
    channel_order: Mapped[list[Any]] = mapped_column(Json, default=list)
    offset_minutes: Mapped[int] = mapped_column(Integer, default=0)
    category: Mapped[str] = mapped_column(String(16), default=MessageCategory.TRANSACTIONAL.value)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChatSession(Base):
    __tablename__ = "chat_sessions"
    __table_args__ = (
        CheckConstraint(one_of("status", [s.value for s in ChatStatus]), name="status_known"),
        CheckConstraint("csat_score IS NULL OR csat_score BETWEEN 1 AND 5", name="csat_range"),
        Index("ix_chat_sessions_started_at", "started_at"),
        Index("ix_chat_sessions_customer", "customer_id", "started_at"),
        Index("ix_chat_sessions_status", "status", "last_message_at"),
        # The overview's latest resolved conversations (migration 0014).
        Index("ix_chat_sessions_status_started", "status", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=ChatStatus.OPEN.value)
    assigned_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    subject: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    first_response_at: Mapped[datetime | None]
    last_message_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    csat_score: Mapped[int | None] = mapped_column(SmallInteger)
    #: A snoozed conversation comes back at this time, or when the customer writes.
    snoozed_until: Mapped[datetime | None] = mapped_column(default=None)
    resolved_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), default=None)
    #: CSAT: when the survey went out, when the customer answered, and what they added in words.
    csat_requested_at: Mapped[datetime | None] = mapped_column(default=None)
    csat_answered_at: Mapped[datetime | None] = mapped_column(default=None)
    csat_comment: Mapped[str | None] = mapped_column(Text, default=None)
    #: When a resolved conversation was last reopened: its SLA clocks start again from then.
    reopened_at: Mapped[datetime | None] = mapped_column(default=None)


class ChatMessage(Base):
    __tablename__ = "chat_messages"
    __table_args__ = (
        CheckConstraint(one_of("author", ["customer", "staff", "bot", "system"]), name="author_known"),
        Index("ix_chat_messages_session", "session_id", "created_at"),
        Index("ix_chat_messages_mirrored_at", "mirrored_at"),
        Index("ix_chat_messages_telegram_posted_at", "telegram_posted_at"),
        # The conversation retention pass walks turns by age (storage/retention.py).
        Index("ix_chat_messages_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("chat_sessions.id", ondelete="CASCADE"))
    author: Mapped[str] = mapped_column(String(16))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    communication_id: Mapped[int | None] = mapped_column(ForeignKey("customer_communications.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: An internal note between staff: shown in the inbox and the Slack thread, never sent to the customer.
    is_note: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    #: Where a staff turn was written outside Switchboard ("slack:C123:1700000000.000100"): a retried
    #: event finds it already stored and sends nothing twice.
    external_ref: Mapped[str | None] = mapped_column(String(96), unique=True, default=None)
    #: When the turn was posted to the conversation's Slack thread (None: not yet).
    mirrored_at: Mapped[datetime | None] = mapped_column(default=None)
    #: The delivery status of a staff reply last echoed in the Slack thread (delivered, read, failed).
    echoed_status: Mapped[str | None] = mapped_column(String(16), default=None)
    #: When the turn was sent to the agents' Telegram chats with the staff bot (None: not yet).
    telegram_posted_at: Mapped[datetime | None] = mapped_column(default=None)
    #: The delivery status of a staff reply written in Telegram last told to its agent there (migration 0022).
    telegram_echoed_status: Mapped[str | None] = mapped_column(String(16), default=None)


class VideoConsultation(Base):
    """A consultation held in a video room: its window, the room, the links patient and clinician use.

    `link_token` and `clinician_token` are the unguessable parts of `/v/TOKEN`; Switchboard redirects into
    the room only inside the window and records each join. `version` grows with every reschedule, so the
    reminders planned for an earlier time are recognised and cancelled.
    """

    __tablename__ = "video_consultations"
    __table_args__ = (
        CheckConstraint(
            one_of(
                "status",
                [
                    "scheduled",
                    "confirmed",
                    "waiting",
                    "in_progress",
                    "completed",
                    "no_show",
                    "cancelled",
                    "clinician_absent",
                ],
            ),
            name="status_known",
        ),
        Index("ix_video_consultations_scheduled_at", "scheduled_at"),
        Index("ix_video_consultations_staff", "staff_id", "scheduled_at"),
        Index("ix_video_consultations_customer", "customer_id", "scheduled_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointments.id"), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    room_url: Mapped[str] = mapped_column(String(255))
    scheduled_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: How long the consultation is booked for; the window the link opens in is derived from it.
    duration_minutes: Mapped[int] = mapped_column(Integer, default=30, server_default=text("30"))
    #: The room's name at the video provider (one room per consultation).
    room_name: Mapped[str | None] = mapped_column(String(96), default=None)
    #: The patient's link token (`/v/TOKEN`), unguessable and unique.
    link_token: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    #: The clinician's own link token: joins as moderator.
    clinician_token: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    #: Grows with each reschedule; reminders are keyed by it.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    confirmed_at: Mapped[datetime | None] = mapped_column(default=None)
    patient_joined_at: Mapped[datetime | None] = mapped_column(default=None)
    clinician_joined_at: Mapped[datetime | None] = mapped_column(default=None)
    #: When the consultation was marked no-show, and by whom ("system" for the watcher, or a staff email).
    no_show_at: Mapped[datetime | None] = mapped_column(default=None)
    no_show_by: Mapped[str | None] = mapped_column(String(254), default=None)
    #: When the patient was offered a new time after a no-show or a "2" reply (None: not yet).
    rebook_offered_at: Mapped[datetime | None] = mapped_column(default=None)


class CommunicationPreference(Base):
    """A customer's standing preferences: preferred channel, quiet hours, marketing frequency cap."""

    __tablename__ = "communication_preferences"
    __table_args__ = (
        CheckConstraint(
            "preferred_channel IS NULL OR " + one_of("preferred_channel", CHANNELS), name="channel_known"
        ),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    preferred_channel: Mapped[str | None] = mapped_column(String(16))
    quiet_hours_start: Mapped[time | None] = mapped_column(Time)
    quiet_hours_end: Mapped[time | None] = mapped_column(Time)
    marketing_max_per_week: Mapped[int | None] = mapped_column(SmallInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ConsentRecord(Base):
    """The consent ledger: every opt-in and opt-out with its source, appended and never overwritten."""

    __tablename__ = "consent_records"
    __table_args__ = (
        CheckConstraint(one_of("status", [s.value for s in ConsentStatus]), name="status_known"),
        CheckConstraint(one_of("channel", CHANNELS), name="channel_known"),
        Index("ix_consent_records_customer", "customer_id", "channel", "recorded_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(String(255))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class CustomerConsent(Base):
    """The current consent per customer and channel, kept in step with the ledger in the same transaction."""

    __tablename__ = "customer_consents"
    __table_args__ = (
        CheckConstraint(one_of("status", [s.value for s in ConsentStatus]), name="status_known"),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(32))
    record_id: Mapped[int] = mapped_column(ForeignKey("consent_records.id"))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class BulkMessaging(Base):
    """A campaign: an audience, a template, a channel order with fallback, a schedule and its progress."""

    __tablename__ = "bulk_messaging"
    __table_args__ = (
        CheckConstraint(one_of("status", [s.value for s in CampaignStatus]), name="status_known"),
        CheckConstraint(one_of("category", [c.value for c in MessageCategory]), name="category_known"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=CampaignStatus.DRAFT.value)
    category: Mapped[str] = mapped_column(String(16), default=MessageCategory.MARKETING.value)
    template_name: Mapped[str] = mapped_column(String(64))
    channel_order: Mapped[list[Any]] = mapped_column(Json, default=list)
    fallback_after_minutes: Mapped[int | None] = mapped_column(Integer)
    audience: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    variables: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    respect_quiet_hours: Mapped[bool] = mapped_column(Boolean, default=True)
    scheduled_at: Mapped[datetime | None]
    planning_cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    planning_done: Mapped[bool] = mapped_column(Boolean, default=False)
    planned_count: Mapped[int] = mapped_column(Integer, default=0)
    excluded_count: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    launched_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]


class CommunicationAnalytics(Base):
    """Daily communication figures per channel, provider, campaign and template, kept current as statuses arrive.

    Empty campaign/template keys are 0 rather than NULL so the unique key works on both engines.
    """

    __tablename__ = "communication_analytics"
    __table_args__ = (
        UniqueConstraint("day", "channel", "provider", "campaign_id", "template_id"),
        # The campaign list sums each campaign's handed-over messages ("sent") from these rows.
        Index("ix_communication_analytics_campaign", "campaign_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    channel: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(32))
    campaign_id: Mapped[int] = mapped_column(BigInteger, default=0)
    template_id: Mapped[int] = mapped_column(BigInteger, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    delivered: Mapped[int] = mapped_column(Integer, default=0)
    read: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    replied: Mapped[int] = mapped_column(Integer, default=0)
    opted_out: Mapped[int] = mapped_column(Integer, default=0)
    cost_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    # Sent SMS by encoding: how many, their billed segments, and how many took more than one segment (the
    # SMS page reads these instead of counting a month of raw messages).
    gsm7_sent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    gsm7_segments: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    gsm7_long: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    ucs2_sent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    ucs2_segments: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    ucs2_long: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DroppedMessageFigures(Base):
    """The daily figures of messages that retention removed (SWITCHBOARD_MESSAGE_RETENTION_MONTHS), by the
    same day and key as `communication_analytics`, written in the transaction that removes them.

    The daily figures stay when their messages go; `switchboard analytics verify` recounts the messages
    still held and adds these, so a day whose messages are gone is not taken for drift, and a repair keeps it.
    """

    __tablename__ = "dropped_message_figures"
    __table_args__ = (UniqueConstraint("day", "channel", "provider", "campaign_id", "template_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    channel: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(32))
    campaign_id: Mapped[int] = mapped_column(BigInteger, default=0)
    template_id: Mapped[int] = mapped_column(BigInteger, default=0)
    sent: Mapped[int] = mapped_column(BigInteger, default=0)
    delivered: Mapped[int] = mapped_column(BigInteger, default=0)
    read: Mapped[int] = mapped_column(BigInteger, default=0)
    failed: Mapped[int] = mapped_column(BigInteger, default=0)
    replied: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    gsm7_sent: Mapped[int] = mapped_column(BigInteger, default=0)
    gsm7_segments: Mapped[int] = mapped_column(BigInteger, default=0)
    gsm7_long: Mapped[int] = mapped_column(BigInteger, default=0)
    ucs2_sent: Mapped[int] = mapped_column(BigInteger, default=0)
    ucs2_segments: Mapped[int] = mapped_column(BigInteger, default=0)
    ucs2_long: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
