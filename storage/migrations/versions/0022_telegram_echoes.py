"""what happened to a reply an agent wrote in Telegram is told to them there, once per outcome

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05 10:30:00

`chat_messages.telegram_echoed_status`: the outcome (delivered, read, not delivered) last told to the agent
in Telegram for their reply, as `echoed_status` is for Slack threads. A new nullable column: safe while old
code runs (old code never reads or writes it, and no outcome is told twice).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("chat_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("telegram_echoed_status", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chat_messages", schema=None) as batch_op:
        batch_op.drop_column("telegram_echoed_status")
