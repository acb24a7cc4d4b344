"""The derive role's rows (issue 18's speed table), each against its reference in the
same run:

- storyboard + poster of a 300 s 1080p H.264 clip (25 fps, GOP 2 s, testsrc2; made once
  into var/bench/cache) made by derive/ under the role's child limits, against one bare
  ``ffmpeg -skip_frame nokey … select,scale,tile`` making the same sheet; three rounds,
  alternating, medians.
- the poster alone over every sample in ../shared/samples/, each as the role would try it
  (its duration from ffprobe; a file with no picture ends skipped quickly): p50, p95 of
  each sample's median wall time over :data:`ROUNDS` rounds (the samples in turn each
  round; a first round starts the poster's kept child, as the role's first job does); the
  log gives each sample's time and the CPU time its poster took in the child.
- drop-to-ready p50 (bench/latency.py's measure: 20 clips one at a time) while the
  derive role works through a backlog (every sample dropped twice before), against a
  bare ffprobe of the same clips timed just before each drop; and the same without the
  derive role (what the machine's own load costs, informative).

``python bench/derive.py [board] [poster] [drop]`` runs only those rows (all by default).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import the bench package, not bench/*.py
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench import common, latency
from bench.common import Row, Scratch, System, ms, percentile, row, wait_for
from derive import poster, storyboard
from derive.ffmpeg import Failed, FFmpeg
from derive.posters import Posters
from videodrop.children import ChildRunner

ROUNDS = 3
CLIP_SECONDS = 300
SAMPLES = common.REPO.parent / "shared" / "samples"
BOARD_RATIO, BOARD_SHARE = 0.9, 0.01  # of the reference's speed; of the media's duration
POSTER_P95 = 0.150  # seconds
DROP_RATIO = 1.5
BACKLOG_COPIES = 2


def tool() -> FFmpeg:
    """ffmpeg as the role runs it (derive/main.py): child limits, a 120 s deadline."""
    return FFmpeg("ffmpeg", ChildRunner(1 << 30, file_size=None), 120)


def long_clip() -> Path:
    path = common.CACHE / "derive-300s-1080p-gop2.mp4"
    if not path.exists():
        common.CACHE.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.mp4")
        with common.stage("making a 300 s 1080p H.264 clip, GOP 2 s (once)"):
            subprocess.run(
                ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                 f"testsrc2=size=1920x1080:rate=25:duration={CLIP_SECONDS}",
                 "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-keyint_min", "50",
                 "-sc_threshold", "0", "-pix_fmt", "yuv420p", str(tmp)], check=True)
        tmp.rename(path)
    return path


def duration_of(path: Path) -> float | None:
    done = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                           "-of", "json", f"file:{path}"], capture_output=True, check=False)
    try:
        return float(json.loads(done.stdout)["format"]["duration"])
    except (ValueError, KeyError, TypeError):
        return None


def ours(ffmpeg: FFmpeg, posters: Posters, path: Path, duration: float, out: Path) -> None:
    """What the derive role makes of a landscape video (derive/worker.py): the storyboard,
    then the poster from the candidates its keyframe pass measured (by the role's kept
    poster child, started before the rounds)."""
    board = out / "board"
    board.mkdir()
    seen: list[poster.Candidate] = []
    facts, _ = storyboard.make(ffmpeg, path, duration, True, board, seen=seen)
    assert facts["decode"] == "keyframes" and len(facts["tiles"]) == facts["wanted"], facts
    poster.make(posters, path, duration, out / "poster.jpg", seen=seen)


def reference(path: Path, duration: float, out: Path) -> None:
    """The bare command making the same sheet: keyframes only, the first of each slot."""
    the_plan = storyboard.plan(duration)
    slot = the_plan.slot
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y", "-threads", "2", "-skip_frame", "nokey",
         "-i", str(path), "-an", "-vf",
         f"select='isnan(prev_selected_t)+gt(floor(t/{slot:.6f}),floor(prev_selected_t/"
         f"{slot:.6f}))',scale={storyboard.TILE_WIDTH}:-2,"
         f"tile={the_plan.columns}x{the_plan.rows}",
         "-fps_mode", "passthrough", "-q:v", str(storyboard.QUALITY),
         str(out / "ref-%02d.jpg")], check=True)


def board_row(ffmpeg: FFmpeg) -> Row:
    path = long_clip()
    duration = duration_of(path) or float(CLIP_SECONDS)
    times: dict[str, list[float]] = {"ours": [], "reference": []}
    posters = Posters.like(ffmpeg)
    with tempfile.TemporaryDirectory(dir=common.BENCH_VAR) as tmp:
        ours(ffmpeg, posters, path, duration, Path(tmp))  # the child's start, as a role's
    for _ in range(ROUNDS):
        for name, took in times.items():
            with tempfile.TemporaryDirectory(dir=common.BENCH_VAR) as tmp:
                out = Path(tmp)
                took.append(common.timed(
                    (lambda o=out: ours(ffmpeg, posters, path, duration, o)) if name == "ours"
                    else (lambda o=out: reference(path, duration, o))))
    posters.close()
    took, ref = (statistics.median(times[n]) for n in ("ours", "reference"))
    common.log(f"poster+storyboard rounds {[round(t, 2) for t in times['ours']]} s,"
               f" reference {[round(t, 2) for t in times['reference']]} s")
    speed = ref / took  # of the reference's speed
    return row(f"storyboard + poster of a {CLIP_SECONDS} s 1080p H.264 clip (GOP 2 s)",
               f"{took:.2f} s ({100 * took / duration:.2f} % of the duration)",
               f"bare ffmpeg -skip_frame nokey tile {ref:.2f} s", speed,
               f">= {BOARD_RATIO}x, <= {BOARD_SHARE:.0%} of the duration",
               speed >= BOARD_RATIO and took <= BOARD_SHARE * duration)


def poster_rows(ffmpeg: FFmpeg) -> list[Row]:
    samples = sorted(p for p in SAMPLES.iterdir() if p.is_file() and p.suffix != ".md")
    durations = {path: duration_of(path) for path in samples}
    times: dict[str, list[float]] = {path.name: [] for path in samples}
    cpu: dict[str, list[float]] = {path.name: [] for path in samples}
    posters = Posters.like(ffmpeg)
    try:
        with tempfile.TemporaryDirectory(dir=common.BENCH_VAR) as tmp:
            for round_ in range(ROUNDS + 1):  # round 0 starts the role's kept child
                for path in samples:

                    def one(p: Path = path, d: float | None = durations[path]) -> None:
                        # skipped or failed: the role's outcome too, timed the same
                        with contextlib.suppress(Failed):
                            poster.make(posters, p, d, Path(tmp) / "poster.jpg")

                    took = common.timed(one)
                    if round_:
                        times[path.name].append(took)
                        cpu[path.name].append(posters.cpu)
    finally:
        posters.close()
    median = {name: statistics.median(t) for name, t in times.items()}
    ranked = sorted(median, key=lambda n: -median[n])
    common.log(f"poster, median of {ROUNDS} rounds (wall, CPU of the poster's child): "
               + ", ".join(f"{n} {ms(median[n])} {ms(statistics.median(cpu[n]))}"
                           for n in ranked))
    values = list(median.values())
    p50, p95 = percentile(values, 50), percentile(values, 95)
    cpu95 = percentile([statistics.median(c) for c in cpu.values()], 95)
    return [row(f"poster alone over the {len(values)} samples: p95", ms(p95),
                f"p50 {ms(p50)}; child CPU p95 {ms(cpu95)}; slowest {ranked[0]}"
                f" {ms(median[ranked[0]])}",
                None, f"<= {POSTER_P95 * 1000:.0f} ms", p95 <= POSTER_P95)]


def derive_backlog(scratch: Scratch, system: System) -> None:
    """Every sample dropped :data:`BACKLOG_COPIES` times and probed, then the derive role
    started on their requests (it is still at them while the clips are dropped)."""
    samples = sorted(p for p in SAMPLES.iterdir() if p.is_file() and p.suffix != ".md")
    folder = scratch.root / "backlog"
    folder.mkdir()
    for i in range(BACKLOG_COPIES):
        for path in samples:
            target = folder / f"backlog{i}-{path.name}"
            shutil.copyfile(path, target)
            target.rename(system.inbox / target.name)
    system.wait_done(BACKLOG_COPIES * len(samples), timeout=300)
    role = system.start_role("derive")
    # an ffmpeg of the role under way (at nice 19 on a loaded machine a whole job may take
    # minutes: what counts is that the role is at work while the clips are dropped)
    wait_for(lambda: common.ffmpeg_children(role.pid), timeout=120,
             what="the derive role's first ffmpeg")


def drop_rows() -> list[Row]:
    clips = common.clips(latency.FILES)
    idle = latency.run_once(clips, 2.0)
    got = latency.run_once(clips, 2.0, backlog=derive_backlog)
    p50, b50 = percentile(got["ours"], 50), percentile(got["bare"], 50)
    i50, ib50 = percentile(idle["ours"], 50), percentile(idle["bare"], 50)
    pending = got["pending_derivatives"]
    common.log(f"drop-to-ready with a derive backlog: p50 {ms(p50)}, bare ffprobe {ms(b50)};"
               f" {pending} derivative requests still pending at the end; without the"
               f" derive role: p50 {ms(i50)}, bare ffprobe {ms(ib50)}; with the backlog:"
               f" {latency.stages(got)}; {latency.journey(got)}; without:"
               f" {latency.stages(idle)}; {latency.journey(idle)}")
    return [
        row(f"drop-to-ready p50 while a derive backlog runs ({pending} requests pending"
            " at the end)", ms(p50), f"bare ffprobe {ms(b50)}", p50 / b50,
            f"<= {DROP_RATIO}x", p50 / b50 <= DROP_RATIO and pending > 0),
        row("drop-to-ready p50 with no derive role, same run (what the load of the"
            " machine costs alone)", ms(i50), f"bare ffprobe {ms(ib50)}", i50 / ib50,
            "(informative)"),
    ]


ROWS = ("board", "poster", "drop")


def main(only: Sequence[str] = ROWS) -> list[Row]:
    """The rows named in ``only`` (:data:`ROWS`), in that order."""
    ffmpeg = tool()
    common.BENCH_VAR.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    if "board" in only:
        rows.append(board_row(ffmpeg))
    if "poster" in only:
        rows += poster_rows(ffmpeg)
    if "drop" in only:
        rows += drop_rows()
    return rows


if __name__ == "__main__":
    wanted = sys.argv[1:] or list(ROWS)
    if any(w not in ROWS for w in wanted):
        sys.exit(f"usage: bench/derive.py [{'] ['.join(ROWS)}]")
    common.standalone(lambda: main(wanted), "derive: posters and storyboards")
