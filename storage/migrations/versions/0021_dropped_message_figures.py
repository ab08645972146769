"""the daily figures of messages that retention removed, so the daily figures' check still adds up

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 14:00:00

SWITCHBOARD_MESSAGE_RETENTION_MONTHS removes old months of messages while their daily figures
(communication_analytics) stay. The removal now writes those messages' figures here, in its own
transaction, and `switchboard analytics verify` adds them to its recount: before, every day whose
messages were gone read as drift, and `--repair` would have emptied it. A new table: safe while old code
runs (old code removes messages without writing here, as it always did).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FIGURES = (
    "sent",
    "delivered",
    "read",
    "failed",
    "replied",
    "cost_micros",
    "gsm7_sent",
    "gsm7_segments",
    "gsm7_long",
    "ucs2_sent",
    "ucs2_segments",
    "ucs2_long",
)


def upgrade() -> None:
    op.create_table(
        "dropped_message_figures",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("template_id", sa.BigInteger(), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in FIGURES),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dropped_message_figures")),
        sa.UniqueConstraint(
            "day",
            "channel",
            "provider",
            "campaign_id",
            "template_id",
            name=op.f("uq_dropped_message_figures_day_channel_provider_campaign_id_template_id"),
        ),
    )


def downgrade() -> None:
    op.drop_table("dropped_message_figures")
