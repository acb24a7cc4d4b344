"""Drop-to-ready latency: one clip at a time into an idle system (rename into the inbox,
wait for its row to be ``ready``, next), 20 files; p50 and p99 against one bare ffprobe run
on the same file (our prober's main-run arguments), timed just before each drop, while
the system idles.

The settle window (VIDEODROP_SETTLE_SECONDS, default 2 s) is a deliberate wait: a file
counts as finished only once it has been quiet for the window, so it is measured twice,
with the default and with 0.2 s. Each drop's journey is taken apart from the roles' JSON
logs: drop → published (settle), published → probe summary line (queue, claim, probe,
commit), and the probe into its ffprobe stages (listing, guessed head decode, the wait
for it, a head decode after the listing).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: import the bench package, not bench/*.py
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import psycopg

from bench import common
from bench.common import Row, Scratch, System, ms, percentile, row
from bench.ingest import log_events, stage, when

FILES = 20
P50_TARGET = 1.5
P99_TARGET = 3.0
SETTLES = (2.0, 0.2)
#: The longest wait for a change notice before the row is read again.
WAKE_SECONDS = 0.02
#: The ffprobe stages of the probe's summary line (prober/context.py), as ``<stage>_ms``.
STAGES = ("listing", "head_guess", "head_wait", "head", "tail")


def bare_once(path: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(common.ffprobe_args(path), stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def run_once(clips: Sequence[Path], settle: float, timeout: float = 60,
             backlog: Callable[[Scratch, System], None] | None = None) -> dict[str, Any]:
    """Drop ``clips`` one at a time; ``backlog`` (bench/derive.py) first loads the system
    with other work that goes on while they are dropped."""
    with Scratch("latency", env={"VIDEODROP_PROBER_CONCURRENCY": "2",
                                 "VIDEODROP_SETTLE_SECONDS": f"{settle:g}"}) as scratch:
        system = scratch.system()
        if backlog is not None:
            backlog(scratch, system)
        staged = stage(clips, scratch.root / "stage")
        ours: list[float] = []
        bare: list[float] = []
        drops: dict[str, float] = {}
        with psycopg.connect(scratch.database_url, autocommit=True) as conn:
            # the commit that makes a row ready requests its derivatives, whose rows
            # announce the video (migration 0009): woken by that notice, not a poll of
            # the database every few ms (which took CPU from what it measured and added
            # half a poll); a notice missed still ends the wait within WAKE_SECONDS
            conn.execute("LISTEN videodrop_videos")
            for clip, path in zip(clips, staged, strict=True):
                bare.append(bare_once(clip))
                time.sleep(0.2)  # idle again
                drops[path.name] = time.time()
                t0 = time.perf_counter()
                os.rename(path, system.inbox / path.name)
                deadline = t0 + timeout
                while True:
                    got = conn.execute("SELECT status FROM videos WHERE original_filename = %s",
                                       (path.name,)).fetchone()
                    if got and got[0] in ("ready", "failed"):
                        break
                    if time.perf_counter() > deadline:
                        raise RuntimeError(f"{path.name} not ready after {timeout} s")
                    for _ in conn.notifies(timeout=WAKE_SECONDS, stop_after=1):
                        pass
                ours.append(time.perf_counter() - t0)
                if got[0] != "ready":
                    raise RuntimeError(f"{path.name} ended {got[0]}")
        published = {x["path"]: when(x) for x in log_events(system, "ingest", "published")}
        probes = [x for x in log_events(system, "prober", "probe")
                  if str(x.get("path")) in drops]  # not the backlog's
        settle_parts = [published[n] - t for n, t in drops.items() if n in published]
        # published → the prober's start on it (the queue, the delivery): its summary
        # line's time less its total
        queued = [when(x) - float(x.get("total_ms", 0)) / 1000 - published[str(x["path"])]
                  for x in probes if str(x.get("path")) in published]
        return {"ours": ours, "bare": bare, "to_publish": settle_parts, "queued": queued,
                "claim_ms": [float(x.get("claim_ms", 0)) for x in probes],
                "commit_ms": [float(x.get("commit_ms", 0)) for x in probes],
                "probe_ms": [float(x.get("total_ms", 0)) for x in probes],
                "ffprobe_ms": [float(x.get("probe_ms", 0)) for x in probes],
                "stages": {stage: [float(x[f"{stage}_ms"]) for x in probes if f"{stage}_ms" in x]
                           for stage in STAGES},
                "guesses": [str(x.get("head_guess")) for x in probes],
                "pending_derivatives": pending_derivatives(scratch.database_url)}


def pending_derivatives(database_url: str) -> int:
    """Derivative requests still pending (a derive backlog still running at the end)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        got = conn.execute("SELECT count(*) FROM derivatives WHERE status = 'pending'"
                           ).fetchone()
    return int(got[0]) if got else 0


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def stages(got: dict[str, Any]) -> str:
    """The median of each ffprobe stage the drops ran, and how often the guessed head
    decode was the one needed: ``listing 90 ms, head_guess 85 ms, …; guess used 20/20``."""
    timed = [f"{stage} {median(ms_of):.0f} ms (of {len(ms_of)})"
             for stage, ms_of in got["stages"].items() if ms_of]
    used = sum(g == "used" for g in got["guesses"])
    return f"median {', '.join(timed) or 'no stage timed'}; guess used {used}/{len(got['guesses'])}"


def journey(got: dict[str, Any]) -> str:
    """Where a drop's time went, medians: ``drop→published 40 ms, queued 5 ms, claim 3 ms,
    ffprobe runs + sha256 120 ms, commit 6 ms, prober total 135 ms``."""
    parts = [("drop→published", [v * 1000 for v in got["to_publish"]]),
             ("queued", [v * 1000 for v in got.get("queued", [])]),
             ("claim", got.get("claim_ms", [])), ("ffprobe runs + sha256", got["ffprobe_ms"]),
             ("commit", got.get("commit_ms", [])), ("prober total", got["probe_ms"])]
    return ", ".join(f"{name} {median(values):.0f} ms" for name, values in parts if values)


def main() -> list[Row]:
    clips = common.clips(FILES)
    rows: list[Row] = []
    for settle in SETTLES:
        with common.stage(f"drop-to-ready latency, settle {settle:g} s"):
            got = run_once(clips, settle)
        ours, bare = got["ours"], got["bare"]
        p50, p99 = percentile(ours, 50), percentile(ours, 99)
        b50, b99 = percentile(bare, 50), percentile(bare, 99)
        common.log(
            f"settle {settle:g} s: p50 {ms(p50)}, p99 {ms(p99)}; bare ffprobe p50 {ms(b50)},"
            f" p99 {ms(b99)}; median drop→published {ms(median(got['to_publish']))},"
            f" median prober total {median(got['probe_ms']):.0f} ms"
            f" (ffprobe runs + sha256 {median(got['ffprobe_ms']):.0f} ms); {stages(got)}")
        label = "default" if settle == 2.0 else "short"
        rows.append(row(f"drop-to-ready p50, 1 file into idle system (settle {settle:g} s,"
                        f" {label})", ms(p50), ms(b50), p50 / b50, f"<= {P50_TARGET}x",
                        p50 / b50 <= P50_TARGET))
        rows.append(row(f"drop-to-ready p99 of {FILES} (settle {settle:g} s, {label})",
                        ms(p99), ms(b99), p99 / b99, f"<= {P99_TARGET}x",
                        p99 / b99 <= P99_TARGET))
    return rows


if __name__ == "__main__":
    common.standalone(main, "drop-to-ready latency")
