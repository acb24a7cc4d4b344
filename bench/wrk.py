"""wrk, the loopback load generator of bench/stream.py and bench/lookup.py: run it with a
Lua script and read its summary back (requests, bytes, latency percentiles, errors).

``apt-get install wrk`` (Debian/Ubuntu) when it is missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench.common import children, log

# Appended to every script: one machine-readable line at the end of the run. Latencies are
# in microseconds; "status" counts answers outside 2xx/3xx.
DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK_RESULT %d %d %d %d %d %d %d %d\\n",
    summary.requests, summary.bytes, summary.duration,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""

# Load comes from this many clients (addresses), not one: see SEEDING's client().
CLIENTS = 64
# Every thread draws its own random sequence.
SEEDING = f"""
local counter = 0
setup = function(thread)
  counter = counter + 1
  thread:set("thread_id", counter)
end
init = function(args)
  math.randomseed(os.time() * 1000 + (thread_id or 0) * 7919)
end
-- the request comes from one of CLIENTS clients: X-Forwarded-For sent from loopback, a
-- trusted proxy (the API caps the threads one client may hold: api/worker.py)
client = function(headers)
  headers = headers or {{}}
  headers["X-Forwarded-For"] = "198.51.100." .. math.random(1, {CLIENTS})
  return headers
end
"""


@dataclass(frozen=True)
class Load:
    requests: int
    bytes: int
    seconds: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    errors: int
    bad_status: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def bytes_per_s(self) -> float:
        return self.bytes / self.seconds

    def merged(self, other: Load) -> Load:
        """Two runs as one: sums, and the worse percentiles (a conservative p99)."""
        return Load(self.requests + other.requests, self.bytes + other.bytes,
                    self.seconds + other.seconds, max(self.p50_ms, other.p50_ms),
                    max(self.p99_ms, other.p99_ms), max(self.p999_ms, other.p999_ms),
                    self.errors + other.errors, self.bad_status + other.bad_status)


def require() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("bench: wrk is missing; install it: sudo apt-get install wrk")
    return found


def run(url: str, script: str, folder: Path, *, connections: int = 32, threads: int = 2,
        seconds: float = 10.0) -> Load:
    """``wrk`` against ``url`` with ``script`` (a Lua ``request`` function and friends)."""
    lua = folder / f"wrk-{abs(hash(script)) % 10**8}.lua"
    lua.write_text(SEEDING + script + DONE)
    out = subprocess.run(
        [require(), "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s",
         "--timeout", "10s", "-s", str(lua), url],
        capture_output=True, text=True, check=True, timeout=seconds + 60)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRK_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out.stdout}\n{out.stderr}")
    n, size, micros, p50, p99, p999, errors, status = (int(x) for x in line.split()[1:])
    return Load(n, size, micros / 1e6, p50 / 1000, p99 / 1000, p999 / 1000, errors, status)


def alternate(urls: dict[str, str], script: str, folder: Path, pids: dict[str, list[int]], *,
              rounds: int, seconds: float, connections: int,
              describe: Callable[[Load], str],
              per_round: dict[str, list[Load]] | None = None,
              ) -> tuple[dict[str, Load], dict[str, float]]:
    """Short rounds against each of ``urls`` in turn, the order reversed every other round,
    so a busy moment of a shared machine hits all alike. Returns each one's runs merged and
    the CPU seconds its ``pids`` used meanwhile; logs every run with ``describe``; appends
    each run to ``per_round[name]`` when given."""
    results: dict[str, Load] = {}
    cpu = dict.fromkeys(urls, 0.0)
    order = tuple(urls)
    for i in range(rounds):
        for name in (order if i % 2 == 0 else order[::-1]):
            before = cpu_seconds(pids[name])
            load = run(urls[name], script, folder, connections=connections, seconds=seconds)
            cpu[name] += cpu_seconds(pids[name]) - before
            log(f"round {i + 1} {name}: {describe(load)}")
            results[name] = results[name].merged(load) if name in results else load
            if per_round is not None:
                per_round.setdefault(name, []).append(load)
    return results, cpu


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time used so far by these processes (gone ones count 0)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(stat[11]) + int(stat[12])
    return total / _TICK


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (gunicorn's master and workers, nginx's too)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children(current))
    return found


def backends(database_url: str) -> list[int]:
    """The PostgreSQL server processes serving ``database_url``'s other connections."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        got = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                           " AND pid <> pg_backend_pid()").fetchall()
    return [int(r[0]) for r in got]
