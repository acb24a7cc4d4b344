"""The head decode guessed beside the listing (prober/decodes.py) changes no verdict: every
sample, and files made to defeat the guess, probed with it and with it refused (then the
decode the listing asks for runs after the listing, as it did before the guess) give the
same verdict, metadata and raw JSON, with the real ffprobe.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from prober.decodes import GUESSED_STREAM
from prober.ffprobe import Completed, default_runner
from prober.probe import ProbeResult, probe_file
from tests.integration.test_probe_samples import EXPECTED

X264 = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "ultrafast"]


class Runs:
    """The real runner, recording every command; ``refuse_guess``: the guessed decode
    fails as a child killed by a signal would."""

    def __init__(self, *, refuse_guess: bool = False) -> None:
        self.refuse_guess = refuse_guess
        self.calls: list[list[str]] = []

    def __call__(self, args: Sequence[str], timeout: float, *,
                 on_stdout: Callable[[bytes], None] | None = None) -> Completed:
        self.calls.append(list(args))
        if self.refuse_guess and GUESSED_STREAM in args:
            return Completed(-9, b"", b"")
        return default_runner(args, timeout, on_stdout=on_stdout)

    def head_decodes(self) -> list[str]:
        """The ``-select_streams`` of each head decode, in order."""
        return [c[c.index("-select_streams") + 1] for c in self.calls if "-count_frames" in c]


def without_addresses(raw: object) -> str:
    """``raw`` as JSON with the addresses in ffprobe's log lines (``[mov @ 0x55…]``, a
    new one each run) taken out."""
    return re.sub(r" @ 0x[0-9a-f]+\]", " @ …]", json.dumps(raw, sort_keys=True))


def both_ways(path: Path) -> tuple[ProbeResult, Runs]:
    """The probe with the guess; asserts that the probe without it says the same."""
    guessing, refusing = Runs(), Runs(refuse_guess=True)
    result = probe_file(path, runner=guessing, timeout=60, version="test")
    reference = probe_file(path, runner=refusing, timeout=60, version="test")
    assert (result.ok, result.error, result.code) == (reference.ok, reference.error,
                                                       reference.code)
    assert result.metadata == reference.metadata
    assert without_addresses(result.raw) == without_addresses(reference.raw)
    if reference.stages.get("head_guess"):  # (a head decode was asked for)
        assert refusing.head_decodes()[0] == GUESSED_STREAM
        assert len(refusing.head_decodes()) == 2
    return result, guessing


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_sample_says_the_same_with_the_guess(name: str, samples: Path) -> None:
    result, runs = both_ways(samples / name)
    # every good sample here is decoded by the guess alone (but the one whose JSON ffprobe
    # refuses to print: read from its summary log, no decode)
    if result.ok and name != "sandwich-av-mp4a.40.5.mov":
        assert result.stages["head_guess"] == "used"
        assert runs.head_decodes() == [GUESSED_STREAM]


def ffmpeg(*args: str) -> None:
    found = shutil.which("ffmpeg")
    if not found:
        pytest.fail("ffmpeg is missing: apt-get install ffmpeg")
    subprocess.run([found, "-v", "error", "-y", *args], check=True, timeout=120)


def second_half(path: Path, to: Path) -> Path:
    """The second half of an MPEG-TS file, from a packet boundary (a cut from inside)."""
    data = path.read_bytes()
    to.write_bytes(data[(len(data) // 2) // 188 * 188 :])
    return to


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("guess")
    clip = folder / "clip.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25:duration=2", "-f", "lavfi",
           "-i", "sine=duration=2", *X264, "-c:a", "aac", str(clip))
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x64", "-frames:v", "1",
           str(folder / "cover.png"))
    # cover art (the mov muxer writes it as the last stream, flagged attached_pic)
    ffmpeg("-i", str(folder / "cover.png"), "-i", str(clip), "-map", "0", "-map", "1:v",
           "-map", "1:a", "-c", "copy", "-disposition:0", "attached_pic",
           str(folder / "cover-art.mp4"))
    ffmpeg("-i", str(clip), "-map", "0:a", "-map", "0:v", "-c", "copy",
           str(folder / "audio-first.mp4"))
    # a one-picture MJPEG stream first; the main video (the default one) second
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x64:rate=1:duration=1", "-i", str(clip),
           "-map", "0:v", "-map", "1:v", "-c:v:0", "mjpeg", "-c:v:1", "copy",
           "-disposition:v:0", "0", "-disposition:v:1", "default",
           str(folder / "picture-first.mkv"))
    # cut from inside a stream: its first keyframe comes later (a GOP of 25), or never
    # (one keyframe, at the start of the whole)
    for gop, name in ((25, "mid-gop.ts"), (1000, "no-keyframe.ts")):
        whole = folder / f"whole-{gop}.ts"
        ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25:duration=6", *X264,
               "-g", str(gop), str(whole))
        second_half(whole, folder / name)
    return folder


@pytest.mark.parametrize(("name", "ok", "guess", "decoded"), [
    ("cover-art.mp4", True, "used", ["V:0"]),  # "V:0" passes over the cover art
    ("audio-first.mp4", True, "used", ["V:0"]),  # the video is stream 1
    ("picture-first.mkv", True, "another stream", ["V:0", "1"]),
    ("mid-gop.ts", True, "other packets", ["V:0", "0"]),
    ("no-keyframe.ts", False, "other packets", ["V:0", "0"]),
])  # fmt: skip
def test_files_made_to_defeat_the_guess_say_the_same(made: Path, name: str, ok: bool,
                                                     guess: str, decoded: list[str]) -> None:
    result, runs = both_ways(made / name)
    assert result.ok is ok, result.error
    assert result.stages["head_guess"] == guess
    assert runs.head_decodes() == decoded
