"""``copy`` clips written by the clip endpoint's decoding children (api/frames/remux.py)
against ffmpeg's command line (api/frames/cut.py's fallback), on real ffmpeg-made MP4s
(constant and variable frame rate, B-frames, an edit list, a rotation, AAC audio, a video
that starts after its audio): the same packets, timestamps and streams by ffprobe, and a
clean decode; a child that fails leaves the clip to ffmpeg; the file-size limit holds;
through the API, a copy of an MP4 needs no ffmpeg."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.frames.cut import Cutter, copy_span
from api.frames.decoders import Decoders
from api.frames.extract import FrameFailed
from testbed import frame_corpus
from tests.harness import own_system, wait_for
from tests.integration.test_clips import with_audio
from videodrop.children import ChildRunner

MP4S = ["cfr.mp4", "edit.mp4", "rotated.mp4", "av.mp4", "late.mp4"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The frame corpus, ``av.mp4`` (with a tone) and ``late.mp4`` (its video 0.2 s after
    its audio)."""
    made = tmp_path_factory.mktemp("remux")
    frame_corpus.build(made)
    with_audio(made / "av.mp4")
    subprocess.run(["ffmpeg", "-v", "error", "-itsoffset", "0.2", "-i", str(made / "av.mp4"),
                    "-i", str(made / "av.mp4"), "-map", "0:v", "-map", "1:a", "-c", "copy",
                    str(made / "late.mp4")], check=True, timeout=60)
    return made


@pytest.fixture
def pool() -> Iterator[Decoders]:
    children = Decoders(1 << 30, file_size=50_000_000)
    yield children
    children.close()


def cutter(path: Path, decoders: Decoders | None) -> Cutter:
    return Cutter(path, ffmpeg="ffmpeg", ffprobe="ffprobe",
                  runner=ChildRunner(file_size=50_000_000, cpus=2),
                  deadline=time.monotonic() + 120, decoders=decoders)


def listing(path: Path) -> str:
    """Every packet and stream of ``path`` as ffprobe reads them (no decoding)."""
    return subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries",
         "packet=stream_index,pts,dts,duration,flags,size:stream=index,codec_name,time_base,"
         "start_time,duration,nb_frames:stream_side_data=rotation", "-of", "csv", str(path)],
        check=True, capture_output=True, text=True, timeout=60).stdout


def decode_errors(path: Path) -> str:
    return subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"],
                          capture_output=True, text=True, timeout=60).stderr.strip()


def audio_codec(path: Path) -> str | None:
    found = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
                            "stream=codec_name", "-of", "csv=p=0", str(path)],
                           check=True, capture_output=True, text=True, timeout=60).stdout.strip()
    return found or None


@pytest.mark.parametrize("name", MP4S)
def test_the_remux_writes_what_ffmpeg_writes(folder, pool, name, tmp_path):
    path = folder / name
    audio = audio_codec(path)
    line = cutter(path, None).timeline(1e9)
    rng = random.Random(name)
    last = line.times[-1]
    spans = [(0.0, 0.5), (last - 0.3, last + 2)]
    for _ in range(4):
        a = rng.uniform(0, last - 0.2)
        spans.append((a, a + rng.uniform(0.05, 1.5)))
    for start, end in spans:
        span = copy_span(line, start, end)
        ours, theirs = tmp_path / "ours.mp4", tmp_path / "theirs.mp4"
        assert cutter(path, pool).remuxed(span, ours, audio, "mp4"), (start, end)
        cutter(path, None).copied_by_ffmpeg(span, theirs, audio)
        assert listing(ours) == listing(theirs), (start, end)
        assert decode_errors(ours) == "", (start, end)


def test_a_child_that_fails_leaves_the_clip_to_ffmpeg(folder, tmp_path):
    path = folder / "av.mp4"
    failing = Decoders(1 << 30, file_size=50_000_000)
    failing._argv = [sys.executable, "-c", "import sys; sys.exit(3)"]  # dies at once
    line = cutter(path, None).timeline(1e9)
    span = copy_span(line, 1.02, 2.5)
    ours, theirs = tmp_path / "ours.mp4", tmp_path / "theirs.mp4"
    assert not cutter(path, failing).remuxed(span, ours, "aac", "mp4")
    assert cutter(path, failing).copy(line, span, ours, "aac", container="mp4") == span
    cutter(path, None).copied_by_ffmpeg(span, theirs, "aac")
    assert listing(ours) == listing(theirs)


def test_a_remux_past_the_size_limit_is_too_large(folder, tmp_path):
    small = Decoders(1 << 30, file_size=1000)  # cfr.mp4 is ~6 kB
    try:
        path = folder / "cfr.mp4"
        line = cutter(path, None).timeline(1e9)
        span = copy_span(line, 0.0, 2.5)
        with pytest.raises(FrameFailed) as failed:
            cutter(path, small).remuxed(span, tmp_path / "big.mp4", None, "mp4")
        assert failed.value.reason == "too_large"
    finally:
        small.close()


def test_the_endpoint_copies_an_mp4_without_ffmpeg(folder, tmp_path_factory, database_url,
                                                   amqp_url, amqp_prefix):
    """With the API's ffmpeg a program that fails, a ``copy`` clip of an MP4 is still served
    (the decoding child writes it), with its audio and the bounds it states, while an
    ``exact`` one, which needs ffmpeg, fails."""
    with own_system(tmp_path_factory.mktemp("remux-api"), database_url, amqp_url,
                    f"{amqp_prefix}_remux", "api", "prober", "ingest",
                    VIDEODROP_DERIVE="") as system:
        (system.inbox / "av.mp4").write_bytes((folder / "av.mp4").read_bytes())
        [item] = system.wait_done(1, timeout=120)
        system.kill("api")
        system.start_role("api", env={"VIDEODROP_FFMPEG": "/bin/false"})
        wait_for(lambda: system.http.get(f"{system.base_url}/healthz", timeout=2).ok,
                 timeout=30, what="the API again")
        url = f"{system.base_url}/api/video/{item['api_links']['access_token']}/clip/"
        copy = system.http.get(url, params={"start": "1.02", "end": "2.5", "mode": "copy"},
                               timeout=60)
        assert copy.status_code == 200, copy.text
        assert float(copy.headers["Clip-Start"]) <= 1.02 < float(copy.headers["Clip-End"])
        clip = tmp_path_factory.mktemp("remux-clip") / "clip.mp4"
        clip.write_bytes(copy.content)
        assert audio_codec(clip) == "aac" and decode_errors(clip) == ""
        decoded = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0",
                                  "-count_frames", "-show_entries", "stream=nb_read_frames",
                                  "-of", "csv=p=0", str(clip)], check=True,
                                 capture_output=True, text=True, timeout=60).stdout.strip()
        assert decoded == copy.headers["Clip-Frames"]
        exact = system.http.get(url, params={"start": "1.02", "end": "2.5"}, timeout=60)
        assert exact.status_code == 422 and exact.json()["error_code"] == "decode_failed"
