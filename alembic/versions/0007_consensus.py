"""consensus: initial-subset flag, annotator quality and exclusion

Revision ID: 0007_consensus
Revises: 0008_takedown
Create Date: 2026-11-23 04:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_consensus"
down_revision: str | None = "0008_takedown"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "annotator_quality",
        sa.Column("annotator_id", sa.Integer(), nullable=False),
        sa.Column("votes", sa.Integer(), nullable=False),
        sa.Column("gold_total", sa.Integer(), nullable=False),
        sa.Column("gold_correct", sa.Integer(), nullable=False),
        sa.Column("sensitivity", sa.Float(), nullable=False),
        sa.Column("specificity", sa.Float(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("excluded", sa.Boolean(), nullable=False),
        sa.Column("exclusion_reason", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["annotator_id"],
            ["annotator.id"],
            name=op.f("fk_annotator_quality_annotator_id_annotator"),
        ),
        sa.PrimaryKeyConstraint("annotator_id", name=op.f("pk_annotator_quality")),
    )
    with op.batch_alter_table("consensus", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("initial", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("consensus", schema=None) as batch_op:
        batch_op.drop_column("initial")
    op.drop_table("annotator_quality")
