"""Export throughput: ``run_export`` against a competent ``Pool(N)`` Pillow loop.

Inputs are the real test photos, enlarged to a 1024 px longer side (the size a
crawl of Openverse or Wikimedia typically stores) in several distinct variants,
stored through ``store.add_image`` in a fresh SQLite database and accepted by
consensus. Both sides write ``<split>/<wnid>/<sha256>.jpg`` JPEGs without
metadata from the same stored files, in the same process tree:

* peer: ``multiprocessing.Pool(N)`` over ``Image.open -> draft -> exif_transpose
  -> convert -> resize -> save`` with the export's own draft request, JPEG quality
  and Pillow's bicubic (``reducing_gap=3.0``, the export's resample until it moved
  to OpenCV), N the same as our workers; without a resize it re-encodes (the way
  a Pillow loop drops EXIF);
* ours: ``run_export`` end to end (selection, splits, files, manifest, checksums,
  datasheet) with N workers, and again with one. A resize decodes at the same
  libjpeg scale and resizes with OpenCV (Gaussian pre-filter, bicubic), whose
  output tests/synset_builder/test_export_resize.py holds to Pillow's. Without a
  resize ours strips metadata at the byte level: the pixels stay the stored ones,
  the peer's do not.

Both start their process pool inside the timed region. Our render workers come
from a fork server (a fork of a process that has run OpenCV can hang), which
imports this script's top level once, as it imports the ``synset`` command's
module: so this script imports the project inside its functions, keeping that
import as light as the command's. CPU per image counts every process of each
side: the peer's pool workers, our fork server and the workers it forked (the
fork server is stopped and reaped inside the timed region so that their time is
counted). Runs alternate peer / ours ``--repeat`` times. The peer's settings
and the load average are printed with the result.

Usage: ``.venv/bin/python bench/export.py [--quick] [--resize 256] [--workers N]
[--copies C] [--repeat K] [--one-worker] [--resize-only]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing.forkserver
import os
import resource
import shutil
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

from PIL import Image as PILImage
from PIL import ImageEnhance, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PHOTOS = ROOT.parent / "shared" / "testdata" / "photos"
VARIANTS = [
    lambda im: im,
    ImageOps.mirror,
    lambda im: ImageEnhance.Brightness(im).enhance(1.15),
    lambda im: im.crop((im.width // 20, im.height // 20, im.width, im.height)),
    lambda im: ImageEnhance.Contrast(im).enhance(1.2),
    lambda im: ImageOps.mirror(ImageEnhance.Color(im).enhance(0.8)),
    lambda im: ImageEnhance.Sharpness(im).enhance(1.5),
    lambda im: im.crop((0, 0, im.width * 19 // 20, im.height * 19 // 20)),
]


def make_inputs(n_variants: int, copies: int = 1) -> list[bytes]:
    """Each photo at 1024 px in ``n_variants`` variants, each variant in ``copies``
    brightness levels (distinct files: more work to amortise start-up over)."""
    out = []
    for photo in sorted(PHOTOS.glob("*.JPEG")):
        with PILImage.open(photo) as im:
            base = im.convert("RGB")
        scale = 1024 / max(base.size)
        base = base.resize(
            (round(base.width * scale), round(base.height * scale)), PILImage.LANCZOS
        )
        for transform in VARIANTS[:n_variants]:
            variant = transform(base)
            for k in range(copies):
                img = ImageEnhance.Brightness(variant).enhance(1 - 0.04 * k) if k else variant
                buf = io.BytesIO()
                img.save(buf, "JPEG", quality=90)
                out.append(buf.getvalue())
    return out


def build_database(workdir: Path, blobs: list[bytes], n_classes: int = 20) -> tuple[str, Path]:
    from synset_builder.crawl.store import add_image
    from synset_builder.db import migrate
    from synset_builder.db.models import Candidate, Consensus, Synset
    from synset_builder.db.session import make_engine, session_scope

    url = f"sqlite:///{workdir / 'bench.db'}"
    migrate.upgrade(url)
    data_dir = workdir / "data"
    engine = make_engine(url)
    with session_scope(engine) as s:
        synsets = [
            Synset(wnid=f"n9{i:07d}", name=f"class {i}", target=True) for i in range(n_classes)
        ]
        s.add_all(synsets)
        s.flush()
        for i, data in enumerate(blobs):
            image = add_image(s, data_dir, data)
            cand = Candidate(image_id=image.id, synset_id=synsets[i % n_classes].id, source="bench")
            s.add(cand)
            s.flush()
            s.add(Consensus(candidate_id=cand.id, p_yes=0.95, decision="accepted", method="bench"))
    engine.dispose()
    return url, data_dir


QUALITY = 90  # RenderSpec().quality, the export's default (checked in main)
RESAMPLE = PILImage.Resampling.BICUBIC
REDUCING_GAP = 3.0


def _peer_one(job: tuple[Path, Path, int | None]) -> None:
    """One file the way a competent Pillow user writes it (runs in a pool worker)."""
    source, target, resize = job
    with PILImage.open(source) as opened:
        if resize is not None:
            w, h = opened.size
            scale = resize / min(w, h)
            if scale < 1:
                opened.draft("RGB", (max(1, round(w * scale)), max(1, round(h * scale))))
        img = ImageOps.exif_transpose(opened).convert("RGB")
    if resize is not None and min(img.size) > resize:
        scale = resize / min(img.size)
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img = img.resize(size, RESAMPLE, reducing_gap=REDUCING_GAP)
    img.save(target, "JPEG", quality=QUALITY)


def peer_loop(url: str, data_dir: Path, out: Path, resize: int | None, workers: int) -> int:
    """The peer: the same rows, a ``Pool(workers)`` of :func:`_peer_one`."""
    from sqlalchemy import select

    from synset_builder.db.models import Candidate, Image, Synset
    from synset_builder.db.session import make_engine, session_scope

    engine = make_engine(url)
    with session_scope(engine) as s:
        rows = s.execute(
            select(Image.sha256, Image.path, Synset.wnid)
            .join(Candidate, Candidate.image_id == Image.id)
            .join(Synset, Synset.id == Candidate.synset_id)
        ).all()
    engine.dispose()
    jobs = []
    for sha, path, wnid in rows:
        target = out / "train" / wnid / f"{sha}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        jobs.append((data_dir / path, target, resize))
    with Pool(workers) as pool:
        for _ in pool.imap_unordered(_peer_one, jobs, chunksize=16):
            pass
    return len(rows)


def ours(url: str, data_dir: Path, out: Path, resize: int | None, workers: int) -> int:
    from synset_builder.db.session import make_engine, session_scope
    from synset_builder.export.render import RenderSpec
    from synset_builder.export.run import ExportConfig, run_export

    engine = make_engine(url)
    with session_scope(engine) as s:
        config = ExportConfig(out=out, render=RenderSpec(resize=resize), workers=workers)
        report = run_export(s, data_dir, config, database=url)
    engine.dispose()
    # Stop the render workers' fork server (a private call, for the bench only) and reap
    # it, so that its CPU time and that of the workers it reaped count as ours.
    server = multiprocessing.forkserver._forkserver
    if server._forkserver_pid is not None:
        server._stop()
    return report.images


def timed(label: str, fn, *args) -> tuple[float, float]:  # noqa: ANN001 - a bench helper
    """(images per second, CPU ms per image of this process and its reaped workers)."""
    who = (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    cpu0 = sum(resource.getrusage(w).ru_utime + resource.getrusage(w).ru_stime for w in who)
    start = time.perf_counter()
    n = fn(*args)
    seconds = time.perf_counter() - start
    cpu = sum(resource.getrusage(w).ru_utime + resource.getrusage(w).ru_stime for w in who) - cpu0
    rate = n / seconds
    print(f"  {label:<44} {n:5d} images  {seconds:7.2f} s  {rate:8.1f} img/s  "
          f"{1000 * cpu / n:6.2f} CPU ms/image", flush=True)  # fmt: skip
    return rate, 1000 * cpu / n


def main() -> None:
    # Imported here, before any timing, so that neither side pays for imports inside it.
    import synset_builder.export.run  # noqa: F401

    # pyarrow imports pandas, when installed, at its first array (metadata.parquet).
    with contextlib.suppress(ImportError):
        import pandas  # noqa: F401
    from synset_builder.export.render import RenderSpec

    assert RenderSpec().quality == QUALITY
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="143 images instead of 1144")
    parser.add_argument("--copies", type=int, default=1, help="inputs x COPIES (distinct)")
    parser.add_argument("--resize", type=int, default=256)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=1, help="alternating peer / ours runs")
    parser.add_argument("--one-worker", action="store_true", help="also time --workers 1")
    parser.add_argument("--resize-only", action="store_true", help="skip the no-resize runs")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-export-"))
    try:
        blobs = make_inputs(1 if args.quick else len(VARIANTS), args.copies)
        url, data_dir = build_database(workdir, blobs)
        print(
            f"{len(blobs)} stored JPEGs (longer side 1024), "
            f"{args.workers} workers, {os.cpu_count()} cores, load average {os.getloadavg()}"
        )
        print(f"peer: multiprocessing.Pool({args.workers}).imap_unordered(chunksize=16), "
              f"Image.draft('RGB', target size) when resizing, exif_transpose, "
              f"resize {RESAMPLE.name} reducing_gap={REDUCING_GAP}, JPEG quality {QUALITY}; "
              f"ours also writes the manifest, checksums and datasheet; its resize: the same "
              f"libjpeg scale, OpenCV Gaussian + bicubic, quality {QUALITY}")  # fmt: skip
        results: dict[str, list[str]] = {}
        runs = [args.resize] if args.resize_only else [args.resize, None]
        for k in range(args.repeat):
            for resize in runs:
                tag = f"resize {resize}" if resize else "no resize"
                print(f"{tag}, run {k + 1}, load {os.getloadavg()[0]:.1f}:")
                base, base_cpu = timed(
                    f"Pillow peer, Pool({args.workers})",
                    peer_loop, url, data_dir, workdir / f"p{resize}-{k}", resize, args.workers,
                )  # fmt: skip
                if args.one_worker:
                    one, _ = timed(
                        "synset export --workers 1",
                        ours, url, data_dir, workdir / f"o1{resize}-{k}", resize, 1,
                    )  # fmt: skip
                    print(f"  ours with 1 worker / peer: {one / base:.2f}x images/s")
                many, many_cpu = timed(
                    f"synset export --workers {args.workers}",
                    ours, url, data_dir, workdir / f"o{resize}-{k}", resize, args.workers,
                )  # fmt: skip
                results.setdefault(tag, []).append(
                    f"{many / base:.2f}x img/s, {base_cpu / many_cpu:.2f}x CPU"
                )
                print(
                    f"  ours / peer: {many / base:.2f}x images/s, CPU ms/image "
                    f"{many_cpu:.2f} vs {base_cpu:.2f} ({base_cpu / many_cpu:.2f}x less)"
                )
        print("summary:", results, "load", os.getloadavg())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
