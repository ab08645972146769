"""services are named in the patient's language

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06 13:40:00

`services.names`: the service's name in other languages ({"de": "Video-Hautsprechstunde"}), which
patients' messages use when they read that language. A new nullable column: safe while old code runs
(old code never reads or writes it, and reads the staff name as before).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("services", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "names",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("services", schema=None) as batch_op:
        batch_op.drop_column("names")
