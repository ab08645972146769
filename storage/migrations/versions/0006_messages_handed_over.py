"""messages handed over: when a worker began the provider call, so a crashed worker's unsent claims go back

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 18:00:00.000000

A worker claims messages ahead of its provider calls. On channels whose receipts cannot confirm a send
(email, Telegram) a claim that ran out used to end the message as "in doubt"; `handed_over_at` tells the
claims that never reached the provider (back to the outbox) from the ones that may have (not sent again).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("customer_communications", sa.Column("handed_over_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customer_communications") as batch:
        batch.drop_column("handed_over_at")
