"""message and conversation texts can expire after a retention period; each pass remembers how far it came

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 22:50:00

SWITCHBOARD_MESSAGE_BODY_RETENTION_DAYS and SWITCHBOARD_CONVERSATION_RETENTION_DAYS blank the texts older
than they say. The worker's retention pass walks customer_communications and chat_messages by creation time,
in batches, and keeps the last row it looked at in `retention_marks`, so that no pass reads again what
earlier ones blanked. customer_communications has its created_at index already; chat_messages gets one.
A new table and an index: safe while old code runs.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "retention_marks",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("through_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("through_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_retention_marks")),
    )
    op.create_index("ix_chat_messages_created_at", "chat_messages", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_chat_messages_created_at", table_name="chat_messages")
    op.drop_table("retention_marks")
