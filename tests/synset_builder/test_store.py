"""The content-addressed store: one file and one row per distinct content."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
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
