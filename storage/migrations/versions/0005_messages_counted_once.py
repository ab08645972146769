"""messages counted once: the daily figures a message is counted in, and an index for due retries

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 16:00:00.000000

`counted` holds one bit per daily figure (sent 1, delivered 2, read 4, failed 8, replied 16); existing
messages are marked counted in every figure their timestamps say they reached, which is what the daily
figures already hold (`switchboard analytics verify` says where they do not).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RETRY_DUE = "status = 'planned' AND attempts > 0"


def upgrade() -> None:
    op.add_column(
        "customer_communications",
        sa.Column("counted", sa.SmallInteger(), nullable=False, server_default=sa.text("0")),
    )
    op.execute(
        "UPDATE customer_communications SET counted = "
        "(CASE WHEN sent_at IS NOT NULL THEN 1 ELSE 0 END)"
        " + (CASE WHEN delivered_at IS NOT NULL THEN 2 ELSE 0 END)"
        " + (CASE WHEN read_at IS NOT NULL THEN 4 ELSE 0 END)"
        " + (CASE WHEN failed_at IS NOT NULL THEN 8 ELSE 0 END)"
        " + (CASE WHEN replied_at IS NOT NULL THEN 16 ELSE 0 END)"
        " WHERE direction = 'outbound'"
    )
    op.create_index(
        "ix_customer_communications_retry_due",
        "customer_communications",
        ["next_attempt_at"],
        sqlite_where=sa.text(RETRY_DUE),
        postgresql_where=sa.text(RETRY_DUE),
    )


def downgrade() -> None:
    op.drop_index("ix_customer_communications_retry_due", table_name="customer_communications")
    with op.batch_alter_table("customer_communications") as batch:
        batch.drop_column("counted")
