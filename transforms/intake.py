"""Image intake: size limits, base64, hashing and a guarded decode into one RGB image.

Every refusal is a `RecognitionError` with a machine-readable code, so bad input never becomes a 500: any exception
a decoder raises (Pillow's plugins raise OSError, SyntaxError, ValueError, NotImplementedError, struct.error, ...)
is the image's fault, never the service's. What an accepted image becomes: its first frame (animations), EXIF
orientation applied, 16-bit samples scaled to 8 bits, transparency flattened onto white, then RGB.
"""

from __future__ import annotations

import binascii
import hashlib
import io
import re
from pathlib import Path

import numpy as np
import pybase64
from PIL import Image, ImageOps

from transforms.errors import RecognitionError

# Pillow format names we accept. MPO is the multi-picture JPEG many phone cameras write.
ACCEPTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "BMP", "GIF"})
_DATA_URL_PREFIX = re.compile(r"^data:[\w.+/-]*(;[\w=.+-]+)*;base64,", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")
# Pillow's modes for 16-bit (and wider) grey samples: converting them straight to RGB clips at 255, so most of the
# picture would turn white.
_WIDE_GREY_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})
WHITE = (255, 255, 255)


def sha256_hex(data: bytes) -> str:
    """The hex SHA-256 of the image bytes: the cache and dedup key."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """The hex SHA-256 of a file, read in 1 MiB chunks (model artifacts are large)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_size(data: bytes, limit: int, hint: str = "") -> None:
    """Refuse more than `limit` bytes (413 image_too_large); `hint` says where larger images go."""
    if len(data) > limit:
        raise too_large(len(data), limit, hint)


def too_large(size: int | None, limit: int, hint: str = "") -> RecognitionError:
    """The image_too_large error; `size` is None when the body was cut off at the limit."""
    said = f"{size} bytes" if size is not None else f"more than {limit} bytes"
    message = f"The image is {said}; this endpoint takes at most {limit} bytes. {hint}".strip()
    return RecognitionError("image_too_large", message, limit_bytes=limit)


def decode_base64(text: str) -> bytes:
    """Standard base64 (whitespace and a `data:image/...;base64,` prefix allowed) -> bytes, else bad_base64.

    The usual body (plain base64, no whitespace) is decoded in one strict SIMD pass (pybase64, ~30 us for 160 KB
    where the standard library takes over 1 ms); only text that fails it is cleaned (prefix, whitespace) and
    decoded again, so a cache hit does not pay for regexes over the whole text.
    """
    try:
        data = pybase64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        body = _WHITESPACE.sub("", _DATA_URL_PREFIX.sub("", text.strip(), count=1))
        try:
            data = pybase64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise RecognitionError("bad_base64", f"image_data is not valid base64: {exc}.") from exc
    if not data:
        raise RecognitionError("bad_base64", "image_data decodes to no bytes.")
    return data


def sniff_image(data: bytes, *, max_pixels: int | None = None) -> str:
    """From the header alone: the format of an accepted image within `max_pixels`, or the RecognitionError."""
    return str(_open(data, max_pixels).format)


def decode_image(data: bytes, *, max_pixels: int) -> Image.Image:
    """Decode JPEG, PNG, WebP, BMP or GIF into an RGB image (see the module docstring for what is normalised).

    The pixel count is checked from the header, before any pixel data is decoded.
    """
    img = _open(data, max_pixels)
    try:
        img.seek(0)
        img.load()
        # Reads the EXIF orientation tag (which can itself be broken); rotates only when one is set.
        ImageOps.exif_transpose(img, in_place=True)
        return to_rgb(img)
    except Image.DecompressionBombError as exc:
        raise _too_many_pixels(None, max_pixels) from exc
    except MemoryError:
        raise
    except Exception as exc:  # whatever a decoder raises on bad data is the image's fault
        if _truncated(data, exc):
            raise RecognitionError("image_truncated", "The image data is truncated.") from exc
        raise RecognitionError("image_corrupt", f"The image data is corrupt: {_reason(exc)}.") from exc


def to_rgb(img: Image.Image) -> Image.Image:
    """A decoded image of any mode as 8-bit RGB: wide grey scaled down, transparency flattened onto white."""
    if img.mode in _WIDE_GREY_MODES:
        grey = np.asarray(img, dtype=np.int64)
        if img.mode != "I" or grey.max(initial=0) > 255:  # "I" also holds 8-bit data from some decoders
            grey = grey >> 8
        img = Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8), "L")
    if (img.mode == "P" and "transparency" in img.info) or img.mode in ("PA", "LA", "La", "RGBa"):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        flat = Image.new("RGB", img.size, WHITE)
        flat.paste(img, mask=img.getchannel("A"))
        return flat
    return img.convert("RGB") if img.mode != "RGB" else img


def _open(data: bytes, max_pixels: int | None) -> Image.Image:
    """Parse the header only: format and size are known, no pixel data is decoded yet."""
    try:
        # Past its own global limit Pillow only warns, and past twice that it raises; max_pixels decides below.
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise _too_many_pixels(None, max_pixels) from exc
    except MemoryError:
        raise
    except Exception as exc:  # a plugin that cannot parse the header may raise anything
        if _truncated(data, exc):
            raise RecognitionError("image_truncated", "The image data is truncated.") from exc
        if isinstance(exc, NotImplementedError):  # a known container holding a variant Pillow cannot decode
            raise RecognitionError(
                "unsupported_format", f"This image's encoding is not supported ({_reason(exc)}); send JPEG, PNG, "
                "WebP, BMP or GIF.",
            ) from exc
        raise RecognitionError("not_an_image", "The data is not an image in a format we can read.") from exc
    if img.format not in ACCEPTED_FORMATS:
        raise RecognitionError(
            "unsupported_format",
            f"{img.format} images are not supported; send JPEG, PNG, WebP, BMP or GIF.",
            format=img.format,
        )
    width, height = img.size
    if width < 1 or height < 1:
        raise RecognitionError("image_corrupt", f"The image has no pixels ({width}x{height}).")
    if max_pixels is not None and width * height > max_pixels:
        raise _too_many_pixels(width * height, max_pixels)
    return img


def _reason(exc: BaseException) -> str:
    return str(exc).rstrip(".") or type(exc).__name__


def _too_many_pixels(pixels: int | None, limit: int | None) -> RecognitionError:
    said = f"{pixels} pixels" if pixels is not None else "too many pixels"
    limit_said = f"the limit is {limit} pixels" if limit is not None else "it is refused as a decompression bomb"
    return RecognitionError("too_many_pixels", f"The image has {said}; {limit_said}.", max_pixels=limit)


def _truncated(data: bytes, exc: BaseException) -> bool:
    """Whether a decode failure is a cut-off file (Pillow says so, or a RIFF/WebP header declares more bytes)."""
    if isinstance(exc, EOFError) or "truncated" in str(exc).lower():
        return True
    # libwebp only says "could not create decoder object"; the RIFF header holds the full length.
    return data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) < int.from_bytes(data[4:8], "little") + 8
