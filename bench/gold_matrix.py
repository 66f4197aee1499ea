"""The submit's gold matrix: the old scan of every voter's votes against the kept counters.

Seeds ILSVRC's shape on PostgreSQL (bench/ilsvrc_seed.py: 1,000 synsets x 1,000
candidates, 2.4M votes from 300 annotators, 8,000 each, 1,000 gold items;
``--synsets 300 --annotators 90`` keeps 8,000 votes an annotator at under a third
of the rows, with 300 gold items), leaves ``--ledger`` unfolded rows in ``annotator_tally_delta``
(what a busy server holds between folds), then for ``--pages`` pages of 24 voted
items times, on one connection set up as the web app's (every statement prepared,
``plan_cache_mode=force_generic_plan``):

* ``scan``: the page's voters' (truth, vote) gold counts from their votes
  (``quality.gold_tally``, what ``items_votes`` read until migration 0021);
* ``kept``: the same from the kept counters (``live_sql.kept_gold``);
* ``items_votes``: the whole statement a submit reads, as it is now;
* ``items_votes_scan``: the same statement with the scan in place of the counters,
  as it was before migration 0021.

Both readings are checked equal on every page. Prints best, median and worst in ms.
The scan's cost grows with the gold items' votes (it reads every vote on gold and
keeps the page's voters'); the counters' with the page's voters.

    .venv/bin/python bench/gold_matrix.py [--synsets 1000] [--annotators 300] [--pages 200]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

from sqlalchemy import Select, Subquery, create_engine, literal_column, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ilsvrc_seed import create_database, database_url, drop_database, seed  # noqa: E402
from synset_builder.consensus import live_sql  # noqa: E402
from synset_builder.consensus.quality import gold_tally  # noqa: E402
from synset_builder.db.bulk import in_list  # noqa: E402
from synset_builder.db.models import Vote  # noqa: E402

DB_NAME = "synset_bench_gold_matrix"
PAGE = 24


def timed(conn, stmt, params) -> tuple[float, list]:  # noqa: ANN001 - a connection, a select
    t = time.perf_counter()
    rows = conn.execute(stmt, params).all()
    return (time.perf_counter() - t) * 1000, rows


def _items_votes_with_scan() -> Select:
    """``items_votes`` built with the scan where it now reads the counters."""

    def scan(voters: Select) -> Subquery:
        t = gold_tally(voters)
        return select(*t.c, literal_column("0").label("ledger_rows")).subquery("scan")

    kept, live_sql.kept_gold = live_sql.kept_gold, scan
    try:
        return live_sql.items_votes.__wrapped__(True)
    finally:
        live_sql.kept_gold = kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synsets", type=int, default=1000)
    parser.add_argument("--per-synset", type=int, default=1000)
    parser.add_argument("--annotators", type=int, default=300)
    parser.add_argument("--ledger", type=int, default=3000, help="unfolded ledger rows")
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    create_database(DB_NAME)
    url = database_url(DB_NAME)
    try:
        seconds = seed(url, synsets=args.synsets, per_synset=args.per_synset,
                       annotators=args.annotators, verbose=False)  # fmt: skip
        web_like = {"prepare_threshold": 0, "options": "-c plan_cache_mode=force_generic_plan"}
        engine = create_engine(url, connect_args=web_like)
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO annotator_tally_delta (annotator_id, votes, gold_answered, "
                     "gold_correct, gold_truth_yes, gold_said_yes) SELECT 1 + i % :a, 0, 0, 0, "
                     "0, 0 FROM generate_series(1, :n) i"),
                {"a": args.annotators, "n": args.ledger},
            )  # fmt: skip
            conn.execute(text("ANALYZE annotator_tally_delta"))
            votes = conn.scalar(text("SELECT count(*) FROM vote"))
            voted = list(conn.scalars(text("SELECT DISTINCT candidate_id FROM vote")))
        print(f"seeded in {seconds:.0f} s: {votes} votes, {votes // args.annotators} a voter, "
              f"{args.ledger} ledger rows")  # fmt: skip
        voters = select(Vote.annotator_id).where(in_list(Vote.candidate_id, "ids", True))
        scan = select(gold_tally(voters))
        kept = select(live_sql.kept_gold(voters))
        full = live_sql.items_votes(True)
        before = _items_votes_with_scan()
        rng = random.Random(0)
        took: dict[str, list[float]] = {"scan": [], "kept": [], "items_votes": [],
                                         "items_votes_scan": []}  # fmt: skip
        with engine.connect() as conn:
            for _ in range(args.pages):
                params = {"ids": sorted(rng.sample(voted, PAGE))}
                order = [("scan", scan), ("kept", kept), ("items_votes", full),
                         ("items_votes_scan", before)]  # fmt: skip
                rng.shuffle(order)
                got = {}
                for name, stmt in order:
                    ms, rows = timed(conn, stmt, params)
                    took[name].append(ms)
                    got[name] = rows
                by_scan = {r[0]: tuple(int(x) for x in r[1:5]) for r in got["scan"]}
                by_kept = {r[0]: tuple(int(x or 0) for x in r[1:5]) for r in got["kept"]}
                zero = (0, 0, 0, 0)
                assert {v: m for v, m in by_kept.items() if m != zero} == by_scan, "kept != scan"
                same = [tuple(r[:13]) + tuple(x or 0 for x in r[13:25]) for r in got["items_votes"]]
                was = [tuple(r[:13]) + tuple(x or 0 for x in r[13:25])
                       for r in got["items_votes_scan"]]  # fmt: skip
                assert same == was, "items_votes changed"
            conn.rollback()
        for name, ms in took.items():
            print(f"{name:<17} best {min(ms):7.2f} ms   median {statistics.median(ms):7.2f} ms"
                  f"   worst {max(ms):7.2f} ms")  # fmt: skip
        engine.dispose()
    finally:
        if not args.keep:
            drop_database(DB_NAME)


if __name__ == "__main__":
    main()
