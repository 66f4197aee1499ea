"""ILSVRC's shape in PostgreSQL, seeded in SQL in minutes: for the scale benchmarks.

Through the real schema (``alembic upgrade head``, triggers included), with
``INSERT ... SELECT generate_series``: 1,000 target synsets under 50 parents and
one root, 1,000 candidates each (3% of the images rejected by the quality
filter, 1% not checked yet, 2% near duplicates), three votes on 80% of the
candidates from 300 annotators (spread over four weeks, the last hour included,
synsets interleaved as a crowd's are), a consensus decision on each of those
(69% accepted, 19% rejected, 6% undecided, 6% pending), 100 crawl failures per
synset and 1,000 gold items. The load runs with foreign-key checks and triggers
off, as bulk loads do; the exact recount of ``synset status --recount`` then
sets the kept counters. The images are rows only (``path`` names
``bench/<0-15>.jpg``). Every annotator, and the curator ``bench-curator``, logs
in with :data:`PASSWORD`::

    from bench.ilsvrc_seed import create_database, seed
    url = create_database("my_bench")
    seconds = seed(url, synsets=1000, per_synset=1000)
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from synset_builder.accounts import hash_password  # noqa: E402
from synset_builder.db import migrate  # noqa: E402
from synset_builder.recount import recount  # noqa: E402

ADMIN_URL = os.environ.get(
    "SYNSET_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PASSWORD = "bench-password"
ANNOTATORS = 300
PARENTS = 50

# Ids are explicit: synset 1 is the root, 2 .. 1+:parents the parents, then the targets.
# A candidate's id is its image's id; candidate c belongs to target (c - 1) / :per.
SEED = [
    """INSERT INTO synset (id, wnid, name, lemmas, gloss, origin, target, goal, imageable,
                           created_at)
       SELECT 1, 'n00000001', 'entity', '["entity"]', 'the root', 'wordnet', false, 1000,
              true, now()""",
    """INSERT INTO synset (id, wnid, name, lemmas, gloss, origin, target, goal, imageable,
                           created_at)
       SELECT 1 + i, 'n8' || lpad(i::text, 7, '0'), 'parent ' || i, '["parent"]', 'a parent',
              'wordnet', false, 1000, true, now()
       FROM generate_series(1, :parents) i""",
    """INSERT INTO synset (id, wnid, name, lemmas, gloss, origin, target, goal, imageable,
                           created_at)
       SELECT 1 + :parents + i, 'n9' || lpad(i::text, 7, '0'), 'class ' || i, '["class"]',
              'the gloss of class ' || i, 'wordnet', true, 1000, true, now()
       FROM generate_series(1, :n) i""",
    """INSERT INTO synset_edge (parent_id, child_id)
       SELECT 1, 1 + i FROM generate_series(1, :parents) i
       UNION ALL
       SELECT 2 + (i - 1) % :parents, 1 + :parents + i FROM generate_series(1, :n) i""",
    """INSERT INTO query (synset_id, text, kind, active)
       SELECT 1 + :parents + i, 'class ' || i || q, 'lemma', true
       FROM generate_series(1, :n) i, unnest(ARRAY['', ' parent']) q""",
    """INSERT INTO annotator (id, username, role, created_at, disabled, pages_done)
       SELECT i, 'bench-w' || i, 'annotator', now(), false, 0
       FROM generate_series(1, :annotators) i""",
    """INSERT INTO image (id, sha256, path, width, height, format, bytes, phash, quality,
                          quality_reason, dup_group, created_at, keep)
       SELECT i, encode(sha256(('image ' || i)::bytea), 'hex'), 'bench/' || (i % 16) || '.jpg',
              500, 375, 'JPEG', 60000, (i * 2654435761) % 9223372036854775807,
              CASE WHEN i % 100 < 3 THEN 'rejected' WHEN i % 100 = 99 THEN NULL ELSE 'ok' END,
              CASE WHEN i % 100 < 3 THEN 'too small' END,
              CASE WHEN i % 50 IN (1, 2) THEN i / 50 END, now(), false
       FROM generate_series(1, :n * :per) i""",
    # Settled where a decision will come (the settled trigger then has nothing to do).
    """INSERT INTO candidate (id, image_id, synset_id, source, url, query, rank, license,
                              creator, landing_url, title, fetched_at, near_duplicate_of,
                              settled)
       SELECT i, i, 1 + :parents + 1 + (i - 1) / :per,
              (ARRAY['openverse', 'wikimedia', 'flickr'])[1 + i % 3],
              'https://images.example.org/' || i || '.jpg', 'class ' || (1 + (i - 1) / :per),
              (i - 1) % :per, (ARRAY['by', 'by-sa', 'cc0', 'by-nc'])[1 + i % 4],
              'creator ' || (i % 5000), 'https://example.org/page/' || i, 'photo ' || i,
              now() - ((i % 300) || ' days')::interval,
              CASE WHEN i % 50 = 2 THEN i - 1 END, i % 5 <> 0 AND i % 20 <> 4
       FROM generate_series(1, :n * :per) i""",
    """INSERT INTO fetch_failure (synset_id, url, url_sha256, source, reason, detail, attempts,
                                  resolved, created_at, updated_at)
       SELECT 1 + :parents + 1 + (i - 1) / :fails, 'https://gone.example.org/' || i,
              encode(sha256(('gone ' || i)::bytea), 'hex'), 'openverse',
              (ARRAY['timeout', 'http_404', 'not_an_image'])[1 + i % 3], '', 1, i % 10 = 0,
              now(), now()
       FROM generate_series(1, :n * :fails) i""",
    # In time order (vote ids rise with created_at; one a second, four weeks), synsets
    # interleaved as a crowd's are: slot p of round k votes on item c = p * :inv mod :slots,
    # a permutation of the items when :slots is a prime (no sort of 2.4M rows needed).
    """INSERT INTO vote (candidate_id, annotator_id, answer, time_ms, created_at)
       SELECT c, 1 + (c * 7 + k * 101) % :annotators, (c + k) % 7 <> 0, 1500 + (c * 13 + k) % 4000,
              now() - make_interval(secs => (2 - k) * :slots + (:slots - 1 - p))
       FROM generate_series(0, 2) k, generate_series(0, :slots - 1) p,
            LATERAL (SELECT (p * :inv) % :slots AS c) x
       WHERE c BETWEEN 1 AND :n * :per AND c % 5 <> 0""",
    """INSERT INTO consensus (candidate_id, p_yes, decision, method, n_votes, initial,
                              updated_at)
       SELECT c, CASE WHEN c % 20 IN (14, 16, 17) THEN 0.03 WHEN c % 20 IN (4, 19) THEN 0.5
                      ELSE 0.97 END,
              CASE WHEN c % 20 = 4 THEN 'pending' WHEN c % 20 = 19 THEN 'undecided'
                   WHEN c % 20 IN (14, 16, 17) THEN 'rejected' ELSE 'accepted' END,
              'dynamic', 3, false, now()
       FROM generate_series(1, :n * :per) c WHERE c % 5 <> 0""",
    """INSERT INTO gold (candidate_id, answer, created_at)
       SELECT c, c % 50 <> 0, now() FROM generate_series(3, :n * :per, :per) c""",
]
SEQUENCES = ["synset", "query", "annotator", "image", "candidate", "fetch_failure", "vote"]


def database_url(name: str) -> str:
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def create_database(name: str) -> str:
    """A new empty database on the benchmark server (dropped first if it exists)."""
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return database_url(name)


def drop_database(name: str) -> None:
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def seed(
    url: str,
    *,
    synsets: int = 1000,
    per_synset: int = 1000,
    failures_per_synset: int = 100,
    annotators: int = ANNOTATORS,
    verbose: bool = True,
) -> float:
    """Migrate ``url`` (an empty PostgreSQL database) and fill it with ILSVRC's shape.

    Returns the seconds the SQL took (the migration and the final ``VACUUM ANALYZE``
    included). Every annotator and the curator ``bench-curator`` log in with
    ``PASSWORD``. The images are rows only: ``path`` names ``bench/<0-15>.jpg``.
    """
    start = time.perf_counter()
    migrate.upgrade(url)
    slots = _prime_above(synsets * per_synset)
    params = {"n": synsets, "per": per_synset, "parents": PARENTS, "annotators": annotators,
              "fails": failures_per_synset, "slots": slots,
              "inv": pow(7919, -1, slots)}  # fmt: skip
    engine = create_engine(url)
    with engine.begin() as conn:
        # A bulk load: foreign-key checks and the counters' triggers off (the rows are
        # consistent by construction), then one exact recount sets the counters.
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        for stmt in SEED:
            # psycopg sends a small int as int2: generate_series(1, :n * :per) overflowed.
            typed = re.sub(r"(?<!:):([a-z]+)\b", r"CAST(:\1 AS bigint)", stmt)
            used = {k: v for k, v in params.items() if re.search(rf"(?<!:):{k}\b", stmt)}
            t = time.perf_counter()
            conn.execute(text(typed), used)
            if verbose:
                print(f"  {stmt.split()[2]:<14} {time.perf_counter() - t:6.1f} s", flush=True)
        for table in SEQUENCES:
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"
                )
            )
        secret = hash_password(PASSWORD)
        conn.execute(text("UPDATE annotator SET password_hash = :h"), {"h": secret})
        conn.execute(
            text(
                "INSERT INTO annotator (username, role, password_hash, created_at, disabled, "
                "pages_done) VALUES ('bench-curator', 'curator', :h, now(), false, 0)"
            ),
            {"h": secret},
        )
    t = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    if verbose:
        print(f"  {'VACUUM':<14} {time.perf_counter() - t:6.1f} s", flush=True)
    t = time.perf_counter()
    with Session(engine) as session:
        recount(session)
        session.commit()
    if verbose:
        print(f"  {'recount':<14} {time.perf_counter() - t:6.1f} s", flush=True)
    engine.dispose()
    return time.perf_counter() - start


def reset_decisions(url: str, *, per_synset: int = 1000) -> float:
    """Put the seed's decisions back (and forget what a ``synset consensus`` fixed or
    measured: initial subsets, priors, records), so a benchmark's first recompute
    rewrites every decision again on a reused database. Returns the seconds it took."""
    start = time.perf_counter()
    consensus = next(stmt for stmt in SEED if "INSERT INTO consensus" in stmt)
    n = seeded_shape(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text("DELETE FROM consensus"))
        conn.execute(text("DELETE FROM annotator_quality"))
        conn.execute(text("UPDATE synset SET initial_ids = NULL, prior_yes = NULL"))
        typed = re.sub(r"(?<!:):([a-z]+)\b", r"CAST(:\1 AS bigint)", consensus)
        conn.execute(text(typed), {"n": n[0] if n else 0, "per": per_synset})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE consensus"))
    with Session(engine) as session:
        recount(session)
        session.commit()
    engine.dispose()
    return time.perf_counter() - start


def _prime_above(n: int) -> int:
    k = n + 1
    while any(k % d == 0 for d in range(2, int(k**0.5) + 1)):
        k += 1
    return k


def add_takedowns(url: str, k: int) -> None:
    """``k`` active takedowns by sha256, by URL and by creator, and ``k`` open reports
    (none if the database has takedowns already: a reused database)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        if conn.execute(text("SELECT count(*) FROM takedown")).scalar_one():
            engine.dispose()
            return
        conn.execute(
            text(
                """INSERT INTO takedown (kind, value, reason, created_at)
                   SELECT 'sha256', sha256, 'bench', now() FROM image WHERE id % 997 = 5
                   ORDER BY id LIMIT :k"""
            ),
            {"k": k},
        )
        conn.execute(
            text(
                """INSERT INTO takedown (kind, value, reason, created_at)
                   SELECT 'url', url, 'bench', now() FROM candidate WHERE id % 991 = 7
                   ORDER BY id LIMIT :k"""
            ),
            {"k": k},
        )
        conn.execute(
            text(
                """INSERT INTO takedown (kind, value, reason, created_at)
                   SELECT 'creator', 'creator ' || i, 'bench', now()
                   FROM generate_series(1, :k) i"""
            ),
            {"k": k},
        )
        conn.execute(
            text(
                """INSERT INTO report (image_id, annotator_id, reason, created_at)
                   SELECT id, 1, 'offensive', now() FROM image WHERE id % 983 = 11
                   ORDER BY id LIMIT :k"""
            ),
            {"k": k},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE takedown; ANALYZE report"))
    engine.dispose()


def seeded_shape(url: str) -> tuple[int, int] | None:
    """(target synsets, candidates) already in the benchmark database, if any."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            n = conn.execute(text("SELECT count(*) FROM synset WHERE target")).scalar_one()
            c = conn.execute(text("SELECT count(*) FROM candidate")).scalar_one()
            return int(n), int(c)
    except Exception:  # noqa: BLE001 - missing, unmigrated or half-seeded: seed again
        return None
    finally:
        engine.dispose()


def add_shape_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every benchmark on this database takes: its shape, --reuse, --keep."""
    parser.add_argument("--synsets", type=int, default=1000)
    parser.add_argument("--per-synset", type=int, default=1000)
    parser.add_argument("--reuse", action="store_true", help="keep an already seeded database")
    parser.add_argument("--keep", action="store_true", help="leave the database for --reuse")


def seeded_database(name: str, args: argparse.Namespace) -> str:
    """The URL of database ``name`` in the shape ``args`` ask for: reused with ``--reuse``
    when it already has that shape, else created and seeded (with the seed's time)."""
    url = database_url(name)
    shape = (args.synsets, args.synsets * args.per_synset)
    if args.reuse and seeded_shape(url) == shape:
        print(f"reusing {name}: {shape[0]} synsets, {shape[1]} candidates")
        return url
    print(f"seeding {name}: {shape[0]} synsets x {args.per_synset} candidates")
    create_database(name)
    seconds = seed(url, synsets=args.synsets, per_synset=args.per_synset)
    print(f"seeded in {seconds:.0f} s (target < 180 s)")
    return url
