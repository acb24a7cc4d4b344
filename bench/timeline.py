"""Timelines at 1,000,000 rows against the same at 1,000 rows (docs/timeline.md).

The rows of bench/catalog.py (``fill``: created_at 20 s apart, a third of them in
``inbox/cam1/<day>``), each ready one given a recording as migration 0015's backfill would
(its mtime minus its duration; on the inbox's first-level folder's timeline), then
``VACUUM ANALYZE``. One API per database, both up at once; requests alternate between them,
one at a time over one keep-alive connection:

- ``GET /api/origins/inbox/cam1/timeline`` of one hour in the middle of the history (about
  50 recordings in both catalogs): three range reads of the timeline index, whatever the
  history's length: p99 at 1M against 1k rows.
- ``GET /api/origins``: an aggregate over every ready recording (an index-only scan of
  the timeline index): grows with the rows; p99 at 1M rows, informative.
- the query behind ``/metrics``' origin gauges (``Catalog.origin_activity``: every origin's
  last end and its gaps of the last 24 hours), timed in this process: informative.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

if __package__ in (None, ""):  # run as a script: import the bench package, not bench/*.py
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench import common
from bench.catalog import BIG, SMALL, Client, fill, template_record
from bench.common import Row, Scratch, ms, percentile, row

REQUESTS, WARMUP = 300, 20
ORIGINS_REQUESTS = 30
TARGET = 1.5  # an hour's timeline at 1M rows against the same at 1k

RECORD = """
UPDATE videos
SET recorded_start = created_at - make_interval(secs => coalesce(duration, 0)),
    recorded_end = created_at, recorded_source = 'mtime',
    timeline_origin = CASE WHEN origin LIKE 'inbox/%%'
                           THEN 'inbox/' || split_part(origin, '/', 2) ELSE origin END
WHERE status = 'ready'
"""


def record_all(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE videos DISABLE TRIGGER USER")
        conn.execute(RECORD)
        conn.execute("ALTER TABLE videos ENABLE TRIGGER USER")
        conn.execute("VACUUM (ANALYZE) videos")


def middle_hour(url: str) -> tuple[str, str]:
    with psycopg.connect(url) as conn:
        found = conn.execute("SELECT min(recorded_start), max(recorded_start) FROM videos"
                             " WHERE timeline_origin = 'inbox/cam1'").fetchone()
    assert found is not None and found[0] is not None
    start = found[0] + (found[1] - found[0]) / 2 - timedelta(minutes=30)
    return (start.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            (start + timedelta(hours=1)).astimezone(UTC).isoformat().replace("+00:00", "Z"))


def main() -> list[Row]:
    metadata, raw = template_record()
    off = {"VIDEODROP_TOKEN_CACHE_SIZE": "0"}
    with Scratch("timeline-big", env=off) as big_s, Scratch("timeline-small", env=off) as small_s:
        for scratch, n in ((big_s, BIG), (small_s, SMALL)):
            with common.stage(f"timeline: {n:,} rows"):
                fill(scratch.database_url, n, metadata, raw)
                took = common.timed(lambda s=scratch: record_all(s.database_url))
                common.log(f"timeline: {n:,} rows given their recordings in {took:.1f} s")
        targets = []
        for scratch in (big_s, small_s):
            system = scratch.system("api")
            frm, to = middle_hour(scratch.database_url)
            path = f"/api/origins/inbox/cam1/timeline?from={frm}&to={to}"
            targets.append((Client(system.base_url, system.admin), path))
        times: list[list[float]] = [[], []]
        counts: list[int] = [0, 0]
        with common.stage("timeline: an hour's timeline, alternating between 1M and 1k"):
            for i in range(REQUESTS + WARMUP):
                for k, (client, path) in enumerate(targets):
                    seconds, status, body = client.get(path)
                    if status != 200:
                        raise RuntimeError(f"GET {path} answered {status}: {body[:200]!r}")
                    if i >= WARMUP:
                        times[k].append(seconds)
                    counts[k] = body.count(b'"video_url"')
        origins: list[float] = []
        for _ in range(ORIGINS_REQUESTS):
            seconds, status, _body = targets[0][0].get("/api/origins")
            assert status == 200
            origins.append(seconds)
        for client, _ in targets:
            client.close()
        from videodrop.catalog import Catalog
        catalog = Catalog.connect(big_s.database_url)
        try:
            activity = []
            for _ in range(10):
                t0 = time.perf_counter()
                catalog.origin_activity(datetime.now(UTC) - timedelta(hours=24), {}, 1.0,
                                        timedelta(hours=6))
                activity.append(time.perf_counter() - t0)
        finally:
            catalog.close()
    b99, s99 = percentile(times[0], 99), percentile(times[1], 99)
    common.log(f"timeline hour: 1M rows p50 {ms(percentile(times[0], 50))} p99 {ms(b99)}"
               f" ({counts[0]} recordings); 1k rows p50 {ms(percentile(times[1], 50))}"
               f" p99 {ms(s99)} ({counts[1]} recordings)")
    o99 = percentile(origins, 99)
    a50 = percentile(activity, 50)
    return [
        row(f"timeline 1M rows: GET /api/origins/{{origin}}/timeline p99, one hour"
            f" ({counts[0]} recordings; 1k rows: {counts[1]})", ms(b99),
            f"{ms(s99)} (1k rows)", b99 / s99, f"<= {TARGET}x", b99 / s99 <= TARGET),
        row("timeline 1M rows: GET /api/origins p99 (an aggregate of every ready recording)",
            ms(o99), "—", None, "(informative)", None),
        row("timeline 1M rows: /metrics' origin query (last end, gaps of 24 h) p50",
            ms(a50), "—", None, "(informative)", None),
    ]


if __name__ == "__main__":
    common.standalone(main, "timelines at a million rows")
