"""probe_file with the real ffprobe over every file in ../shared/samples, plus generated clips
for the eight containers and the bad inputs.

Expected values come from an independent read, never from our own output: the notes in
PROVENANCE.md, ``ffmpeg -i`` summaries, ``ffprobe -show_entries packet=…`` listings read by
hand, and the file headers themselves (``test_the_premises`` re-reads those here).
"""

from __future__ import annotations

import json
import random
import shutil
import struct
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from prober.ffprobe import (
    Completed,
    FFprobeFailed,
    default_runner,
    ffprobe_version,
    run_probe,
)
from prober.probe import ProbeResult, probe_file

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"


@dataclass(frozen=True)
class Expect:
    error: str | None = None  # None: ready; a value ending in "…" is a prefix
    fields: dict[str, Any] = field(default_factory=dict)  # "a.b" paths; "name#" is a length
    duration: tuple[float, float] | None = None


READY_MP4 = {"format": "mp4"}
EXPECTED: dict[str, Expect] = {
    # Packet listing: last video packet pts 35196 ms + 33 ms; no duration in the header.
    "annex-b-avc.mkv": Expect(
        fields={
            "format": "mkv",
            "codec": "h264",
            "audio_codec": None,
            "resolution": "1920x1080",
            "duration_source": "packets",
        },
        duration=(35.2, 35.26),
    ),
    # mdat ends at 91712, moov claims 35.229 s; packets end at (7408 + 592) / 16000 s.
    "annex-b.mp4": Expect(
        fields={**READY_MP4, "codec": "h264", "resolution": "1920x1080"}, duration=(0.45, 0.55)
    ),
    # ffmpeg -i: 3 chapters, Data: bin_data, title "Test Movie", 1280x720 60 fps, 10.00 s.
    "bbb_chapters.mp4": Expect(
        fields={
            **READY_MP4,
            "codec": "h264",
            "audio_codec": "aac",
            "resolution": "1280x720",
            "fps": 60.0,
            "chapters#": 3,
            "data_streams#": 1,
            "title": "Test Movie",
            "chapters.1.title": "Chapter 2",
        },
        duration=(9.99, 10.01),
    ),
    # PROVENANCE: VP9 + Opus, 10 s; EBML DocType "webm".
    "bbb_input.webm": Expect(
        fields={
            "format": "webm",
            "codec": "vp9",
            "audio_codec": "opus",
            "resolution": "1280x720",
            "fps": 60.0,
        },
        duration=(9.99, 10.03),
    ),
    # PROVENANCE: broken index, ffprobe fails ("contradictionary STSC and STCO").
    "chunk_out_of_range.mp4": Expect(error="not a media file: …"),
    # PROVENANCE: r_frame_rate 57600/1, average about 7.2 fps; no audio.
    "cursed-vfr.mp4": Expect(
        fields={
            **READY_MP4,
            "codec": "h264",
            "audio_codec": None,
            "resolution": "3026x1386",
            "fps": 7.22,
            "video.variable_frame_rate": True,
        },
        duration=(8.7, 8.75),
    ),
    # PROVENANCE: VP8 + Opus, no duration; packets end at 0.700 s, ffmpeg -i start -0.007.
    "ebml-sample.webm": Expect(
        fields={"format": "webm", "codec": "vp8", "audio_codec": "opus", "resolution": "320x240"},
        duration=(0.66, 0.72),
    ),
    # PROVENANCE: VP8 + Vorbis, 44.6 s.
    "echo-hereweare.webm": Expect(
        fields={"format": "webm", "codec": "vp8", "audio_codec": "vorbis", "resolution": "480x270"},
        duration=(44.6, 44.7),
    ),
    # PROVENANCE: FLV VP6F + MP3; ffmpeg -i: 352x288, Duration 00:00:07.91 (onMetaData),
    # but ffmpeg -i grampa-laughing.flv -f null - decodes 69 frames to time=00:00:08.07:
    # the video's last frame (pts 7.95 s) outlasts the header's duration.
    "grampa-laughing.flv": Expect(
        fields={"format": "flv", "codec": "vp6f", "audio_codec": "mp3", "resolution": "352x288",
                "nb_frames": 69},
        duration=(8.0, 8.1),
    ),
    # ftyp + moov only (no mdat box at all); the header claims 231 s.
    "invalid_userdata.mp4": Expect(error="truncated: …"),
    # PROVENANCE: audio only, two AAC tracks.
    "multiple-aac-tracks.mp4": Expect(
        error="no video stream", fields={"audio_tracks#": 2, "audio_codec": "aac"}
    ),
    # PROVENANCE: display matrix -90, coded 1920x1080, 6-channel AAC.
    "rotate-buck-bunny.mp4": Expect(
        fields={
            **READY_MP4,
            "resolution": "1080x1920",
            "rotation": -90,
            "video.width": 1920,
            "audio_tracks.0.channels": 6,
        },
        duration=(2.0, 2.01),
    ),
    # PROVENANCE: Apple MOV (ftyp "qt  "), ffprobe -show_streams exits 1; ffmpeg -i: h264
    # 320x180 23.98 fps, aac, Duration 00:00:05.01.
    "sandwich-av-mp4a.40.5.mov": Expect(
        fields={
            "format": "mov",
            "codec": "h264",
            "audio_codec": "aac",
            "resolution": "320x180",
            "fps": 23.98,
        },
        duration=(5.0, 5.02),
    ),
    # PROVENANCE: SAR 2:1, no audio; ffmpeg -i: 640x360 [SAR 2:1 DAR 32:9], 30 fps, 5.00 s:
    # a player shows 1280x360 (DAR 32:9), from 640x360 stored.
    "sar_2x1.mp4": Expect(
        fields={
            **READY_MP4,
            "resolution": "1280x360",
            "width": 1280,
            "coded_width": 640,
            "coded_height": 360,
            "audio_codec": None,
            "video.sample_aspect_ratio": "2:1",
            "fps": 30.0,
        },
        duration=(4.99, 5.01),
    ),
    # PROVENANCE: H.264 + AAC + SRT + ASS; ffmpeg -i: 1280x720 25 fps, 00:00:10.02.
    "test-mkv-multi.mkv": Expect(
        fields={
            "format": "mkv",
            "codec": "h264",
            "audio_codec": "aac",
            "resolution": "1280x720",
            "fps": 25.0,
            "subtitles#": 2,
            "subtitles.0.codec": "subrip",
            "subtitles.1.codec": "ass",
        },
        duration=(10.0, 10.05),
    ),
    "tiny-audio-only.mp4": Expect(error="no video stream"),  # PROVENANCE: one AAC track
    "tiny-broken.flv": Expect(error="not a media file: …"),  # PROVENANCE: cannot open it
    "tiny-empty-tracks.mp4": Expect(error="no video stream"),  # PROVENANCE: no streams
    # avih dwTotalFrames = 0 and an empty movi list: a stream is declared, no frame stored.
    "tiny-mpeg4.avi": Expect(error="no video frames"),
    # ASF Data Object with 0 data packets.
    "tiny-msmpeg4.wmv": Expect(error="no video frames"),
    # PROVENANCE: AV1 in MP4, 64x64; ffmpeg -i: 00:00:00.04.
    "tiny_av1.mp4": Expect(
        fields={**READY_MP4, "codec": "av1", "resolution": "64x64"}, duration=(0.03, 0.05)
    ),
    # PROVENANCE: HEVC + AAC; ffmpeg -i: 1920x1080 30 fps, 00:00:10.00.
    "video-h265.mp4": Expect(
        fields={
            **READY_MP4,
            "codec": "hevc",
            "audio_codec": "aac",
            "resolution": "1920x1080",
            "fps": 30.0,
        },
        duration=(9.99, 10.01),
    ),
    # PROVENANCE: rotation -90, 100x60 coded.
    "video_rotation_90.mp4": Expect(
        fields={**READY_MP4, "resolution": "60x100", "rotation": -90, "video.height": 60},
        duration=(0.03, 0.05),
    ),
    # PROVENANCE: WMV3 + WMA2, avg_frame_rate 0/0; ffmpeg -i: 15 tbr, 00:01:35.47; but
    # ffmpeg -i xbox.wmv -map 0:v -f null - decodes 1413 frames in 95.46 s: 14.8 fps.
    "xbox.wmv": Expect(
        fields={
            "format": "wmv",
            "codec": "wmv3",
            "audio_codec": "wmav2",
            "resolution": "320x240",
            "fps": 14.8,
            "nb_frames": 1413,
        },
        duration=(95.4, 95.5),
    ),
}


@pytest.fixture(scope="session")
def ffprobe() -> str:
    found = shutil.which("ffprobe")
    if not found:
        pytest.fail("ffprobe is missing: apt-get install ffmpeg")
    return found


@pytest.fixture(scope="session")
def samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.fail(f"sample files are missing: expected them in {SAMPLES}")
    return SAMPLES


def lookup(meta: dict[str, Any], path: str) -> Any:
    value: Any = meta
    for part in path.rstrip("#").split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return len(value) if path.endswith("#") else value


def check(result: ProbeResult, expect: Expect) -> None:
    meta = result.metadata
    assert (result.code is None) == result.ok  # a code exactly when failed
    if expect.error is None:
        assert result.ok, f"expected ready, got {result.error!r}"
        assert result.error is None
        assert meta["duration"] and meta["duration"] > 0
        assert result.raw is not None
    elif expect.error.endswith("…"):
        assert not result.ok
        assert result.error and result.error.startswith(expect.error[:-1]), result.error
    else:
        assert (result.ok, result.error) == (False, expect.error)
    for key, wanted in expect.fields.items():
        got = lookup(meta, key)
        if isinstance(wanted, float):
            assert got == pytest.approx(wanted, abs=0.01), key
        else:
            assert got == wanted, key
    if expect.duration:
        low, high = expect.duration
        assert low <= meta["duration"] <= high
    assert meta["size"] > 0 or expect.error == "empty file"
    assert set(meta) >= {
        "format",
        "size",
        "duration",
        "resolution",
        "fps",
        "codec",
        "audio_codec",
        "extension",
        "warnings",
        "ffprobe_version",
    }


def test_the_table_covers_every_sample(samples: Path) -> None:
    names = {p.name for p in samples.iterdir() if p.name != "PROVENANCE.md"}
    assert names == set(EXPECTED)
    assert len(names) == 24


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample(name: str, samples: Path, ffprobe: str) -> None:
    result = probe_file(samples / name, ffprobe=ffprobe, timeout=30, version="5.1-test")
    check(result, EXPECTED[name])
    assert result.metadata["ffprobe_version"] == "5.1-test"


# ffprobe processes per file: two (header and every packet together, and beside it the
# guessed decode of the video's first packets, which every decoded sample here uses)
# unless noted.
NOT_DECODED = ("chunk_out_of_range.mp4", "invalid_userdata.mp4", "multiple-aac-tracks.mp4",
               "tiny-audio-only.mp4", "tiny-broken.flv", "tiny-empty-tracks.mp4",
               "tiny-mpeg4.avi", "tiny-msmpeg4.wmv")  # failed from the listing alone
RUNS = {
    "sandwich-av-mp4a.40.5.mov": 3,  # no JSON at all: ffprobe's summary log instead
    # cut: the tail is decoded too, from a seek past the end (it lands on no keyframe
    # here) and then from the last keyframe the listing saw
    "annex-b.mp4": 4,
}


class Counting:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, args: Sequence[str], timeout: float, *,
                 on_stdout: Callable[[bytes], None] | None = None) -> Completed:
        self.calls.append(list(args))
        return default_runner(args, timeout, on_stdout=on_stdout)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_ffprobe_runs_per_sample(name: str, samples: Path, ffprobe: str) -> None:
    runner = Counting()
    result = probe_file(samples / name, ffprobe=ffprobe, timeout=30, runner=runner,
                        version="5.1-test")
    assert len(runner.calls) == RUNS.get(name, 2), runner.calls
    decodes = [c for c in runner.calls if "-count_frames" in c]
    assert len(decodes) == 1  # the guess, the only head decode
    assert result.stages.get("head_guess") == (
        None if name in NOT_DECODED or name.startswith("sandwich") else "used")


def _count_packets(path: Path, ffprobe: str) -> dict[int, int]:
    """ffprobe's own count of the packets in each stream (-count_packets), an independent
    read of the file."""
    done = subprocess.run([ffprobe, "-v", "error", "-count_packets", "-show_entries",
                           "stream=index,nb_read_packets", "-of", "csv=p=0", str(path)],
                          capture_output=True, text=True, timeout=60)
    counts: dict[int, int] = {}
    for line in done.stdout.splitlines():  # (side data, if any, follows on the same line)
        index, count = [*line.split(","), ""][:2]
        if index.isdigit() and count.isdigit():
            counts[int(index)] = int(count)
    return counts


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_packets_read_with_the_header_change_nothing_in_it(
    name: str, samples: Path, ffprobe: str
) -> None:
    """The premise of reading both in one run: ffprobe prints the same format, streams and
    chapters with the packet listing as without it, and its packets are all counted."""
    path = samples / name
    plain = subprocess.run([ffprobe, "-v", "error", "-of", "json", "-show_format",
                            "-show_streams", "-show_chapters", f"file:{path}"],
                           capture_output=True, text=True, timeout=60)
    try:
        both = run_probe(path, ffprobe=ffprobe)
    except FFprobeFailed:
        assert plain.returncode != 0
        return
    header = json.loads(plain.stdout)
    for stream in header.get("streams", []):
        stream.pop("nb_read_packets", None)
    assert both.data == {"chapters": [], **header}
    counted = {i: s.count for i, s in both.packets.streams.items() if s.count}
    discarded = _discarded(path, ffprobe)
    assert {i: n - discarded.get(i, 0) for i, n in _count_packets(path, ffprobe).items()
            if n - discarded.get(i, 0)} == counted


def _discarded(path: Path, ffprobe: str) -> dict[int, int]:
    """Packets ffprobe flags discard (D), per stream: no player shows them."""
    done = subprocess.run([ffprobe, "-v", "error", "-show_entries",
                           "packet=stream_index,flags", "-of", "csv=p=0", str(path)],
                          capture_output=True, text=True, timeout=60)
    found: dict[int, int] = {}
    for line in done.stdout.splitlines():  # (side data, if any, follows on the same line)
        index, _, rest = line.partition(",")
        flags = rest.split(",")[0]
        if index.isdigit() and "D" in flags:
            found[int(index)] = found.get(int(index), 0) + 1
    return found


def test_truncated_files_say_what_the_header_claimed(samples: Path, ffprobe: str) -> None:
    result = probe_file(samples / "annex-b.mp4", ffprobe=ffprobe)
    assert any("truncated" in w and "35.229" in w for w in result.metadata["warnings"])
    # every number from the same evidence: the 6 frames in the file (ffmpeg -i annex-b.mp4
    # -f null - decodes 6 frames, time=00:00:00.51), not the 745 the header indexes
    assert (result.metadata["nb_frames"], result.metadata["fps"]) == (6, 12.0)
    assert result.metadata["bitrate"] == round(100_000 * 8 / 0.5)
    result = probe_file(samples / "invalid_userdata.mp4", ffprobe=ffprobe)
    assert result.error is not None and "231.3" in result.error


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    pos, end = start, len(data) if end is None else end
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        size = end - pos if size == 0 else size
        yield kind, pos, size
        pos += max(size, 8)


def _mvhd_seconds(data: bytes) -> float:
    at = data.index(b"mvhd") + 4
    if data[at] == 1:
        scale, length = struct.unpack(">IQ", data[at + 20 : at + 32])
    else:
        scale, length = struct.unpack(">II", data[at + 12 : at + 20])
    return float(length / scale)


def test_the_premises(samples: Path) -> None:
    """Re-read by hand the header facts the table relies on."""
    truncated = (samples / "invalid_userdata.mp4").read_bytes()
    assert [k for k, _, _ in _boxes(truncated)] == [b"ftyp", b"moov"]  # no media data at all
    assert _mvhd_seconds(truncated) == pytest.approx(231.3, abs=0.1)
    annexb = (samples / "annex-b.mp4").read_bytes()
    assert len(annexb) == 100_000
    assert _mvhd_seconds(annexb) == pytest.approx(35.229, abs=0.001)
    assert (samples / "sandwich-av-mp4a.40.5.mov").read_bytes()[8:12] == b"qt  "
    avi = (samples / "tiny-mpeg4.avi").read_bytes()
    assert avi[32:36] == b"\x10\x27\x00\x00"  # avih starts here: 10000 us per frame
    assert struct.unpack("<I", avi[48:52])[0] == 0  # dwTotalFrames
    assert avi.rstrip(b"\x00").endswith(b"movi" + b"idx1")  # empty movi list, empty index
    asf = (samples / "tiny-msmpeg4.wmv").read_bytes()
    data_guid = bytes.fromhex("3626b2758e66cf11a6d900aa0062ce6c")
    at = asf.index(data_guid)
    assert struct.unpack("<Q", asf[at + 40 : at + 48])[0] == 0  # Total Data Packets
    for name in ("bbb_input.webm", "ebml-sample.webm", "echo-hereweare.webm"):
        assert b"\x42\x82" in (samples / name).read_bytes()[:64]
        assert b"webm" in (samples / name).read_bytes()[:64]


def test_real_ffprobe_version(ffprobe: str) -> None:
    version = ffprobe_version(ffprobe)
    assert version and version[0].isdigit()


# --- generated clips: the eight containers, and the bad inputs --------------------------

LAVFI = [
    "-f",
    "lavfi",
    "-i",
    "testsrc=size=160x120:rate=25:duration=1",
    "-f",
    "lavfi",
    "-i",
    "sine=frequency=440:duration=1",
]
CLIPS = {
    "clip.mp4": ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac"],
    "clip.avi": ["-c:v", "mpeg4", "-c:a", "libmp3lame"],
    "clip.mov": ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac"],
    "clip.mkv": ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac"],
    "clip.wmv": ["-c:v", "wmv2", "-c:a", "wmav2"],
    "clip.flv": ["-c:v", "flv1", "-c:a", "libmp3lame"],
    "clip.webm": ["-c:v", "libvpx", "-c:a", "libvorbis"],
    "clip.m4v": ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac"],
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory, ffprobe: str) -> Path:
    ffmpeg = shutil.which("ffmpeg")
    if not ffmpeg:
        pytest.fail("ffmpeg is missing: apt-get install ffmpeg")
    folder = tmp_path_factory.mktemp("clips")
    for name, codecs in CLIPS.items():
        subprocess.run(
            [ffmpeg, "-v", "error", *LAVFI, *codecs, str(folder / name)], check=True, timeout=60
        )
    # the same content under misleading names
    shutil.copy(folder / "clip.mov", folder / "mov-named.mp4")
    shutil.copy(folder / "clip.mkv", folder / "mkv-named.mp4")
    shutil.copy(folder / "clip.m4v", folder / "m4v-named.mp4")
    # bad inputs
    (folder / "empty.mp4").touch()
    (folder / "random.mp4").write_bytes(random.Random(4).randbytes(20_000))
    (folder / "text.mkv").write_text("this is a text file, not a video\n" * 20)
    subprocess.run(
        [
            ffmpeg,
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x64",
            "-frames:v",
            "1",
            str(folder / "image.png"),
        ],
        check=True,
        timeout=60,
    )
    (folder / "image.png").rename(folder / "image.mp4")
    subprocess.run(
        [
            ffmpeg,
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=1",
            "-c:a",
            "libmp3lame",
            str(folder / "song.mp3"),
        ],
        check=True,
        timeout=60,
    )
    return folder


@pytest.mark.parametrize(
    ("name", "container"),
    [
        ("clip.mp4", "mp4"),
        ("clip.avi", "avi"),
        ("clip.mov", "mov"),
        ("clip.mkv", "mkv"),
        ("clip.wmv", "wmv"),
        ("clip.flv", "flv"),
        ("clip.webm", "webm"),
        ("clip.m4v", "m4v"),
        ("mov-named.mp4", "mov"),
        ("mkv-named.mp4", "mkv"),
        ("m4v-named.mp4", "m4v"),
    ],
)
def test_generated_clip(name: str, container: str, clips: Path, ffprobe: str) -> None:
    result = probe_file(clips / name, ffprobe=ffprobe, timeout=30)
    check(
        result,
        Expect(
            fields={"format": container, "resolution": "160x120", "fps": 25.0},
            duration=(0.95, 1.15),
        ),
    )
    assert result.metadata["audio_codec"] is not None
    assert result.metadata["extension"] == name.rsplit(".", 1)[1]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("empty.mp4", "empty file"),
        ("random.mp4", "not a media file: …"),
        ("text.mkv", "not a media file: …"),
        ("image.mp4", "still image (PNG), not a video"),
        ("song.mp3", "unsupported container: the content is MP3 audio, …"),
    ],
)
def test_bad_input(name: str, reason: str, clips: Path, ffprobe: str) -> None:
    result = probe_file(clips / name, ffprobe=ffprobe, timeout=30)
    check(result, Expect(error=reason))
    assert len(result.error or "") <= 160


def test_a_good_file_after_all_the_bad_ones(clips: Path, ffprobe: str) -> None:
    for name in ("empty.mp4", "random.mp4", "text.mkv", "image.mp4", "song.mp3"):
        assert not probe_file(clips / name, ffprobe=ffprobe).ok
    assert probe_file(clips / "clip.mp4", ffprobe=ffprobe).ok


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_a_generated_clip_costs_two_ffprobe_runs(name: str, clips: Path, ffprobe: str) -> None:
    """The header and every packet in one run, the decode of the first packets in another
    beside it (the guess, used)."""
    runner = Counting()
    result = probe_file(clips / name, ffprobe=ffprobe, runner=runner, version="5.1-test")
    assert result.ok, result.error
    assert len(runner.calls) == 2, runner.calls
    assert result.stages["head_guess"] == "used"
