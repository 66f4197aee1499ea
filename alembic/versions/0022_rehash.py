"""image_hash.version: which definition of the perceptual hashes a row holds

Revision ID: 0022_rehash
Revises: 0021_gold_matrix
Create Date: 2026-12-07 09:10:00

The clean stage's hashes changed definition (issue 23: a 1/8-scale decode instead
of 1/4, and the Lanczos resize done on float pixels instead of 8-bit ones), and
hashes of two definitions of one picture lie a few bits apart, so comparing them
would weaken the near-duplicate threshold. Every existing row is version 1 (the server
default, written by this migration without touching the rows' hashes); the clean
stage writes the version it computes (``synset_builder.clean.fingerprint``'s
``HASH_VERSION``) and treats an image whose row has another as not hashed yet.

So the upgrade itself is one ``ALTER TABLE`` and nothing is decoded here; the next
``synset clean`` rehashes the old rows, replacing each (verdicts stay: they are
decisions already explained). It commits every few hundred images, so an
interrupted run resumes where it stopped, and a second run finds nothing to do.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_rehash"
down_revision: str | None = "0021_gold_matrix"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "image_hash",
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
    )


def downgrade() -> None:
    # Version 2 rows stay, unmarked: the older code cannot tell them apart, and a
    # downgrade is for going back to it; `synset clean` then keeps what it finds.
    with op.batch_alter_table("image_hash") as batch:
        batch.drop_column("version")
