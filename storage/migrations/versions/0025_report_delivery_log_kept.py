"""a removed schedule's finished deliveries stay in its report's log

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07 16:30:00

Removing a report schedule deleted its whole delivery log with it. Now its finished runs (delivered, failed,
skipped) stay: `report_deliveries.schedule_id` becomes nullable with ON DELETE SET NULL, and the kept rows
carry `report_id` (ON DELETE CASCADE: the log goes with its report) and `schedule_words` ("every Monday at
08:00 to #management"). Safe while old code runs: old code never reads the new columns, and its own removal
still deletes the rows it knows of. On SQLite the table is rebuilt (a foreign key cannot be altered in
place); it holds one row per report run, so this takes moments. Going back deletes the kept rows.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SCHEDULE_FK = "fk_report_deliveries_schedule_id_report_schedules"


def upgrade() -> None:
    with op.batch_alter_table("report_deliveries", recreate="always") as batch:
        batch.drop_constraint(op.f(SCHEDULE_FK), type_="foreignkey")
        batch.alter_column("schedule_id", existing_type=BIG_ID, nullable=True)
        batch.create_foreign_key(
            op.f(SCHEDULE_FK), "report_schedules", ["schedule_id"], ["id"], ondelete="SET NULL"
        )
        batch.add_column(sa.Column("report_id", BIG_ID, nullable=True))
        batch.add_column(sa.Column("schedule_words", sa.String(length=300), nullable=True))
        batch.create_foreign_key(
            op.f("fk_report_deliveries_report_id_custom_reports"),
            "custom_reports",
            ["report_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_index("ix_report_deliveries_report", ["report_id", "due_at"], unique=False)


def downgrade() -> None:
    op.execute("DELETE FROM report_deliveries WHERE schedule_id IS NULL")
    with op.batch_alter_table("report_deliveries", recreate="always") as batch:
        batch.drop_index("ix_report_deliveries_report")
        batch.drop_constraint(op.f("fk_report_deliveries_report_id_custom_reports"), type_="foreignkey")
        batch.drop_column("schedule_words")
        batch.drop_column("report_id")
        batch.drop_constraint(op.f(SCHEDULE_FK), type_="foreignkey")
        batch.alter_column("schedule_id", existing_type=BIG_ID, nullable=False)
        batch.create_foreign_key(
            op.f(SCHEDULE_FK), "report_schedules", ["schedule_id"], ["id"], ondelete="CASCADE"
        )
