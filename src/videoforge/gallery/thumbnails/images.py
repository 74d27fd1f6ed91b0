"""Turning an image a stranger sent into a thumbnail we are willing to serve.

The upload is only ever read by Pillow, restricted to the decoders of the allowed
formats (JPEG, PNG, WebP: detected from the bytes, not from a header the client
chose), and its dimensions are checked from the header *before* any pixel is decoded,
so a small file that claims a huge picture (a decompression bomb) costs nothing. What
is stored is a fresh baseline JPEG of bounded size, made from the pixels alone: no
EXIF (the GPS position of a phone's photo), no ICC or XMP, no comment chunk, nothing
of the original file survives.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from videoforge.infra.errors import (
    AppError,
    PayloadTooLarge,
    UnprocessableEntity,
    UnsupportedMediaType,
)

#: The most an uploaded image may weigh.
MAX_BYTES = 5 * 1024 * 1024
#: The most pixels an upload may claim (a 8000x5000 photo); checked before decoding.
MAX_PIXELS = 40_000_000
#: Formats accepted, by Pillow's names of their decoders.
FORMATS = ("JPEG", "PNG", "WEBP")
#: The stored thumbnail fits in this box (the player's 16:9 frame at 720p).
MAX_WIDTH, MAX_HEIGHT = 1280, 720
JPEG_QUALITY = 85
#: What a transparent picture is flattened onto.
BACKGROUND = (0, 0, 0)


@dataclass(frozen=True)
class Thumbnail:
    data: bytes
    width: int
    height: int


def too_large() -> PayloadTooLarge:
    return PayloadTooLarge(
        f"A thumbnail image may be at most {MAX_BYTES // (1024 * 1024)} MiB.",
        code="thumbnail_too_large",
    )


def reencode(data: bytes) -> Thumbnail:
    """A clean JPEG of ``data``, at most :data:`MAX_WIDTH` x :data:`MAX_HEIGHT`, turned
    the way its EXIF orientation says; raises a clear error for anything else.

    CPU-bound: call it in a thread.
    """
    if len(data) > MAX_BYTES:
        raise too_large()
    if not data:
        raise UnprocessableEntity("The image is empty.", code="invalid_image")
    try:
        with warnings.catch_warnings():
            # Pillow warns (and only warns) between its own limit and twice it.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as image:
                _check_dimensions(image.width, image.height)
                image.load()
                return _encode(image)
    except AppError:
        raise
    except UnidentifiedImageError:
        raise UnsupportedMediaType(
            "Upload a JPEG, PNG or WebP image.", code="unsupported_image_type"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _bomb() from None
    except Exception:
        # Truncated, corrupt or crafted data: Pillow's decoders say so with OSError,
        # SyntaxError and ValueError, and a hostile file can reach struct, EOF or index
        # errors in a format plugin; each means the same to the uploader.
        raise UnprocessableEntity(
            "The image could not be read; it may be damaged.", code="invalid_image"
        ) from None


def _bomb() -> UnprocessableEntity:
    return UnprocessableEntity(
        f"The image is too large: at most {MAX_PIXELS // 1_000_000} megapixels.",
        code="image_too_large",
    )


def _check_dimensions(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise UnprocessableEntity("The image has no pixels.", code="invalid_image")
    if width * height > MAX_PIXELS:
        raise _bomb()


def _encode(image: Image.Image) -> Thumbnail:
    turned = ImageOps.exif_transpose(image)
    if turned.mode in ("RGBA", "LA", "PA") or (
        turned.mode == "P" and "transparency" in turned.info
    ):
        rgba = turned.convert("RGBA")
        flat = Image.new("RGB", rgba.size, BACKGROUND)
        flat.paste(rgba, mask=rgba.getchannel("A"))
    else:
        flat = turned.convert("RGB")
    flat.thumbnail((MAX_WIDTH, MAX_HEIGHT), Image.Resampling.LANCZOS)
    # A new image of the pixels alone: no info dict (EXIF, ICC, XMP, comments) to carry.
    clean = Image.new("RGB", flat.size)
    clean.paste(flat)
    out = io.BytesIO()
    clean.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return Thumbnail(out.getvalue(), clean.width, clean.height)
