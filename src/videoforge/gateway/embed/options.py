"""What an embed is made of, as plain values: the frame size at the video's aspect ratio
(oEmbed, meta tags), thumbnail sizes, and the player's query options (``start``,
``autoplay``, ...), read the way YouTube's embeds and ``web/share.js`` read them."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from videoforge.gateway.gallery.client import PublicVideo

#: oEmbed's default frame: a 16:9 or 4:3 video is 640 wide, a portrait one 640 tall.
DEFAULT_BOX = 640
DEFAULT_ASPECT = (16, 9)
#: The processor's thumbnails are at most this wide (processor.config.thumbnail_width).
THUMBNAIL_WIDTH = 640


@dataclass(frozen=True)
class Size:
    width: int
    height: int


def aspect_of(video: PublicVideo) -> tuple[int, int]:
    """The video's own width:height when known, else 16:9."""
    if video.width and video.height:
        return video.width, video.height
    return DEFAULT_ASPECT


def fit(aspect: tuple[int, int], max_width: int | None, max_height: int | None) -> Size:
    """The largest frame of ``aspect`` within the default box and the given maxima."""
    aw, ah = aspect
    box_w = min(DEFAULT_BOX, max_width) if max_width else DEFAULT_BOX
    box_h = min(DEFAULT_BOX, max_height) if max_height else DEFAULT_BOX
    if not max_height and aw >= ah:
        # A landscape default is DEFAULT_BOX wide whatever its height (as YouTube's).
        box_h = math.ceil(box_w * ah / aw)
    scale = min(box_w / aw, box_h / ah)
    # Floors, so the frame never exceeds a maximum; never below one pixel.
    return Size(max(1, math.floor(aw * scale + 1e-9)), max(1, math.floor(ah * scale + 1e-9)))


_TIME = re.compile(r"(?:([0-9]{1,7})h)?(?:([0-9]{1,7})m)?(?:([0-9]{1,7})s)?")
MAX_START = 10**7


def parse_time(value: str | None) -> int:
    """``90``, ``90s``, ``1m30s``, ``1h2m3s`` as seconds (as web/share.js reads ``?t=``);
    anything else 0. Bounded before ``int()``: a 5,000-digit number is not a 500."""
    text = (value or "").strip().lower()
    if re.fullmatch(r"[0-9]{1,9}", text):
        return min(int(text), MAX_START)
    match = _TIME.fullmatch(text) if text else None
    if match is None:
        return 0
    h, m, sec = (int(g) if g else 0 for g in match.groups())
    return min(h * 3600 + m * 60 + sec, MAX_START)


@dataclass(frozen=True)
class EmbedOptions:
    """The embed's query parameters, as YouTube's embeds take them."""

    start: int = 0
    autoplay: bool = False
    muted: bool = False
    loop: bool = False
    controls: bool = True
    title: bool = True

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> EmbedOptions:
        def flag(name: str, default: bool) -> bool:
            value = query.get(name, "").strip().lower()
            if value in {"1", "true", "yes"}:
                return True
            if value in {"0", "false", "no"}:
                return False
            return default

        return cls(
            start=parse_time(query.get("start") or query.get("t")),
            autoplay=flag("autoplay", False),
            muted=flag("mute", False) or flag("muted", False),
            loop=flag("loop", False),
            controls=flag("controls", True),
            title=flag("title", True),
        )

    def data_attributes(self) -> str:
        """For embed.js: ``data-start="90" data-autoplay="1"`` and so on."""
        values = {
            "start": str(self.start),
            "autoplay": "1" if self.autoplay else "0",
            "muted": "1" if self.muted else "0",
            "loop": "1" if self.loop else "0",
            "controls": "1" if self.controls else "0",
            "title": "1" if self.title else "0",
        }
        return " ".join(f'data-{k}="{v}"' for k, v in values.items())


def thumbnail_size(video: PublicVideo) -> Size:
    aw, ah = aspect_of(video)
    width = min(THUMBNAIL_WIDTH, video.width or THUMBNAIL_WIDTH)
    return Size(width, max(1, round(width * ah / aw)))
