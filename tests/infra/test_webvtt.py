"""The WebVTT writer every text track goes through: text stays text, cues stay cues."""

from __future__ import annotations

from videoforge.infra.webvtt import cue_text, vtt_document, vtt_timestamp


def test_timestamps_always_carry_hours() -> None:
    assert vtt_timestamp(0) == "00:00:00.000"
    assert vtt_timestamp(3723.4567) == "01:02:03.457"
    assert vtt_timestamp(-1) == "00:00:00.000"


def test_a_payload_cannot_end_its_cue_start_another_or_be_markup() -> None:
    text = cue_text("<b>bold</b> & co\n\n00:00:09.000 --> 00:00:10.000\nfake cue")
    assert "<" not in text
    assert "-->" not in text
    assert "\n\n" not in text
    assert text.startswith("&lt;b&gt;bold&lt;/b&gt; &amp; co\n")
    document = vtt_document([(0, 1, "a --> b"), (1, 2, "")])
    assert document.count("-->") == 2  # the two timing lines, nothing else
    assert vtt_document([(0, 1, "sprite_0.jpg#xywh=0,0,1,1")], escape=False).endswith(
        "sprite_0.jpg#xywh=0,0,1,1\n\n"
    )
