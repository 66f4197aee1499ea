"""The content-addressed store: one file and one row per distinct content."""

from __future__ import annotations

import hashlib
import io
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlalchemy import func, select

from synset_builder.crawl.store import (
    BadImage,
    add_image,
    downscale,
    inspect_image,
    store_bytes,
    sweep_temp,
    sync_store,
)
from synset_builder.db.models import Image
from tests.photo_server import decompression_bomb


def test_store_bytes_is_content_addressed_and_idempotent(tmp_path: Path, photos) -> None:
    data = photos[0].read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    rel = store_bytes(tmp_path, data, "jpg")
    assert rel == f"images/{sha[:2]}/{sha[2:4]}/{sha}.jpg"
    assert (tmp_path / rel).read_bytes() == data
    assert store_bytes(tmp_path, data, "jpg") == rel
    assert list((tmp_path / "tmp").iterdir()) == []


def test_add_image_registers_real_photo_once(session, tmp_path: Path, photos) -> None:
    data = photos[3].read_bytes()
    first = add_image(session, tmp_path, data)
    again = add_image(session, tmp_path, data)
    assert again.id == first.id
    assert session.scalar(select(func.count()).select_from(Image)) >= 1
    with PILImage.open(photos[3]) as img:
        assert (first.width, first.height) == img.size
    assert first.format == "jpeg" and first.bytes == len(data)
    assert (tmp_path / first.path).read_bytes() == data


def _encode(fmt: str, data: bytes, **kw) -> bytes:
    out = io.BytesIO()
    PILImage.open(io.BytesIO(data)).convert("RGB").save(out, fmt, **kw)
    return out.getvalue()


def test_inspect_sniffs_formats_from_bytes(photos) -> None:
    data = photos[5].read_bytes()
    assert inspect_image(_encode("PNG", data)).format == "png"
    assert inspect_image(_encode("WEBP", data)).format == "webp"
    assert inspect_image(data).format == "jpeg"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda d: b"<html><body>not a picture</body></html>", "not_an_image"),
        (lambda d: d[: len(d) // 2], "truncated"),
        (lambda d: decompression_bomb(), "decompression_bomb"),
    ],
)
def test_inspect_refuses_bad_bytes_with_a_reason(photos, make, reason) -> None:
    with pytest.raises(BadImage) as err:
        inspect_image(make(photos[1].read_bytes()))
    assert err.value.reason == reason


def test_exif_rotation_is_applied_to_stored_size(photos) -> None:
    img = PILImage.open(photos[2]).convert("RGB")
    exif = PILImage.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: displayed portrait <-> landscape
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif)
    info = inspect_image(out.getvalue())
    assert (info.width, info.height) == (img.height, img.width)


def test_downscale_keeps_longer_side_under_cap(photos) -> None:
    small = downscale(photos[0].read_bytes(), 64)
    info = inspect_image(small)
    assert max(info.width, info.height) == 64


def test_sweep_removes_only_dead_writers_temp_files(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    (tmp / f"{dead.stdout.strip()}-abc").write_bytes(b"half")
    (tmp / f"{os.getppid()}-live").write_bytes(b"being written")
    assert sweep_temp(tmp_path) == 1
    assert [p.name for p in tmp.iterdir()] == [f"{os.getppid()}-live"]


def test_sweep_counts_a_zombie_writer_as_dead(tmp_path: Path) -> None:
    """An orphaned download worker can stay a zombie: its pid exists, it writes nothing."""
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while b") Z" not in Path(f"/proc/{zombie.pid}/stat").read_bytes():  # exited, not reaped
        assert time.monotonic() < deadline
        time.sleep(0.02)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    (tmp / f"{zombie.pid}-1-0").write_bytes(b"half")
    try:
        assert sweep_temp(tmp_path) == 1
    finally:
        zombie.wait()


def _full_decode_verdict(data: bytes) -> str:
    """What a full-size Pillow decode says of ``data``, in inspect_image's reasons."""
    try:
        with PILImage.open(io.BytesIO(data)) as img:
            img.load()
    except Exception as exc:  # noqa: BLE001 - the verdict is the point
        return "truncated" if "truncated" in str(exc) else "corrupt_image"
    return "ok"


def _verdict(data: bytes) -> str:
    try:
        inspect_image(data)
    except BadImage as exc:
        return exc.reason
    return "ok"


def test_reduced_scale_decode_refuses_what_a_full_decode_refuses(photos) -> None:
    """Cut and corrupted baseline and progressive JPEGs: the same verdict as a full decode."""
    rng = random.Random(23)
    originals = [p.read_bytes() for p in photos[:8]]
    originals += [_encode("JPEG", d, progressive=True) for d in originals[:4]]
    verdicts = []
    for data in originals:
        cases = [data[: int(len(data) * f)] for f in (0.05, 0.3, 0.6, 0.9, 0.99)]
        cases += [data[:-2], data[:-10]]
        for _ in range(6):
            flipped = bytearray(data)
            at = rng.randrange(600, len(data) - 10)
            for k in range(rng.randint(1, 8)):
                flipped[at + k] = rng.randrange(256)
            cases.append(bytes(flipped))
        for case in cases:
            verdicts.append((_full_decode_verdict(case), _verdict(case)))
    assert all(full == ours for full, ours in verdicts), verdicts
    # Every cut before the end is caught, so the check is not vacuous.
    assert sum(full == "truncated" for full, _ in verdicts) >= 6 * len(originals)


@pytest.mark.parametrize("durable", [True, False])
def test_store_bytes_replaces_a_torn_file_under_its_name(
    tmp_path: Path, photos, durable: bool
) -> None:
    """A rename that reached the disk before its data (power loss) is healed on rewrite."""
    data = photos[4].read_bytes()
    rel = store_bytes(tmp_path, data, "jpg", durable=durable)
    for torn in (b"", data[:1000], bytes(len(data))):  # empty, short, same size but zeros
        (tmp_path / rel).write_bytes(torn)
        assert store_bytes(tmp_path, data, "jpg", durable=durable) == rel
        assert (tmp_path / rel).read_bytes() == data
    assert list((tmp_path / "tmp").iterdir()) == []


def test_sync_store_syncs_a_real_store_and_names_a_missing_one(tmp_path: Path, photos) -> None:
    rel = store_bytes(tmp_path, photos[6].read_bytes(), "jpg", durable=False)
    sync_store(tmp_path)
    assert (tmp_path / rel).read_bytes() == photos[6].read_bytes()
    with pytest.raises(FileNotFoundError):
        sync_store(tmp_path / "missing")
