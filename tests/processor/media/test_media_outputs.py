"""Issue 12's outputs on a real source: every audio track (encoded once, loudness-normalised),
text subtitles as WebVTT, chapters, a storyboard and a DASH manifest over the HLS files.

The source is made here with ffmpeg: two audio tracks in two languages at very different
loudness, an SRT and an ASS track, container chapters from an ffmetadata file. Outputs
are checked by parsing them: the ``m3u8`` library for HLS, the MPD's XML (and ffprobe's
dash demuxer on our own, trusted output), ffmpeg's ``ebur128`` for loudness.
"""

from __future__ import annotations

import json
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import m3u8
import pytest
from m3u8.mixins import BasePathMixin

from videoforge.processor import runner
from videoforge.processor.audio import Loudness, measure_args, parse_measurements
from videoforge.processor.config import ProcessingConfig
from videoforge.processor.passes import extract_subtitles
from videoforge.processor.pipeline import PipelineResult, process_file
from videoforge.processor.storyboard import plan_storyboard
from videoforge.processor.subtitles import SubtitleRendition, plan_subtitles
from videoforge.processor.tracks import AudioTrack, SubtitleTrack, clean_label, container_chapters

from .fifo import watch_fifo

CONFIG = ProcessingConfig(threads=1, preset="ultrafast")
NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}
SECONDS = 3

SRT = """1
00:00:00,200 --> 00:00:01,000
Hello <b>world</b>

2
00:00:01,100 --> 00:00:02,500
Second line
"""

ASS = """[Script Info]
ScriptType: v4.00+

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, \
Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, \
Shadow, Alignment, MarginL, MarginR, MarginV, Encoding
Style: Default,{font},20,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,\
2,2,2,10,10,10,1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:00.30,0:00:01.20,Default,,0,0,0,,Bonjour {{\\i1}}monde{{\\i0}}
Dialogue: 0,0:00:01.30,0:00:02.20,Default,,0,0,0,,{{\\fn{font}}}Deuxième ligne
"""

CHAPTERS = """;FFMETADATA1
[CHAPTER]
TIMEBASE=1/1000
START=0
END=1000
title=Intro
[CHAPTER]
TIMEBASE=1/1000
START=1000
END=3000
title=The <main> part
"""


def run(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-y", *args],
        check=True,
        capture_output=True,
        timeout=60,
    )


def make_source(
    root: Path, *, font: str = "Arial", attachment: Path | None = None, srt: str = SRT
) -> Path:
    (root / "a.srt").write_text(srt)
    (root / "b.ass").write_text(ASS.format(font=font))
    (root / "chapters.txt").write_text(CHAPTERS)
    target = root / "source.mkv"
    extra: list[str] = []
    if attachment is not None:
        extra = ["-attach", str(attachment), "-metadata:s:t", "mimetype=font/ttf"]
    run(
        "-loglevel", "error",
        "-f", "lavfi", "-i", f"testsrc2=s=320x240:r=25:d={SECONDS}",
        # Quiet English (about -42 LUFS) and loud French (about -10 LUFS).
        "-f", "lavfi", "-i", f"sine=f=440:d={SECONDS},volume=-20dB",
        "-f", "lavfi", "-i", f"sine=f=660:d={SECONDS},volume=12dB",
        "-i", str(root / "a.srt"), "-i", str(root / "b.ass"), "-i", str(root / "chapters.txt"),
        "-map", "0:v", "-map", "1:a", "-map", "2:a", "-map", "3", "-map", "4",
        "-map_chapters", "5",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-c:s:0", "srt", "-c:s:1", "ass",
        "-metadata:s:a:0", "language=eng", "-metadata:s:a:0", "title=English",
        "-metadata:s:a:1", "language=fra", "-metadata:s:a:1", 'title=Fran"çais\nx',
        "-disposition:a:0", "0", "-disposition:a:1", "default",
        "-metadata:s:s:0", "language=eng", "-metadata:s:s:1", "language=fra",
        "-metadata:s:s:1", "title=Sous-titres",
        *extra, str(target),
    )  # fmt: skip
    return target


@pytest.fixture(scope="module")
def produced(tmp_path_factory: pytest.TempPathFactory) -> PipelineResult:
    import asyncio

    root = tmp_path_factory.mktemp("media-outputs")
    source = make_source(root)
    return asyncio.run(process_file(source, root / "job", CONFIG))


def ebur128_summary(path: Path) -> str:
    """ffmpeg's ebur128 on an output (the measurement the issue asks for): its summary."""
    done = run("-i", str(path), "-af", "ebur128=peak=true", "-f", "null", "-")
    return done.stderr.decode().rsplit("Summary:", 1)[1]


def integrated_loudness(path: Path) -> float:
    summary = ebur128_summary(path)
    match = re.search(r"I:\s+(-?[0-9.]+) LUFS", summary)
    assert match, summary
    return float(match.group(1))


def uri(item: BasePathMixin) -> str:
    """The URI of a playlist entry that must have one (the parser allows none)."""
    assert item.uri, item
    return item.uri


def joined(out: Path, playlist_key: str, target: Path) -> Path:
    """init + segments of one HLS media playlist as one playable file."""
    playlist = m3u8.load(str(out / playlist_key))
    base = (out / playlist_key).parent
    with target.open("wb") as handle:
        handle.write((base / "init.mp4").read_bytes())
        for segment in playlist.segments:
            handle.write((base / uri(segment)).read_bytes())
    return target


def streams(path: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", str(path)],
        check=True, capture_output=True, timeout=60,
    ).stdout  # fmt: skip
    return list(json.loads(out)["streams"])


def test_master_has_an_audio_group_and_a_subtitles_group(produced: PipelineResult) -> None:
    out = produced.output_dir
    master = m3u8.load(str(out / produced.master_playlist))
    audio = [m for m in master.media if m.type == "AUDIO"]
    subs = [m for m in master.media if m.type == "SUBTITLES"]
    assert [(m.language, m.name, m.default, m.uri) for m in audio] == [
        ("en", "English", "NO", "audio-0/index.m3u8"),
        # The title's quote and line break are gone: it cannot break out of the attribute.
        ("fr", "Français x", "YES", "audio-1/index.m3u8"),
    ]
    assert {m.group_id for m in audio} == {"audio"}
    assert [(m.language, m.name, m.uri) for m in subs] == [
        ("en", "en", "subtitles/s0.m3u8"),
        ("fr", "Sous-titres", "subtitles/s1.m3u8"),
    ]
    assert master.playlists
    for variant in master.playlists:
        assert variant.stream_info.audio == "audio"
        assert variant.stream_info.subtitles == "subs"
        assert (variant.stream_info.codecs or "").endswith(",mp4a.40.2")
    # Every media playlist named there exists and lists real segments.
    for media in audio:
        playlist = m3u8.load(str(out / "hls" / uri(media)))
        assert playlist.is_endlist
        assert playlist.segments
        base = (out / "hls" / uri(media)).parent
        assert all((base / uri(segment)).stat().st_size > 0 for segment in playlist.segments)
    for media in subs:
        playlist = m3u8.load(str(out / "hls" / uri(media)))
        assert [s.uri for s in playlist.segments] == [Path(uri(media)).stem + ".vtt"]
        assert playlist.segments[0].duration == pytest.approx(SECONDS, abs=0.2)


def test_video_playlists_carry_no_audio_and_mp4s_carry_the_default_track(
    produced: PipelineResult,
) -> None:
    out = produced.output_dir
    for rendition in produced.renditions:
        init = streams(out / rendition.playlist_key.replace("index.m3u8", "init.mp4"))
        assert [s["codec_type"] for s in init] == ["video"]
        mp4 = streams(out / rendition.mp4_key)
        assert [s["codec_type"] for s in mp4] == ["video", "audio"]
    default = next(a for a in produced.audio_tracks if a.default)
    assert default.language == "fr"  # the source's default disposition, not the first
    # The MP4's audio is the default (loud, French) track, normalised like the rendition.
    default_mp4 = out / produced.renditions[0].mp4_key
    assert integrated_loudness(default_mp4) == pytest.approx(CONFIG.loudness_target, abs=1.0)


def test_quiet_and_loud_tracks_both_come_out_at_the_target(
    produced: PipelineResult, tmp_path: Path
) -> None:
    out = produced.output_dir
    measured = {}
    for track in produced.audio_tracks:
        joined_file = joined(out, track.playlist_key, tmp_path / f"{track.index}.mp4")
        measured[track.language] = integrated_loudness(joined_file)
        assert track.loudness is not None
        assert track.normalization == "linear"
    assert measured["en"] == pytest.approx(CONFIG.loudness_target, abs=1.0)
    assert measured["fr"] == pytest.approx(CONFIG.loudness_target, abs=1.0)
    # The metadata document records the source's figures (really quiet, really loud).
    metadata = json.loads((out / produced.metadata).read_text())
    by_language = {a["language"]: a for a in metadata["audio"]}
    assert by_language["en"]["loudness"]["integrated"] < -35
    assert by_language["fr"]["loudness"]["integrated"] > -13
    assert by_language["fr"]["loudness"]["true_peak"] < 0.5
    assert by_language["en"]["loudness"]["lra"] >= 0
    assert metadata["loudness"] == {
        "normalization": True,
        "target_lufs": -14.0,
        "true_peak_dbtp": -1.0,
    }


async def test_normalisation_can_be_switched_off_per_job(tmp_path: Path) -> None:
    source = make_source(tmp_path)
    seen: list[list[str]] = []
    remove = runner.observe_spawns(seen.append)
    try:
        result = await process_file(source, tmp_path / "job", CONFIG, loudness_normalization=False)
    finally:
        remove()
    assert [Path(a[0]).name for a in seen] == ["ffprobe", "ffmpeg", "ffmpeg", "ffmpeg"]
    assert not any("ebur128" in token for argv in seen for token in argv)  # not measured
    quiet = next(t for t in result.audio_tracks if t.language == "en")
    assert quiet.normalization == "off"
    level = integrated_loudness(joined(result.output_dir, quiet.playlist_key, tmp_path / "q.mp4"))
    assert level < -35  # left as quiet as it was


def test_subtitles_are_webvtt_with_the_source_text(produced: PipelineResult) -> None:
    out = produced.output_dir
    by_language = {s.language: s for s in produced.subtitles}
    english = (out / by_language["en"].vtt_key).read_text()
    french = (out / by_language["fr"].vtt_key).read_text()
    assert english.startswith("WEBVTT")
    assert "Hello <b>world</b>" in english
    assert "Second line" in english
    assert french.startswith("WEBVTT")
    assert "Bonjour <i>monde</i>" in french  # ASS markup converted, not kept
    assert "Deuxième ligne" in french
    assert "\\fn" not in french
    assert by_language["fr"].label == "Sous-titres"
    assert produced.notes == []


def test_chapters_track_from_the_container(produced: PipelineResult) -> None:
    assert produced.chapters == "chapters.vtt"
    text = (produced.output_dir / "chapters.vtt").read_text()
    cues = re.findall(r"(\S+) --> (\S+)\n(.+)\n", text)
    assert cues == [
        ("00:00:00.000", "00:00:01.000", "Intro"),
        # Markup in a title is text: the angle brackets are gone or escaped, never tags.
        ("00:00:01.000", "00:00:03.000", "The main part"),
    ]
    assert [(c.start, c.title) for c in produced.probe.chapters] == [
        (0.0, "Intro"),
        (1.0, "The main part"),
    ]


def test_storyboard_sheets_and_thumbnails_track(produced: PipelineResult) -> None:
    out = produced.output_dir
    assert produced.storyboard == "storyboard/thumbnails.vtt"
    assert produced.storyboard_sheets == ["storyboard/sprite_0.jpg"]
    sheet = streams(out / "storyboard/sprite_0.jpg")[0]
    plan = plan_storyboard(produced.probe.duration, 320, 240, CONFIG)
    assert (plan.interval, plan.tiles) == (2.0, 2)
    assert (sheet["width"], sheet["height"]) == (2 * 160, 120)
    text = (out / produced.storyboard).read_text()
    assert re.findall(r"sprite_0\.jpg#xywh=(\d+),(\d+),(\d+),(\d+)", text) == [
        ("0", "0", "160", "120"),
        ("160", "0", "160", "120"),
    ]


def test_dash_manifest_names_the_same_files_and_reads_back(produced: PipelineResult) -> None:
    out = produced.output_dir
    mpd_path = out / "hls/manifest.mpd"
    root = ET.parse(mpd_path).getroot()  # noqa: S314 (our own output, not a stranger's)
    assert root.tag == "{urn:mpeg:dash:schema:mpd:2011}MPD"
    assert root.get("type") == "static"
    sets = root.findall("d:Period/d:AdaptationSet", NS)
    kinds = [s.get("contentType") for s in sets]
    assert kinds == ["video", "audio", "audio", "text", "text"]
    assert [s.get("lang") for s in sets[1:]] == ["en", "fr", "en", "fr"]
    referenced: set[str] = set()
    for representation in root.iter(f"{{{NS['d']}}}Representation"):
        for element in representation.iter():
            for attr in ("sourceURL", "media"):
                if element.get(attr):
                    referenced.add(element.get(attr, ""))
            if element.tag.endswith("BaseURL") and element.text:
                referenced.add(element.text)
        timeline = representation.findall(".//d:S", NS)
        urls = representation.findall(".//d:SegmentURL", NS)
        assert len(timeline) == len(urls)
    hls_files = {p.relative_to(out / "hls").as_posix() for p in (out / "hls").rglob("*")}
    # No second copy of the media: the MPD only names files the HLS playlists use.
    assert referenced <= hls_files
    assert not any(p.suffix == ".m4s" for p in out.rglob("*") if "dash" in p.as_posix())
    # ffprobe's dash demuxer (fine for our own output in a test, never for uploads). It
    # refuses .vtt fragments by its own extension rule, so it reads a copy without the
    # text sets, next to the original (same relative URLs).
    period = root.find("d:Period", NS)
    assert period is not None
    for text_set in [s for s in sets if s.get("contentType") == "text"]:
        period.remove(text_set)
    ET.register_namespace("", NS["d"])
    media_only = mpd_path.with_name("media-only.mpd")
    ET.ElementTree(root).write(media_only, xml_declaration=True, encoding="utf-8")
    info = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams",
         "-protocol_whitelist", "file", str(media_only.absolute())],
        check=True, capture_output=True, timeout=60,
    ).stdout  # fmt: skip
    media_only.unlink()
    types = sorted(s["codec_type"] for s in json.loads(info)["streams"])
    assert types.count("video") == len(produced.renditions)
    assert types.count("audio") == 2


def test_image_subtitles_are_skipped_with_a_note() -> None:
    tracks = (
        SubtitleTrack(0, "hdmv_pgs_subtitle", "en", None, False, False),
        SubtitleTrack(1, "dvd_subtitle", None, None, False, False),
        SubtitleTrack(2, "subrip", "deu", None, False, False),
        SubtitleTrack(3, "eia_608", None, None, False, False),
    )
    planned, notes = plan_subtitles(tracks, CONFIG)
    assert [p.track.index for p in planned] == [2]
    assert [(n["track"], n["outcome"]) for n in notes] == [
        (0, "skipped"),
        (1, "skipped"),
        (3, "skipped"),
    ]
    assert "image-based" in str(notes[0]["reason"])


async def test_a_broken_track_is_dropped_and_the_others_kept(
    produced: PipelineResult, tmp_path: Path
) -> None:
    source = next(produced.output_dir.parent.parent.glob("source.mkv"))
    out = tmp_path / "out"
    (out / "hls/subtitles").mkdir(parents=True)
    good = SubtitleRendition(SubtitleTrack(0, "subrip", "en", None, False, False))
    broken = SubtitleRendition(SubtitleTrack(7, "subrip", "deu", None, False, False))  # absent
    notes: list[dict[str, object]] = []
    kept, _ = await extract_subtitles(source, out, [good, broken], CONFIG, None, notes, 60)
    assert kept == [good]
    assert "Second line" in (out / good.vtt_key).read_text()
    assert [(n["track"], n["outcome"]) for n in notes] == [(7, "dropped")]


def _summary(n: int, i: str, t: str, lra: str, tp: str) -> str:
    """One ebur128 summary as ffmpeg 5.1 prints it at the info level."""
    return (
        f"[Parsed_ebur128_{n} @ 0x{n}] Summary:\n\n  Integrated loudness:\n"
        f"    I:         {i} LUFS\n    Threshold: {t} LUFS\n\n  Loudness range:\n"
        f"    LRA:         {lra} LU\n    Threshold: {t} LUFS\n    LRA low:   {i} LUFS\n"
        f"    LRA high:  {i} LUFS\n\n  True peak:\n    Peak:      {tp} dBFS\n"
    )


def test_loudness_summaries_are_read_by_track_the_last_one_winning() -> None:
    # ffmpeg 5.1 prints a summary of zeros when it probes the graph, before the run.
    stderr = (
        _summary(0, "0.0", "0.0", "0.0", "-inf")
        + _summary(1, "0.0", "0.0", "0.0", "-inf")
        + "Stream mapping:\n  Stream #0:0 (aac) -> ebur128:default\n"
        + _summary(1, "-21.6", "-31.6", "0.2", "-13.8")
        + _summary(0, "-70.0", "0.0", "0.0", "-inf")
    )
    measured = parse_measurements(stderr)
    assert measured[1] == Loudness(integrated=-21.6, true_peak=-13.8, lra=0.2, threshold=-31.6)
    assert measured[0].integrated == -70.0  # silence: the floor, no gain applied
    assert measured[0].true_peak == -70.0
    assert parse_measurements(_summary(0, "-2x", "0.0", "0.0", "-1.0")) == {}


async def test_the_meter_reads_what_loudnorm_reads(tmp_path: Path) -> None:
    """The measuring run's figures are loudnorm's first pass's (to its printed 0.1),
    per track, on a fixed noise (seeded: the same bytes every run)."""
    source = tmp_path / "two.mka"
    run(
        "-f", "lavfi", "-i", "anoisesrc=d=6:c=pink:r=48000:a=0.3:seed=1",
        "-f", "lavfi", "-i", "sine=f=220:r=44100:d=6,volume=0.1",
        "-map", "0", "-map", "1", "-c:a", "aac", str(source),
    )  # fmt: skip
    tracks = (AudioTrack(0, "aac", None, None, True, 1), AudioTrack(1, "aac", None, None, False, 1))
    meter = run("-v", "info", "-i", str(source), *measure_args(tracks, CONFIG)).stderr.decode()
    graph = ";".join(
        f"[0:a:{n}]loudnorm=I=-14:TP=-1:LRA=20:print_format=json[m{n}]" for n in (0, 1)
    )
    loudnorm = run(
        "-v", "info", "-i", str(source), "-filter_complex", graph,
        "-map", "[m0]", "-map", "[m1]", "-f", "null", "-",
    ).stderr.decode()  # fmt: skip
    reports = [json.loads(r) for r in re.findall(r"\{[^{}]*\}", loudnorm)]
    measured = parse_measurements(meter)
    assert sorted(measured) == [0, 1]
    # The meter prints one decimal; the range is computed a little differently (it is
    # only recorded, never used for the gain): within 0.2 LU of loudnorm's.
    for n, report in enumerate(reports):
        assert measured[n].integrated == pytest.approx(float(report["input_i"]), abs=0.15)
        assert measured[n].true_peak == pytest.approx(float(report["input_tp"]), abs=0.15)
        assert measured[n].lra == pytest.approx(float(report["input_lra"]), abs=0.25)


def test_labels_and_chapters_from_a_stranger_are_cleaned() -> None:
    assert clean_label('a"b\r\n#EXT-X-MEDIA:URI="x"') == "ab #EXT-X-MEDIA:URI=x"
    assert clean_label("\x00\x1b[31m ") == "[31m"
    chapters = container_chapters(
        [
            {"start_time": "5", "end_time": "50", "tags": {"TITLE": "B"}},
            {"start_time": "0", "end_time": "9", "tags": {}},
            {"start_time": "nan", "end_time": "1"},
            {"start_time": "30", "end_time": "30"},
        ],
        duration=20.0,
    )
    assert [(c.start, c.end, c.title) for c in chapters] == [(0, 5, "Chapter 2"), (5, 20, "B")]


async def test_subtitles_that_name_files_and_a_font_attachment_read_nothing(
    tmp_path: Path, hit_counter: Any
) -> None:
    """An ASS track whose style and override tags name a font file outside the job (a
    FIFO: opening it for reading would be seen), a font attachment, and an SRT cue with
    a loopback URL: the text is converted, nothing is opened, fetched or written out."""
    import os

    canary = tmp_path / "canary.ttf"
    os.mkfifo(canary)
    font = tmp_path / "font.ttf"
    font.write_bytes(b"\x00\x01\x00\x00FAKEFONT" * 64)
    job = tmp_path / "job"
    job.mkdir()
    srt = SRT.replace("Second line", f"Second line {hit_counter.url}/sub.vtt")
    source = make_source(job, font=str(canary), attachment=font, srt=srt)
    with watch_fifo(canary) as watch:
        result = await process_file(source, job / "work", CONFIG)
    assert not watch.opened.is_set()
    assert watch.surprises == []
    assert hit_counter.hits == []
    assert len(result.subtitles) == 2
    out = result.output_dir
    assert not any(p.suffix == ".ttf" for p in out.rglob("*"))
    assert not any(b"FAKEFONT" in p.read_bytes() for p in out.rglob("*") if p.is_file())
    assert f"{hit_counter.url}/sub.vtt" in (out / result.subtitles[0].vtt_key).read_text()


@pytest.mark.parametrize("name", ["a.srt", "b.ass", "c.vtt"])
async def test_a_bare_subtitle_file_is_not_a_video(tmp_path: Path, name: str) -> None:
    from videoforge.processor.pipeline import MediaRejected

    source = tmp_path / "upload.mp4"
    text = {"a.srt": SRT, "b.ass": ASS.format(font="Arial"), "c.vtt": "WEBVTT\n\n" + SRT}[name]
    source.write_text(text)
    with pytest.raises(MediaRejected) as caught:
        await process_file(source, tmp_path / "work", CONFIG)
    assert caught.value.code == "unsupported_format"


async def test_every_call_on_a_source_with_tracks_is_guarded(
    tmp_path: Path, assert_guarded: Any
) -> None:
    source = make_source(tmp_path)
    seen: list[list[str]] = []
    remove = runner.observe_spawns(seen.append)
    try:
        await process_file(source, tmp_path / "job", CONFIG)
    finally:
        remove()
    # probe, loudness measurement, ladder, subtitles, stills
    assert [Path(a[0]).name for a in seen] == ["ffprobe", *["ffmpeg"] * 4]
    for argv in seen:
        assert_guarded(argv)
    probe, measure, ladder, subtitles, _ = seen
    assert "-show_chapters" in probe
    assert "-vn" in measure
    assert "-dn" in measure
    # The ladder: audio encoded once for both tracks, subtitles and data left out.
    assert ladder.count("aac") == 1
    assert "-sn" in ladder
    assert "-dn" in ladder
    # Subtitles: only the two text streams are mapped, nothing else is.
    maps = [subtitles[i + 1] for i, token in enumerate(subtitles) if token == "-map"]
    assert maps == ["0:s:0", "0:s:1"]
    assert subtitles.count("-dn") == 2
    assert subtitles.count("-vn") == 2
    # ... and only the text subtitle decoders may be opened, even while probing.
    at = subtitles.index("-codec_whitelist")
    assert subtitles[at + 1] == "ass,mov_text,srt,ssa,subrip,webvtt"
    assert subtitles[at + 2] == "-i"
    assert not any("-codec_whitelist" in argv for argv in (probe, measure, ladder))
    assert not any(token.startswith("-sub_charenc") for argv in seen for token in argv)


@pytest.mark.parametrize(("container", "codec"), [("mp4", "mov_text"), ("mkv", "webvtt")])
async def test_mov_text_and_webvtt_tracks_are_extracted(
    tmp_path: Path, container: str, codec: str
) -> None:
    (tmp_path / "a.srt").write_text(SRT)
    source = tmp_path / f"source.{container}"
    run(
        "-loglevel", "error",
        "-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=2",
        "-i", str(tmp_path / "a.srt"), "-map", "0:v", "-map", "1",
        "-c:v", "libx264", "-preset", "ultrafast", "-c:s", codec,
        "-metadata:s:s:0", "language=spa", str(source),
    )  # fmt: skip
    result = await process_file(source, tmp_path / "job", CONFIG)
    assert [(s.codec, s.language) for s in result.subtitles] == [(codec, "es")]
    text = (result.output_dir / result.subtitles[0].vtt_key).read_text()
    assert "Second line" in text
    assert result.audio_tracks == []  # no audio at all: no group, no measurement
    master = m3u8.load(str(result.output_dir / result.master_playlist))
    assert [m.type for m in master.media] == ["SUBTITLES"]
    assert master.playlists[0].stream_info.audio is None
