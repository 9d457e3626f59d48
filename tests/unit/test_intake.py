"""Image intake: formats, orientation, refusals with their codes, base64, size and hashing."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image
from skimage import data as samples

from transforms.errors import RecognitionError
from transforms.intake import check_size, decode_base64, decode_image, sha256_hex, sniff_image

MAX = 10_000_000


def encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def refused(data: bytes, max_pixels: int = MAX) -> RecognitionError:
    with pytest.raises(RecognitionError) as info:
        decode_image(data, max_pixels=max_pixels)
    return info.value


PHOTO = Image.fromarray(samples.astronaut()).resize((256, 256))  # a real RGB photograph, kept small for speed


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "GIF"])
def test_accepted_formats_decode_to_rgb(fmt: str) -> None:
    img = decode_image(encode(PHOTO, fmt), max_pixels=MAX)
    assert (img.mode, img.size) == ("RGB", (256, 256))
    # Lossy formats differ a little; a wrong channel order or a blank image would differ a lot.
    diff = np.abs(np.asarray(img, dtype=np.int16) - np.asarray(PHOTO, dtype=np.int16)).mean()
    assert diff < 12


def test_multi_picture_jpeg_from_cameras_is_accepted() -> None:
    second = Image.new("RGB", (256, 256), "white")
    data = encode(PHOTO, "MPO", save_all=True, append_images=[second])
    img = decode_image(data, max_pixels=MAX)
    assert img.size == (256, 256)
    assert np.asarray(img).mean() < 200  # the first picture (the photo), not the white one


@pytest.mark.parametrize(
    ("mode", "fmt"), [("RGBA", "PNG"), ("L", "PNG"), ("P", "PNG"), ("CMYK", "JPEG"), ("LA", "PNG"), ("I;16", "PNG")]
)
def test_other_modes_become_rgb(mode: str, fmt: str) -> None:
    img = decode_image(encode(PHOTO.convert(mode), fmt), max_pixels=MAX)
    assert img.mode == "RGB"


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    img = decode_image(encode(Image.fromarray(ramp), "PNG"), max_pixels=MAX)
    grey = np.asarray(img)[..., 0].astype(int)
    np.testing.assert_allclose(grey, ramp >> 8, atol=1)  # clipping at 255 would make nearly all of it white


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparency_is_flattened_onto_white(mode: str) -> None:
    clear = Image.new("RGBA", (32, 32), (0, 0, 0, 0))  # black under full transparency
    clear.paste((200, 30, 30, 255), (0, 0, 16, 32))  # opaque red on the left half
    source = clear if mode == "RGBA" else clear.convert(mode)
    kw = {"transparency": source.info["transparency"]} if "transparency" in source.info else {}
    img = np.asarray(decode_image(encode(source, "PNG", **kw), max_pixels=MAX))
    assert img[:, 16:].min() == 255  # what a browser shows on a white page, not the black under the alpha
    assert img[:, :16].max(axis=(0, 1)).tolist() != [255, 255, 255]


def test_cmyk_jpeg_keeps_its_colours() -> None:
    img = decode_image(encode(PHOTO.convert("CMYK"), "JPEG", quality=95), max_pixels=MAX)
    diff = np.abs(np.asarray(img, dtype=np.int16) - np.asarray(PHOTO, dtype=np.int16)).mean()
    assert diff < 12


def test_an_image_without_pixels_is_corrupt() -> None:
    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">IIBBBBB", 0, 16, 8, 2, 0, 0, 0)
    assert refused(header + b"\x00" * 4).code in ("image_corrupt", "not_an_image")


def test_gif_first_frame() -> None:
    frames = [Image.new("RGB", (20, 10), color) for color in ((255, 0, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    img = decode_image(data, max_pixels=MAX)
    assert img.getpixel((5, 5)) == (255, 0, 0)


def test_animated_webp_first_frame() -> None:
    frames = [Image.new("RGB", (20, 10), color) for color in ((0, 255, 0), (255, 0, 0))]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    assert decode_image(data, max_pixels=MAX).getpixel((5, 5)) == (0, 255, 0)


def test_exif_orientation_is_applied() -> None:
    img = Image.new("RGB", (40, 20), "white")
    img.paste((255, 0, 0), (0, 0, 10, 20))  # red strip on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display needs a 90° clockwise turn
    out = decode_image(encode(img, "JPEG", exif=exif.tobytes(), quality=95), max_pixels=MAX)
    assert out.size == (20, 40)
    r, g, b = out.getpixel((10, 5))  # the left strip is now at the top
    assert r > 200 and g < 60 and b < 60


@pytest.mark.parametrize("fmt", ["TIFF", "ICO", "PPM", "TGA", "PCX"])
def test_other_formats_are_unsupported(fmt: str) -> None:
    err = refused(encode(PHOTO.resize((64, 64)), fmt))
    assert (err.code, err.http_status) == ("unsupported_format", 415)
    assert err.details["format"] == fmt


@pytest.mark.parametrize("data", [b"", b"hello world", b"<html><body>nope</body></html>", bytes(range(256)) * 4])
def test_not_an_image(data: bytes) -> None:
    err = refused(data)
    assert (err.code, err.http_status) == ("not_an_image", 422)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "GIF"])
def test_truncated_images(fmt: str) -> None:
    data = encode(PHOTO, fmt)
    for cut in (len(data) // 2, len(data) - 64):
        err = refused(data[:cut])
        assert (err.code, err.http_status) == ("image_truncated", 422), (fmt, cut)


def test_corrupt_pixel_data() -> None:
    data = bytearray(encode(PHOTO, "PNG"))
    start = data.index(b"IDAT") + 4
    data[start : start + 200] = b"\xff" * 200  # a broken zlib stream inside a complete file
    err = refused(bytes(data))
    assert err.code in {"image_corrupt", "image_truncated"}
    assert err.http_status == 422


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height but carries almost no data: the shape of a decompression bomb."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize(("width", "height"), [(8000, 6000), (60000, 60000), (2**31 - 1, 2**31 - 1)])
def test_too_many_pixels_is_refused_from_the_header(width: int, height: int) -> None:
    # 48 Mpx is over our 40 Mpx default but under Pillow's own limit; 3.6 Gpx trips Pillow's guard too.
    err = refused(_png_header_only(width, height), max_pixels=40_000_000)
    assert (err.code, err.http_status) == ("too_many_pixels", 422)
    assert err.details["max_pixels"] == 40_000_000


def test_pixel_limit_is_inclusive() -> None:
    data = encode(Image.new("RGB", (100, 50)), "PNG")
    assert decode_image(data, max_pixels=5000).size == (100, 50)
    assert refused(data, max_pixels=4999).code == "too_many_pixels"


def test_sha256_hex() -> None:
    assert sha256_hex(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_decode_base64_accepts_plain_wrapped_and_data_urls() -> None:
    raw = encode(PHOTO.resize((16, 16)), "PNG")
    b64 = base64.b64encode(raw).decode()
    assert decode_base64(b64) == raw
    assert decode_base64("\n".join(b64[i : i + 76] for i in range(0, len(b64), 76))) == raw
    assert decode_base64(f"data:image/png;base64,{b64}") == raw
    assert decode_base64(f"  data:image/svg+xml;charset=utf-8;base64,{b64}  ") == raw


@pytest.mark.parametrize("text", ["", "   ", "not base64!", "abc", "YWJj$", "data:image/png;base64,"])
def test_decode_base64_refuses(text: str) -> None:
    with pytest.raises(RecognitionError) as info:
        decode_base64(text)
    assert (info.value.code, info.value.http_status) == ("bad_base64", 400)


def test_check_size() -> None:
    check_size(b"x" * 10, 10)
    with pytest.raises(RecognitionError) as info:
        check_size(b"x" * 11, 10, "Send larger images to POST /v1/recognize/batch.")
    err = info.value
    assert (err.code, err.http_status) == ("image_too_large", 413)
    assert err.message.endswith("POST /v1/recognize/batch.")
    assert err.to_dict() == {"code": "image_too_large", "message": err.message, "limit_bytes": 10}


def test_sniff_image_checks_the_header_only() -> None:
    assert sniff_image(encode(PHOTO, "PNG")) == "PNG"
    assert sniff_image(encode(PHOTO, "WEBP"), max_pixels=256 * 256) == "WEBP"
    # A header-only bomb passes a sniff without a pixel limit (nothing is decoded) but not with one.
    assert sniff_image(_png_header_only(8000, 6000)) == "PNG"
    for data, code in (
        (_png_header_only(8000, 6000), "too_many_pixels"),
        (encode(PHOTO, "TIFF"), "unsupported_format"),
        (b"plain text", "not_an_image"),
    ):
        with pytest.raises(RecognitionError) as info:
            sniff_image(data, max_pixels=40_000_000)
        assert info.value.code == code
