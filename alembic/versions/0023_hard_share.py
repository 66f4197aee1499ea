"""synset.hard_share: each synset's share of candidates the crowd cannot tell

Revision ID: 0023_hard_share
Revises: 0022_rehash
Create Date: 2026-12-07 17:50:00

The consensus model learns, at each refit, the share of a synset's candidates on
which the votes are each voter's usual answer whatever the truth
(``synset_builder/consensus/hard_items.py``), and mixes a hard-looking item's
posterior toward the prior by it. ``synset consensus`` writes it beside
``prior_yes``; the web app's update after each submit reads it, so both paths
decide with the same model. 0 (every existing row, the server default) means no
share learned yet: every item is ordinary, the rule as before, until the next
refit.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023_hard_share"
down_revision: str | None = "0022_rehash"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("synset", sa.Column("hard_share", sa.Float(), nullable=False, server_default="0"))


def downgrade() -> None:
    op.drop_column("synset", "hard_share")
