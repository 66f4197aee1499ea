"""synset tally: per-synset counters kept by triggers, and what keeps them cheap

Revision ID: 0017_synset_tally
Revises: 0016_account_sessions
Create Date: 2026-12-07 04:00:00

The dashboard, ``/api/synsets``, ``synset status`` and ``hierarchy show`` counted
the funnel with one GROUP BY per counter over every candidate, vote and decision:
at ILSVRC's size (1M candidates, 2.4M votes) a page took minutes. The counts now
live in ``synset_tally`` (one row per synset) plus ``synset_tally_delta``, a
ledger: each write appends the change it makes, readers add the two, and a
reader that finds the ledger long folds it into the tally (synset_builder/tally.py).
Writers only append, so two submits never wait on one counter row.

Triggers write the ledger, so every writer is covered (the web app, every
``synset`` command, scripts). On PostgreSQL the tables written in bulk have
statement triggers over transition tables: one grouped insert per statement,
however many rows it wrote. SQLite has row triggers only. The SQL is in the two
``0017_synset_tally.*.sql`` files beside this one.

Whether a candidate counts as clean depends on takedowns and reports of its image,
which name the image only indirectly (a URL, a creator). So ``image.withheld``
(matched by an active takedown, or an open or upheld report) is kept by triggers
on takedown, report, image and candidate; a change of it moves the image's
candidates between the clean count and no count. A candidate's synset and image
are fixed at its insert (nothing writes them later; a script that did would need
``synset status --recount``, which recounts exactly and resets both tables).

Concurrency (PostgreSQL, READ COMMITTED): a count must not miss a write committed
beside it, so

* a trigger reading an image's state first locks the image row (FOR SHARE; FOR NO
  KEY UPDATE to rewrite ``withheld``): a concurrent clean of it is seen or sees us;
* takedown writes take an exclusive advisory lock, image and candidate inserts the
  shared one: a takedown's match and a new candidate's URL meet;
* vote writes lock their items (advisory, per candidate; past 1,000 in one
  transaction, the vote table): the agreement sums, which are not additive, see
  each other's votes; a vote also holds its item's decision row (FOR SHARE), and a
  new decision takes the item's lock (up to 1,000 per transaction: a recompute
  never makes voters wait), so the annotators' agreement figures see both.

Indexes, so takedown matching and "votes in the last hour" read only what they
need: a hash index on candidate.url (URLs outgrow a btree) and takedown.value, a
btree on candidate.creator, a BRIN index on vote.created_at (votes are appended
in time order; nearly free to keep up).
"""

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "0017_synset_tally"
down_revision: str | None = "0016_account_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HERE = Path(__file__).resolve().parent
COUNTS = ("candidates", "clean", "rejected", "failed", "votes", "accepted",
          "rejected_by_vote", "undecided", "pending", "agreed_items")  # fmt: skip
DECISIONS = {"accepted": "accepted", "rejected_by_vote": "rejected", "undecided": "undecided",
             "pending": "pending"}  # fmt: skip
VOTER = ("votes", "timed_votes", "time_ms", "gold_answered", "gold_correct", "decided", "agreed")
INDEXES = {"ix_vote_created_at": "vote", "ix_takedown_value": "takedown",
           "ix_candidate_creator": "candidate", "ix_candidate_url": "candidate"}  # fmt: skip


def _passed(c: str, i: str) -> str:
    """synset_builder.pool.passed_clean_clause, for candidate ``c`` and a checked image ``i``."""
    return (f"(({i}.quality <> 'rejected' OR {i}.keep) AND {c}.near_duplicate_of IS NULL "
            f"AND {i}.reference_match IS NULL)")  # fmt: skip


def _withheld(i: str) -> str:
    """synset_builder.pool.withheld_clause for image ``i``: a takedown or a report."""
    active = "t.revoked_at IS NULL"
    return (
        f"(EXISTS (SELECT 1 FROM takedown t WHERE t.kind = 'sha256' AND t.value = {i}.sha256"
        f" AND {active}) OR EXISTS (SELECT 1 FROM candidate o JOIN takedown t ON t.value ="
        f" o.url WHERE o.image_id = {i}.id AND t.kind = 'url' AND {active}) OR EXISTS (SELECT"
        f" 1 FROM candidate o JOIN takedown t ON t.value = o.creator WHERE o.image_id = {i}.id"
        f" AND t.kind = 'creator' AND {active}) OR EXISTS (SELECT 1 FROM report r WHERE"
        f" r.image_id = {i}.id AND (r.resolution IS NULL OR r.resolution = 'removed')))"
    )


def _yes(rows: str) -> str:
    """'NEW -OLD' -> +1 per yes vote of NEW, -1 per yes vote of OLD."""
    terms = (("-" if r.startswith("-") else "+", r.lstrip("-")) for r in rows.split())
    return " ".join(f"{s} (CASE WHEN {r}.answer THEN 1 ELSE 0 END)" for s, r in terms)


def _votes_of(rows: str) -> str:
    """Votes (``rows``: a table or subquery of vote rows) with their item's gold answer
    and decision, each read by key (a join would scan the gold table per statement)."""
    return (
        "(SELECT s.annotator_id, s.time_ms, s.answer, (SELECT g.answer FROM gold g WHERE "
        "g.candidate_id = s.candidate_id) AS gold, (SELECT k.decision FROM consensus k WHERE "
        "k.candidate_id = s.candidate_id AND k.decision IN ('accepted', 'rejected')) AS decision "
        f"FROM {rows} s)"
    )


def _rules(pg: bool) -> dict[str, Callable[..., str]]:
    """The macros of the .sql files. CLEAN(c, i) / REJECTED(c, i): 1 if candidate
    ``c`` with image ``i`` counts as clean / rejected (synset_builder/status.py).
    WITHHELD(i): 1 if image ``i`` is taken down or reported. SHARE(yes, n): the
    majority's share of an item's votes, from two votes up; ITEMS(n): 1 from two
    votes up (status.count_agreement). DECISIONS(k, sign): the four decision counts
    of consensus row ``k`` as columns. VOTES_OF(rows): vote rows with their item's gold
    answer and decided decision; VOTER_SUMS(v, sign): the annotators' figures over
    them. SQLite only: REWITHHOLD(id, ...) sets ``withheld`` of those images right;
    TAKEN(row): of the images a takedown row covers; ITEM_VOTES(item, dn, rows, when):
    the ledger row for an item whose vote count changed by ``dn``, with the yes votes
    of ``rows`` ('NEW -OLD')."""
    big = "GREATEST({0}, {1} - {0})" if pg else "max({0}, {1} - {0})"
    real = "double precision" if pg else "REAL"
    return {
        "CLEAN": lambda c, i: (
            f"(CASE WHEN {i}.quality IS NOT NULL AND {_passed(c, i)} "
            f"AND NOT {i}.withheld THEN 1 ELSE 0 END)"
        ),
        "REJECTED": lambda c, i: (
            f"(CASE WHEN {i}.quality IS NOT NULL AND NOT {_passed(c, i)} THEN 1 ELSE 0 END)"
        ),
        "WITHHELD": _withheld,
        "SHARE": lambda yes, n: (
            f"(CASE WHEN {n} >= 2 THEN CAST({big.format(yes, n)} AS {real}) / {n} ELSE 0 END)"
        ),
        "ITEMS": lambda n: f"(CASE WHEN {n} >= 2 THEN 1 ELSE 0 END)",
        "DECISIONS": lambda k, sign: ", ".join(
            f"{sign} * (CASE WHEN {k}.decision = '{v}' THEN 1 ELSE 0 END) AS {name}"
            for name, v in DECISIONS.items()
        ),
        "REWITHHOLD": lambda *ids: (
            f"UPDATE image SET withheld = NOT withheld WHERE id IN "
            f"({', '.join(ids)}) AND withheld <> WITHHELD(image)"
        ),
        "TAKEN": lambda r: (
            "REWITHHOLD("
            + ", ".join(
                f"SELECT {col} FROM {table} WHERE {r}.kind = '{kind}' AND {key} = {r}.value"
                for kind, table, col, key in (
                    ("sha256", "image", "id", "sha256"),
                    ("url", "candidate", "image_id", "url"),
                    ("creator", "candidate", "image_id", "creator"),
                )
            ).replace(", SELECT", " UNION SELECT")
            + ")"
        ),  # fmt: skip
        "VOTER_COLUMNS": lambda _: ", ".join(VOTER),
        "VOTES_OF": _votes_of,
        "VOTER_SUMS": lambda v, sign: ", ".join(
            f"{sign} * {term.format(v=v)}"
            for term in (
                "count(*)",
                "count({v}.time_ms)",
                "coalesce(sum({v}.time_ms), 0)",
                "count({v}.gold)",
                "count(*) FILTER (WHERE {v}.gold = {v}.answer)",
                "count({v}.decision)",
                "coalesce(sum(AGREES({v}, {v})), 0)",
            )
        ),  # fmt: skip
        "AGREES": lambda v, k: (
            f"(CASE WHEN {v}.answer = ({k}.decision = 'accepted') THEN 1 ELSE 0 END)"
        ),
        "VOTER_DELTA": lambda r, sign: (
            "INSERT INTO annotator_tally_delta (annotator_id, VOTER_COLUMNS()) SELECT "
            f"v.annotator_id, VOTER_SUMS(v, {sign}) FROM "
            + _votes_of(
                "(SELECT "
                + ", ".join(
                    f"{r}.{c} AS {c}" for c in ("annotator_id", "candidate_id", "answer", "time_ms")
                )
                + ")"
            )
            + " v GROUP BY v.annotator_id"
        ),  # fmt: skip
        "DECIDED_DELTA": lambda r, sign: (
            "INSERT INTO annotator_tally_delta (annotator_id, "
            f"decided, agreed) SELECT v.annotator_id, {sign}, {sign} * AGREES(v, {r}) FROM vote v "
            f"WHERE v.candidate_id = {r}.candidate_id AND {r}.decision IN ('accepted', 'rejected')"
        ),
        "GOLD_DELTA": lambda r, sign: (
            "INSERT INTO annotator_tally_delta (annotator_id, "
            f"gold_answered, gold_correct) SELECT v.annotator_id, {sign}, {sign} * (CASE WHEN "
            f"v.answer = {r}.answer THEN 1 ELSE 0 END) FROM vote v WHERE v.candidate_id = "
            f"{r}.candidate_id"
        ),
        "ITEM_VOTES": lambda item, dn, rows, when: (
            "INSERT INTO synset_tally_delta (synset_id, votes, agreed_items, agreement_sum) "
            "SELECT c.synset_id, t.dn, ITEMS(t.n) - ITEMS(t.bn), SHARE(t.yes, t.n) - "
            "SHARE(t.byes, t.bn) FROM candidate c, (SELECT n, yes, dn, n - dn AS bn, yes - dyes "
            "AS byes FROM (SELECT count(*) AS n, coalesce(sum(answer), 0) AS yes, "
            f"{dn} AS dn, {_yes(rows)} AS dyes FROM vote WHERE candidate_id = {item})) t "
            f"WHERE c.id = {item} AND {when}"
        ),
    }


def expand(sql: str, pg: bool) -> str:
    """Replace the macros until none is left (a rule may write another)."""
    rules = _rules(pg)
    pattern = re.compile(r"\b(" + "|".join(rules) + r")\(([^()]*)\)")
    while True:
        done = pattern.sub(lambda m: rules[m[1]](*m[2].split(", ")), sql)
        if done == sql:
            return sql
        sql = done


def _sql(pg: bool) -> str:
    return (HERE / f"0017_synset_tally.{'postgresql' if pg else 'sqlite'}.sql").read_text()


# The exact counts of synset_builder/status.py, written to the ledger once.
INITIAL = f"""
UPDATE image SET withheld = NOT withheld WHERE withheld <> WITHHELD(image)
----
INSERT INTO synset_tally_delta (synset_id, candidates, clean, rejected)
SELECT c.synset_id, count(*), sum(CLEAN(c, i)), sum(REJECTED(c, i))
FROM candidate c JOIN image i ON i.id = c.image_id GROUP BY c.synset_id
----
INSERT INTO synset_tally_delta (synset_id, failed)
SELECT synset_id, count(*) FROM fetch_failure WHERE NOT resolved GROUP BY synset_id
----
INSERT INTO synset_tally_delta (synset_id, accepted, rejected_by_vote, undecided, pending)
SELECT synset_id, sum(accepted), sum(rejected_by_vote), sum(undecided), sum(pending)
FROM (SELECT c.synset_id, DECISIONS(k, 1) FROM consensus k
      JOIN candidate c ON c.id = k.candidate_id) d
GROUP BY synset_id
----
INSERT INTO synset_tally_delta (synset_id, votes, agreed_items, agreement_sum)
SELECT c.synset_id, sum(t.n), sum(ITEMS(t.n)), sum(SHARE(t.yes, t.n))
FROM (SELECT candidate_id, count(*) AS n, sum({_yes("vote")}) AS yes FROM vote
      GROUP BY candidate_id) t JOIN candidate c ON c.id = t.candidate_id GROUP BY c.synset_id
----
INSERT INTO annotator_tally_delta (annotator_id, VOTER_COLUMNS())
SELECT v.annotator_id, VOTER_SUMS(v, 1) FROM VOTES_OF(vote) v GROUP BY v.annotator_id
"""


def _run(sql: str, pg: bool) -> None:
    """Each group of statements (between lines of dashes) in one round trip."""
    for chunk in re.split(r"^-{4,}$", expand(sql, pg), flags=re.M):
        if chunk.strip():
            op.get_bind().exec_driver_sql(chunk)


def _columns() -> list[sa.Column]:
    return [
        *(sa.Column(name, sa.Integer(), nullable=False, server_default="0") for name in COUNTS),
        sa.Column("agreement_sum", sa.Float(), nullable=False, server_default="0"),
    ]


def _voter_columns() -> list[sa.Column]:
    return [
        sa.Column(name, sa.BigInteger() if name == "time_ms" else sa.Integer(), nullable=False,
                  server_default="0")
        for name in VOTER
    ]  # fmt: skip


def upgrade() -> None:
    pg = op.get_context().dialect.name == "postgresql"
    op.create_table(
        "synset_tally",
        sa.Column("synset_id", sa.Integer(), autoincrement=False, nullable=False),
        *_columns(),
        sa.PrimaryKeyConstraint("synset_id", name=op.f("pk_synset_tally")),
    )
    op.create_table(
        "synset_tally_delta",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("synset_id", sa.Integer(), nullable=False),
        *_columns(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_synset_tally_delta")),
    )
    op.create_table(
        "annotator_tally",
        sa.Column("annotator_id", sa.Integer(), autoincrement=False, nullable=False),
        *_voter_columns(),
        sa.PrimaryKeyConstraint("annotator_id", name=op.f("pk_annotator_tally")),
    )
    op.create_table(
        "annotator_tally_delta",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("annotator_id", sa.Integer(), nullable=False),
        *_voter_columns(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_annotator_tally_delta")),
    )
    # Plain ADD COLUMN: a batch copy on SQLite would drop the triggers of 0014.
    op.add_column(
        "image", sa.Column("withheld", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.create_index("ix_candidate_url", "candidate", ["url"], postgresql_using="hash")
    op.create_index("ix_candidate_creator", "candidate", ["creator"])
    op.create_index("ix_takedown_value", "takedown", ["value"], postgresql_using="hash")
    op.create_index("ix_vote_created_at", "vote", ["created_at"], postgresql_using="brin")
    _run(INITIAL, pg)
    _run(_sql(pg), pg)


def downgrade() -> None:
    pg = op.get_context().dialect.name == "postgresql"
    created = _sql(pg)
    for name, table in re.findall(r"CREATE TRIGGER (\w+)\s.*?\bON (\w+)", created, re.S):
        op.execute(f"DROP TRIGGER {name} ON {table}" if pg else f"DROP TRIGGER {name}")
    for name, args in re.findall(r"CREATE FUNCTION (\w+)\(([^)]*)\)", created):
        op.execute(f"DROP FUNCTION {name}({re.sub(r' DEFAULT [^,]+', '', args)})")
    for name, table in INDEXES.items():
        op.drop_index(name, table_name=table)
    # Not batch mode on SQLite (see 0014): SQLite >= 3.35 drops a column in place.
    op.execute("ALTER TABLE image DROP COLUMN withheld")
    for table in ("annotator_tally_delta", "annotator_tally", "synset_tally_delta", "synset_tally"):
        op.drop_table(table)
