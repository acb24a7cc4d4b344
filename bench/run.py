"""``make bench``: every benchmark, then one table (measure | value | reference | ratio |
target | met) with the machine it ran on.

Each benchmark starts the real system on a scratch database and queue prefix of its own
and measures its reference in the same run (bench/common.py). bench/stream.py and
bench/lookup.py are imported by path when present. A benchmark that fails becomes a row
saying so; the rest still run. ``--only ingest,catalog`` runs a subset. The table is
also written to var/bench/last.md.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

if __package__ in (None, ""):  # run as a script: import the bench package, not bench/*.py
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench import common
from bench.common import Row, row

HERE = Path(__file__).resolve().parent
# name -> (module, what the issue calls it); in the order of issue 8's table
BENCHMARKS: dict[str, str] = {
    "ingest": "ingest throughput",
    "latency": "drop-to-ready latency",
    "stream": "/stream/ vs nginx",
    "lookup": "token lookups vs a bare Falcon app",
    "upload": "1 GiB upload",
    "catalog": "catalog with 1,000,000 rows",
    "inbox": "inbox holding 100,000 files",
    "probe": "the cost of every packet (issue 14) and the HLS memory bomb (issue 15)",
    "slow_clients": "liveness under slow and silent clients",
    "login": "guessing the admin token",
    "derive": "posters and storyboards (issue 18)",
    "scenes": "scenes and activity against PySceneDetect (issue 18)",
    "renditions": "browser renditions (issue 19)",
    "frames": "the frame at t for models (issue 22)",
    "clips": "clips by time for models (issue 22)",
    "retention": "retention decision over 1,000,000 rows (issue 21)",
    "timeline": "timelines with 1,000,000 rows (issue 21)",
    "s3_stream": "/stream/ on an s3 store, redirect and proxy (issue 20)",
    "s3_ingest": "ingest into an s3 store: 1 GiB, 100 clips (issue 20)",
}
BY_PATH = {"stream", "lookup"}  # written separately; loaded from their files when present


def load(name: str) -> ModuleType | None:
    if name not in BY_PATH:
        return importlib.import_module(f"bench.{name}")
    path = HERE / f"{name}.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location(f"bench.{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def run_one(name: str) -> list[Row]:
    try:
        module = load(name)
    except Exception as exc:
        traceback.print_exc()
        return [row(BENCHMARKS[name], f"could not load bench/{name}.py: {exc!r}"[:120],
                    met=False)]
    if module is None:
        return [row(BENCHMARKS[name], f"skipped: bench/{name}.py is not there (yet)")]
    main: Callable[[], list[Row]] | None = getattr(module, "main", None)
    if main is None:
        return [row(BENCHMARKS[name], f"skipped: bench/{name}.py has no main()")]
    try:
        return list(main())
    except Exception as exc:
        traceback.print_exc()
        return [row(BENCHMARKS[name], f"failed: {exc!r}"[:160], met=False)]


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # unwinds: scratch systems are cleaned up


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    args = parser.parse_args(argv)
    names = list(BENCHMARKS)
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in BENCHMARKS]
        if unknown:
            parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
        names = [n for n in names if n in wanted]
    signal.signal(signal.SIGTERM, _interrupt)
    machine = common.machine()
    common.log(f"machine: {machine}")
    rows: list[Row] = []
    t0 = time.monotonic()
    for name in names:
        with common.stage(f"[{name}] {BENCHMARKS[name]}"):
            rows += run_one(name)
    total = time.monotonic() - t0
    title = (f"videodrop benchmarks — {machine}; {total / 60:.1f} min"
             f" ({time.strftime('%Y-%m-%d %H:%M %Z')})")
    print()
    common.print_table(rows, title)
    common.BENCH_VAR.mkdir(parents=True, exist_ok=True)
    with open(common.BENCH_VAR / "last.md", "w") as fh:
        common.print_table(rows, title, file=fh)
    missed = [r["measure"] for r in rows if r.get("met") is False]
    print(f"\n{len(rows) - len(missed)} of {len(rows)} rows met or informative;"
          f" missed: {len(missed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
