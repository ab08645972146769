"""the live chat overview finds the latest resolved conversations by an index, not by sorting them all

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 10:10:00

/communication/chat lists the 20 conversations resolved most recently. With only (status, last_message_at)
and (started_at) to choose from, SQLite took the status index and sorted every closed conversation: 1.5 s
at 268k of them (the 10M-message benchmark). An index on (status, started_at) reads the 20 directly.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_chat_sessions_status_started", "chat_sessions", ["status", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_chat_sessions_status_started", table_name="chat_sessions")
