"""Resized copies of stored images for the grid and the large view.

Originals can be tens of megapixels; the grid only ever gets a small JPEG made
once and kept under ``data_dir/thumbs`` by content hash, so it never changes and
browsers may cache it for good (ETag + immutable Cache-Control).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from PIL import Image as PILImage
from PIL import ImageOps

SIZES = {"thumb": 320, "large": 1280}


def original_path(data_dir: Path, stored: str) -> Path:
    """Image.path is relative to the data dir, or absolute for files imported in place."""
    path = Path(stored)
    return path if path.is_absolute() else data_dir / path


def resized(data_dir: Path, sha256: str, stored: str, size: str) -> Path:
    """The cached JPEG of this image at ``size``, made now if it does not exist yet."""
    side = SIZES[size]
    target = data_dir / "thumbs" / size / sha256[:2] / f"{sha256}.jpg"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with PILImage.open(original_path(data_dir, stored)) as im:
        im.draft("RGB", (side, side))  # JPEG: decode at reduced scale, much faster
        im = ImageOps.exif_transpose(im).convert("RGB")
        im.thumbnail((side, side), PILImage.Resampling.LANCZOS)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                im.save(fh, "JPEG", quality=85, optimize=True, progressive=True)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return target
