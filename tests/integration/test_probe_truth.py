"""Every number matches the file (issue 14): duration, fps, frame count and bitrate against
an independent count, over generated cases in every accepted container.

For each container: a normal file; one without a container duration (written to a pipe);
one whose header rate lies (a 1/600 encoder time base at 5 fps: AVI and TS headers then
claim 600 fps); the first 70 % of a normal file (truncated; MP4/MOV/M4V with their index
first, else nothing would play); one whose header claims ten times the duration of its
complete data (stale); and raw H.264/HEVC elementary streams named .mp4. An AVI written to
a pipe *is* the stale case (its header is never rewritten), and an MPEG-TS has no header
duration to go stale: those two cells are the other cases of their row.

The reference is never our output: the frames ``ffprobe -count_frames`` decodes, the
generator's frame rate, and the file's size. Clips are 96x64, 10 s (a frame is 0.4 % of
a 25 fps clip, so "within 1 %" tolerates no miscount beyond one frame).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from prober.probe import probe_file
from videodrop.errorcodes import ErrorCode

SECONDS = 10
X264 = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "ultrafast"]
CODECS = {
    "mp4": X264, "mov": X264, "m4v": X264, "mkv": X264, "ts": X264,
    "webm": ["-c:v", "libvpx", "-b:v", "200k", "-deadline", "realtime"],
    "avi": [*X264, "-bf", "0"], "wmv": ["-c:v", "wmv2"], "flv": ["-c:v", "flv1"],
}  # fmt: skip
MUXERS = {"mp4": "mp4", "mov": "mov", "m4v": "ipod", "mkv": "matroska", "webm": "webm",
          "avi": "avi", "wmv": "asf", "flv": "flv", "ts": "mpegts"}
ISO = {"mp4", "mov", "m4v"}
# Containers whose demuxer says so when the file ends inside its data ("partial file",
# "File ended prematurely", "Packet corrupt"): their truncation is named. An FLV or ASF
# cut off mid-packet is read without a word: the warning then names both figures only.
CUT_SAID = ISO | {"mkv", "webm", "avi"}


@dataclass(frozen=True)
class Case:
    container: str
    kind: str  # normal | nodur | lying | truncated | stale | raw
    rate: int = 25

    @property
    def name(self) -> str:
        if self.kind == "raw":  # an elementary stream under a container's name
            return f"raw-{self.container}.mp4"
        return f"{self.kind}.{self.container}"


CASES = [
    *(Case(c, kind, 5 if kind == "lying" else 25)
      for c in CODECS for kind in ("normal", "nodur", "lying", "truncated", "stale")
      if not (kind == "nodur" and c == "avi") and not (kind == "stale" and c == "ts")),
    Case("h264", "raw"), Case("hevc", "raw"),
]


def ffmpeg() -> str:
    found = shutil.which("ffmpeg")
    if not found:
        pytest.fail("ffmpeg is missing: apt-get install ffmpeg")
    return found


def encode(out: Path, container: str, rate: int, *extra: str, pipe: bool = False) -> None:
    args = [ffmpeg(), "-v", "error", "-y", "-f", "lavfi", "-i",
            f"testsrc2=size=96x64:rate={rate}", "-t", str(SECONDS), *extra]
    if container in {"h264", "hevc"}:
        codec = X264 if container == "h264" else ["-c:v", "libx265", "-x265-params",
                                                 "log-level=error", "-preset", "ultrafast"]
        subprocess.run([*args, *codec, "-f", container, str(out)], check=True, timeout=120)
        return
    args += CODECS[container]
    if pipe:
        with out.open("wb") as fh:
            subprocess.run([*args, "-f", MUXERS[container], "pipe:1"], stdout=fh, check=True,
                           timeout=120)
    else:
        subprocess.run([*args, str(out)], check=True, timeout=120)


def stale_copy(src: Path, dst: Path, container: str) -> None:
    """``src`` with the duration in its header multiplied by ten (the data untouched)."""
    data = bytearray(src.read_bytes())

    def times_ten(at: int, fmt: str) -> None:
        (value,) = struct.unpack_from(fmt, data, at)
        struct.pack_into(fmt, data, at, type(value)(value * 10))

    if container in ISO:  # mvhd: version, flags, 2 dates, timescale, duration (ISO 14496-12)
        at = data.index(b"mvhd")
        times_ten(at + 24, ">Q") if data[at + 4] == 1 else times_ten(at + 20, ">I")
    elif container in {"mkv", "webm"}:  # Info/Duration (0x4489), an 8-byte float
        times_ten(data.index(b"\x44\x89\x88") + 3, ">d")
    elif container == "flv":  # onMetaData "duration": an AMF number
        times_ten(data.index(b"duration\x00") + 9, ">d")
    elif container == "wmv":  # File Properties Object: Play Duration at +64 (100 ns units)
        times_ten(data.index(bytes.fromhex("a1dcab8c47a9cf118ee400c00c205365")) + 64, "<Q")
    dst.write_bytes(bytes(data))


def make(folder: Path, case: Case) -> Path:
    out = folder / case.name
    c, rate = case.container, case.rate
    if case.kind in {"normal", "raw"}:
        encode(out, c, rate)
    elif case.kind == "lying":
        encode(out, c, rate, "-enc_time_base", "1/600", "-fps_mode", "passthrough")
    elif case.kind == "nodur":
        frag = ["-movflags", "frag_keyframe+empty_moov"] if c in ISO else []
        encode(out, c, rate, *frag, pipe=True)
    elif case.kind == "stale" and c == "avi":
        encode(out, c, rate, pipe=True)
    elif case.kind == "stale":
        whole = folder / f"whole-stale.{c}"
        encode(whole, c, rate)
        stale_copy(whole, out, c)
    else:  # truncated: the first 70 %
        whole = folder / f"whole-truncated.{c}"
        encode(whole, c, rate, *(["-movflags", "faststart"] if c in ISO else []))
        data = whole.read_bytes()
        out.write_bytes(data[: len(data) * 7 // 10])
    return out


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("truth")
    with ThreadPoolExecutor(max_workers=2) as pool:
        paths = list(pool.map(lambda case: make(folder, case), CASES))
    return {case.name: path for case, path in zip(CASES, paths, strict=True)}


def decoded_frames(path: Path) -> int:
    """Frames of the first video stream as ffprobe decodes them, one by one."""
    done = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                           "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0",
                           str(path)], capture_output=True, text=True, timeout=120)
    return int(done.stdout.split()[0].split(",")[0])  # (TS repeats it under its program)


def header_rate(raw: dict[str, Any]) -> float | None:
    video = next(s for s in raw["streams"] if s.get("codec_type") == "video")
    num, _, den = str(video.get("avg_frame_rate")).partition("/")
    return int(num) / int(den) if den and int(den) else None


def within(got: float | None, wanted: float, share: float = 0.01) -> bool:
    return got is not None and abs(got - wanted) <= share * wanted


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_numbers_match_the_file(case: Case, matrix: dict[str, Path]) -> None:
    path = matrix[case.name]
    result = probe_file(path, timeout=60)
    meta = result.metadata
    assert result.ok, result.error
    frames = decoded_frames(path)
    if case.kind != "truncated":
        assert frames == SECONDS * case.rate  # the generator's own count
    seconds = frames / case.rate
    assert meta["nb_frames"] == frames, (meta["nb_frames"], frames)  # exactly what decodes
    assert within(meta["fps"], case.rate), meta["fps"]
    assert within(meta["duration"], seconds), (meta["duration"], seconds)
    assert within(meta["bitrate"], path.stat().st_size * 8 / seconds), meta["bitrate"]
    assert meta["video"]["nb_frames"] == meta["nb_frames"]
    claimed = [w for w in meta["warnings"] if w.startswith(("header claims", "truncated"))]
    rate = header_rate(result.raw or {})
    if rate and not within(rate, case.rate):  # the header lies about the rate: said so
        assert any(f"header claims {rate:g} fps" in w for w in claimed), meta["warnings"]
    if case.kind == "stale":
        assert any(w.startswith("header claims") and f"the file holds {meta['duration']:g} s"
                   in w for w in claimed), meta["warnings"]
    if case.kind == "truncated" and case.container in CUT_SAID:
        assert any(w.startswith("truncated: header claims") for w in claimed), claimed
    if case.kind in {"normal", "nodur", "raw"}:
        assert claimed == [], claimed


# --- MP4s cut off mid-recording ------------------------------------------------------------


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("cut")
    # a camera's fragmented recording, 1 s fragments, written as it goes (a pipe)
    encode(folder / "fragmented.mp4", "mp4", 25, "-g", "25",
           "-movflags", "frag_keyframe+empty_moov", pipe=True)
    encode(folder / "plain.mp4", "mp4", 25)  # its index (moov) is written last
    yield folder


def top_level(data: bytes) -> list[tuple[bytes, int, int]]:
    boxes, at = [], 0
    while at + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        boxes.append((kind, at, size))
        at += size
    return boxes


def test_a_fragmented_recording_cut_inside_a_fragment_header(recordings: Path,
                                                              tmp_path: Path) -> None:
    data = (recordings / "fragmented.mp4").read_bytes()
    moofs = [(at, size) for kind, at, size in top_level(data) if kind == b"moof"]
    at, size = moofs[7]  # fragments 0-6 complete: 7 s of 1 s fragments
    cut = tmp_path / "power-cut.mp4"
    cut.write_bytes(data[: at + size // 2])
    result = probe_file(cut, timeout=30)
    assert (result.ok, result.code) == (False, ErrorCode.TRUNCATED)
    assert result.error is not None and "7 complete fragments play 7" in result.error
    assert result.metadata["duration"] == pytest.approx(7.0, abs=0.1)
    assert result.metadata["nb_frames"] == 7 * 25


def test_a_fragmented_recording_cut_inside_its_media_data(recordings: Path,
                                                          tmp_path: Path) -> None:
    data = (recordings / "fragmented.mp4").read_bytes()
    cut = tmp_path / "seventy.mp4"
    cut.write_bytes(data[: len(data) * 7 // 10])
    result = probe_file(cut, timeout=30)
    assert result.ok, result.error
    frames = decoded_frames(cut)
    assert within(result.metadata["nb_frames"], frames)
    assert within(result.metadata["duration"], frames / 25)
    assert any(w.startswith("truncated: header claims") for w in result.metadata["warnings"])


def test_a_recording_cut_before_its_index_was_written(recordings: Path, tmp_path: Path) -> None:
    data = (recordings / "plain.mp4").read_bytes()
    cut = tmp_path / "no-index.mp4"
    cut.write_bytes(data[: len(data) * 7 // 10])
    result = probe_file(cut, timeout=30)
    assert (result.ok, result.code) == (False, ErrorCode.TRUNCATED)
    assert result.error is not None and "moov" in result.error and "nothing" in result.error
