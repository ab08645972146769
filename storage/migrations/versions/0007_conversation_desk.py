"""conversation desk: snoozed conversations, who resolved one, and agents' availability and capacity

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 23:00:00.000000

Live chat assigns conversations to agents who are online, up to each agent's capacity, and lets staff
snooze a conversation until a time or resolve it (stored as "closed", shown as "resolved").
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("chat_sessions") as batch:
        batch.drop_constraint(op.f("ck_chat_sessions_status_known"), type_="check")
        batch.create_check_constraint(op.f("ck_chat_sessions_status_known"), "status IN ('open', 'pending', 'snoozed', 'closed')")
        batch.add_column(sa.Column("snoozed_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("resolved_by_staff_id", BIG_ID, nullable=True))
        batch.create_foreign_key(
            op.f("fk_chat_sessions_resolved_by_staff_id_staff_users"), "staff_users", ["resolved_by_staff_id"], ["id"]
        )
    with op.batch_alter_table("staff_users") as batch:
        batch.add_column(sa.Column("availability", sa.String(length=8), nullable=False, server_default="away"))
        batch.add_column(sa.Column("chat_capacity", sa.SmallInteger(), nullable=False, server_default="8"))
        batch.create_check_constraint(op.f("ck_staff_users_availability_known"), "availability IN ('online', 'away')")


def downgrade() -> None:
    with op.batch_alter_table("staff_users") as batch:
        batch.drop_constraint(op.f("ck_staff_users_availability_known"), type_="check")
        batch.drop_column("chat_capacity")
        batch.drop_column("availability")
    op.execute("UPDATE chat_sessions SET status = 'open' WHERE status = 'snoozed'")
    with op.batch_alter_table("chat_sessions") as batch:
        batch.drop_constraint(op.f("fk_chat_sessions_resolved_by_staff_id_staff_users"), type_="foreignkey")
        batch.drop_column("resolved_by_staff_id")
        batch.drop_column("snoozed_until")
        batch.drop_constraint(op.f("ck_chat_sessions_status_known"), type_="check")
        batch.create_check_constraint(op.f("ck_chat_sessions_status_known"), "status IN ('open', 'pending', 'closed')")
