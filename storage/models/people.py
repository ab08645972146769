"""Who Switchboard deals with: customers, their tags, the business's locations and its staff."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from domain.vocabulary import Availability, Role
from storage.models.base import Base, BigId, one_of, utcnow


class Location(Base):
    """A clinic or store of the business."""

    __tablename__ = "locations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    country: Mapped[str] = mapped_column(String(2))
    timezone: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        Index("ix_customers_phone_e164", "phone_e164"),
        Index("ix_customers_email", "email"),
        Index("ix_customers_segment", "segment"),
        Index("ix_customers_created_at", "created_at"),
        CheckConstraint("phone_e164 IS NULL OR phone_e164 LIKE '+%'", name="phone_is_e164"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    external_ref: Mapped[str | None] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    phone_e164: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(254))
    telegram_chat_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    whatsapp_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    locale: Mapped[str] = mapped_column(String(16), default="en")
    country: Mapped[str | None] = mapped_column(String(2))
    segment: Mapped[str] = mapped_column(String(32), default="standard")
    home_location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    #: When the customer's personal data was erased at their request (storage/customer_erasure.py).
    erased_at: Mapped[datetime | None]
    #: When a customer list brought the customer in (None: they came through the product, or were added by
    #: staff): such a customer is no new customer of that day in the analytics (storage/analytics/facts.py).
    imported_at: Mapped[datetime | None]


class CustomerTag(Base):
    __tablename__ = "customer_tags"
    __table_args__ = (Index("ix_customer_tags_tag", "tag", "customer_id"),)

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)


class StaffUser(Base):
    """A member of staff; their Slack and Telegram identities map to them for bot commands."""

    __tablename__ = "staff_users"
    __table_args__ = (
        CheckConstraint(one_of("role", [r.value for r in Role]), name="role_known"),
        CheckConstraint(one_of("availability", [a.value for a in Availability]), name="availability_known"),
        UniqueConstraint("slack_team_id", "slack_user_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default=Role.VIEWER.value)
    slack_team_id: Mapped[str | None] = mapped_column(String(32))
    slack_user_id: Mapped[str | None] = mapped_column(String(32))
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    locale: Mapped[str] = mapped_column(String(16), default="en")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: The KPI question this person was last answered, as a saved-report definition (`report save` keeps it).
    last_question: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    last_question_at: Mapped[datetime | None] = mapped_column(default=None)
    #: Whether the agent takes new conversations; automatic assignment skips agents who are away.
    availability: Mapped[str] = mapped_column(
        String(8), default=Availability.AWAY.value, server_default="away"
    )
    #: How many open conversations automatic assignment gives this agent at most.
    chat_capacity: Mapped[int] = mapped_column(SmallInteger, default=8, server_default="8")
