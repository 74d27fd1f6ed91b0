"""An uploaded thumbnail image is validated and re-encoded, never kept as sent: bombs,
non-images, oversize files and other formats are refused with clear errors, and what
is stored is a bounded JPEG without the original's EXIF."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from videoforge.gallery.thumbnails import images
from videoforge.infra.errors import AppError


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def png_bomb(side: int = 30_000) -> bytes:
    """A real, valid PNG of side x side black 1-bit pixels: about 110 MB of scanlines
    (900 megapixels) compressed into a file of some 100 KB."""
    row = b"\x00" + bytes((side + 7) // 8)  # filter byte + the packed pixels
    packer = zlib.compressobj(9)
    compressed = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", compressed)
        + _png_chunk(b"IEND", b"")
    )


def encoded(image: Image.Image, kind: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=kind, **options)
    return out.getvalue()


def refused(data: bytes) -> AppError:
    with pytest.raises(AppError) as caught:
        images.reencode(data)
    return caught.value


def test_a_png_bomb_is_refused_before_its_pixels_are_decoded() -> None:
    bomb = png_bomb()
    assert len(bomb) < images.MAX_BYTES  # small enough to pass the byte limit
    error = refused(bomb)
    assert (error.status_code, error.code) == (422, "image_too_large")
    assert "40 megapixels" in error.message


def test_a_non_image_is_refused() -> None:
    html = b"<!doctype html><svg onload=alert(1)><script>alert(1)</script></svg>"
    error = refused(html)
    assert (error.status_code, error.code) == (415, "unsupported_image_type")


def test_other_image_formats_are_refused() -> None:
    gif = encoded(Image.new("RGB", (32, 32), (200, 0, 0)), "GIF")
    assert Image.open(io.BytesIO(gif)).format == "GIF"  # a real image, just not allowed
    assert refused(gif).code == "unsupported_image_type"


def test_an_oversize_file_is_refused() -> None:
    big = encoded(Image.new("RGB", (16, 16)), "PNG") + b"\x00" * images.MAX_BYTES
    error = refused(big)
    assert (error.status_code, error.code) == (413, "thumbnail_too_large")


def test_a_truncated_image_is_refused() -> None:
    photo = encoded(Image.effect_noise((400, 300), 60).convert("RGB"), "JPEG")
    error = refused(photo[: len(photo) // 2])
    assert (error.status_code, error.code) == (422, "invalid_image")


def test_exif_is_removed_and_the_orientation_applied() -> None:
    # A phone photo: 400x300 as stored, rotated by its EXIF orientation, with a GPS
    # position and a camera name the uploader never meant to publish.
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    exif[0x010F] = "SecretCam"  # Make
    exif[0x8825] = {2: (51.0, 30.0, 0.0), 4: (0.0, 7.0, 0.0)}  # GPS latitude / longitude
    photo = Image.new("RGB", (400, 300), (10, 120, 200))
    data = encoded(photo, "JPEG", exif=exif, comment=b"taken at home")
    assert b"SecretCam" in data

    thumbnail = images.reencode(data)

    assert b"SecretCam" not in thumbnail.data
    assert b"taken at home" not in thumbnail.data
    with Image.open(io.BytesIO(thumbnail.data)) as stored:
        assert stored.format == "JPEG"
        assert not stored.getexif()
        assert "exif" not in stored.info
        assert "comment" not in stored.info
        assert stored.size == (300, 400)  # displayed as the camera meant


def test_the_output_is_a_jpeg_within_bounds_whatever_came_in() -> None:
    wide = Image.new("RGBA", (4000, 1000), (255, 0, 0, 0))
    wide.paste((0, 255, 0, 255), (0, 0, 2000, 1000))
    thumbnail = images.reencode(encoded(wide, "WEBP", lossless=True))
    assert (thumbnail.width, thumbnail.height) == (1280, 320)
    with Image.open(io.BytesIO(thumbnail.data)) as stored:
        assert (stored.format, stored.mode, stored.size) == ("JPEG", "RGB", (1280, 320))
        # The transparent half is flattened onto black, the opaque half kept.
        left, right = stored.getpixel((100, 100)), stored.getpixel((1200, 100))
    assert isinstance(left, tuple)
    assert isinstance(right, tuple)
    assert left[1] > 200
    assert right == pytest.approx((0, 0, 0), abs=8)


def test_a_small_png_keeps_its_size() -> None:
    thumbnail = images.reencode(encoded(Image.new("L", (320, 180), 128), "PNG"))
    assert (thumbnail.width, thumbnail.height) == (320, 180)
    assert thumbnail.data.startswith(b"\xff\xd8")
