"""Operational tables: the audit log, the webhook inbox, the business event log, the heartbeats and the
retention marks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, BigId, one_of, utcnow


class AuditLog(Base):
    """Who changed what, from where (Slack, Telegram, web, API, CLI)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_occurred_at", "occurred_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(254))
    via: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class WebhookInbox(Base):
    """Every verified webhook we received, so duplicates apply once and failures can be replayed."""

    __tablename__ = "webhook_inbox"
    __table_args__ = (
        UniqueConstraint("provider", "dedupe_key"),
        CheckConstraint(one_of("status", ["received", "applied", "failed", "ignored"]), name="status_known"),
        Index("ix_webhook_inbox_status", "status", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    dedupe_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="received")
    body: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(String(100), default="application/json")
    error: Mapped[str | None] = mapped_column(String(500))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    applied_at: Mapped[datetime | None]


class BusinessEvent(Base):
    """A business event (order.created, appointment.booked, ...) fed in through the event API.

    Kept with an idempotency key so a retried POST triggers its notifications once.
    """

    __tablename__ = "business_events"
    __table_args__ = (
        UniqueConstraint("idempotency_key"),
        Index("ix_business_events_pending", "processed_at", "id"),
        # One customer's events: their export and erasure, and the video no-show prompts.
        Index("ix_business_events_customer", "customer_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_type: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    customer_id: Mapped[int | None]
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]


class WorkerHeartbeat(Base):
    """The last sign of life of each process running background work, for `status` and readiness."""

    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class JobHeartbeat(Base):
    """How one background job (delivery, campaign planning, rollups, ...) fares in one process.

    Each process keeps its jobs' last success and failure in memory and its heartbeat writes them
    here every few seconds, so no message or pass pays for an extra write.
    """

    __tablename__ = "job_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    job: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: How often the job runs when all is well, so a reader can tell a stuck job from a slow one.
    every_seconds: Mapped[float] = mapped_column(Float)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_success_at: Mapped[datetime | None]
    last_failure_at: Mapped[datetime | None]
    #: The first failure since the last success; empty while the job succeeds.
    failing_since: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(300))


class RetentionMark(Base):
    """How far a retention pass has come through one table, so the next pass starts there (storage/retention.py).

    Each pass walks the table in (created_at, id) order and blanks what is older than the retention period;
    the mark is the last row it looked at. Its row is also the pass's lock: a worker that cannot take it
    leaves the pass to the worker that has it.
    """

    __tablename__ = "retention_marks"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    through_at: Mapped[datetime]
    through_id: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CustomerImportUpload(Base):
    """A customer list uploaded on the dashboard, with its column mapping, and the check or import run on it.

    Kept in the database, not on one web process's disk: the page that shows the progress may be served by
    another process than the one running the import. Its status moves uploaded -> checking/importing ->
    checked/imported (or failed); `progress_bytes` of `size_bytes` is how far the run has read.
    """

    __tablename__ = "customer_import_uploads"
    __table_args__ = (Index("ix_customer_import_uploads_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token: Mapped[str] = mapped_column(String(32), unique=True)
    file_name: Mapped[str] = mapped_column(String(255))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    encoding: Mapped[str] = mapped_column(String(32))
    region: Mapped[str] = mapped_column(String(2))
    #: The file's column -> field, as chosen on the page (empty: the columns' own names decide).
    mapping: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="uploaded")
    progress_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    summary: Mapped[str | None] = mapped_column(Text)
    error_csv: Mapped[bytes | None] = mapped_column(LargeBinary)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
