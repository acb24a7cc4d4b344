"""Slow and silent clients against the API: how long ``/healthz`` and a token lookup take
while 64 sockets send their request head a byte a second, 32 send a ``POST /login`` body a
byte a second and 64 send nothing (testbed/hostile.py), straight to gunicorn and through
nginx with ``deploy/nginx.conf``. The reference is the same probes with no attack, in the
same run. Target: every probe answered in under a second.

The API runs as ``videodrop api`` starts it, with the default VIDEODROP_API_WORKERS/THREADS
(2 x 8), on a scratch database holding one ready video.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import the bench package, not bench/*.py
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench import common
from bench.common import Row, Scratch, row
from testbed.databases import rows
from testbed.hostile import Liveness, Probe, under_attack
from testbed.nginx import nginx_in_front

SECONDS = 20.0
ATTACK = {"slow_headers": 64, "slow_bodies": 32, "silent": 64}
TARGET = 1.0  # seconds, every probe


def ready_token(database_url: str) -> str:
    token, source_id = secrets.token_urlsafe(32), secrets.token_hex(6)
    rows(database_url, "INSERT INTO videos (source_id, name, status, access_token,"
         " original_filename, origin, stored_path, size, format) VALUES (%s, 'clip', 'ready',"
         " %s, 'c.mp4', 'upload', %s, 1, 'mp4') RETURNING id", source_id, token,
         f"videos/{source_id}/c.mp4")
    return token


def calm(url: str, paths: tuple[str, ...], count: int = 20) -> list[Probe]:
    probe = Liveness(url, paths)
    return [probe.ask(path) for _ in range(count) for path in paths]


def summary(probes: list[Probe], path: str) -> tuple[float, float, int]:
    """(worst seconds, median seconds, probes without a 200) of ``path``'s probes."""
    mine = [p for p in probes if p.path == path]
    seconds = [p.seconds for p in mine]
    return (max(seconds), common.percentile(seconds, 50),
            sum(1 for p in mine if p.status != 200))


def main() -> list[Row]:
    settings = common.api_settings()
    found: list[Row] = []
    with Scratch("slow-clients", env={"VIDEODROP_API_WORKERS": str(settings.api_workers),
                                      "VIDEODROP_API_THREADS": str(settings.api_threads)}
                 ) as scratch:
        token = ready_token(scratch.database_url)
        system = scratch.system("api")
        paths = ("/healthz", f"/api/video/{token}/")
        with nginx_in_front(system, scratch.root / "nginx") as nginx_url:
            for way, url in (("straight to gunicorn", system.base_url),
                             ("through nginx", nginx_url)):
                quiet = calm(url, paths)
                with common.stage(f"{SECONDS:g} s of slow clients {way}"):
                    probes, attack = under_attack(url, paths, SECONDS, **ATTACK)
                common.log(f"{way}: {attack.opened} hostile sockets opened,"
                           f" {attack.closed_by_server} closed by the server")
                for path, name in zip(paths, ("/healthz", "token lookup"), strict=True):
                    worst, median, failed = summary(probes, path)
                    ref_worst, ref_median, _ = summary(quiet, path)
                    found.append(row(
                        f"{name} under 64 slow-header, 32 slow-body, 64 silent sockets,"
                        f" {way}: worst (median) of {sum(p.path == path for p in probes)}"
                        f" probes, {failed} without a 200",
                        f"{worst:.3f} s ({median * 1000:.1f} ms)",
                        f"{ref_worst:.3f} s ({ref_median * 1000:.1f} ms)",
                        worst / ref_worst if ref_worst else None,
                        f"< {TARGET:g} s each", worst < TARGET and not failed))
    return found


if __name__ == "__main__":
    common.standalone(main, "liveness under slow and silent clients")
