"""requeue: candidates sent back for more votes (trainer suspects)

Revision ID: 0009_requeue
Revises: 0001
Create Date: 2026-11-23 04:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_requeue"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "requeue",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["candidate_id"], ["candidate.id"], name=op.f("fk_requeue_candidate_id_candidate")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_requeue")),
    )
    with op.batch_alter_table("requeue", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_requeue_candidate_id"), ["candidate_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("requeue", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_requeue_candidate_id"))
    op.drop_table("requeue")
