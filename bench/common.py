"""What every benchmark shares: servers, a scratch system (database, queue prefix, folders),
clips made once with ffmpeg, percentiles, /proc readings, and the one table.

A benchmark module exposes ``main() -> list[dict]``; each dict is a row with the keys
``measure, value, reference, ratio, target, met`` (``met``: True, False or None when the
row is informative only). Run alone (``python bench/ingest.py``) it prints its own table.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import resource
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import pika  # noqa: E402
import pika.exceptions  # noqa: E402
import requests  # noqa: E402

from testbed.broker import delete_amqp_names  # noqa: E402
from testbed.databases import drop_database, fresh_database  # noqa: E402
from testbed.system import System  # noqa: E402
from testbed.waits import wait_for  # noqa: E402
from videodrop.settings import Settings  # noqa: E402

BENCH_VAR = REPO / "var" / "bench"
CACHE = BENCH_VAR / "cache"  # generated inputs kept between runs (clips)
Row = dict[str, Any]

__all__ = [
    "BENCH_VAR",
    "CACHE",
    "REPO",
    "Row",
    "Scratch",
    "System",
    "clips",
    "ffprobe_args",
    "log",
    "machine",
    "percentile",
    "print_table",
    "queue_depth",
    "row",
    "rss_kib",
    "servers",
    "wait_for",
]


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# --- servers ---------------------------------------------------------------------------

_servers: tuple[str, str] | None = None


def servers() -> tuple[str, str]:
    """(PostgreSQL server URL whose user may create databases, AMQP URL).

    ``VIDEODROP_BENCH_DATABASE_URL`` / ``VIDEODROP_BENCH_AMQP_URL`` when set, else the
    machine's own servers on 127.0.0.1; when those do not answer, deploy/devstack/
    starts throwaway ones under var/ (as ``make run`` does)."""
    global _servers
    if _servers is None:
        from deploy import devstack

        pg = os.environ.get("VIDEODROP_BENCH_DATABASE_URL",
                            "postgresql://postgres@127.0.0.1:5432/postgres")
        amqp = os.environ.get("VIDEODROP_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
        var = REPO / "var"
        _servers = (devstack.ensure_postgres(pg, var), devstack.ensure_amqp(amqp, var))
    return _servers


def queue_depth(url: str, queue: str) -> int | None:
    """Messages ready in ``queue`` (passive declare); None while it does not exist."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        ok = conn.channel().queue_declare(queue, passive=True)
        return int(ok.method.message_count)
    except pika.exceptions.ChannelClosedByBroker:
        return None
    finally:
        with contextlib.suppress(Exception):
            conn.close()


# --- a scratch system ------------------------------------------------------------------

@dataclass
class Scratch:
    """A folder under var/bench, a fresh migrated database and an AMQP prefix of its own;
    ``system()`` gives the real roles on them (testbed/system.py). ``close()`` stops every
    process, drops the database, deletes the queues and removes the folder."""

    name: str = "run"
    env: dict[str, str] = field(default_factory=dict)
    root: Path = field(init=False)
    database_url: str = field(init=False)
    amqp_url: str = field(init=False)
    prefix: str = field(init=False)
    systems: list[System] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.server_url, self.amqp_url = servers()
        BENCH_VAR.mkdir(parents=True, exist_ok=True)
        self.root = BENCH_VAR / f"{self.name}-{secrets.token_hex(4)}"
        self.root.mkdir()
        self.prefix = f"vdbench_{secrets.token_hex(4)}"
        self.database_url = fresh_database(self.server_url, prefix="vdbench")

    def system(self, *roles: str, **env: str) -> System:
        """The roles (default: api, prober, ingest) started on this scratch's database,
        queues and folders; extra environment from ``self.env`` and ``env``."""
        sys_ = System(self.root, self.database_url, self.amqp_url, self.prefix,
                      extra_env={**self.env, **env})
        self.systems.append(sys_)
        roles = roles or ("api", "prober", "ingest")
        for role in roles:
            sys_.start_role(role)
        if "api" in roles:
            def healthy() -> bool:
                try:
                    return sys_.http.get(f"{sys_.base_url}/healthz", timeout=5).ok
                except requests.RequestException:  # not up yet, or slow on a busy machine
                    return False
            wait_for(healthy, timeout=60, what="the API to answer /healthz")
        if "prober" in roles:
            sys_.wait_consumers(1)
        return sys_

    def close(self) -> None:
        for sys_ in self.systems:
            with contextlib.suppress(Exception):
                sys_.stop()
        self.systems.clear()
        with contextlib.suppress(Exception):
            drop_database(self.server_url, self.database_url)
        with contextlib.suppress(Exception):
            delete_amqp_names(self.amqp_url, self.prefix)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- inputs ----------------------------------------------------------------------------

def clips(count: int = 100) -> list[Path]:
    """``count`` distinct short clips (1-2 s, 320x240, H.264 + AAC, MP4), made once with
    ffmpeg's lavfi sources into var/bench/cache/clips and reused by later runs."""
    folder = CACHE / "clips"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"clip_{i:03d}.mp4" for i in range(count)]
    missing = [(i, p) for i, p in enumerate(paths) if not p.exists()]
    if missing:
        log(f"making {len(missing)} clips with ffmpeg into {folder} (once)")

        def make(item: tuple[int, Path]) -> None:
            i, path = item
            seconds = 1 + (i % 5) / 4  # 1, 1.25 ... 2 s
            tmp = path.with_suffix(".tmp.mp4")
            subprocess.run(
                ["ffmpeg", "-v", "error", "-y",
                 "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=25:duration={seconds}",
                 "-f", "lavfi", "-i", f"sine=frequency={200 + 10 * i}:duration={seconds}",
                 "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                 "-c:a", "aac", "-b:a", "64k", "-shortest", "-movflags", "+faststart",
                 str(tmp)],
                check=True)
            tmp.rename(path)

        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            list(pool.map(make, missing))
    return paths


def ffprobe_args(path: Path | str) -> list[str]:
    """A bare metadata probe: the arguments of our prober's main run (prober/ffprobe.py:
    run_probe) without its tail read (``-show_entries packet=... -read_intervals``), which
    our prober adds to check that the file really plays to its claimed duration."""
    return ["ffprobe", "-hide_banner", "-v", "error", "-print_format", "json",
            "-show_format", "-show_streams", "-show_chapters", "-show_error", f"file:{path}"]


def ffmpeg_children(pid: int, argument: str | None = None) -> list[int]:
    """The ffmpeg processes whose parent is ``pid`` (a child keeps its pid through the
    setpriv and prlimit execs that precede ffmpeg), with ``argument`` among their
    arguments when given."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm, _, rest = stat.partition("(")[2].rpartition(")")
        if comm != "ffmpeg" or int(rest.split()[1]) != pid:
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argument is None or argument.encode() in args:
            found.append(int(entry.name))
    return found


# --- figures ---------------------------------------------------------------------------

def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), -(-len(ordered) * p // 100)))
    return ordered[int(rank) - 1]


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def children_cpu() -> float:
    """CPU seconds (user + system) of every child process that has ended and been waited
    for, with their own waited-for descendants (the roles and their ffprobes)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def rss_kib(pid: int, key: str = "VmRSS") -> int:
    """``VmRSS`` (or ``VmHWM``, the peak) of a process from /proc, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc/*/stat)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def row(measure: str, value: Any, reference: Any = "—",  # noqa: PLR0917 - a table row
        ratio: float | None = None, target: str = "—", met: bool | None = None) -> Row:
    return {"measure": measure, "value": value, "reference": reference, "ratio": ratio,
            "target": target, "met": met}


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, IndexError, ValueError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kib / 1024**2:.0f} GiB RAM"
    load = ""
    with contextlib.suppress(OSError):
        load = ", load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return (f"{os.cpu_count()} cores ({model}){mem}, Linux {platform.release()}, "
            f"Python {platform.python_version()}{load}")


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:.2f}x"
    return str(value)


def print_table(rows: Sequence[Row], title: str | None = None, file: Any = None) -> None:
    """One Markdown table: measure | value | reference | ratio | target | met."""
    out = file or sys.stdout
    if title:
        print(title, file=out)
        print(file=out)
    head = ["measure", "value", "reference", "ratio", "target", "met"]
    cells = [[_cell(r.get(k)) for k in head] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h)
              for i, h in enumerate(head)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |",
          file=out)
    print("| " + " | ".join("-" * w for w in widths) + " |", file=out)
    for c in cells:
        print("| " + " | ".join(x.ljust(w) for x, w in zip(c, widths, strict=True)) + " |",
              file=out)
    out.flush()


def standalone(main: Callable[[], list[Row]], title: str) -> None:
    """Run one benchmark module as a script: its rows as a table, with the machine."""
    rows = main()
    print()
    print_table(rows, f"{title} — {machine()}")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds >= 0.1 else f"{seconds * 1000:.1f} ms"


@contextlib.contextmanager
def stage(what: str) -> Iterator[None]:
    log(f"{what} ...")
    t0 = time.monotonic()
    yield
    log(f"{what}: {time.monotonic() - t0:.1f} s")


def api_settings() -> Settings:
    """The default settings, except VIDEODROP_API_WORKERS/THREADS when set (to measure
    other gunicorn settings: the reference runs with the same ones)."""
    settings = Settings()
    for name in ("api_workers", "api_threads"):
        value = os.environ.get(f"VIDEODROP_{name.upper()}")
        if value:
            settings = settings.with_(**{name: int(value)})
    return settings
