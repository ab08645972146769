"""a report run sent again is told apart from its first sending; its owner hears of a bounce; customers a
customer list brought in are known as such

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 13:00:00

`report_deliveries.sent_again`: how many times staff sent the run again (Send again). A report email's
Message-ID carries it, so a late bounce of the first sending no longer fails the one sent again.
`report_deliveries.owner_to_hear`: the run's email bounced after it was recorded delivered, and the
schedule's owner is still to be told by email (the scheduler does, then clears it).
`customers.imported_at`: when a customer list brought the customer in (NULL: they came through the
product); such a customer is no new customer of that day in the analytics. New columns, with server
defaults or nullable: safe while old code runs (old code neither reads nor writes them).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("report_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sent_again", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(
            sa.Column("owner_to_hear", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("imported_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("imported_at")
    with op.batch_alter_table("report_deliveries", schema=None) as batch_op:
        batch_op.drop_column("owner_to_hear")
        batch_op.drop_column("sent_again")
