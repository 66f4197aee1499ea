"""consensus model: a class prior per synset, and why an item is undecided

Revision ID: 0015_consensus_model
Revises: 0014_candidate_settled
Create Date: 2026-12-06 23:10:00

The web app decides each submitted item with the same model as ``synset
consensus`` (consensus/model.py). That model has a class prior per synset,
estimated at each refit; ``synset.prior_yes`` keeps it where the submit path can
read it with the synset row it already reads (None: not refitted yet, 0.5).
``consensus.reason`` says why an item was left undecided (vote cap, nobody
left who has not voted on it, more votes could not settle it), so a curator can
tell a team too small from an image too hard.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_consensus_model"
down_revision: str | None = "0014_candidate_settled"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE ... ADD COLUMN on both backends: a batch copy on SQLite would
    # drop the settled-flag triggers on consensus (0014).
    op.add_column("synset", sa.Column("prior_yes", sa.Float(), nullable=True))
    op.add_column("consensus", sa.Column("reason", sa.String(length=120), nullable=True))


def downgrade() -> None:
    op.drop_column("consensus", "reason")
    op.drop_column("synset", "prior_yes")
