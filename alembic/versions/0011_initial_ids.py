"""initial ids: each synset's initial subset, on the synset row

Revision ID: 0011_initial_ids
Revises: 0010_serve_index
Create Date: 2026-11-30 21:00:00

The web app asks, on every fetch and submit, whether a synset's initial subset is
fixed, which of its items are open, and what prior they give. Found through
``consensus.initial``, each question scanned the initial rows of every synset (a
consensus row does not know its synset), so a fetch slowed down with the number of
synsets. The subset never changes once fixed: kept on the synset row, the three
questions become a look at a loaded row and primary-key lookups.
``consensus.initial`` stays what the consensus stage reads.
"""

from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_initial_ids"
down_revision: str | None = "0010_serve_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("synset", sa.Column("initial_ids", sa.JSON(), nullable=True))
    conn = op.get_bind()
    subsets: dict[int, list[int]] = defaultdict(list)
    for synset_id, candidate_id in conn.execute(
        sa.text(
            "SELECT candidate.synset_id, consensus.candidate_id FROM consensus "
            "JOIN candidate ON candidate.id = consensus.candidate_id WHERE consensus.initial"
        )
    ):
        subsets[synset_id].append(candidate_id)
    synset = sa.table("synset", sa.column("id", sa.Integer), sa.column("initial_ids", sa.JSON))
    for synset_id, ids in subsets.items():
        conn.execute(
            synset.update().where(synset.c.id == synset_id).values(initial_ids=sorted(ids))
        )


def downgrade() -> None:
    with op.batch_alter_table("synset") as batch:
        batch.drop_column("initial_ids")
