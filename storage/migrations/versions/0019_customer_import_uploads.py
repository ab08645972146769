"""customer lists uploaded on the dashboard, with their column mapping and the check or import run on them

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 23:00:00

/communication/customers/import keeps the uploaded file in the database, not on one web process's disk:
with several web processes, the page that shows the import's progress may be served by another one than
the process running it. A new table: safe while old code runs.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_import_uploads",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("encoding", sa.String(length=32), nullable=False),
        sa.Column("region", sa.String(length=2), nullable=False),
        sa.Column(
            "mapping",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress_bytes", sa.BigInteger(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("error_csv", sa.LargeBinary(), nullable=True),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=254), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_import_uploads")),
        sa.UniqueConstraint("token", name=op.f("uq_customer_import_uploads_token")),
    )
    op.create_index("ix_customer_import_uploads_created_at", "customer_import_uploads", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_customer_import_uploads_created_at", table_name="customer_import_uploads")
    op.drop_table("customer_import_uploads")
