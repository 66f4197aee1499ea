"""takedown: withdrawn images (by sha256, url or creator), reversible

Revision ID: 0008_takedown
Revises: 0004_crawl
Create Date: 2026-11-23 04:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_takedown"
down_revision: str | None = "0004_crawl"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "takedown",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoke_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_takedown")),
    )
    op.create_index(op.f("ix_takedown_kind"), "takedown", ["kind"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_takedown_kind"), table_name="takedown")
    op.drop_table("takedown")
