"""candidate.settled: a flag kept by triggers, and a partial serve index of unsettled items

Revision ID: 0014_candidate_settled
Revises: 0013_vote_index
Create Date: 2026-12-01 07:00:00

The web app serves the bulk of a synset by walking ``ix_candidate_serve_key`` and
skipping every candidate whose consensus row is initial or decided. As a synset
fills up the walk steps over more and more settled items (each checked against a
dozen tables) before it finds a page: PostgreSQL's cost per task fetch grew with
the number of decisions. ``ix_candidate_serve_open`` holds only the candidates
not yet settled, so the walk meets open items at once.

The flag is written by triggers on ``consensus`` (every writer is covered: the web
submit, ``synset consensus``, imports, scripts). On PostgreSQL, setting it to true
skips a candidate row that another transaction has locked (a task fetch leasing
it) rather than wait: waiting could deadlock with that fetch's lease upsert. A
flag left false only costs the walk one more row, since the serving query still
checks the consensus row itself; the next write of that row's decision sets it.
Clearing it (an item reopened) waits, since a stale true would hide an open item,
except for a requeued item: the requeue tier serves it whatever the flag says (the
flag is true again once its requeue is resolved, by a decision), and the submit
that reopens it holds its lease row, so waiting could deadlock there too.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_candidate_settled"
down_revision: str | None = "0013_vote_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = "(id * 2654435761) % 2147483629"
# Must match synset_builder.consensus.live.DECIDED (tests/synset_builder/test_settled.py).
DECIDED = "('accepted', 'rejected', 'undecided')"
NEW = f"(NEW.initial OR NEW.decision IN {DECIDED})"
OLD = f"(OLD.initial OR OLD.decision IN {DECIDED})"

PG_FUNCTION = f"""
CREATE FUNCTION consensus_settles() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        UPDATE candidate SET settled = false WHERE id = OLD.candidate_id AND settled;
    ELSIF {NEW} THEN
        PERFORM 1 FROM candidate WHERE id = NEW.candidate_id AND NOT settled
            FOR NO KEY UPDATE SKIP LOCKED;
        IF FOUND THEN
            UPDATE candidate SET settled = true WHERE id = NEW.candidate_id;
        END IF;
    ELSIF EXISTS (SELECT 1 FROM requeue
                  WHERE candidate_id = NEW.candidate_id AND resolved_at IS NULL) THEN
        PERFORM 1 FROM candidate WHERE id = NEW.candidate_id AND settled
            FOR NO KEY UPDATE SKIP LOCKED;
        IF FOUND THEN
            UPDATE candidate SET settled = false WHERE id = NEW.candidate_id;
        END IF;
    ELSE
        UPDATE candidate SET settled = false WHERE id = NEW.candidate_id AND settled;
    END IF;
    RETURN NULL;
END $$
"""

# (name, event, condition): the function runs only where the flag is or was true
# (an update of a settled row sets a flag a locked candidate row made it skip).
TRIGGERS = [
    ("consensus_settles_insert", "INSERT", NEW),
    ("consensus_settles_update", "UPDATE OF initial, decision", f"{NEW} OR {OLD}"),
    ("consensus_settles_delete", "DELETE", OLD),
]
SQLITE_BODY = {
    "consensus_settles_insert": "UPDATE candidate SET settled = 1 WHERE id = NEW.candidate_id;",
    "consensus_settles_update": (
        f"UPDATE candidate SET settled = {NEW} WHERE id = NEW.candidate_id;"
    ),
    "consensus_settles_delete": "UPDATE candidate SET settled = 0 WHERE id = OLD.candidate_id;",
}


def upgrade() -> None:
    postgresql = op.get_context().dialect.name == "postgresql"
    op.add_column(
        "candidate",
        sa.Column("settled", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.execute(
        "UPDATE candidate SET settled = "
        f"{'true' if postgresql else '1'} "
        "WHERE EXISTS (SELECT 1 FROM consensus WHERE consensus.candidate_id = candidate.id "
        f"AND (consensus.initial OR consensus.decision IN {DECIDED}))"
    )
    op.create_index(
        "ix_candidate_serve_open",
        "candidate",
        [sa.text("synset_id"), sa.text(f"({KEY})")],
        postgresql_where=sa.text("NOT settled"),
        sqlite_where=sa.text("settled = 0"),
    )
    if postgresql:
        op.execute(PG_FUNCTION)
    for name, event, condition in TRIGGERS:
        if postgresql:
            op.execute(
                f"CREATE TRIGGER {name} AFTER {event} ON consensus FOR EACH ROW "
                f"WHEN ({condition}) EXECUTE FUNCTION consensus_settles()"
            )
        else:
            op.execute(
                f"CREATE TRIGGER {name} AFTER {event} ON consensus FOR EACH ROW "
                f"WHEN {condition} BEGIN {SQLITE_BODY[name]} END"
            )


def downgrade() -> None:
    postgresql = op.get_context().dialect.name == "postgresql"
    for name, _, _ in TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON consensus" if postgresql else f"DROP TRIGGER {name}")
    if postgresql:
        op.execute("DROP FUNCTION consensus_settles()")
    op.drop_index("ix_candidate_serve_open", table_name="candidate")
    # Not batch mode on SQLite: recreating the table would lose the expression index
    # ix_candidate_serve_key, which SQLAlchemy cannot reflect. SQLite >= 3.35 drops it.
    op.execute("ALTER TABLE candidate DROP COLUMN settled")
