"""a consultation the clinician never joined

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 14:30:00

A patient who waited in the room for a clinician who never came is not a no-show: at the window's close the
consultation becomes `clinician_absent` (its appointment cancelled) and the patient is offered new times.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = "status IN ('scheduled', 'confirmed', 'waiting', 'in_progress', 'completed', 'no_show', 'cancelled')"
AFTER = (
    "status IN ('scheduled', 'confirmed', 'waiting', 'in_progress', 'completed', 'no_show', 'cancelled', "
    "'clinician_absent')"
)


def upgrade() -> None:
    with op.batch_alter_table("video_consultations", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_video_consultations_status_known"), type_="check")
        batch_op.create_check_constraint(op.f("ck_video_consultations_status_known"), AFTER)


def downgrade() -> None:
    op.execute("UPDATE video_consultations SET status = 'cancelled' WHERE status = 'clinician_absent'")
    with op.batch_alter_table("video_consultations", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_video_consultations_status_known"), type_="check")
        batch_op.create_check_constraint(op.f("ck_video_consultations_status_known"), BEFORE)
