"""Ingest throughput: 100 short clips dropped at once into the inbox of the real system
(ingest + prober with VIDEODROP_PROBER_CONCURRENCY=2 + api) until every one is ``ready``,
against bare ffprobe over the same files, 2 at a time: a plain metadata probe
(``common.ffprobe_args``: our prober's main-run arguments without the tail read that checks
a file plays to its end; that read is part of what we own).

"Dropped at once": the clips are first copied into a staging folder on the inbox's file
system, then renamed into the inbox one after another (a few ms for all 100: inotify
``moved_to`` events). The clock runs from the first rename until the database shows the
last row ``ready`` (polled every 20 ms on one connection). Measured with the default settle
window (2 s) and a short one (0.2 s): every file waits at least the window before it is
published, so the window sits on the critical path once; the value column says what share
of the total passed before the first file was published. The reference runs before and
after the system's run (their mean), so a busy spell of a shared machine hits both alike;
the log line also gives CPU seconds (ours: every role and its ffprobes, start to stop).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: import the bench package, not bench/*.py
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import psycopg

from bench import common
from bench.common import Row, Scratch, row

CLIPS = 100
TARGET = 0.9
SETTLES = (2.0, 0.2)


def bare_ffprobe(paths: Sequence[Path], parallel: int = 2) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of ffprobe (our main-run arguments) over ``paths``,
    ``parallel`` at a time."""
    def one(path: Path) -> None:
        subprocess.run(common.ffprobe_args(path), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)

    cpu0 = common.children_cpu()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(one, paths))
    return time.perf_counter() - t0, common.children_cpu() - cpu0


def stage(paths: Sequence[Path], folder: Path) -> list[Path]:
    """Copies of ``paths`` in ``folder`` (same file system as the inbox), ready to rename."""
    folder.mkdir(parents=True, exist_ok=True)
    staged = []
    for path in paths:
        target = folder / path.name
        shutil.copyfile(path, target)
        staged.append(target)
    return staged


def drop(staged: Sequence[Path], inbox: Path) -> None:
    for path in staged:
        os.rename(path, inbox / path.name)


def finished(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """(rows ready, rows failed)."""
    got = conn.execute("SELECT count(*) FILTER (WHERE status = 'ready'),"
                       " count(*) FILTER (WHERE status = 'failed') FROM videos").fetchone()
    assert got is not None
    return int(got[0]), int(got[1])


def log_events(system: common.System, role: str, event: str) -> list[dict[str, Any]]:
    found = []
    for line in system.log_text(role).splitlines():
        if f'"{event}"' not in line:
            continue
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if data.get("event") == event:
            found.append(data)
    return found


def when(data: dict[str, Any]) -> float:
    """A log line's timestamp as seconds since the epoch."""
    return datetime.fromisoformat(str(data["timestamp"]).replace("Z", "+00:00")).timestamp()


def probe_breakdown(system: common.System) -> dict[str, float]:
    """Mean claim / probe / commit / total ms per file from the prober's summary lines."""
    lines = log_events(system, "prober", "probe")
    keys = ("claim_ms", "probe_ms", "commit_ms", "total_ms")
    return {k: sum(float(x.get(k, 0)) for x in lines) / max(1, len(lines)) for k in keys}


def run_once(clips: Sequence[Path], settle: float, timeout: float = 180,
             probers: int = 2) -> dict[str, Any]:
    cpu0 = common.children_cpu()
    got = _run_once(clips, settle, timeout, probers)
    got["cpu"] = common.children_cpu() - cpu0  # every role and its ffprobes, start to stop
    return got


def _run_once(clips: Sequence[Path], settle: float, timeout: float,
              probers: int) -> dict[str, Any]:
    with Scratch("ingest", env={"VIDEODROP_PROBER_CONCURRENCY": str(probers),
                                "VIDEODROP_SETTLE_SECONDS": f"{settle:g}"}) as scratch:
        system = scratch.system()
        staged = stage(clips, scratch.root / "stage")
        with psycopg.connect(scratch.database_url, autocommit=True) as conn:
            t_wall = time.time()
            t0 = time.perf_counter()
            drop(staged, system.inbox)
            deadline = t0 + timeout
            while True:
                ready, failed = finished(conn)
                if ready + failed >= len(clips):
                    break
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"only {ready} of {len(clips)} ready after {timeout} s")
                time.sleep(0.02)
            elapsed = time.perf_counter() - t0
            first = conn.execute("SELECT min(processing_started_at) FROM videos").fetchone()
        published = [when(x) for x in log_events(system, "ingest", "published")]
        return {
            "seconds": elapsed,
            "ready": ready,
            "failed": failed,
            "first_claim": (first[0].timestamp() - t_wall) if first and first[0] else None,
            "first_publish": (min(published) - t_wall) if published else None,
            "last_publish": (max(published) - t_wall) if published else None,
            "breakdown": probe_breakdown(system),
        }


def main() -> list[Row]:
    clips = common.clips(CLIPS)
    rows: list[Row] = []
    bare_ffprobe(clips[:4])  # warm the page cache and ffprobe's libraries
    for settle in SETTLES:
        with common.stage(f"ingest throughput, settle {settle:g} s"):
            before, before_cpu = bare_ffprobe(clips, parallel=2)
            ours = run_once(clips, settle)
            after, after_cpu = bare_ffprobe(clips, parallel=2)
        # the reference runs before and after ours: a busy spell of the machine hits both
        ref = (before + after) / 2
        ratio = ref / ours["seconds"]
        b = ours["breakdown"]
        common.log(
            f"settle {settle:g} s: {ours['seconds']:.2f} s for {CLIPS} ({ours['failed']} failed);"
            f" bare ffprobe x2 {before:.2f} s before, {after:.2f} s after; CPU: ours"
            f" {ours['cpu']:.1f} s (all roles, start to stop), bare"
            f" {(before_cpu + after_cpu) / 2:.1f} s;"
            f" first publish +{ours['first_publish'] or 0:.2f} s,"
            f" last publish +{ours['last_publish'] or 0:.2f} s, first claim"
            f" +{ours['first_claim'] or 0:.2f} s; per file: claim {b['claim_ms']:.0f} ms,"
            f" probe {b['probe_ms']:.0f} ms, commit {b['commit_ms']:.0f} ms")
        label = "default" if settle == 2.0 else "short"
        waited = (ours["first_publish"] or 0.0) / ours["seconds"]  # the settle window's share
        rows.append(row(
            f"ingest throughput, {CLIPS} clips at once (settle {settle:g} s, {label})",
            f"{CLIPS / ours['seconds']:.1f} clips/s ({ours['seconds']:.2f} s, of which"
            f" {waited:.0%} before the first publish)",
            f"{CLIPS / ref:.1f} clips/s ({ref:.2f} s)",
            ratio, f">= {TARGET}x", ratio >= TARGET if ours["failed"] == 0 else False))
    # The alternative: one more probe than cores, so that while one prober is between two
    # ffprobe runs (claim, hash, move, commit, ack) both cores still run ffprobe.
    with common.stage("ingest throughput, 3 probers (cores + 1)"):
        before, _ = bare_ffprobe(clips, parallel=2)
        ours = run_once(clips, 2.0, probers=3)
        after, _ = bare_ffprobe(clips, parallel=2)
    ref = (before + after) / 2
    rows.append(row(
        f"ingest throughput, {CLIPS} clips: alternative, VIDEODROP_PROBER_CONCURRENCY=3",
        f"{CLIPS / ours['seconds']:.1f} clips/s ({ours['seconds']:.2f} s)",
        f"{CLIPS / ref:.1f} clips/s ({ref:.2f} s)", ref / ours["seconds"], "(informative)"))
    return rows


if __name__ == "__main__":
    common.standalone(main, "ingest throughput")
