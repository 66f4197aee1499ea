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

``annotator_quality.counts`` (JSON) becomes six numeric columns: a submit that
credits voters adds to them with one ``UPDATE ... SET yy = yy + ...`` instead of
locking, reading, decoding and rewriting every record it touches.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_consensus_model"
down_revision: str | None = "0014_candidate_settled"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


COUNTS = {"yy": "yy", "yn": "yn", "ny": "ny", "nn": "nn"}
ANSWERS = ("answered_yes", "answered_no")


def upgrade() -> None:
    # Plain ALTER TABLE ... ADD COLUMN on both backends: a batch copy on SQLite would
    # drop the settled-flag triggers on consensus (0014).
    op.add_column("synset", sa.Column("prior_yes", sa.Float(), nullable=True))
    op.add_column("consensus", sa.Column("reason", sa.String(length=120), nullable=True))
    for name in (*COUNTS, *ANSWERS):
        op.add_column(
            "annotator_quality",
            sa.Column(name, sa.Float(), nullable=False, server_default="0"),
        )
    conn = op.get_bind()
    table = sa.table(
        "annotator_quality",
        sa.column("annotator_id", sa.Integer),
        sa.column("counts", sa.JSON),
        *(sa.column(name, sa.Float) for name in COUNTS),
    )
    for annotator_id, counts in conn.execute(sa.select(table.c.annotator_id, table.c.counts)):
        values = {name: float((counts or {}).get(key, 0.0)) for name, key in COUNTS.items()}
        conn.execute(table.update().where(table.c.annotator_id == annotator_id).values(**values))
    with op.batch_alter_table("annotator_quality") as batch:
        batch.drop_column("counts")


def downgrade() -> None:
    with op.batch_alter_table("annotator_quality") as batch:
        batch.add_column(sa.Column("counts", sa.JSON(), nullable=True))
    for name in (*ANSWERS, *COUNTS):
        with op.batch_alter_table("annotator_quality") as batch:
            batch.drop_column(name)
    op.drop_column("consensus", "reason")
    op.drop_column("synset", "prior_yes")
