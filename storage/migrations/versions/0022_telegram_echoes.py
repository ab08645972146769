"""what happened to a reply an agent wrote in Telegram is told to them there, once per outcome

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05 10:30:00

`chat_messages.telegram_echoed_status`: the outcome (delivered, read, not delivered) last told to the agent
in Telegram for their reply, as `echoed_status` is for Slack threads. A new nullable column, filled for the
replies already written in Telegram with their message's status (so nothing old is told): safe while old
code runs (old code never reads or writes it).
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
    # Replies written in Telegram before this release count as told: the first pass after the upgrade
    # does not send agents two days of old outcomes at once.
    op.execute(
        "UPDATE chat_messages SET telegram_echoed_status = ("
        " SELECT status FROM customer_communications"
        " WHERE customer_communications.id = chat_messages.communication_id)"
        " WHERE external_ref LIKE 'telegram:%' AND communication_id IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("chat_messages", schema=None) as batch_op:
        batch_op.drop_column("telegram_echoed_status")
