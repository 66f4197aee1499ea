"""The pixels of an exported file: metadata stripped, optionally resized and face-blurred.

Every exported file is a JPEG without EXIF, XMP, IPTC or comments: a photo's GPS
position or camera serial must not travel with a dataset. A JPEG that needs no
pixel change is stripped at the byte level (its segments copied, metadata
segments dropped), which is lossless and an order of magnitude faster than a
decode and re-encode.

A resized JPEG (the common case: a trainer's 256 px copy) is done with OpenCV:
libjpeg decodes at 1/2, 1/4 or 1/8 scale (the scale ``Image.draft`` would pick),
a Gaussian pre-filter sized to the remaining reduction stands in for Pillow's
widened bicubic kernel, then OpenCV's bicubic resize and JPEG encoder. That is
several times cheaper than Pillow's resize, with output that stays close to
Pillow's (tests/synset_builder/test_export_resize.py checks it on the real
photos). Anything else (other formats, CMYK, face blurring, no resize) is
decoded once with Pillow. Faces are found with the Haar cascade bundled in
opencv-python-headless, so nothing is downloaded at run time.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from PIL import Image as PILImage
from PIL import ImageFilter, ImageOps

from synset_builder.errors import InvalidInput

# JPEG markers: APPn 0xE0-0xEF, COM 0xFE. Kept: JFIF (APP0), ICC colour (APP2 ICC_PROFILE)
# and Adobe (APP14, needed to read CMYK right). Everything else (EXIF/XMP in APP1,
# IPTC in APP13, maker notes, comments) is dropped.
_KEEP_APP = {0xE0: b"JFIF", 0xE2: b"ICC_PROFILE", 0xEE: b"Adobe"}
_ORIENTATION = 0x0112
# Raised whenever the same RenderSpec starts giving other pixels (2: resizing with
# OpenCV; 3: its 3x3 pre-filter), so that an export's render cache does not mix
# files of two renderers.
RENDER_VERSION = 3


@dataclass(frozen=True)
class RenderSpec:
    """How exported pixels differ from the stored file."""

    resize: int | None = None
    quality: int = 90
    blur_faces: bool = False

    def as_json(self) -> dict[str, object]:
        return {"resize": self.resize, "quality": self.quality, "blur_faces": self.blur_faces}


@dataclass(frozen=True)
class Rendered:
    sha256: str
    data: bytes
    width: int
    height: int
    faces: int
    # Why the stored file could not be exported (missing, corrupt); empty when it was.
    error: str = ""
    # The sha256 of the bytes, when known without hashing them again (a worker that
    # wrote the file, a file reused from the render cache).
    file_sha256: str = ""
    # Whether the file is already written where the export wants it (``data`` may then
    # be empty: the worker kept the bytes when no layout needed them).
    on_disk: bool = False
    # A square RGB thumbnail (raw bytes), when asked for: a datasheet sample.
    thumb: bytes = b""


class PrivacyExtraMissing(InvalidInput):
    """``--blur-faces`` without OpenCV installed."""


def require_face_detector() -> None:
    try:
        import cv2  # noqa: F401
    except ImportError as exc:
        raise PrivacyExtraMissing(
            "--blur-faces needs OpenCV: pip install 'synset-builder[privacy]'."
        ) from exc


def strip_jpeg_metadata(data: bytes) -> bytes | None:
    """The JPEG without metadata segments, or None when it is not a plain JPEG stream."""
    if data[:2] != b"\xff\xd8":
        return None
    out = bytearray(b"\xff\xd8")
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA:  # start of scan: the rest is image data
            out += data[pos:]
            return bytes(out)
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        segment = data[pos : pos + 2 + length]
        if len(segment) < 2 + length:
            return None
        is_app = 0xE0 <= marker <= 0xEF
        keep = not is_app and marker != 0xFE
        if is_app and marker in _KEEP_APP:
            keep = segment[4:].startswith(_KEEP_APP[marker])
        if keep:
            out += segment
        pos += 2 + length
    return None


@cache
def _cascade():  # noqa: ANN202 - a cv2.CascadeClassifier, loaded once per worker process
    import cv2

    path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    classifier = cv2.CascadeClassifier(str(path))
    if classifier.empty():
        raise InvalidInput(f"OpenCV's face cascade {path} could not be loaded.")
    return classifier


def blur_faces(img: PILImage.Image) -> tuple[PILImage.Image, int]:
    """Blur every detected frontal face strongly enough that it cannot be recognised."""
    import numpy as np

    # Detect on a copy whose shorter side is at most 480 px: the cascade's cost grows
    # with pixels, and a face too small to find there is too small to recognise.
    scale = min(1.0, 480 / min(img.size))
    probe = img.convert("L")
    if scale < 1.0:
        probe = probe.resize((round(img.width * scale), round(img.height * scale)))
    grey = np.asarray(probe)
    found = _cascade().detectMultiScale(
        grey, scaleFactor=1.2, minNeighbors=6, minSize=(max(24, min(grey.shape) // 16),) * 2
    )
    faces = [tuple(round(v / scale) for v in box) for box in np.asarray(found).reshape(-1, 4)]
    if len(faces) == 0:
        return img, 0
    out = img.copy()
    for x, y, w, h in faces:
        # Grow the box a little: cascades fit the inner face, hair and ears identify too.
        pad_w, pad_h = int(w * 0.15), int(h * 0.25)
        box = (
            max(0, x - pad_w),
            max(0, y - pad_h),
            min(img.width, x + w + pad_w),
            min(img.height, y + h + pad_h),
        )
        region = out.crop(box)
        out.paste(region.filter(ImageFilter.GaussianBlur(radius=max(4, w // 6))), box)
    return out, len(faces)


def render(job: tuple[str, str, RenderSpec], thumb: int = 0) -> Rendered:
    """Produce the exported bytes of one stored file (runs in a worker process).

    A file that is missing or no longer decodes is returned as an error, not
    raised: one bad file must not cost the whole export; it is listed instead.
    ``thumb``: also a ``thumb`` px square thumbnail, from the pixels at hand (none
    when the file is exported without decoding it).
    """
    try:
        return _render(job, thumb)
    except (OSError, SyntaxError, ValueError, PILImage.DecompressionBombError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return Rendered(job[0], b"", 0, 0, 0, error=f"{type(exc).__name__}: {reason}")


def _render(job: tuple[str, str, RenderSpec], thumb: int) -> Rendered:
    sha256, source, spec = job
    data = Path(source).read_bytes()
    if spec.resize is None and not spec.blur_faces and data[:2] == b"\xff\xd8":
        with PILImage.open(io.BytesIO(data)) as probe:
            upright = probe.getexif().get(_ORIENTATION, 1) in (0, 1)
            size = probe.size
            plain = probe.mode in ("RGB", "L")
        stripped = strip_jpeg_metadata(data) if upright and plain else None
        if stripped is not None:
            return Rendered(sha256, stripped, size[0], size[1], 0)
    with PILImage.open(io.BytesIO(data)) as opened:
        if spec.resize is not None and not spec.blur_faces and _opencv_can_resize(opened, data):
            orientation = opened.getexif().get(_ORIENTATION, 1)
            out, width, height, small = _resize_jpeg(data, opened.size, orientation, spec, thumb)
            return Rendered(sha256, out, width, height, 0, thumb=small)
        if spec.resize is not None and opened.format == "JPEG":
            w, h = opened.size
            scale = spec.resize / min(w, h)
            if scale < 1:
                opened.draft("RGB", (max(1, round(w * scale)), max(1, round(h * scale))))
        img = ImageOps.exif_transpose(opened)
        img = _to_rgb(img)
    if spec.resize is not None and min(img.size) > spec.resize:
        w, h = img.size
        scale = spec.resize / min(w, h)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        img = img.resize(size, PILImage.Resampling.BICUBIC, reducing_gap=3.0)
    faces = 0
    if spec.blur_faces:
        img, faces = blur_faces(img)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=spec.quality, optimize=False)
    small = ImageOps.fit(img, (thumb, thumb)).tobytes() if thumb else b""
    return Rendered(sha256, buf.getvalue(), img.width, img.height, faces, thumb=small)


@cache
def _cv2():  # noqa: ANN202 - the cv2 module, set up once per worker process
    try:
        import cv2
    except ImportError as exc:  # a dependency, so only a broken install gets here
        raise InvalidInput(
            "Resizing needs OpenCV, a dependency of synset-builder: "
            "pip install opencv-python-headless."
        ) from exc

    # The export runs a worker process per core: OpenCV's own threads would only
    # compete with them for the same cores.
    cv2.setNumThreads(1)
    return cv2


def _opencv_can_resize(opened: PILImage.Image, data: bytes) -> bool:
    """Whether the OpenCV path gives what the Pillow path would, as strictly checked.

    CMYK and YCCK need Adobe's inversion rules that only Pillow's path is tested
    with. A stream that does not end in an EOI marker goes to Pillow too: libjpeg
    under OpenCV fills a truncated file with grey and carries on, where Pillow
    reports it, and a truncated file must be listed, not exported.
    """
    return (
        opened.format == "JPEG"
        and opened.mode in ("RGB", "L")
        and data.rstrip(b"\0\r\n ")[-2:] == b"\xff\xd9"
    )


def _scaled_size(size: tuple[int, int], shorter: int) -> tuple[int, int]:
    scale = shorter / min(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _resize_jpeg(
    data: bytes, size: tuple[int, int], orientation: int, spec: RenderSpec, thumb: int
) -> tuple[bytes, int, int, bytes]:
    """(JPEG bytes, width, height, thumbnail) of a resized JPEG, decoded and encoded by
    OpenCV; the thumbnail (``thumb`` px, RGB) only when asked for."""
    cv2 = _cv2()
    import numpy as np

    assert spec.resize is not None
    target = _scaled_size(size, spec.resize)
    # The largest of libjpeg's 1/8, 1/4, 1/2 that still leaves at least the target,
    # as Image.draft picks it: the DCT-domain reduction is the best and cheapest filter.
    ratio = min(size[0] // target[0], size[1] // target[1])
    flag = cv2.IMREAD_COLOR
    for factor, reduced in (
        (8, cv2.IMREAD_REDUCED_COLOR_8),
        (4, cv2.IMREAD_REDUCED_COLOR_4),
        (2, cv2.IMREAD_REDUCED_COLOR_2),
    ):
        if ratio >= factor:
            flag = reduced
            break
    try:
        pixels = cv2.imdecode(np.frombuffer(data, np.uint8), flag | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error as exc:  # a bad file is listed as unreadable, as Pillow's errors are
        raise ValueError(f"OpenCV could not decode the JPEG stream: {exc}") from exc
    if pixels is None:
        raise ValueError("OpenCV could not decode the JPEG stream")
    if min(pixels.shape[:2]) > spec.resize:
        # From the decoded size, as the Pillow path does after its draft (rounding).
        target = _scaled_size((pixels.shape[1], pixels.shape[0]), spec.resize)
        # Pillow widens its bicubic kernel by the reduction f; OpenCV's cubic does not,
        # so it aliases fine texture. A Gaussian of sigma sqrt(f^2 - 1) / 2 first adds
        # the low-pass that the coarser pixel grid needs (fitted on the test photos).
        # After the scaled decode f < 2, sigma < 0.87: a 3x3 kernel then costs less
        # than OpenCV's own choice (5x5) and is as close to Pillow's output.
        reduction = pixels.shape[1] / target[0]
        sigma = 0.5 * max(0.0, reduction * reduction - 1) ** 0.5
        if sigma > 0.05:
            size = (3, 3) if sigma < 0.9 else (0, 0)
            pixels = cv2.GaussianBlur(pixels, size, sigma)
        pixels = cv2.resize(pixels, target, interpolation=cv2.INTER_CUBIC)
    pixels = np.ascontiguousarray(_upright(pixels, orientation))
    ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, spec.quality])
    if not ok:
        raise ValueError("OpenCV could not encode the resized image")
    small = _thumbnail(cv2, pixels, thumb) if thumb else b""
    return encoded.tobytes(), pixels.shape[1], pixels.shape[0], small


def _thumbnail(cv2, pixels, side: int) -> bytes:  # noqa: ANN001 - the cv2 module, an array
    """The centred square of ``pixels`` at ``side`` px, as RGB bytes (``ImageOps.fit``)."""
    h, w = pixels.shape[:2]
    edge = min(h, w)
    top, left = (h - edge) // 2, (w - edge) // 2
    square = pixels[top : top + edge, left : left + edge]
    small = cv2.resize(square, (side, side), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2RGB).tobytes()


def _upright(pixels, orientation: int):  # noqa: ANN001, ANN202 - numpy arrays (H, W, C)
    """The EXIF orientation applied as ``ImageOps.exif_transpose`` applies it.

    Applied after the resize (it commutes with it), so it moves the fewest pixels.
    """
    import numpy as np

    ops = {
        2: lambda a: a[:, ::-1],  # mirrored
        3: lambda a: a[::-1, ::-1],  # upside down
        4: lambda a: a[::-1],  # flipped
        5: lambda a: a.transpose(1, 0, 2),  # transposed
        6: lambda a: np.rot90(a, -1),  # turned: rotate 90 degrees clockwise
        7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),  # transversed
        8: lambda a: np.rot90(a, 1),  # rotate 90 degrees anticlockwise
    }
    op = ops.get(orientation)
    return pixels if op is None else op(pixels)


def _to_rgb(img: PILImage.Image) -> PILImage.Image:
    """Flatten transparency onto white: a trainer's JPEG has no alpha."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = PILImage.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB") if img.mode != "RGB" else img
