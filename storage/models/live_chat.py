"""Live chat's own tables: Slack thread map, canned replies, SLA policies and breaches, chat widget keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, BigId, Json, utcnow


class ChatSlackThread(Base):
    """Where a conversation lives in Slack: the root message in a channel whose thread holds its turns.

    Stored, so restarts, reconnects and a changed channel setting never orphan a conversation: replies in
    an existing thread keep working wherever new conversations are posted now.
    """

    __tablename__ = "chat_slack_threads"
    __table_args__ = (UniqueConstraint("channel_id", "thread_ts"),)

    session_id: Mapped[int] = mapped_column(
        ForeignKey("chat_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    channel_id: Mapped[str] = mapped_column(String(32))
    #: The root message's ts; None while a poster holds the claim and has not heard back from Slack.
    thread_ts: Mapped[str | None] = mapped_column(String(32))
    #: A digest of what the root message shows (status, assignee), so it is updated only when that changes.
    root_state: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    posted_at: Mapped[datetime | None]


class ChatTelegramPost(Base):
    """A message the staff bot sent an agent about a conversation: replying to it answers the customer."""

    __tablename__ = "chat_telegram_posts"
    __table_args__ = (
        UniqueConstraint("telegram_chat_id", "message_id"),
        Index("ix_chat_telegram_posts_session", "session_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("chat_sessions.id", ondelete="CASCADE"))
    telegram_chat_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CannedReply(Base):
    """A saved answer agents insert by shortcut; `{variables}` are filled from the customer or by the agent."""

    __tablename__ = "canned_replies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shortcut: Mapped[str] = mapped_column(String(32), unique=True)
    title: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text)
    #: The team it belongs to; None: everyone's.
    team: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SlaPolicy(Base):
    """Targets for first response, next response and resolution, counted in a location's business hours.

    `business_hours` maps a weekday ("mon".."sun") to a list of ["09:00", "13:00"] spans (split shifts);
    `holidays` lists ISO dates with no business hours. A policy with no location is the default.
    """

    __tablename__ = "sla_policies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"), unique=True)
    first_response_minutes: Mapped[int | None] = mapped_column(Integer)
    next_response_minutes: Mapped[int | None] = mapped_column(Integer)
    resolution_minutes: Mapped[int | None] = mapped_column(Integer)
    warn_before_minutes: Mapped[int] = mapped_column(Integer, default=10)
    business_hours: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    holidays: Mapped[list[Any]] = mapped_column(Json, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChatSlaEvent(Base):
    """A warning before, or a breach of, one SLA target in one conversation; written once per target."""

    __tablename__ = "chat_sla_events"
    __table_args__ = (
        UniqueConstraint("session_id", "metric", "due_at", "kind"),
        Index("ix_chat_sla_events_occurred_at", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("chat_sessions.id", ondelete="CASCADE"))
    #: first_response, next_response or resolution.
    metric: Mapped[str] = mapped_column(String(16))
    #: warning or breach.
    kind: Mapped[str] = mapped_column(String(8))
    due_at: Mapped[datetime]
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("sla_policies.id", ondelete="SET NULL"))
    #: When the alert reached the team's Slack channel (None: not yet).
    alerted_at: Mapped[datetime | None]


class ChatWidgetKey(Base):
    """A website's key for the chat widget, and the origins allowed to use it."""

    __tablename__ = "chat_widget_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    allowed_origins: Mapped[list[Any]] = mapped_column(Json, default=list)
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChatWidgetVisitor(Base):
    """A browser talking to us through the widget: its secret token (hashed) and the customer it is.

    The customer is created when the visitor first writes (a message, the offline form, or their name or
    email); until then a visitor who only opened the chat is no customer and counts in no customer KPI.
    """

    __tablename__ = "chat_widget_visitors"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("chat_widget_keys.id", ondelete="CASCADE"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChatAttachment(Base):
    """A file in a conversation (an image or a PDF), kept in the database so every web process can serve it.

    Size and type are checked before it is stored; `sha256` lets a repeated provider delivery of the same
    file be recognised.
    """

    __tablename__ = "chat_attachments"
    __table_args__ = (Index("ix_chat_attachments_message", "message_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("chat_messages.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
