"""report delivery leases: a claim holds until `claimed_until`, a `sending` status, and a note on takeovers

Claims made before this revision had no lease; they get one that has already run out (their claim
time), so a run stuck in `claimed` since a worker died is taken over by the next scheduler tick.
Retries keep their due time, which used to live in `claimed_at`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = "status IN ('claimed', 'delivered', 'retrying', 'failed', 'skipped')"
NEW_STATUSES = "status IN ('claimed', 'sending', 'delivered', 'retrying', 'failed', 'skipped')"


def upgrade() -> None:
    with op.batch_alter_table("report_deliveries") as batch:
        batch.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("takeover_note", sa.String(length=300), nullable=True))
        batch.drop_constraint(op.f("ck_report_deliveries_status_known"), type_="check")
        batch.create_check_constraint(op.f("ck_report_deliveries_status_known"), NEW_STATUSES)
        batch.create_index(op.f("ix_report_deliveries_open"), ["status", "claimed_until"], unique=False)
    op.execute(
        "UPDATE report_deliveries SET claimed_until = claimed_at WHERE status IN ('claimed', 'retrying')"
    )


def downgrade() -> None:
    op.execute("UPDATE report_deliveries SET status = 'claimed' WHERE status = 'sending'")
    with op.batch_alter_table("report_deliveries") as batch:
        batch.drop_index(op.f("ix_report_deliveries_open"))
        batch.drop_constraint(op.f("ck_report_deliveries_status_known"), type_="check")
        batch.create_check_constraint(op.f("ck_report_deliveries_status_known"), OLD_STATUSES)
        batch.drop_column("takeover_note")
        batch.drop_column("claimed_until")
