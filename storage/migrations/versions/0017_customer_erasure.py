"""a customer can be erased at their request: the customer row remembers when

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 22:30:00

`switchboard customer erase` removes a customer's personal data and keeps the row (orders, messages and the
consent ledger still point at it, so every figure stays the same). `customers.erased_at` says that it
happened and when. A nullable column with no default: safe while old code still runs.

Erasing and exporting a customer read their business events, which had no index by customer: one more.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("customers", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_business_events_customer", "business_events", ["customer_id", "occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_business_events_customer", table_name="business_events")
    with op.batch_alter_table("customers") as table:
        table.drop_column("erased_at")
