"""The content-addressed image store and the one definition of "a valid image".

Files live under the data dir at ``images/ab/cd/<sha256>.<ext>``, so the same
bytes fetched from two URLs (or for two synsets) are stored once, and a re-run
after a crash finds the file already there. Files are written to a temporary
name and renamed, so a ``kill -9`` never leaves a half-written image under its
final name; against a power loss each file is fsynced before its rename, or (the
local crawl) a batch of files is synced at once before the database commit that
names them (:func:`sync_store`). The crawler, the ``dir:`` importer and other
stages' tests all go through :func:`inspect_image`, so "what counts as an image"
(magic bytes, a decode of every scan, a pixel cap against decompression bombs,
EXIF orientation) is decided in one place.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import io
import itertools
import os
import sys
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image as PILImage
from PIL import ImageOps

from synset_builder.errors import SynsetError
from synset_builder.processes import alive

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from synset_builder.db.models import Image

TMP_DIR = "tmp"
# Temp names: pid (for sweep_temp), thread and a counter make them unique; O_EXCL checks.
_TMP_NAMES = itertools.count()
_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
# Pillow's own default; images above it are refused as decompression bombs.
DEFAULT_MAX_PIXELS = 89_478_485

# (magic prefix, offset, format). Sniffed from the bytes, never from a header.
_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "png"),
    (b"GIF87a", 0, "gif"),
    (b"GIF89a", 0, "gif"),
    (b"WEBP", 8, "webp"),
    (b"BM", 0, "bmp"),
    (b"II*\x00", 0, "tiff"),
    (b"MM\x00*", 0, "tiff"),
)
EXTENSIONS = {
    "jpeg": "jpg",
    "png": "png",
    "gif": "gif",
    "webp": "webp",
    "bmp": "bmp",
    "tiff": "tif",
}
# EXIF orientations 5-8 rotate by 90 degrees: displayed width and height swap.
_TRANSPOSED = {5, 6, 7, 8}


class BadImage(SynsetError):
    """Bytes that are not a usable image; ``reason`` is the short code stored as data."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"Not a usable image ({reason}){': ' + detail if detail else ''}.")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ImageInfo:
    """What the database keeps about a file: its identity and displayed geometry."""

    sha256: str
    format: str
    width: int
    height: int
    nbytes: int

    @property
    def ext(self) -> str:
        return EXTENSIONS[self.format]


def sniff(data: bytes) -> str | None:
    """The image format told by the magic bytes, or None."""
    for magic, offset, fmt in _MAGIC:
        if data[offset : offset + len(magic)] == magic and (fmt != "webp" or data[:4] == b"RIFF"):
            return fmt
    return None


def inspect_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Check that ``data`` is a whole, decodable, reasonably sized image.

    The pixel cap is checked from the header before anything is decoded, so a
    small file that would inflate to gigabytes costs nothing. Then every pixel
    is decoded (JPEG at reduced scale, every scan still entropy-decoded): a
    truncated file fails here, not later in training.
    """
    fmt = sniff(data)
    if fmt is None:
        raise BadImage("not_an_image", "unknown magic bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            img = PILImage.open(io.BytesIO(data), formats=[fmt.upper()])
            width, height = img.size
            if width * height > max_pixels:
                raise BadImage("decompression_bomb", f"{width}x{height} pixels")
            orientation = img.getexif().get(0x0112, 1)
            if fmt == "jpeg":
                # Grey at 1/8 scale: libjpeg still entropy-decodes every scan of every
                # component, so a truncated or corrupt stream fails exactly as in a
                # full decode, but most of the inverse DCT and the colour conversion,
                # which check nothing, are skipped.
                img.draft("L", (1, 1))
            img.load()
    except BadImage:
        raise
    except PILImage.DecompressionBombError as exc:
        raise BadImage("decompression_bomb", str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 - hostile bytes make decoders raise anything
        reason = "truncated" if "truncated" in str(exc) else "corrupt_image"
        raise BadImage(reason, str(exc)) from exc
    if orientation in _TRANSPOSED:
        width, height = height, width
    return ImageInfo(hashlib.sha256(data).hexdigest(), fmt, width, height, len(data))


def downscale(data: bytes, max_side: int, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> bytes:
    """A copy whose longer side is at most ``max_side`` (orientation applied), or ``data``.

    JPEG for opaque images and PNG where there is transparency, so what is stored
    is always a format every trainer reads.
    """
    info = inspect_image(data, max_pixels=max_pixels)
    if max(info.width, info.height) <= max_side:
        return data
    with PILImage.open(io.BytesIO(data)) as opened:
        img = ImageOps.exif_transpose(opened)
        img.thumbnail((max_side, max_side), PILImage.Resampling.LANCZOS)
        out = io.BytesIO()
        if img.mode in ("RGBA", "LA") or "transparency" in img.info:
            img.save(out, "PNG", optimize=False)
        else:
            img.convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


def relative_path(sha256: str, ext: str) -> str:
    return f"images/{sha256[:2]}/{sha256[2:4]}/{sha256}.{ext}"


def store_bytes(
    data_dir: Path, data: bytes, ext: str, *, sha256: str | None = None, durable: bool = True
) -> str:
    """Write ``data`` content-addressed under ``data_dir``; return the relative path.

    Idempotent: a file already under that name is kept if it holds these bytes and
    replaced if not (a rename that reached the disk before its data, at a power
    loss, leaves a torn file under the right name). Temp files sit in
    ``data_dir/tmp`` (same filesystem, so the rename is atomic) and carry the
    writer's pid, so :func:`sweep_temp` can clear what a killed writer left.
    With ``durable`` the file is fsynced before its rename; without, the caller
    must call :func:`sync_store` before it commits any row that names the file.
    """
    digest = sha256 or hashlib.sha256(data).hexdigest()  # callers that just hashed pass it
    rel = relative_path(digest, ext.lstrip("."))
    # os.path, not pathlib, and folders made only when missing: this runs per image.
    target = os.path.join(data_dir, rel)
    if _holds(target, data):
        return rel
    tmp_dir = os.path.join(data_dir, TMP_DIR)
    tmp = os.path.join(tmp_dir, f"{os.getpid()}-{threading.get_ident()}-{next(_TMP_NAMES)}")
    try:
        fd = os.open(tmp, _TMP_FLAGS, 0o600)
    except FileNotFoundError:
        os.makedirs(tmp_dir, exist_ok=True)
        fd = os.open(tmp, _TMP_FLAGS, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        try:
            os.replace(tmp, target)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return rel


def _holds(target: str, data: bytes) -> bool:
    """Whether ``target`` exists with exactly ``data`` (read back only when sizes agree)."""
    try:
        if os.stat(target).st_size != len(data):
            return False
        with open(target, "rb") as fh:
            return fh.read() == data
    except FileNotFoundError:
        return False


def sync_store(data_dir: Path) -> None:
    """Make every file written so far under ``data_dir`` durable, with its rename.

    One ``syncfs`` of the store's filesystem replaces a fsync per file: the crawl
    writes a batch's files without fsync and calls this once before the batch's
    database commit, so every committed row names a file that is on disk. Off
    Linux it falls back to ``os.sync``.
    """
    libc = _libc()
    if libc is None:
        os.sync()
        return
    fd = os.open(data_dir, os.O_RDONLY)
    try:
        if libc.syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"syncfs of {data_dir} failed: {os.strerror(err)}")
    finally:
        os.close(fd)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syncfs  # noqa: B018 - glibc before 2.14 lacks it
    except (OSError, AttributeError):
        return None
    return libc


def sweep_temp(data_dir: Path) -> int:
    """Remove temp files of writers that are no longer running; return how many.

    These are never data: the bytes were not yet renamed into the store.
    """
    removed = 0
    tmp_dir = Path(data_dir) / TMP_DIR
    if not tmp_dir.is_dir():
        return 0
    for entry in tmp_dir.iterdir():
        pid_text = entry.name.split("-", 1)[0]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and not alive(int(pid_text)):
            entry.unlink(missing_ok=True)
            removed += 1
    return removed


def add_image(
    session: Session, data_dir: Path, data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Image:
    """Validate, store and register ``data``; the existing row if these bytes are known.

    Raises :class:`BadImage` for anything that is not a whole image. The database
    layer is imported here, not at the top: the crawl's download worker processes
    import this module and must start without SQLAlchemy.
    """
    from sqlalchemy import select
    from sqlalchemy.exc import IntegrityError

    from synset_builder.db.models import Image

    info = inspect_image(data, max_pixels=max_pixels)
    existing = session.scalar(select(Image).where(Image.sha256 == info.sha256))
    if existing is not None:
        return existing
    path = store_bytes(data_dir, data, info.ext, sha256=info.sha256)
    image = Image(
        sha256=info.sha256,
        path=path,
        width=info.width,
        height=info.height,
        format=info.format,
        bytes=info.nbytes,
    )
    try:
        with session.begin_nested():
            session.add(image)
    except IntegrityError:
        # Another writer registered the same bytes between our select and insert.
        return session.scalars(select(Image).where(Image.sha256 == info.sha256)).one()
    return image
