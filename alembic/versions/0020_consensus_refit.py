"""consensus refit: a log of the model refits the web app runs by itself

Revision ID: 0020_consensus_refit
Revises: 0019_vote_undo
Create Date: 2026-12-07 04:30:00

Between ``synset consensus`` runs the live path only learns from credits; the
web app now refits the model itself once enough new votes have arrived. One row
per refit (who ran it, from when to when, how many votes it saw, how it ended)
tells the next process whether a refit is due and stops two processes from
running one at the same time.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_consensus_refit"
down_revision: str | None = "0019_vote_undo"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consensus_refit",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        # The highest vote id the refit read: votes past it are "new" for the next one.
        sa.Column("votes_seen", sa.BigInteger(), nullable=False),
        # running | done | failed
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=True),
        # The server process that started the refit touches this while its child runs;
        # a running row nobody touched for long is a refit whose server died.
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
    )
    # At most one running refit, whatever the number of server processes: the second
    # process's insert of a running row fails on this index (both backends).
    op.create_index(
        "ux_consensus_refit_running",
        "consensus_refit",
        ["status"],
        unique=True,
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    )


def downgrade() -> None:
    op.drop_index("ux_consensus_refit_running", table_name="consensus_refit")
    op.drop_table("consensus_refit")
