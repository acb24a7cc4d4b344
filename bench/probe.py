"""What the prober's media truth costs: one ffprobe run reading the header and every packet
(``probe_file``), against the header and the packets after the last keyframe alone
(``run_probe(full=False)``, the read the prober did before) and against the sha256 the
prober computes of the same file in the same probe; on a 4 s clip and on a ~760 MB
1080p MP4 (a 20 s clip looped 15 times, made once and kept in var/bench/cache). Five
rounds, alternating, medians. And the HLS memory bomb: time to ``failed`` and the child's
peak RSS, against ``ffprobe -version`` alone.
"""

from __future__ import annotations

import hashlib
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: import the bench package, not bench/*.py
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench import common
from bench.common import Row, row
from prober.ffprobe import run_probe
from prober.probe import probe_file
from videodrop.children import ChildRunner, Completed

ROUNDS = 5
MEASURED = ChildRunner(measure_peak=True)  # the probe's limits, peak memory measured
BOMB = b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nself_a.mp4\n"


def inputs() -> tuple[Path, Path]:
    common.CACHE.mkdir(parents=True, exist_ok=True)
    small, chunk, big = (common.CACHE / n for n in ("probe-4s.mp4", "probe-chunk.mp4",
                                                      "probe-760MB.mp4"))
    lavfi = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i"]
    if not small.exists():
        subprocess.run([*lavfi, "testsrc2=size=320x240:rate=25", "-f", "lavfi", "-i", "sine",
                        "-t", "4", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
                        str(small)], check=True)
    if not big.exists():
        with common.stage("making a ~760 MB MP4"):
            subprocess.run([*lavfi, "testsrc2=size=1920x1080:rate=30", "-f", "lavfi", "-i",
                            "sine", "-t", "20", "-c:v", "libx264", "-preset", "ultrafast",
                            "-b:v", "20M", "-pix_fmt", "yuv420p", "-c:a", "aac", str(chunk)],
                           check=True)
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "14", "-i",
                            str(chunk), "-c", "copy", str(big)], check=True)
    return small, big


def sha256(path: Path) -> None:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)


def medians(steps: dict[str, Callable[[], Any]]) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(ROUNDS):
        for name, step in steps.items():
            times[name].append(common.timed(step))
    return {name: statistics.median(values) for name, values in times.items()}


def bomb(folder: Path) -> tuple[float, int, int]:
    """(seconds to failed, peak RSS of the probe's children, of ffprobe -version), bytes."""
    path = folder / "self_a.mp4"
    path.write_bytes(BOMB)
    peaks: list[int] = []

    def measuring(args: Any, timeout: float, **kwargs: Any) -> Completed:
        done = MEASURED(args, timeout, **kwargs)
        peaks.append(done.max_rss)
        return done

    started = time.perf_counter()
    result = probe_file(path, runner=measuring, version="bench")
    took = time.perf_counter() - started
    assert result.code == "unsupported_container", result.error
    idle = MEASURED(["ffprobe", "-hide_banner", "-version"], 10).max_rss
    return took, max(peaks), idle


def main() -> list[Row]:
    small, big = inputs()
    rows: list[Row] = []
    for label, path in (("4 s clip", small), (f"{big.stat().st_size / 1e6:.0f} MB MP4", big)):
        got = medians({
            "full": lambda p=path: probe_file(p, timeout=120, version="bench"),
            "tail": lambda p=path: run_probe(p, timeout=120, full=False),
            "sha256": lambda p=path: sha256(p),
        })
        rows.append(row(f"probe of a {label}: header and every packet, one ffprobe run",
                        common.ms(got["full"]), f"header + tail {common.ms(got['tail'])}",
                        got["full"] / got["tail"], "(informative)"))
        rows.append(row(f"probe of a {label} against the sha256 the prober takes of it",
                        common.ms(got["full"]), f"sha256 {common.ms(got['sha256'])}",
                        got["full"] / got["sha256"], "(informative)"))
    took, peak, idle = bomb(common.CACHE)
    rows.append(row("HLS memory bomb (self-referencing playlist named .mp4): to failed",
                    common.ms(took), "deadline 30 s", took / 30, "<= 0.1x", took <= 3))
    rows.append(row("HLS memory bomb: the ffprobe children's peak RSS",
                    f"{peak / 2**20:.0f} MiB", f"ffprobe -version {idle / 2**20:.0f} MiB",
                    peak / idle, "<= 1.5x", peak <= 1.5 * idle))
    return rows


if __name__ == "__main__":
    common.standalone(main, "probe: the cost of every packet")
