"""clean: image hashes, curator keep, greyscale/sharpness, reference flags, near duplicates

Revision ID: 0005_clean
Revises: 0006_web
Create Date: 2026-11-23 04:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_clean"
down_revision: str | None = "0006_web"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "image_hash",
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("algo", sa.String(length=16), nullable=False),
        sa.Column("full", sa.BigInteger(), nullable=False),
        sa.Column("crop90", sa.BigInteger(), nullable=False),
        sa.Column("crop80", sa.BigInteger(), nullable=False),
        sa.Column("mirror", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"], ["image.id"], name=op.f("fk_image_hash_image_id_image")
        ),
        sa.PrimaryKeyConstraint("image_id", "algo", name=op.f("pk_image_hash")),
    )
    with op.batch_alter_table("image", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("keep", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("greyscale", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("sharpness", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("reference_match", sa.Text(), nullable=True))
    with op.batch_alter_table("candidate", schema=None) as batch_op:
        batch_op.add_column(sa.Column("near_duplicate_of", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("conflict_group", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_candidate_near_duplicate_of"), ["near_duplicate_of"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_candidate_conflict_group"), ["conflict_group"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_candidate_near_duplicate_of_candidate"),
            "candidate",
            ["near_duplicate_of"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("candidate", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_candidate_near_duplicate_of_candidate"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_candidate_conflict_group"))
        batch_op.drop_index(batch_op.f("ix_candidate_near_duplicate_of"))
        batch_op.drop_column("conflict_group")
        batch_op.drop_column("near_duplicate_of")
    with op.batch_alter_table("image", schema=None) as batch_op:
        batch_op.drop_column("reference_match")
        batch_op.drop_column("sharpness")
        batch_op.drop_column("greyscale")
        batch_op.drop_column("keep")
    op.drop_table("image_hash")
