"""Guessing the admin token: how many wrong tries a second the API evaluates from one client
address (named in X-Forwarded-For, as nginx on loopback does), by ``POST /login`` forms and
by ``Authorization: Bearer`` on ``GET /api/videos`` (wrk, 16 connections); and what a
right login from another address costs, before the guessing and after it.

"Evaluated" is every answer that is not 429 (a refusal that compared nothing). The target:
a guesser gets at most the throttle's burst plus its rate (VIDEODROP_LOGIN_BURST,
VIDEODROP_LOGIN_RATE) in a run, whatever its speed, and a right login takes no longer with
the throttle than its reference, the same login on an API whose address has no failures.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import the bench package, not bench/*.py
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import requests

from bench import common, wrk
from bench.common import Row, Scratch, row

CONNECTIONS = 16
SECONDS = 5.0
RIGHT_LOGINS = 200

# Counts the answers by status in each wrk thread; prints them at the end.
COUNTING = """
local threads = {}
local base_setup = setup
setup = function(thread)
  if base_setup then base_setup(thread) end
  table.insert(threads, thread)
end
response = function(status, headers, body)
  statuses = statuses or {}
  statuses[status] = (statuses[status] or 0) + 1
end
local base_done = done
done = function(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    local counted = thread:get("statuses") or {}
    for status, n in pairs(counted) do total[status] = (total[status] or 0) + n end
  end
  for status, n in pairs(total) do io.write(string.format("STATUS %d %d\\n", status, n)) end
  base_done(summary, latency, requests)
end
"""


def wrong_form() -> str:
    return """
wrk.method = "POST"
wrk.body = "token=not-the-admin-token&next=%2F"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["X-Forwarded-For"] = "203.0.113.9"
"""


def wrong_bearer() -> str:
    return """
wrk.headers["Authorization"] = "Bearer not-the-admin-token"
wrk.headers["X-Forwarded-For"] = "203.0.113.10"
"""


def statuses(url: str, script: str, folder: Path) -> tuple[dict[int, int], float]:
    """Answers by status of a wrk run of ``script`` (plus the counting), and its seconds."""
    lua = folder / "login-count.lua"
    lua.write_text(wrk.SEEDING + script + wrk.DONE + COUNTING)
    out = subprocess.run([wrk.require(), "-t", "2", "-c", str(CONNECTIONS), "-d",
                          f"{SECONDS:g}s", "--timeout", "10s", "-s", str(lua), url],
                         capture_output=True, text=True, check=True, timeout=SECONDS + 60)
    counts = {int(s): int(n) for _, s, n in
              (ln.split() for ln in out.stdout.splitlines() if ln.startswith("STATUS "))}
    result = next(ln for ln in out.stdout.splitlines() if ln.startswith("WRK_RESULT "))
    return counts, int(result.split()[3]) / 1e6


def right_login_seconds(base_url: str, token: str, count: int = RIGHT_LOGINS) -> list[float]:
    took = []
    for _ in range(count):
        t0 = time.perf_counter()
        resp = requests.post(f"{base_url}/login", data={"token": token, "next": "/"},
                             headers={"X-Forwarded-For": "198.51.100.7"},
                             allow_redirects=False, timeout=10)
        took.append(time.perf_counter() - t0)
        if resp.status_code != 303:
            raise RuntimeError(f"the right login answered {resp.status_code}")
    return took


def main() -> list[Row]:
    wrk.require()
    found: list[Row] = []
    with Scratch("login") as scratch:
        system = scratch.system("api")
        quiet = right_login_seconds(system.base_url, system.admin_token)
        for name, path, script in (("POST /login", "/login", wrong_form()),
                                   ("Bearer on GET /api/videos", "/api/videos",
                                    wrong_bearer())):
            counts, seconds = statuses(system.base_url + path, script, scratch.root)
            evaluated = sum(n for status, n in counts.items() if status != 429)
            common.log(f"{name}: answers by status {counts}")
            found.append(row(f"wrong admin tokens evaluated a second, {name}, one address,"
                             f" {CONNECTIONS} conns ({counts.get(429, 0)} answered 429)",
                             f"{evaluated / seconds:.1f}/s", "—", None, "(informative)"))
        # the right login of another address, after the guesses: not slower
        after = right_login_seconds(system.base_url, system.admin_token)
        median, ref = statistics.median(after), statistics.median(quiet)
        found.append(row(f"right login, median of {RIGHT_LOGINS} (after the guessing, vs"
                         " before it)", common.ms(median), common.ms(ref), median / ref,
                         "(informative)"))
    return found


if __name__ == "__main__":
    common.standalone(main, "guessing the admin token")
