"""Scenes and activity (the derive role's ``scenes`` kind, derive/scenes.py) against
PySceneDetect's AdaptiveDetector, the anchor of issue 18, in the same run.

* Accuracy on the corpus of testbed/cuts.py (lavfi shots joined by hard cuts and
  ``xfade`` dissolves at known frames; 480p to 1080p, 25 and 30 fps), at ±1 frame of a
  cut or of a dissolve's middle: ours,
  PySceneDetect (AdaptiveDetector and ContentDetector with their defaults), ffmpeg's
  ``scdet`` (threshold 10) and ``select='gt(scene,0.3)'``.
* Speed on a 30 s 1080p30 H.264 clip (GOP 2 s, ``veryfast``, a cut every 1.2 to 2 s):
  frames per second of our whole kind (the analysis pass and the thumbnail sheets, under
  the derive role's child limits) against PySceneDetect's ``detect_scenes`` alone on the
  same file, and the CPU time of each (every thread, ffmpeg's included); three rounds
  alternating, medians.

Inputs are generated once into var/bench/cache/scenes/.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import the bench package, not bench/*.py
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench import common
from bench.common import Row, row
from derive import scenes
from derive.ffmpeg import FFmpeg
from testbed import cuts
from videodrop.children import ChildRunner

ROUNDS = 3
RECALL, PRECISION, SPEED = 0.97, 0.95, 250.0
SPEED_CLIP = cuts.Clip("speed-1080p30", "1920x1080", 30,
                       tuple(36 + (i * 7) % 25 for i in range(18)), (0,) * 17)
Detector = Callable[[Path, cuts.Clip], list[int]]


def folder() -> Path:
    out = common.CACHE / "scenes"
    out.mkdir(parents=True, exist_ok=True)
    return out


def clip_file(clip: cuts.Clip, *, gop: int | None = None) -> Path:
    path = folder() / f"{clip.name}.mp4"
    if not path.exists():
        made = cuts.make(clip, folder(), gop=gop)
        assert made == path
    return path


def ours(ffmpeg: FFmpeg) -> Detector:
    def detect(path: Path, clip: cuts.Clip) -> list[int]:
        with tempfile.TemporaryDirectory() as temp:
            facts, _ = scenes.make(ffmpeg, path, float(clip.rate), clip.frames / clip.rate,
                                   Path(temp))
        return list(facts["starts"])
    return detect


def pyscenedetect(kind: str) -> Detector:
    from scenedetect import AdaptiveDetector, ContentDetector, SceneManager, open_video

    def detect(path: Path, _clip: cuts.Clip) -> list[int]:
        manager = SceneManager()
        manager.add_detector(AdaptiveDetector() if kind == "adaptive" else ContentDetector())
        manager.detect_scenes(open_video(str(path)))
        return [_frame(start) for start, _end in manager.get_scene_list()]
    return detect


def _frame(timecode: object) -> int:
    number = getattr(timecode, "frame_num", None)
    return int(number) if number is not None else int(timecode.get_frames())  # type: ignore[attr-defined]


def ffmpeg_filter(graph: str) -> Detector:
    """Frames an ffmpeg filter lets through (``graph`` ends in a selection)."""
    def detect(path: Path, clip: cuts.Clip) -> list[int]:
        with tempfile.NamedTemporaryFile(suffix=".txt") as out:
            subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-an", "-vf",
                            f"{graph},metadata=print:file={out.name}", "-f", "null", "-"],
                           check=True, timeout=300)
            text = Path(out.name).read_text()
        times = [float(line.rsplit("pts_time:", 1)[1]) for line in text.splitlines()
                 if "pts_time:" in line]
        return [0, *(round(t * clip.rate) for t in times)]
    return detect


def accuracy(detect: Detector) -> cuts.Score:
    total = None
    for clip in cuts.CORPUS:
        found = cuts.score(clip.transitions(), detect(clip_file(clip), clip))
        total = found if total is None else total + found
    assert total is not None
    return total


def _rp(score: cuts.Score) -> str:
    return f"recall {score.recall:.3f}, precision {score.precision:.3f}"


def _cpu() -> float:
    """CPU seconds of this process and its finished children so far."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _measured(detect: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU) seconds of one call."""
    cpu0, wall0 = _cpu(), time.perf_counter()
    detect()
    return time.perf_counter() - wall0, _cpu() - cpu0


def speed(ffmpeg: FFmpeg) -> dict[str, tuple[float, float]]:
    """{"ours" | "theirs": (frames/s, CPU ms a frame)} on the 1080p clip (PySceneDetect's
    AdaptiveDetector is theirs): medians of alternating rounds."""
    path = clip_file(SPEED_CLIP, gop=60)
    frames = SPEED_CLIP.frames
    detect = {"ours": ours(ffmpeg), "theirs": pyscenedetect("adaptive")}
    took: dict[str, list[tuple[float, float]]] = {"ours": [], "theirs": []}
    for _ in range(ROUNDS):
        for name, run in detect.items():
            took[name].append(_measured(lambda run=run: run(path, SPEED_CLIP)))
    return {name: (frames / statistics.median(w for w, _ in got),
                   1000 * statistics.median(c for _, c in got) / frames)
            for name, got in took.items()}


def main() -> list[Row]:
    ffmpeg = FFmpeg("ffmpeg", ChildRunner(file_size=None), 600)
    with common.stage("scenes: corpus"):
        for clip in cuts.CORPUS:
            clip_file(clip)
        clip_file(SPEED_CLIP, gop=60)
    count = sum(len(c.transitions()) for c in cuts.CORPUS)
    with common.stage("scenes: accuracy"):
        mine = accuracy(ours(ffmpeg))
        adaptive = accuracy(pyscenedetect("adaptive"))
        content = accuracy(pyscenedetect("content"))
        scdet = accuracy(ffmpeg_filter("scdet=threshold=10,"
                                       "metadata=select:key=lavfi.scd.time"))
        select = accuracy(ffmpeg_filter("select='gt(scene,0.3)'"))
    with common.stage("scenes: speed"):
        t0 = time.monotonic()
        got = speed(ffmpeg)
        common.log(f"scenes: speed rounds {time.monotonic() - t0:.1f} s")
    (fps, cpu), (reference, reference_cpu) = got["ours"], got["theirs"]
    met = mine.recall >= RECALL and mine.precision >= PRECISION
    corpus = f"{len(cuts.CORPUS)} clips, {count} cuts and dissolves, ±1 frame (middles)"
    return [
        row(f"scenes: accuracy on the corpus ({corpus})", _rp(mine),
            f"PySceneDetect AdaptiveDetector: {_rp(adaptive)}", None,
            f"recall >= {RECALL}, precision >= {PRECISION}", met),
        row("scenes: accuracy of the other candidates (informative)",
            f"ContentDetector: {_rp(content)}",
            f"scdet=10: {_rp(scdet)}; select gt(scene,0.3): {_rp(select)}", None,
            "(informative)"),
        row("scenes + activity + thumbnails of a 1080p30 H.264 clip, frames/s",
            f"{fps:.0f} fps", f"PySceneDetect AdaptiveDetector {reference:.0f} fps",
            fps / reference, f"> 1x, >= {SPEED:.0f} fps", fps > reference and fps >= SPEED),
        row("scenes of the same clip: CPU a frame (ffmpeg's and Python's, every thread)",
            f"{cpu:.1f} ms", f"PySceneDetect AdaptiveDetector {reference_cpu:.1f} ms",
            cpu / reference_cpu, "(informative)"),
    ]


if __name__ == "__main__":
    common.standalone(main, "scenes: accuracy and speed against PySceneDetect")
