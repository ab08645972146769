"""the customer KPIs read kept daily sets of active customers instead of the period's orders

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 15:30:00

Active, returning and churned customers are distinct counts over a whole period, so the day rollups cannot
add them up: /analytics/customer counted the period's orders per customer on every request (586 ms p95 at
1M orders). Each local business day now keeps the set of customers who placed a counted order that day,
as a bitset of customer ids; a period's customers are the union of its days.

The table starts empty. The rollup job sees that the rollups hold no customer days (the watermark says so)
and rebuilds them, days included, on its next pass; until then the pages count from the orders as before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_activity_days",
        sa.Column("day_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("customers", sa.LargeBinary(), nullable=False),
        sa.Column("customer_count", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day_start", name=op.f("pk_customer_activity_days")),
    )


def downgrade() -> None:
    op.drop_table("customer_activity_days")
