"""live chat: Slack threads, internal notes, canned replies, SLA policies and events, CSAT answers, the widget

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 01:27:16.001166

Every conversation can have a thread in Slack (`chat_slack_threads`); each turn knows whether it has been
posted there (`chat_messages.mirrored_at`), whether it is an internal note, and where a staff turn was
written outside Switchboard (`external_ref`, unique, so a retried Slack event sends nothing twice).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chat_widget_keys",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column(
            "allowed_origins",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("location_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_chat_widget_keys_location_id_locations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_widget_keys")),
        sa.UniqueConstraint("key", name=op.f("uq_chat_widget_keys_key")),
    )
    op.create_table(
        "sla_policies",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("location_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("first_response_minutes", sa.Integer(), nullable=True),
        sa.Column("next_response_minutes", sa.Integer(), nullable=True),
        sa.Column("resolution_minutes", sa.Integer(), nullable=True),
        sa.Column("warn_before_minutes", sa.Integer(), nullable=False),
        sa.Column(
            "business_hours",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "holidays",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_sla_policies_location_id_locations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_policies")),
        sa.UniqueConstraint("location_id", name=op.f("uq_sla_policies_location_id")),
        sa.UniqueConstraint("name", name=op.f("uq_sla_policies_name")),
    )
    op.create_table(
        "canned_replies",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("shortcut", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("team", sa.String(length=64), nullable=True),
        sa.Column("created_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["staff_users.id"], name=op.f("fk_canned_replies_created_by_staff_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canned_replies")),
        sa.UniqueConstraint("shortcut", name=op.f("uq_canned_replies_shortcut")),
    )
    op.create_table(
        "chat_widget_visitors",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_chat_widget_visitors_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["chat_widget_keys.id"],
            name=op.f("fk_chat_widget_visitors_key_id_chat_widget_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_widget_visitors")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_chat_widget_visitors_token_hash")),
    )
    op.create_table(
        "chat_sla_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("session_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("metric", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("staff_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("policy_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("alerted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["sla_policies.id"],
            name=op.f("fk_chat_sla_events_policy_id_sla_policies"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["chat_sessions.id"],
            name=op.f("fk_chat_sla_events_session_id_chat_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff_users.id"], name=op.f("fk_chat_sla_events_staff_id_staff_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_sla_events")),
        sa.UniqueConstraint(
            "session_id",
            "metric",
            "due_at",
            "kind",
            name=op.f("uq_chat_sla_events_session_id_metric_due_at_kind"),
        ),
    )
    with op.batch_alter_table("chat_sla_events", schema=None) as batch_op:
        batch_op.create_index("ix_chat_sla_events_occurred_at", ["occurred_at"], unique=False)

    op.create_table(
        "chat_slack_threads",
        sa.Column("session_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("thread_ts", sa.String(length=32), nullable=True),
        sa.Column("root_state", sa.String(length=64), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["chat_sessions.id"],
            name=op.f("fk_chat_slack_threads_session_id_chat_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_chat_slack_threads")),
        sa.UniqueConstraint(
            "channel_id", "thread_ts", name=op.f("uq_chat_slack_threads_channel_id_thread_ts")
        ),
    )
    with op.batch_alter_table("chat_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("is_note", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("external_ref", sa.String(length=96), nullable=True))
        batch_op.add_column(sa.Column("mirrored_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_chat_messages_external_ref"), ["external_ref"])
        batch_op.add_column(sa.Column("echoed_status", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("telegram_posted_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_chat_messages_mirrored_at", ["mirrored_at"], unique=False)
        batch_op.create_index("ix_chat_messages_telegram_posted_at", ["telegram_posted_at"], unique=False)
    # Turns from before the Slack threads and Telegram forwarding existed are history, not news.
    op.execute("UPDATE chat_messages SET mirrored_at = created_at, telegram_posted_at = created_at")
    op.create_table(
        "chat_telegram_posts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("session_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("telegram_chat_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["chat_sessions.id"],
            name=op.f("fk_chat_telegram_posts_session_id_chat_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_telegram_posts")),
        sa.UniqueConstraint(
            "telegram_chat_id", "message_id", name=op.f("uq_chat_telegram_posts_telegram_chat_id_message_id")
        ),
    )
    with op.batch_alter_table("chat_telegram_posts", schema=None) as batch_op:
        batch_op.create_index("ix_chat_telegram_posts_session", ["session_id"], unique=False)

    with op.batch_alter_table("chat_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("csat_requested_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("csat_answered_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("csat_comment", sa.Text(), nullable=True))
        # SLA: when a resolved conversation was last reopened (its clocks start again from then).
        batch_op.add_column(sa.Column("reopened_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_table("chat_telegram_posts")
    with op.batch_alter_table("chat_sessions", schema=None) as batch_op:
        batch_op.drop_column("reopened_at")
        batch_op.drop_column("csat_comment")
        batch_op.drop_column("csat_answered_at")
        batch_op.drop_column("csat_requested_at")

    with op.batch_alter_table("chat_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_chat_messages_telegram_posted_at")
        batch_op.drop_column("telegram_posted_at")
        batch_op.drop_index("ix_chat_messages_mirrored_at")
        batch_op.drop_column("echoed_status")
        batch_op.drop_constraint(batch_op.f("uq_chat_messages_external_ref"), type_="unique")
        batch_op.drop_column("mirrored_at")
        batch_op.drop_column("external_ref")
        batch_op.drop_column("is_note")

    op.drop_table("chat_slack_threads")
    with op.batch_alter_table("chat_sla_events", schema=None) as batch_op:
        batch_op.drop_index("ix_chat_sla_events_occurred_at")

    op.drop_table("chat_sla_events")
    op.drop_table("chat_widget_visitors")
    op.drop_table("canned_replies")
    op.drop_table("sla_policies")
    op.drop_table("chat_widget_keys")
