"""Recognise video containers by their first bytes (never by name or declared type).

Confirm refuses anything else — HTML, SVG, text, images — so that an "original" can
never be a page someone tricks a browser into rendering.
"""

from __future__ import annotations

#: How many leading bytes :func:`sniff_container` wants (MPEG-TS needs three packets).
SNIFF_BYTES = 1024

_ISO_BMFF_BOXES = {b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
_TS_PACKET = 188


def sniff_container(head: bytes) -> str | None:
    """The container family of a file starting with ``head``, or None if not a video."""
    if len(head) >= 8 and head[4:8] in _ISO_BMFF_BOXES:
        return "mp4"  # ISO BMFF: MP4, MOV, M4V, 3GP
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"  # EBML: MKV, WebM
    if len(head) >= 12 and head.startswith(b"RIFF") and head[8:12] in (b"AVI ", b"AVIX"):
        return "avi"
    if head.startswith(b"FLV\x01"):
        return "flv"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "asf"  # WMV / ASF
    if head.startswith((b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")):
        return "mpeg-ps"
    if _looks_like_ts(head):
        return "mpeg-ts"
    return None


def _looks_like_ts(head: bytes) -> bool:
    # A sync byte every 188 bytes (plain TS) or every 192 (M2TS with a 4-byte prefix).
    for stride, offset in ((_TS_PACKET, 0), (192, 4)):
        positions = [offset + stride * i for i in range(3)]
        if positions[-1] < len(head) and all(head[p] == 0x47 for p in positions):
            return True
    return False
