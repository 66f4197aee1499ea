"""vote undo: votes an annotator took back within a minute, kept aside

Revision ID: 0019_vote_undo
Revises: 0018_review_audit
Create Date: 2026-12-07 04:30:00

An annotator may undo the page they just submitted (a misclick). Nothing is
lost: each undone vote moves to ``vote_undone`` with the time it was taken back,
so every query over ``vote`` (consensus, counters, exports) stays as it is and
the history can still be read.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_vote_undo"
down_revision: str | None = "0018_review_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "vote_undone",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("vote_id", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), sa.ForeignKey("candidate.id"), nullable=False),
        sa.Column("annotator_id", sa.Integer(), sa.ForeignKey("annotator.id"), nullable=False),
        sa.Column("answer", sa.Boolean(), nullable=False),
        sa.Column("time_ms", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_vote_undone_annotator", "vote_undone", ["annotator_id"])


def downgrade() -> None:
    op.drop_index("ix_vote_undone_annotator", table_name="vote_undone")
    op.drop_table("vote_undone")
