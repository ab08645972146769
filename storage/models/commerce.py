"""The business facts analytics reads: services, orders, payments, refunds and appointments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from domain.vocabulary import AppointmentKind, AppointmentStatus, OrderStatus, SalesChannel
from storage.models.base import Base, BigId, one_of, utcnow


class Service(Base):
    """Something the business sells or books: a consultation, a treatment, a product line."""

    __tablename__ = "services"
    __table_args__ = (CheckConstraint(one_of("kind", [k.value for k in AppointmentKind]), name="kind_known"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    #: The name in other languages, for patients who read them ({"de": "Video-Hautsprechstunde"}); None: none.
    names: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    kind: Mapped[str] = mapped_column(String(16))
    duration_minutes: Mapped[int] = mapped_column(Integer)
    price_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    #: Minutes before a booking its reminders go out (e.g. [1440, 120]); None: the business's default.
    reminder_minutes: Mapped[list[Any] | None] = mapped_column(default=None)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(one_of("status", [s.value for s in OrderStatus]), name="status_known"),
        CheckConstraint(one_of("source_channel", [s.value for s in SalesChannel]), name="source_known"),
        CheckConstraint("amount_minor >= 0", name="amount_not_negative"),
        # Both carry status and customer, so the customer KPIs (active, returning, churn) count distinct
        # customers from the index alone, without reading the orders themselves.
        Index("ix_orders_created_status", "created_at", "status", "customer_id"),
        Index("ix_orders_customer_history", "customer_id", "created_at", "status"),
        Index("ix_orders_campaign", "campaign_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_number: Mapped[str] = mapped_column(String(32), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"))
    status: Mapped[str] = mapped_column(String(16))
    source_channel: Mapped[str] = mapped_column(String(16))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("bulk_messaging.id"))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    paid_at: Mapped[datetime | None]
    shipped_at: Mapped[datetime | None]


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint(one_of("status", ["pending", "succeeded", "failed"]), name="status_known"),
        Index("ix_payments_order", "order_id"),
        Index("ix_payments_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    status: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(16), default="card")
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    failure_reason: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Refund(Base):
    __tablename__ = "refunds"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        Index("ix_refunds_created_at", "created_at"),
        Index("ix_refunds_order", "order_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(120), default="customer_request")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Appointment(Base):
    __tablename__ = "appointments"
    __table_args__ = (
        CheckConstraint(one_of("status", [s.value for s in AppointmentStatus]), name="status_known"),
        CheckConstraint(one_of("kind", [k.value for k in AppointmentKind]), name="kind_known"),
        Index("ix_appointments_scheduled_at", "scheduled_at"),
        Index("ix_appointments_customer", "customer_id", "scheduled_at"),
        Index("ix_appointments_staff", "staff_id", "scheduled_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    scheduled_at: Mapped[datetime]
    duration_minutes: Mapped[int] = mapped_column(Integer)
    price_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
