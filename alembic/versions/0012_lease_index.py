"""lease index: an annotator's leases in expiry order, one index instead of two

Revision ID: 0012_lease_index
Revises: 0011_initial_ids
Create Date: 2026-11-30 21:30:00

Every task fetch asks which synset the annotator's latest lease is in and whether
they still hold unexpired leases. With one index per column, PostgreSQL read all
of the annotator's lease rows (one per item they ever took) and sorted them; with
(annotator_id, expires_at) both are a short index range read. Nothing reads
leases by expiry alone, so that index went: each lease write maintains one fewer.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012_lease_index"
down_revision: str | None = "0011_initial_ids"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_lease_annotator_id_expires_at", "lease", ["annotator_id", "expires_at"])
    op.drop_index("ix_lease_annotator_id", table_name="lease")
    op.drop_index("ix_lease_expires_at", table_name="lease")


def downgrade() -> None:
    op.create_index("ix_lease_expires_at", "lease", ["expires_at"])
    op.create_index("ix_lease_annotator_id", "lease", ["annotator_id"])
    op.drop_index("ix_lease_annotator_id_expires_at", table_name="lease")
