"""ffprobe JSON -> metadata and verdict (prober.metadata), fed with captured JSON.

The fixtures under fixtures/ffprobe/ were captured once with ffprobe 5.1 from the files in
../shared/samples (``-show_format -show_streams -show_chapters -show_error``), with the
all-zero disposition flags trimmed to keep them small. The expected values below come from
the samples' PROVENANCE notes and from ``ffmpeg -i`` / packet listings read by hand.
"""

from __future__ import annotations

import copy
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prober.ffprobe_log import parse_log_summary
from prober.metadata import assess, base_metadata, container_format, real_video_streams
from prober.packets import PacketSummary, StreamPackets
from prober.probe import _ebml_doctype

FIXTURES = Path(__file__).parent / "fixtures" / "ffprobe"

FILE_INFO_KEYS = {"format", "size", "duration", "resolution", "fps", "codec", "audio_codec"}
ALL_KEYS = FILE_INFO_KEYS | {
    "bitrate",
    "width",
    "height",
    "rotation",
    "video",
    "audio_tracks",
    "subtitles",
    "data_streams",
    "attachments",
    "chapters",
    "tags",
    "creation_time",
    "title",
    "encoder",
    "format_long_name",
    "extension",
    "warnings",
    "ffprobe_version",
    "moov_before_mdat",
}


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


Packets = tuple[float | None, dict[int, int], bool]


def packets(end: float | None, counts: dict[int, int], *, full: bool = False) -> Packets:
    """Packets ending at ``end`` s, evenly spread from 0 (``full``: every packet of the
    file; else the tail after the last keyframe)."""
    return end, counts, full


def summary(raw: dict[str, Any], given: Packets) -> PacketSummary:
    end, counts, full = given
    bases = {int(s["index"]): Fraction(s.get("time_base") or "1/1000") for s in raw["streams"]}
    streams = {}
    for index, count in counts.items():
        found = StreamPackets(count=count)
        if end is not None and count:
            ticks = round(end / bases.get(index, Fraction(1, 1000)))
            step = ticks // count
            found = StreamPackets(count=count, first=0, last=ticks - step, end=ticks,
                                  durations=step * count, timed=count)
        streams[index] = found
    return PacketSummary(streams, full)


def run(name: str, filename: str | None = None, **kwargs: Any) -> tuple[dict[str, Any], str | None]:
    raw = load(name)
    if kwargs.get("packets") is not None:
        kwargs["packets"] = summary(raw, kwargs["packets"])
    size = int(raw.get("format", {}).get("size") or 1000)
    outcome = assess(
        raw, filename=filename or raw["format"]["filename"], size=size, version="5.1", **kwargs
    )
    json.dumps(outcome.metadata, allow_nan=False)  # JSON-serialisable, no NaN
    return outcome.metadata, outcome.error


def test_every_key_is_present_even_for_a_failure() -> None:
    meta = base_metadata("clip.MP4", 0, "5.1")
    assert set(meta) >= ALL_KEYS
    assert meta["extension"] == "mp4"
    assert meta["size"] == 0
    assert meta["audio_codec"] is None
    full, _ = run("bbb_chapters")
    assert set(full) >= ALL_KEYS
    assert full["ffprobe_version"] == "5.1"


def test_rotation_swaps_the_displayed_resolution() -> None:
    # PROVENANCE: display matrix rotation -90, coded 1920x1080; 6-channel AAC.
    meta, error = run("rotate-buck-bunny", packets=packets(2.005, {0: 40, 1: 99}))
    assert error is None
    assert meta["resolution"] == "1080x1920"
    assert (meta["width"], meta["height"]) == (1080, 1920)
    assert (meta["video"]["width"], meta["video"]["height"]) == (1920, 1080)
    assert meta["rotation"] == -90
    assert meta["format"] == "mp4"
    assert meta["audio_codec"] == "aac"
    track = meta["audio_tracks"][0]
    assert (track["channels"], track["channel_layout"], track["sample_rate"]) == (6, "5.1", 48000)
    assert meta["creation_time"] == "2026-03-19T13:10:43Z"
    assert meta["duration"] == pytest.approx(2.005333)


def test_small_rotated_clip() -> None:
    meta, error = run("video_rotation_90", packets=packets(0.0417, {0: 1}))
    assert error is None
    assert meta["resolution"] == "60x100"
    assert meta["rotation"] == -90


@pytest.mark.parametrize(
    ("tag", "rotation", "resolution"),
    [
        ("90", -90, "1080x1920"),
        ("270", 90, "1080x1920"),
        ("180", 180, "1920x1080"),
    ],
)
def test_rotate_tag_of_older_ffprobe(tag: str, rotation: int, resolution: str) -> None:
    raw = load("sar_2x1")
    stream = raw["streams"][0]
    stream.update(width=1920, height=1080, tags={"rotate": tag}, sample_aspect_ratio="1:1")
    meta = assess(raw, filename="a.mp4", size=500280).metadata
    assert meta["rotation"] == rotation
    assert meta["resolution"] == resolution


def test_variable_frame_rate() -> None:
    # PROVENANCE: r_frame_rate 57600/1, average about 7.2 fps; no audio.
    meta, error = run("cursed-vfr", packets=packets(8.7255, {0: 1}))
    assert error is None
    assert meta["video"]["variable_frame_rate"] is True
    assert meta["fps"] == pytest.approx(7.22, abs=0.01)
    assert meta["audio_codec"] is None
    assert meta["audio_tracks"] == []


def test_fps_falls_back_to_r_frame_rate() -> None:
    # PROVENANCE: ASF WMV3 + WMA2, avg_frame_rate 0/0 (ffmpeg -i: "15 tbr").
    meta, error = run("xbox", packets=packets(95.488, {0: 17, 1: 45}))
    assert error is None
    assert meta["format"] == "wmv"
    assert meta["fps"] == 15.0
    assert meta["video"]["variable_frame_rate"] is False
    assert (meta["codec"], meta["audio_codec"]) == ("wmv3", "wmav2")
    assert meta["duration"] == pytest.approx(95.466)
    assert meta["tags"]["artist"] == "Keith Boyd"


def test_flv_vp6() -> None:
    meta, error = run("grampa-laughing", packets=packets(7.951, {1: 1}))
    assert error is None
    assert (meta["format"], meta["codec"], meta["audio_codec"]) == ("flv", "vp6f", "mp3")
    assert meta["duration"] == pytest.approx(7.91)


def test_matroska_without_any_duration_uses_the_last_packet() -> None:
    # Packet listing by hand: last video packet pts 35196 ms + 33 ms.
    meta, error = run("annex-b-avc", packets=packets(35.229, {0: 38}))
    assert error is None
    assert meta["duration"] == pytest.approx(35.229)
    assert meta["duration_source"] == "packets"
    assert meta["format"] == "mkv"  # H.264: not WebM whatever the DocType says
    assert meta["bitrate"] == round(1318464 * 8 / 35.229)


def test_no_duration_and_no_packets_is_not_ready() -> None:
    _, error = run("annex-b-avc", packets=None)
    assert error is not None


def test_webm_without_container_duration() -> None:
    meta, error = run("ebml-sample", packets=packets(0.7, {0: 60, 1: 90}))
    assert error is None
    assert meta["format"] == "webm"
    # ffmpeg -i: "start: -0.007000" (Opus pre-skip); last packet ends at 0.700 s.
    assert meta["duration"] == pytest.approx(0.707)
    assert meta["encoder"] == "GStreamer matroskamux version 1.14.1"
    assert meta["creation_time"] == "2019-08-31T02:31:33Z"
    assert meta["audio_tracks"][0]["codec"] == "opus"


def test_webm_versus_mkv() -> None:
    meta, _ = run("bbb_input", packets=packets(10.0, {0: 10}))
    assert meta["format"] == "webm"
    meta, _ = run("bbb_input", packets=packets(10.0, {0: 10}), doctype="matroska")
    assert meta["format"] == "mkv"
    meta, _ = run("bbb_input", filename="renamed.mp4", packets=packets(10.0, {0: 10}))
    assert meta["format"] == "webm"
    assert meta["extension"] == "mp4"
    meta, _ = run("test-mkv-multi", filename="named.mp4", packets=packets(10.0, {0: 10}))
    assert meta["format"] == "mkv"  # a Matroska file named .mp4 is mkv


def test_subtitles_and_uppercase_matroska_tags() -> None:
    meta, error = run("test-mkv-multi", packets=packets(10.026, {0: 3, 1: 5}))
    assert error is None
    subs = meta["subtitles"]
    assert [(s["codec"], s["language"], s["title"]) for s in subs] == [
        ("subrip", "eng", "English SRT"),
        ("ass", "spa", "Spanish ASS"),
    ]
    assert meta["encoder"] == "Lavf62.3.100"
    assert meta["video"]["duration"] == pytest.approx(10.021)  # from the DURATION tag


def test_chapters_data_stream_title_and_tags() -> None:
    meta, error = run("bbb_chapters", packets=packets(10.0, {0: 20, 1: 27}))
    assert error is None
    assert meta["chapters"] == [
        {"start": 0.0, "end": 3.0, "title": "Chapter 1"},
        {"start": 3.0, "end": 6.0, "title": "Chapter 2"},
        {"start": 6.0, "end": 10.0, "title": "Chapter 3"},
    ]
    assert [d["codec"] for d in meta["data_streams"]] == ["bin_data"]
    assert meta["title"] == "Test Movie"
    assert meta["tags"]["artist"] == "Test Artist"
    assert "title" not in meta["tags"] and "encoder" not in meta["tags"]
    assert meta["bitrate"] == 1008837
    assert meta["fps"] == 60.0


def test_sample_aspect_ratio() -> None:
    meta, _ = run("sar_2x1", packets=packets(5.0, {0: 150}))
    assert meta["video"]["sample_aspect_ratio"] == "2:1"
    assert meta["video"]["display_aspect_ratio"] == "32:9"
    assert meta["resolution"] == "1280x360"  # what a player shows: the width stretched 2:1
    assert (meta["width"], meta["height"]) == (1280, 360)
    assert (meta["coded_width"], meta["coded_height"]) == (640, 360)


def test_audio_only_and_empty_tracks() -> None:
    meta, error = run("multiple-aac-tracks")
    assert error == "no video stream"
    assert len(meta["audio_tracks"]) == 2
    assert meta["audio_codec"] == "aac"
    _, error = run("tiny-empty-tracks")
    assert error == "no video stream"


def test_truncated_file_keeps_what_it_holds() -> None:
    # Packet listing by hand: 6 packets, the last at pts 7408 + 592 (time base 1/16000).
    meta, error = run("annex-b", packets=packets(0.5, {0: 6}, full=True),
                      log="[mov,mp4,m4a,3gp,3g2,mj2 @ 0x1] stream 0, offset 0x18855: partial file")
    assert error is None
    assert meta["duration"] == pytest.approx(0.5)
    assert any("35.229" in w and "truncated" in w for w in meta["warnings"])
    assert meta["bitrate"] == 100000 * 8 * 2


def test_truncated_file_without_video_data_fails() -> None:
    _, error = run("invalid_userdata", packets=packets(None, {}, full=True))
    assert error is not None and error.startswith("truncated")
    assert "231.338" in error


def test_video_stream_without_frames_fails() -> None:
    _, error = run("tiny-mpeg4", packets=packets(None, {}, full=True))
    assert error == "no video frames"


def test_small_gap_is_not_truncation() -> None:
    meta, _ = run("xbox", packets=packets(95.2, {1: 3}))
    assert meta["duration"] == pytest.approx(95.466)
    assert not any("truncated" in w for w in meta["warnings"])


@pytest.mark.parametrize(
    ("format_name", "brand", "extension", "expected"),
    [
        ("mov,mp4,m4a,3gp,3g2,mj2", "qt  ", "mov", "mov"),
        ("mov,mp4,m4a,3gp,3g2,mj2", "qt  ", "mp4", "mov"),
        ("mov,mp4,m4a,3gp,3g2,mj2", "M4V ", "mp4", "m4v"),
        ("mov,mp4,m4a,3gp,3g2,mj2", "isom", "m4v", "m4v"),
        ("mov,mp4,m4a,3gp,3g2,mj2", "isom", "mov", "mp4"),
        ("mov,mp4,m4a,3gp,3g2,mj2", None, "mov", "mov"),
        ("mov,mp4,m4a,3gp,3g2,mj2", None, "mp4", "mp4"),
        ("avi", None, "avi", "avi"),
        ("asf", None, "wmv", "wmv"),
        ("flv", None, "flv", "flv"),
        ("mpegts", None, "ts", "ts"),
    ],
)
def test_container_format(
    format_name: str, brand: str | None, extension: str, expected: str
) -> None:
    fmt = {"format_name": format_name, "tags": {"major_brand": brand} if brand else {}}
    assert container_format(fmt, [], extension) == expected


def test_matroska_codecs_decide_webm() -> None:
    fmt = {"format_name": "matroska,webm"}
    vp9 = [
        {"codec_type": "video", "codec_name": "vp9"},
        {"codec_type": "audio", "codec_name": "opus"},
    ]
    h264 = [{"codec_type": "video", "codec_name": "h264"}]
    assert container_format(fmt, vp9, "mkv") == "webm"
    assert container_format(fmt, vp9, "webm", "webm") == "webm"
    assert container_format(fmt, vp9, "webm", "matroska") == "mkv"
    assert container_format(fmt, h264, "webm", "webm") == "mkv"
    assert container_format({}, [], "mp4") is None


def _image(format_name: str, codec: str, **stream: Any) -> dict[str, Any]:
    return {
        "format": {"format_name": format_name},
        "streams": [{"index": 0, "codec_type": "video", "codec_name": codec, **stream}],
    }


@pytest.mark.parametrize(
    "raw",
    [
        _image("png_pipe", "png", width=64, height=64),
        _image("image2", "mjpeg", width=64, height=64),
        _image("gif", "gif", nb_frames="1"),
        _image("mov,mp4,m4a,3gp,3g2,mj2", "mjpeg", nb_frames="1"),
    ],
)
def test_still_images_are_not_videos(raw: dict[str, Any]) -> None:
    assert real_video_streams(raw) == []
    assert assess(raw, filename="x.mp4", size=10).error == "still image, not a video"


def test_motion_jpeg_and_animations_are_videos() -> None:
    assert real_video_streams(_image("avi", "mjpeg", nb_frames="25"))
    assert real_video_streams(_image("gif", "gif", nb_frames="5"))


def test_cover_art_is_not_a_video() -> None:
    raw = {
        "format": {"format_name": "mp3", "duration": "1.04"},
        "streams": [
            {"index": 0, "codec_type": "audio", "codec_name": "mp3"},
            {
                "index": 1,
                "codec_type": "video",
                "codec_name": "mjpeg",
                "disposition": {"attached_pic": 1},
            },
        ],
    }
    assert assess(raw, filename="song.mp3", size=10).error.startswith(  # type: ignore[union-attr]
        "unsupported container")  # an MP3 is not one of the accepted containers
    raw["format"]["format_name"] = "mov,mp4,m4a,3gp,3g2,mj2"  # an M4A with cover art
    assert assess(raw, filename="song.m4a", size=10).error == "no video stream"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2019-08-31T02:31:33.000000Z", "2019-08-31T02:31:33Z"),
        ("2020-01-01 10:00:00", "2020-01-01T10:00:00Z"),
        ("2020-01-01T12:00:00+0200", "2020-01-01T10:00:00Z"),
        ("2020-01-01T12:00:00.250000Z", "2020-01-01T12:00:00.250Z"),
        ("1970-01-01T00:00:00.000000Z", None),
        ("1904-01-01T00:00:00.000000Z", None),
        ("yesterday", None),
    ],
)
def test_creation_time_is_utc(value: str, expected: str | None) -> None:
    raw = copy.deepcopy(load("sar_2x1"))
    raw["format"]["tags"]["creation_time"] = value
    meta = assess(raw, filename="a.mp4", size=500280).metadata
    assert meta["creation_time"] == expected
    if value == "yesterday":
        assert meta["tags"]["creation_time"] == "yesterday"


def test_summary_log_of_a_file_ffprobe_will_not_print() -> None:
    # sandwich-av-mp4a.40.5.mov: ffprobe exits 1 before printing JSON (HE-AAC v2 decoder).
    log = load("sandwich-av-mp4a.40.5-log")["log"]
    raw = parse_log_summary(log)
    assert raw is not None
    outcome = assess(raw, filename="sandwich-av-mp4a.40.5.mov", size=150314)
    meta, error = outcome.metadata, outcome.error
    assert error is None
    assert meta["format"] == "mov"
    assert (meta["codec"], meta["resolution"], meta["audio_codec"]) == ("h264", "320x180", "aac")
    assert meta["duration"] == pytest.approx(5.01)
    assert meta["fps"] == pytest.approx(23.98)
    assert meta["video"]["profile"] == "High"
    assert meta["audio_tracks"][0]["sample_rate"] == 96000
    assert [d["codec_tag"] for d in meta["data_streams"]] == [None]
    assert parse_log_summary("no summary here") is None


def test_summary_log_rotation() -> None:
    log = (
        "Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'file:r.mp4':\n"
        "  Duration: 00:00:02.01, start: 0.000000, bitrate: 2696 kb/s\n"
        "  Stream #0:0[0x1](eng): Video: h264 (High) (avc1 / 0x31637661), yuv420p(tv, bt709,"
        " progressive), 1920x1080, 1641 kb/s, 24 fps, 24 tbr, 57600 tbn (default)\n"
        "    Side data:\n"
        "      displaymatrix: rotation of -90.00 degrees\n"
        "  Stream #0:1[0x2](eng): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, 5.1, fltp,"
        " 1152 kb/s (default)\n"
    )
    raw = parse_log_summary(log)
    assert raw is not None
    meta = assess(raw, filename="r.mp4", size=675899).metadata
    assert meta["resolution"] == "1080x1920"
    assert meta["audio_tracks"][0]["channels"] == 6


def test_ebml_doctype() -> None:
    webm = bytes.fromhex("1a45dfa30100000000000010428285") + b"webm\x00" + b"\x42\x87"
    assert _ebml_doctype(webm) == "webm"
    mkv = bytes.fromhex("1a45dfa3a34286810142f7810142f2810442f381084282886d6174726f736b61")
    assert _ebml_doctype(mkv) == "matroska"
    assert _ebml_doctype(b"\x00\x00\x00\x20ftypisom") is None


_scalars = st.one_of(
    st.none(),
    st.integers(-5, 10**6),
    st.text(max_size=8),
    st.sampled_from(["0/0", "30000/1001", "N/A", "1:1", "0:1", "-90"]),
)
_streams = st.fixed_dictionaries(
    {
        "index": st.integers(0, 5),
        "codec_type": st.sampled_from(["video", "audio", "subtitle", "data", "attachment", None]),
    },
    optional={
        k: _scalars
        for k in (
            "codec_name",
            "width",
            "height",
            "avg_frame_rate",
            "r_frame_rate",
            "duration",
            "bit_rate",
            "nb_frames",
            "sample_rate",
            "channels",
            "sample_aspect_ratio",
        )
    },
)


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e400"])
def test_values_no_json_can_hold_are_left_out(value: str) -> None:
    """ffprobe prints "N/A" for unknowns, but a hostile tag or header could carry these."""
    raw = {"format": {"format_name": "avi", "duration": value, "start_time": value},
           "streams": [{"index": 0, "codec_type": "video", "time_base": "1/1000",
                        "duration": value, "avg_frame_rate": value, "width": 2, "height": 2}],
           "chapters": [{"start_time": value, "end_time": value}]}
    outcome = assess(raw, filename="f.avi", size=10)
    json.dumps(outcome.metadata, allow_nan=False)
    assert outcome.metadata["duration"] is None


@settings(max_examples=200, deadline=None)
@given(
    streams=st.lists(_streams, max_size=4),
    duration=_scalars,
    format_name=st.sampled_from(["mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "avi", "", "x"]),
    end=st.one_of(st.none(), st.floats(0, 1e5)),
)
def test_assess_never_raises(
    streams: list[dict[str, Any]], duration: Any, format_name: str, end: float | None
) -> None:
    raw = {"format": {"format_name": format_name, "duration": duration}, "streams": streams}
    given = summary({"streams": [s for s in streams if isinstance(s.get("index"), int)]},
                    packets(end, {0: 1} if end else {}, full=True))
    outcome = assess(raw, filename="f.mp4", size=123, packets=given)
    json.dumps(outcome.metadata, allow_nan=False)
    if outcome.error is None:
        meta = outcome.metadata
        assert meta["video"] is not None
        if not meta["duration"]:  # ready without a length: only a single frame, said so
            assert meta["nb_frames"] == 1, meta
            assert any(w.startswith("duration unknown") for w in meta["warnings"])
        else:
            assert meta["duration"] > 0
