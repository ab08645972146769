"""each recipient of a scheduled report gets their own filter values

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 04:00:00

A schedule may carry filters added to its report's (for instance location = BER), so each clinic manager
receives their clinic's figures from one saved report. Existing schedules have none and deliver as before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("report_schedules", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "filters",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("report_schedules", schema=None) as batch_op:
        batch_op.drop_column("filters")
