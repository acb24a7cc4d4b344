"""The browser renditions' rows (issue 19's speed table), each against its reference in
the same run:

- faststart remux of a ~160 MB moov-at-end MP4 (1080p H.264 + AAC, made once into
  var/bench/cache) by derive/rendition.py (its index moved: derive/faststart.py), checked
  as the role checks it, against ``cp`` of the same file; beside them, informative,
  ffmpeg's remux (``relocate=False``) and a bare ``qt-faststart``; five rounds,
  alternating, medians.
- a 60 s 1080p HEVC clip (made once) turned into the H.264 rendition by
  derive/rendition.py, against a bare ``ffmpeg`` with the same arguments, both at this
  process's priority (the role's nice 19 is not applied here: like against like); three
  rounds, alternating, medians of wall and CPU time (the children's user + system, which
  the load moves less); the realtime factor (media seconds per wall second).
- the share of the camera-style corpus (testbed/camera_variants.py) that the plan
  (probed by our prober, planned by derive/rendition.py with transcodes eager) makes
  playable by a remux alone: in browsers that decode HEVC (the HEVC rendition, a copy,
  counts), in every browser, and of those that do not play as they are.
- drop-to-ready p50 (bench/latency.py's measure: 20 clips one at a time) while the derive
  role transcodes HEVC renditions (two copies of the 60 s clip, eager), against a bare
  ffprobe of the same clips timed just before each drop.

``python bench/renditions.py [remux] [transcode] [share] [drop]`` runs only those rows
(all by default).
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import the bench package, not bench/*.py
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench import common, latency
from bench.common import Row, Scratch, System, ms, percentile, row, wait_for
from derive import rendition
from derive.ffmpeg import Deadline, FFmpeg, plain_input
from prober.probe import probe_file
from testbed import camera_variants
from videodrop.children import ChildRunner, prlimit_binary
from videodrop.settings import Settings

REMUX_MB = 160
REMUX_RATIO = 0.5  # of cp's speed
REMUX_ROUNDS = 5
QT_FASTSTART = "qt-faststart"
TRANSCODE_SECONDS = 60
TRANSCODE_RATIO = 0.95  # of the bare ffmpeg's speed
TRANSCODE_ROUNDS = 3
REMUX_SHARE = 0.6
DROP_RATIO = 1.5
TRANSCODE_COPIES = 2


def tool() -> FFmpeg:
    """ffmpeg as the derive role runs it (derive/main.py): the child limits and deadline
    of the default settings."""
    settings = Settings()
    runner = ChildRunner(settings.child_memory, file_size=None, prlimit=prlimit_binary(),
                         cpus=len(os.sched_getaffinity(0)))
    return FFmpeg(settings.ffmpeg, runner,
                  Deadline(settings.derive_timeout, settings.derive_timeout_per_media_second))


def _made(path: Path, args: list[str], what: str) -> Path:
    if not path.exists():
        common.CACHE.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.part{path.suffix}")
        with common.stage(f"making {what} (once)"):
            subprocess.run(["ffmpeg", "-v", "error", "-y", *args, str(tmp)], check=True)
        tmp.rename(path)
    return path


def moov_at_end() -> Path:
    """~160 MB of 1080p H.264 (20 Mb/s) + AAC, its index at the end (ffmpeg's default)."""
    seconds = REMUX_MB * 8 // 20
    return _made(common.CACHE / f"renditions-{REMUX_MB}mb-moov-at-end.mp4", [
        "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=25:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "20M", "-maxrate", "20M",
        "-bufsize", "20M", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k"],
        f"a {REMUX_MB} MB moov-at-end MP4")


def hevc_clip() -> Path:
    """60 s of 1080p HEVC (hev1-tagged, as ffmpeg writes it) + AAC at 25 fps, GOP 2 s."""
    return _made(common.CACHE / f"renditions-hevc-{TRANSCODE_SECONDS}s-1080p.mp4", [
        "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=25:duration={TRANSCODE_SECONDS}",
        "-f", "lavfi", "-i",
        f"sine=frequency=440:sample_rate=48000:duration={TRANSCODE_SECONDS}",
        "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error:keyint=50",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k"],
        f"a {TRANSCODE_SECONDS} s 1080p HEVC clip")


def _rounds(n: int, runs: dict[str, object]) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(n):
        for name, fn in runs.items():
            times[name].append(common.timed(fn))  # type: ignore[arg-type]
    return times


def remux_row(ffmpeg: FFmpeg) -> list[Row]:
    source = moov_at_end()
    settings = Settings()
    meta = probe_file(source).metadata
    chosen = rendition.plan(meta, settings)
    assert chosen.stream == "remux", chosen
    size = source.stat().st_size
    made: dict[str, object] = {}
    with tempfile.TemporaryDirectory(dir=common.BENCH_VAR) as tmp:
        out, copy = Path(tmp) / "rendition.mp4", Path(tmp) / "copy.mp4"
        remuxed, moved = Path(tmp) / "ffmpeg.mp4", Path(tmp) / "qt-faststart.mp4"

        def ours() -> None:
            out.unlink(missing_ok=True)
            made.update(rendition.make(ffmpeg, settings, chosen, source, meta, out=out))

        def cp() -> None:
            copy.unlink(missing_ok=True)
            subprocess.run(["cp", str(source), str(copy)], check=True)

        def ffmpeg_remux() -> None:  # the remux before the relocation, for the record
            remuxed.unlink(missing_ok=True)
            rendition.make(ffmpeg, settings, chosen, source, meta, out=remuxed,
                           relocate=False)

        def qt_faststart() -> None:  # ffmpeg's tools/qt-faststart, bare, unchecked
            moved.unlink(missing_ok=True)
            subprocess.run([QT_FASTSTART, str(source), str(moved)], check=True,
                           stdout=subprocess.DEVNULL)

        cp()  # the source in the page cache for all
        runs: dict[str, object] = {"ours": ours, "cp": cp, "ffmpeg": ffmpeg_remux}
        if shutil.which(QT_FASTSTART):
            runs["qt-faststart"] = qt_faststart
        times = _rounds(REMUX_ROUNDS, runs)
    took, ref = statistics.median(times["ours"]), statistics.median(times["cp"])
    common.log(f"remux rounds (made by {made.get('made_by')}): "
               + "; ".join(f"{name} {[round(t, 3) for t in got]} s"
                           for name, got in times.items()) + f"; load {_load()}")
    rows = [row(f"faststart remux of a {size / 1e6:.0f} MB moov-at-end MP4 (index moved,"
                " checked)", f"{took:.2f} s", f"cp {ref:.2f} s", ref / took,
                f">= {REMUX_RATIO}x", ref / took >= REMUX_RATIO)]
    for name in ("ffmpeg", "qt-faststart"):
        if name in times:
            other = statistics.median(times[name])
            what = ("ffmpeg's remux (-c copy -movflags +faststart), checked"
                    if name == "ffmpeg" else "qt-faststart (bare, unchecked)")
            rows.append(row(f"  the same by {what}", f"{other:.2f} s", f"cp {ref:.2f} s",
                            ref / other, "(informative)"))
    return rows


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def transcode_row(ffmpeg: FFmpeg) -> Row:
    source = hevc_clip()
    settings = Settings(transcode="eager")
    meta = probe_file(source).metadata
    chosen = rendition.plan(meta, settings)
    assert chosen.stream == "transcode", chosen
    duration = float(meta["duration"])
    with tempfile.TemporaryDirectory(dir=common.BENCH_VAR) as tmp:
        out, bare_out = Path(tmp) / "rendition.mp4", Path(tmp) / "bare.mp4"
        bare_args = ["ffmpeg", "-v", "error", "-nostdin", "-y",
                     *rendition.input_options(meta, chosen), *plain_input(source),
                     *rendition.output_args(chosen, meta, settings), f"file:{bare_out}"]

        def ours() -> None:
            out.unlink(missing_ok=True)
            rendition.make(ffmpeg, settings, chosen, source, meta, out=out)

        def bare() -> None:
            subprocess.run(bare_args, check=True)

        cpu: dict[str, list[float]] = {"ours": [], "bare": []}
        times = _rounds(TRANSCODE_ROUNDS, {"ours": _cpu_of(ours, cpu["ours"]),
                                           "bare": _cpu_of(bare, cpu["bare"])})
    took, ref = statistics.median(times["ours"]), statistics.median(times["bare"])
    used, used_ref = statistics.median(cpu["ours"]), statistics.median(cpu["bare"])
    nice = os.getpriority(os.PRIO_PROCESS, 0)
    common.log(f"transcode rounds {[round(t, 2) for t in times['ours']]} s (CPU"
               f" {[round(t, 1) for t in cpu['ours']]} s), bare ffmpeg"
               f" {[round(t, 2) for t in times['bare']]} s (CPU"
               f" {[round(t, 1) for t in cpu['bare']]} s); both at nice {nice}; load"
               f" {_load()}; arguments: {' '.join(bare_args)}")
    return row(f"HEVC 1080p -> H.264 rendition, {duration:.0f} s clip"
               f" ({duration / took:.2f}x realtime; CPU {used:.1f} s vs {used_ref:.1f} s,"
               f" both at nice {nice})", f"{took:.1f} s",
               f"bare ffmpeg, same arguments and priority {ref:.1f} s", ref / took,
               f">= {TRANSCODE_RATIO}x", ref / took >= TRANSCODE_RATIO)


def _cpu_of(run: Callable[[], None], into: list[float]) -> Callable[[], None]:
    """``run``, adding the CPU time (user + system, s) of the children it waited for."""
    def counted() -> None:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        run()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        into.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return counted


def share_rows() -> list[Row]:
    settings = Settings(transcode="eager")
    with tempfile.TemporaryDirectory(dir=common.BENCH_VAR) as tmp:
        paths = camera_variants.build(Path(tmp))
        streams: dict[str, str] = {}
        hevc: dict[str, str] = {}  # the HEVC rendition's path, where there is one
        for path in paths:
            meta = probe_file(path).metadata
            try:
                streams[path.name] = rendition.plan(meta, settings).stream
            except rendition.Skipped as exc:  # the original plays (or no path)
                streams[path.name] = exc.reason.value
            with contextlib.suppress(rendition.Skipped):
                hevc[path.name] = rendition.plan_hevc(meta, settings).stream
    total = len(streams)
    counts = {k: sum(1 for s in streams.values() if s == k)
              for k in sorted(set(streams.values()))}
    remux = counts.get("remux", 0)
    as_is = counts.get("not_needed", 0)
    unplayable = total - as_is
    common.log(f"corpus plans: {counts}; HEVC renditions: {hevc}")
    share = (remux + as_is) / total
    # where HEVC decodes (Safari; Chrome, Edge, Firefox with a hardware decoder), the
    # HEVC rendition (a copy, or the original) serves what the strict plan transcodes
    copied = sum(1 for name in hevc if streams[name] == "transcode")
    hevc_share = (remux + as_is + copied) / total
    return [row(f"camera-style corpus ({total} variants) playable as is or by a remux alone,"
                " in browsers that decode HEVC (the HEVC rendition)",
                f"{hevc_share:.0%} ({as_is} as is + {remux} remux + {copied} HEVC copy)",
                "—", None, f">= {REMUX_SHARE:.0%}", hevc_share >= REMUX_SHARE),
            row(f"camera-style corpus ({total} variants) playable as is or by a remux alone,"
                " in every browser (no HEVC decoder: Debian's Chromium)",
                f"{share:.0%} ({as_is} as is + {remux} remux)", "—", None,
                f"(informative; >= {REMUX_SHARE:.0%} where HEVC decodes)"),
            row("of the variants that do not play as they are, made playable by a remux"
                " alone (every browser)", f"{remux / unplayable:.0%} ({remux} of {unplayable})",
                "—", None, f"(informative; {counts})")]


def transcoding(scratch: Scratch, system: System) -> None:
    """The derive role transcoding :data:`TRANSCODE_COPIES` HEVC clips (eager, renditions
    only) while the clips are dropped: waits until the first transcode's ffmpeg runs."""
    source = hevc_clip()
    folder = scratch.root / "hevc"
    folder.mkdir()
    for i in range(TRANSCODE_COPIES):
        target = folder / f"hevc{i}.mp4"
        shutil.copyfile(source, target)
        target.rename(system.inbox / target.name)
    system.wait_done(TRANSCODE_COPIES, timeout=300)
    role = system.start_role("derive", env={"VIDEODROP_DERIVE": "rendition",
                                            "VIDEODROP_TRANSCODE": "eager"})
    # its ffmpeg encoding (at nice 19 on a loaded machine its first progress report may
    # take minutes: what counts is that the transcode runs while the clips are dropped)
    wait_for(lambda: common.ffmpeg_children(role.pid, "libx264"), timeout=300,
             what="a transcode under way")


def drop_row() -> Row:
    clips = common.clips(latency.FILES)
    got = latency.run_once(clips, 2.0, backlog=transcoding)
    p50, b50 = percentile(got["ours"], 50), percentile(got["bare"], 50)
    pending = got["pending_derivatives"]  # the transcodes still under way at the end
    common.log(f"drop-to-ready while transcoding: p50 {ms(p50)}, bare ffprobe {ms(b50)};"
               f" {pending} renditions pending at the end; {latency.stages(got)};"
               f" {latency.journey(got)}")
    return row(f"drop-to-ready p50 while a transcode runs ({pending} pending at the end)",
               ms(p50), f"bare ffprobe {ms(b50)}", p50 / b50, f"<= {DROP_RATIO}x",
               p50 / b50 <= DROP_RATIO and pending > 0)


ROWS = ("remux", "transcode", "share", "drop")


def main(only: Sequence[str] = ROWS) -> list[Row]:
    """The rows named in ``only`` (:data:`ROWS`), in that order."""
    common.BENCH_VAR.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    if "remux" in only:
        rows += remux_row(tool())
    if "transcode" in only:
        rows.append(transcode_row(tool()))
    if "share" in only:
        rows += share_rows()
    if "drop" in only:
        rows.append(drop_row())
    return rows


if __name__ == "__main__":
    wanted = sys.argv[1:] or list(ROWS)
    if any(w not in ROWS for w in wanted):
        sys.exit(f"usage: bench/renditions.py [{'] ['.join(ROWS)}]")
    common.standalone(lambda: main(wanted), "renditions: remux, transcode, corpus share,"
                      " drop-to-ready")
