"""vote index: drop ix_vote_candidate_id, a prefix of the (candidate_id, annotator_id) key

Revision ID: 0013_vote_index
Revises: 0012_lease_index
Create Date: 2026-11-30 22:00:00

Every vote written maintained both; the unique constraint's index answers every
lookup by candidate just as well (its first column).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013_vote_index"
down_revision: str | None = "0012_lease_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_vote_candidate_id", table_name="vote")


def downgrade() -> None:
    op.create_index("ix_vote_candidate_id", "vote", ["candidate_id"])
