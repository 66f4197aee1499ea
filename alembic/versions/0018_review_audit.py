"""review and audit: a curator's expert decisions, and the blind audit sample

Revision ID: 0018_review_audit
Revises: 0017_synset_tally
Create Date: 2026-12-07 04:30:00

``expert_decision`` holds a curator's judgement of one candidate. Rows are only
appended: the newest row per candidate is the one in force, and a row whose
``label`` is NULL hands the item back to the crowd's consensus. The crowd's votes
are never touched. ``gold`` marks a judgement whose answer is also the item's gold
answer (the judgement measures the annotators who voted on it).

``audit_sample`` is the uniform random sample ``synset audit start`` draws from a
synset's accepted (or rejected) items; ``round`` counts the draws of a synset so
``--more`` adds a new round. The judgement is stored on the sample row (and as an
expert decision) so the audited precision is one aggregate over this table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_review_audit"
down_revision: str | None = "0017_synset_tally"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "expert_decision",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("candidate_id", sa.Integer(), sa.ForeignKey("candidate.id"), nullable=False),
        sa.Column("label", sa.Boolean(), nullable=True),
        sa.Column("annotator_id", sa.Integer(), sa.ForeignKey("annotator.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        # The item's gold answer is this curator's (made by a judgement, not by a gold
        # file), so withdrawing the judgement takes the gold answer away with it.
        sa.Column("gold", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_index("ix_expert_decision_candidate", "expert_decision", ["candidate_id", "id"])
    op.create_table(
        "audit_sample",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("synset_id", sa.Integer(), sa.ForeignKey("synset.id"), nullable=False),
        sa.Column("candidate_id", sa.Integer(), sa.ForeignKey("candidate.id"), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        # accepted | rejected: what the crowd had decided when the item was drawn.
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=True),
        sa.Column("drawn_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("judged_label", sa.Boolean(), nullable=True),
        sa.Column("judged_by", sa.Integer(), sa.ForeignKey("annotator.id"), nullable=True),
        sa.Column("judged_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("synset_id", "candidate_id", "round"),
    )
    op.create_index("ix_audit_sample_candidate", "audit_sample", ["candidate_id"])


def downgrade() -> None:
    op.drop_index("ix_audit_sample_candidate", table_name="audit_sample")
    op.drop_table("audit_sample")
    op.drop_index("ix_expert_decision_candidate", table_name="expert_decision")
    op.drop_table("expert_decision")
