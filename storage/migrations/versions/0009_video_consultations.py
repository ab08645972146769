"""video consultations and chat attachments

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 05:31:34.297005

Video consultations get their window, room, links, joins and rebooking offers; clinicians get working hours,
and booked time is claimed in five-minute steps whose primary key makes overlapping bookings collide in the
database. Conversations get attachments (images and PDFs, stored in the database with their size and hash).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

OLD_STATUSES = "status IN ('scheduled', 'in_progress', 'completed', 'no_show', 'cancelled')"
NEW_STATUSES = (
    "status IN ('scheduled', 'confirmed', 'waiting', 'in_progress', 'completed', 'no_show', 'cancelled')"
)

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clinician_hours",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("staff_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("weekday", sa.SmallInteger(), nullable=False),
        sa.Column("starts", sa.Time(), nullable=False),
        sa.Column("ends", sa.Time(), nullable=False),
        sa.CheckConstraint("starts < ends", name=op.f("ck_clinician_hours_span_forward")),
        sa.CheckConstraint("weekday BETWEEN 0 AND 6", name=op.f("ck_clinician_hours_weekday_known")),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_users.id"],
            name=op.f("fk_clinician_hours_staff_id_staff_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clinician_hours")),
    )
    with op.batch_alter_table("clinician_hours", schema=None) as batch_op:
        batch_op.create_index("ix_clinician_hours_staff", ["staff_id", "weekday"], unique=False)

    op.create_table(
        "clinician_time_claims",
        sa.Column("staff_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("appointment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_clinician_time_claims_appointment_id_appointments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_users.id"],
            name=op.f("fk_clinician_time_claims_staff_id_staff_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("staff_id", "starts_at", name=op.f("pk_clinician_time_claims")),
    )
    with op.batch_alter_table("clinician_time_claims", schema=None) as batch_op:
        batch_op.create_index("ix_clinician_time_claims_appointment", ["appointment_id"], unique=False)

    op.create_table(
        "video_joins",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("consultation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("who", sa.String(length=16), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("alerted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("who IN ('patient', 'clinician')", name=op.f("ck_video_joins_who_known")),
        sa.ForeignKeyConstraint(
            ["consultation_id"],
            ["video_consultations.id"],
            name=op.f("fk_video_joins_consultation_id_video_consultations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_video_joins")),
    )
    with op.batch_alter_table("video_joins", schema=None) as batch_op:
        batch_op.create_index("ix_video_joins_consultation", ["consultation_id", "joined_at"], unique=False)

    op.create_table(
        "video_rebook_offers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("consultation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column(
            "slots",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("offered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rebooked_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.ForeignKeyConstraint(
            ["consultation_id"],
            ["video_consultations.id"],
            name=op.f("fk_video_rebook_offers_consultation_id_video_consultations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_video_rebook_offers_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["rebooked_id"],
            ["video_consultations.id"],
            name=op.f("fk_video_rebook_offers_rebooked_id_video_consultations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_video_rebook_offers")),
    )
    with op.batch_alter_table("video_rebook_offers", schema=None) as batch_op:
        batch_op.create_index("ix_video_rebook_offers_customer", ["customer_id", "offered_at"], unique=False)

    op.create_table(
        "chat_attachments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("message_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["chat_messages.id"],
            name=op.f("fk_chat_attachments_message_id_chat_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_attachments")),
    )
    with op.batch_alter_table("chat_attachments", schema=None) as batch_op:
        batch_op.create_index("ix_chat_attachments_message", ["message_id"], unique=False)

    with op.batch_alter_table("services", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "reminder_minutes",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )

    with op.batch_alter_table("video_consultations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("duration_minutes", sa.Integer(), server_default=sa.text("30"), nullable=False)
        )
        batch_op.add_column(sa.Column("room_name", sa.String(length=96), nullable=True))
        batch_op.add_column(sa.Column("link_token", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("clinician_token", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False))
        batch_op.add_column(sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("patient_joined_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("clinician_joined_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("no_show_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("no_show_by", sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column("rebook_offered_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_video_consultations_customer", ["customer_id", "scheduled_at"], unique=False
        )
        batch_op.create_index("ix_video_consultations_staff", ["staff_id", "scheduled_at"], unique=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_video_consultations_clinician_token"), ["clinician_token"]
        )
        batch_op.create_unique_constraint(batch_op.f("uq_video_consultations_link_token"), ["link_token"])
        batch_op.drop_constraint(op.f("ck_video_consultations_status_known"), type_="check")
        batch_op.create_check_constraint(op.f("ck_video_consultations_status_known"), NEW_STATUSES)


def downgrade() -> None:
    with op.batch_alter_table("video_consultations", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_video_consultations_status_known"), type_="check")
        batch_op.create_check_constraint(op.f("ck_video_consultations_status_known"), OLD_STATUSES)
        batch_op.drop_constraint(batch_op.f("uq_video_consultations_link_token"), type_="unique")
        batch_op.drop_constraint(batch_op.f("uq_video_consultations_clinician_token"), type_="unique")
        batch_op.drop_index("ix_video_consultations_staff")
        batch_op.drop_index("ix_video_consultations_customer")
        batch_op.drop_column("rebook_offered_at")
        batch_op.drop_column("no_show_by")
        batch_op.drop_column("no_show_at")
        batch_op.drop_column("clinician_joined_at")
        batch_op.drop_column("patient_joined_at")
        batch_op.drop_column("confirmed_at")
        batch_op.drop_column("version")
        batch_op.drop_column("clinician_token")
        batch_op.drop_column("link_token")
        batch_op.drop_column("room_name")
        batch_op.drop_column("duration_minutes")

    with op.batch_alter_table("services", schema=None) as batch_op:
        batch_op.drop_column("reminder_minutes")

    with op.batch_alter_table("chat_attachments", schema=None) as batch_op:
        batch_op.drop_index("ix_chat_attachments_message")

    op.drop_table("chat_attachments")
    with op.batch_alter_table("video_rebook_offers", schema=None) as batch_op:
        batch_op.drop_index("ix_video_rebook_offers_customer")

    op.drop_table("video_rebook_offers")
    with op.batch_alter_table("video_joins", schema=None) as batch_op:
        batch_op.drop_index("ix_video_joins_consultation")

    op.drop_table("video_joins")
    with op.batch_alter_table("clinician_time_claims", schema=None) as batch_op:
        batch_op.drop_index("ix_clinician_time_claims_appointment")

    op.drop_table("clinician_time_claims")
    with op.batch_alter_table("clinician_hours", schema=None) as batch_op:
        batch_op.drop_index("ix_clinician_hours_staff")

    op.drop_table("clinician_hours")
