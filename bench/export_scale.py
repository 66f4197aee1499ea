"""Export at ILSVRC scale: ``synset export OUT -f csv`` on 1,000 classes, 800,000 images.

Seeds a PostgreSQL database in SQL (``INSERT ... SELECT generate_series``, as
``bench/ilsvrc_seed.py`` does for the curator benchmark, whose database helpers
and bulk-load recipe this reuses): 1,000 target synsets under 50 parents, 1,000
candidates each (1M images, 5% of them in near-duplicate pairs, four licence
spellings, 300 days of crawl dates), three votes on 80% of them from 300
annotators, and those 800,000 accepted by consensus (the issue's shape: the
curator seed's decision mix accepts about 550,000); 1,000 gold items. The
images exist only as a handful of real JPEGs from ``../shared/testdata/photos``
that every image row points at: a csv export reads files only for the
datasheet's sample grids.

It then runs the real command line (``synset export OUT -f csv``) in a child
process, so the figures include start-up, and prints its wall time, CPU time and
peak RSS (``getrusage`` of the child) beside the issue's targets, the load
average around it, and a quick sanity check of what was written.

Usage::

    .venv/bin/python bench/export_scale.py [--synsets 1000] [--per-synset 1000] [--reuse]
        [--format csv] [--keep]

``--reuse`` skips the seed when the benchmark database already holds the same
shape (seeding is the slow part when iterating); ``--keep`` leaves the database
for a later ``--reuse``. The database is ``synset_bench_export`` on
``SYNSET_TEST_PG_URL``'s server (default: postgres@127.0.0.1:5432).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ilsvrc_seed import (  # noqa: E402
    create_database,
    database_url,
    drop_database,
    seeded_shape,
)
from synset_builder.db import migrate  # noqa: E402
from synset_builder.recount import recount  # noqa: E402

PHOTOS = ROOT.parent / "shared" / "testdata" / "photos"
DB_NAME = "synset_bench_export"
N_FILES = 16
N_ANNOTATORS = 300
N_PARENTS = 50

# One statement per table; :n synsets, :per candidates each (:total in all), :files stored
# files. (:total is passed whole: psycopg sends 1000 as a smallint, and 1000 * 1000 overflows.)
SEED = [
    """INSERT INTO synset (id, wnid, name, lemmas, gloss, origin, target, goal, imageable,
                           created_at)
       SELECT i, 'n8' || lpad(i::text, 7, '0'), 'parent ' || i, '[]', 'a parent', 'wordnet',
              false, 1000, true, now()
       FROM generate_series(1, :parents) i""",
    """INSERT INTO synset (id, wnid, name, lemmas, gloss, origin, target, goal, imageable,
                           created_at)
       SELECT :parents + i, 'n9' || lpad(i::text, 7, '0'), 'class ' || i, '[]',
              'the gloss of class ' || i, 'wordnet', true, 1000, true, now()
       FROM generate_series(1, :n) i""",
    """INSERT INTO synset_edge (parent_id, child_id)
       SELECT 1 + (i - 1) % :parents, :parents + i FROM generate_series(1, :n) i""",
    """INSERT INTO annotator (id, username, role, created_at, disabled, pages_done)
       SELECT i, 'bench-w' || i, 'annotator', now(), false, 0
       FROM generate_series(1, :annotators) i""",
    """INSERT INTO image (id, sha256, path, width, height, format, bytes, phash, quality,
                          dup_group, created_at, keep)
       SELECT i, encode(sha256(('image ' || i)::bytea), 'hex'),
              'bench/' || (i % :files) || '.jpg', 500, 375, 'JPEG', 60000,
              (i * 2654435761) % 9223372036854775807, 'ok',
              CASE WHEN i % 20 < 2 THEN i / 20 ELSE NULL END, now(), false
       FROM generate_series(1, :total) i""",
    """INSERT INTO candidate (id, image_id, synset_id, source, url, query, rank, license,
                              creator, landing_url, title, fetched_at, settled)
       SELECT i, i, :parents + 1 + (i - 1) / :per,
              (ARRAY['openverse', 'wikimedia', 'flickr'])[1 + i % 3],
              'https://images.example.org/' || i || '.jpg', 'class ' || (1 + (i - 1) / :per),
              (i - 1) % :per,
              (ARRAY['by', 'CC BY-SA 4.0', 'cc0', 'cc-by-nc 2.0'])[1 + i % 4],
              'creator ' || (i % 5000), 'https://example.org/page/' || i, 'photo ' || i,
              timestamptz '2026-01-01' + ((i % 300) || ' days')::interval, i % 5 <> 0
       FROM generate_series(1, :total) i""",
    """INSERT INTO vote (candidate_id, annotator_id, answer, time_ms, created_at)
       SELECT c, 1 + (c * 7 + k * 101) % :annotators, (c + k) % 9 <> 0, 1500, now()
       FROM generate_series(1, :total) c, generate_series(0, 2) k
       WHERE c % 5 <> 0""",
    """INSERT INTO consensus (candidate_id, p_yes, decision, method, n_votes, initial,
                              updated_at)
       SELECT c, 0.9 + (c % 10) / 100.0, 'accepted', 'dynamic', 3, false, now()
       FROM generate_series(1, :total) c WHERE c % 5 <> 0""",
    """INSERT INTO gold (candidate_id, answer, created_at)
       SELECT c, c % 50 <> 0, now() FROM generate_series(1, :total, :per) c""",
]
SEQUENCES = ["synset", "annotator", "image", "candidate", "vote"]


def seed(url: str, data_dir: Path, n: int, per: int) -> float:
    """Fill ``url`` (a new database) with the benchmark's shape; the seconds it took.

    A bulk load as ``bench/ilsvrc_seed.py`` does it: triggers and foreign-key checks
    off (the rows are consistent by construction), then the exact recount of
    ``synset status --recount`` sets the kept counters.
    """
    start = time.perf_counter()
    migrate.upgrade(url)
    params = {
        "n": n, "per": per, "total": n * per, "parents": N_PARENTS, "files": N_FILES,
        "annotators": N_ANNOTATORS,
    }  # fmt: skip
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        for stmt in SEED:
            used = {k: v for k, v in params.items() if f":{k}" in stmt}
            t = time.perf_counter()
            conn.execute(text(stmt), used)
            print(f"  {stmt.split()[2]:<12} {time.perf_counter() - t:6.1f} s", flush=True)
        for table in SEQUENCES:
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"
                )
            )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    t = time.perf_counter()
    with Session(engine) as session:
        recount(session)
        session.commit()
    print(f"  {'recount':<12} {time.perf_counter() - t:6.1f} s", flush=True)
    engine.dispose()
    write_files(data_dir)
    return time.perf_counter() - start


def write_files(data_dir: Path) -> None:
    """The few real JPEGs every image row points at (``bench/<i>.jpg``)."""
    folder = data_dir / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    photos = sorted(PHOTOS.glob("*.JPEG"))[:N_FILES]
    for i in range(N_FILES):
        shutil.copyfile(photos[i % len(photos)], folder / f"{i}.jpg")


def run_export(url: str, data_dir: Path, out: Path, fmt: str) -> tuple[float, float, float, int]:
    """Wall seconds, CPU seconds and peak RSS (MB) of the child, its exit status.

    The CPU time is the figure to compare between runs on a shared machine; the
    database server's own work is in the wall time only.
    """
    env = {**os.environ, "SYNSET_DATABASE_URL": url, "SYNSET_DATA_DIR": str(data_dir)}
    synset = ROOT / ".venv" / "bin" / "synset"
    command = [str(synset)] if synset.exists() else [sys.executable, "-m", "synset_builder.cli"]
    start = time.perf_counter()
    proc = subprocess.run([*command, "export", str(out), "-f", fmt], env=env, check=False)
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode


def check(out: Path) -> str:
    """A one-line account of what the export wrote."""
    meta = json.loads((out / "export.json").read_text())
    classes = json.loads((out / "classes.json").read_text())
    with (out / "manifest.csv").open() as fh:
        rows = sum(1 for _ in fh) - 1
    sheet = (out / "datasheet.md").stat().st_size
    charts = len(list((out / "datasheet").glob("*.png")))
    samples = len(list((out / "datasheet" / "samples").glob("*.jpg")))  # JPEG since 9880ce0
    return (
        f"{len(classes)} classes, {rows} manifest rows, counts {meta['counts']['splits']}, "
        f"datasheet.md {sheet // 1024} KB, {charts} charts, {samples} sample grids"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synsets", type=int, default=1000)
    parser.add_argument("--per-synset", type=int, default=1000)
    parser.add_argument("--format", default="csv")
    parser.add_argument("--reuse", action="store_true", help="keep an already seeded database")
    parser.add_argument("--keep", action="store_true", help="leave the database for --reuse")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-export-scale-"))
    data_dir = workdir / "data"
    url = database_url(DB_NAME)
    try:
        shape = (args.synsets, args.synsets * args.per_synset)
        if args.reuse and seeded_shape(url) == shape:
            migrate.upgrade(url)  # a database seeded before a later migration
            write_files(data_dir)
            print(f"reusing {DB_NAME}: {shape[0]} synsets, {shape[1]} candidates")
        else:
            print(f"seeding {DB_NAME}: {shape[0]} synsets x {args.per_synset} candidates")
            create_database(DB_NAME)
            print(f"seeded in {seed(url, data_dir, args.synsets, args.per_synset):.0f} s")
        out = workdir / "out"
        load = os.getloadavg()[0]
        seconds, cpu, rss, code = run_export(url, data_dir, out, args.format)
        print(
            f"synset export -f {args.format}: exit {code}, {seconds:.1f} s wall, {cpu:.1f} s CPU, "
            f"peak RSS {rss:.0f} MB (targets: <= 120 s, <= 1536 MB); "
            f"load average {load:.1f} before, {os.getloadavg()[0]:.1f} after, "
            f"{os.cpu_count()} cores"
        )
        if code == 0:
            print("  " + check(out))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if not args.keep:
            drop_database(DB_NAME)


if __name__ == "__main__":
    main()
