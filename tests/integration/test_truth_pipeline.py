"""Issue 14's files through the real pipeline: dropped into the inbox (and, where it
applies, uploaded), probed by the real prober, read back over the API. Each number is
checked against an independent count: the frames ``ffprobe -count_frames`` decodes and the
generator's own rate and length, never our own output."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from tests.harness import System
from tests.integration.test_api_uploads import upload_raw, wait_status

X264 = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "ultrafast"]
SRC = "testsrc2=size=96x64:rate={rate}"


def ffmpeg(*args: str, out: Path | None = None) -> bytes:
    done = subprocess.run(["ffmpeg", "-hide_banner", "-v", "error", "-y", *args],
                          capture_output=True, timeout=120, check=True)
    if out is not None:
        out.write_bytes(done.stdout)
    return done.stdout


def decoded_frames(path: Path) -> int:
    done = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                           "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0",
                           str(path)], capture_output=True, text=True, timeout=120)
    return int(done.stdout.split()[0].split(",")[0])


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("truth")
    made = {
        # 1. raw Annex B streams under an .mp4 name (Raspberry Pi, many cameras)
        "raw264.mp4": ["-f", "lavfi", "-i", SRC.format(rate=30), "-t", "10", *X264,
                       "-f", "h264"],
        "raw265.mp4": ["-f", "lavfi", "-i", SRC.format(rate=30), "-t", "10", "-c:v", "libx265",
                       "-preset", "ultrafast", "-x265-params", "log-level=error", "-f", "hevc"],
        # 2. an AVI whose header rate is its 1/600 time base
        "tb600.avi": ["-f", "lavfi", "-i", SRC.format(rate=5), "-t", "10", *X264, "-bf", "0",
                      "-enc_time_base", "1/600", "-fps_mode", "passthrough", "-f", "avi"],
        # 4. an AVI written to a pipe: its header is never rewritten (stale), data complete
        "piped.avi": ["-f", "lavfi", "-i", SRC.format(rate=25), "-t", "10", *X264,
                      "-f", "avi"],
        # 5. a camera's fragmented recording, written as it goes
        "frag.mp4": ["-f", "lavfi", "-i", SRC.format(rate=25), "-t", "10", *X264, "-g", "25",
                     "-movflags", "frag_keyframe+empty_moov", "-f", "mp4"],
    }
    paths = {}
    for name, args in made.items():
        paths[name] = folder / name
        ffmpeg(*args, "pipe:", out=paths[name])
    whole = paths.pop("frag.mp4").read_bytes()
    paths["powercut.mp4"] = folder / "powercut.mp4"  # the first 70 %: a power cut
    paths["powercut.mp4"].write_bytes(whole[: len(whole) * 70 // 100])
    return paths


def metadata(system: System, rec: dict) -> dict:
    return requests.get(rec["api_links"]["metadata_url"], timeout=10).json()


def test_issue_14_files_dropped_into_the_inbox(make_system, files: dict[str, Path],
                                               samples: Path, store_env: dict[str, str]
                                               ) -> None:
    """Once per media store (``store_env``: on s3 each file probed in the inbox's spool
    while it is put into the bucket)."""
    system: System = make_system(**store_env).start("api", "prober", "ingest")
    shutil.copy(samples / "annex-b.mp4", system.inbox / "annex-b.mp4")  # 3. truncated
    for name, path in files.items():
        shutil.copy(path, system.inbox / name)
    records = {name: system.wait_record(name, timeout=120)
               for name in [*files, "annex-b.mp4"]}
    assert_issue_14_numbers(system, records, files, samples)


def assert_issue_14_numbers(system: System, records: dict[str, dict],
                            files: dict[str, Path], samples: Path) -> None:
    """Each of issue 14's numbers of ``records`` (name → record) against its own count."""
    ready = {name: metadata(system, rec) for name, rec in records.items()}
    for name, rec in records.items():
        assert rec["status"] == "ready", (name, rec["processing_error"])

    # 1. raw H.264 / HEVC: 10 s at 30 fps, 300 frames
    for name in ("raw264.mp4", "raw265.mp4"):
        meta = ready[name]
        assert meta["nb_frames"] == decoded_frames(files[name]) == 300, name
        assert meta["duration"] == pytest.approx(10.0, rel=0.01)
        assert meta["fps"] == pytest.approx(30.0, rel=0.01)
    # 2. the header's 600 fps is a time base: 5 fps, 50 frames, and said so
    meta = ready["tb600.avi"]
    assert (meta["fps"], meta["nb_frames"]) == (5.0, decoded_frames(files["tb600.avi"])) \
        == (5.0, 50)
    assert any(w.startswith("header claims 600 fps") for w in meta["warnings"])
    # 3. a truncated file's rate comes from what it holds, as its duration does
    meta = ready["annex-b.mp4"]
    frames = decoded_frames(samples / "annex-b.mp4")
    assert meta["nb_frames"] == frames
    assert meta["fps"] == pytest.approx(frames / meta["duration"], rel=0.01)
    assert any(w.startswith("truncated: header claims 35.2") for w in meta["warnings"])
    # 4. a stale header over complete data: not "truncated", the claim named as such
    meta = ready["piped.avi"]
    assert meta["nb_frames"] == decoded_frames(files["piped.avi"]) == 250
    assert meta["duration"] == pytest.approx(10.0, rel=0.01)
    stale = [w for w in meta["warnings"] if "s; the file holds" in w]
    assert stale and not stale[0].startswith("truncated") and "the file holds 10 s" in stale[0]
    # 5. a power-cut fragmented recording: what plays, said to be truncated
    meta = ready["powercut.mp4"]
    frames = decoded_frames(files["powercut.mp4"])
    assert meta["nb_frames"] == frames  # the cut last frame is not one
    assert meta["duration"] == pytest.approx(frames / 25, rel=1e-3)  # what plays
    assert meta["fps"] == 25.0
    assert any(w.startswith("truncated:") for w in meta["warnings"])


def test_issue_14_files_uploaded(make_system, files: dict[str, Path], samples: Path,
                                 store_env: dict[str, str]) -> None:
    """The same numbers when the files come over HTTP. Once per media store
    (``store_env``: on s3 each upload is probed where it lies, ffprobe reading the
    object through a presigned URL and the probe's own reads ranged GETs)."""
    system: System = make_system(**store_env).start("api", "prober")
    paths = {**files, "annex-b.mp4": samples / "annex-b.mp4"}
    tokens = {name: upload_raw(system, path).json()["api_links"]["access_token"]
              for name, path in paths.items()}
    records = {name: wait_status(system, token) for name, token in tokens.items()}
    assert_issue_14_numbers(system, records, files, samples)
