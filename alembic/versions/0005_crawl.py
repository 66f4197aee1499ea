"""crawl: fetch failures as data, finished result pages for resuming

Revision ID: 0004_crawl
Revises: 0005_clean
Create Date: 2026-11-23 04:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_crawl"
down_revision: str | None = "0005_clean"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fetch_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("synset_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("url_sha256", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("query", sa.String(length=300), nullable=True),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("license", sa.String(length=100), nullable=True),
        sa.Column("creator", sa.String(length=300), nullable=True),
        sa.Column("landing_url", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("resolved", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["synset_id"], ["synset.id"], name=op.f("fk_fetch_failure_synset_id_synset")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fetch_failure")),
        sa.UniqueConstraint(
            "synset_id", "url_sha256", name=op.f("uq_fetch_failure_synset_id_url_sha256")
        ),
    )
    with op.batch_alter_table("fetch_failure", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fetch_failure_reason"), ["reason"], unique=False)
        batch_op.create_index(batch_op.f("ix_fetch_failure_synset_id"), ["synset_id"], unique=False)

    op.create_table(
        "crawl_page",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("synset_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("query", sa.String(length=300), nullable=False),
        sa.Column("page", sa.Integer(), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("last", sa.Boolean(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["synset_id"], ["synset.id"], name=op.f("fk_crawl_page_synset_id_synset")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crawl_page")),
        sa.UniqueConstraint(
            "synset_id",
            "source",
            "query",
            "page",
            name=op.f("uq_crawl_page_synset_id_source_query_page"),
        ),
    )
    with op.batch_alter_table("crawl_page", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_crawl_page_synset_id"), ["synset_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("crawl_page", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_crawl_page_synset_id"))
    op.drop_table("crawl_page")
    with op.batch_alter_table("fetch_failure", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fetch_failure_synset_id"))
        batch_op.drop_index(batch_op.f("ix_fetch_failure_reason"))
    op.drop_table("fetch_failure")
