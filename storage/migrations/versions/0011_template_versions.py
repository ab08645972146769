"""template versions kept for comparing and restoring

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 03:00:00

Every save of a template variant keeps what it said, so the template editor can show a diff and restore an
earlier version. Variants saved before this revision get their current text as their first kept version.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    op.create_table(
        "message_template_versions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("template_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("html_body", sa.Text(), nullable=True),
        sa.Column("variables", json, nullable=False),
        sa.Column("whatsapp_name", sa.String(length=128), nullable=True),
        sa.Column("whatsapp_language", sa.String(length=16), nullable=True),
        sa.Column("whatsapp_params", json, nullable=False),
        sa.Column("saved_by", sa.String(length=254), nullable=True),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["message_templates.id"],
            name=op.f("fk_message_template_versions_template_id_message_templates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_template_versions")),
        sa.UniqueConstraint(
            "template_id", "version", name=op.f("uq_message_template_versions_template_id_version")
        ),
    )
    op.execute(
        "INSERT INTO message_template_versions (template_id, version, category, subject, body, html_body, "
        "variables, whatsapp_name, whatsapp_language, whatsapp_params, saved_by, saved_at) "
        "SELECT id, version, category, subject, body, html_body, variables, whatsapp_name, whatsapp_language, "
        "whatsapp_params, NULL, updated_at FROM message_templates"
    )


def downgrade() -> None:
    op.drop_table("message_template_versions")
