"""serve index: candidates of a synset in serving order, for the web app's lease query

Revision ID: 0010_serve_index
Revises: 0007_consensus
Create Date: 2026-11-23 05:10:00

The web app leases the next items of a synset in the order of the consensus
serve key (a stable pseudo-random key per candidate). Without this index each
task fetch checked and sorted every candidate of the synset (~100 ms for 5,000);
with it PostgreSQL and SQLite walk the index from a point and stop after a page.
The expression must stay byte-identical to ``live.serve_key()``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_serve_index"
down_revision: str | None = "0007_consensus"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = "(id * 2654435761) % 2147483629"


def upgrade() -> None:
    op.create_index(
        "ix_candidate_serve_key", "candidate", [sa.text("synset_id"), sa.text(f"({KEY})")]
    )
    # The initial subset (served first) is a handful of rows per synset.
    op.create_index(
        "ix_consensus_initial",
        "consensus",
        ["candidate_id"],
        postgresql_where=sa.text("initial"),
        sqlite_where=sa.text("initial"),
    )


def downgrade() -> None:
    op.drop_index("ix_consensus_initial", table_name="consensus")
    op.drop_index("ix_candidate_serve_key", table_name="candidate")
