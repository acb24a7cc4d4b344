"""The catalog at 1,000,000 rows against the same at 1,000 rows: p99 of token lookups
(``GET /api/video/{token}/`` over random existing tokens) and of admin list pages
(``GET /api/videos?limit=50``: the first page, and deep pages reached through ``next``).
And, at 1,000,000 rows, deep pages of one folder and its subfolders
(``?origin=inbox/cam1``: a third of the rows, in a subfolder per day) against the plain
deep pages of the same run.

Rows are made in SQL (one ``INSERT ... SELECT generate_series``) in a scratch database
migrated by our own migrations; each row looks like a probed clip: the metadata and raw
ffprobe JSON of a real clip, a 43-character token, a claim key, created_at 20 s apart.
For the bulk insert the table's indexes and unique constraints are dropped and rebuilt
after (the same definitions, read from the catalog), then ``VACUUM ANALYZE``, as a
long-running table would be.

One API (gunicorn, 1 worker, 4 threads, as the tests' harness runs it) per database, both up at
once, with the token cache off (``VIDEODROP_TOKEN_CACHE_SIZE=0``): every lookup reads the
database, which is what grows with the rows; requests alternate between the two, so a busy
moment of the machine hits both alike. Requests go one at a time over one keep-alive
connection (latency, not throughput): 2,000 lookups after 200 warm-ups; 300 first pages;
300 deep pages following ``next`` from the middle of the table (wrapping to the middle
again when the list ends).

Deep pages of the list sorted by name and by duration (``sort=name``, ``sort=-duration``),
from the middle through ``next``, against the plain deep pages of the same run.

And the list's ``q`` search (a substring of name, file name, source_id or origin, any case)
at 1,000,000 rows against 1,000: ``SEARCHES`` first pages for the original file name of a
random row (one match each), and as many for a text no row holds (every row a candidate).
Durations vary from row to row (and are NULL for the failed ones), as in a real catalog.
"""

from __future__ import annotations

import http.client
import json
import random
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

if __package__ in (None, ""):  # run as a script: import the bench package, not bench/*.py
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import psycopg
from psycopg.types.json import Jsonb

from bench import common
from bench.common import Row, Scratch, ms, percentile, row

BIG, SMALL = 1_000_000, 1_000
LOOKUPS, WARMUP, PAGES = 2000, 200, 300
SEARCHES = 60  # each: without an index, every row is read
TARGET = 1.2
FOLDER_TARGET = 1.5  # a folder's page against the plain page, both at 1M rows
SORT_TARGET = 1.5  # a sorted deep page against the plain deep page, both at 1M rows
SEARCH_TARGET = 2.0  # a q search at 1M rows against the same at 1k (an index, not a scan)

FILL = """
INSERT INTO videos (source_id, name, description, status, access_token, original_filename,
                    origin, origin_path, stored_path, size, sha256, format, duration,
                    resolution, fps, codec, audio_codec, metadata, ffprobe,
                    processing_started_at, processing_completed_at, attempts,
                    claim_dev, claim_ino, claim_size, claim_mtime_ns, claim_ctime_ns,
                    created_at, updated_at, processing_error, error_code)
SELECT 'file_' || to_char(t, 'YYYYMMDD_HH24MISS') || '_' || lpad(to_hex(i), 12, '0'),
       'clip ' || i, '', CASE WHEN i %% 50 = 0 THEN 'failed' ELSE 'ready' END,
       translate(rtrim(encode(sha256(('token:' || i)::bytea), 'base64'), '='), '+/', '-_'),
       'clip_' || i || '.mp4',
       CASE WHEN i %% 10 = 0 THEN 'upload'
            WHEN i %% 3 = 0 THEN 'inbox/cam1/' || to_char(t, 'YYYY-MM-DD') ELSE 'inbox' END,
       CASE WHEN i %% 10 = 0 THEN NULL ELSE convert_to('clip_' || i || '.mp4', 'UTF8') END,
       'videos/file_' || i || '/clip_' || i || '.mp4',
       100000 + i, encode(sha256(('sha:' || i)::bytea), 'hex'), 'mp4',
       CASE WHEN i %% 50 = 0 THEN NULL ELSE ((i::bigint * 7919) %% 36000) / 10.0 END,
       '320x240', 25.0, 'h264', 'aac', %(metadata)s, %(raw)s,
       t + interval '1 second', t + interval '2 seconds', 1,
       CASE WHEN i %% 10 = 0 THEN NULL ELSE 2049 END,
       CASE WHEN i %% 10 = 0 THEN NULL ELSE i END,
       CASE WHEN i %% 10 = 0 THEN NULL ELSE 100000 + i END,
       CASE WHEN i %% 10 = 0 THEN NULL ELSE 1700000000000000000 + i END,
       CASE WHEN i %% 10 = 0 THEN NULL ELSE 1700000000000000000 + i END,
       t, t + interval '2 seconds',
       CASE WHEN i %% 50 = 0 THEN 'not a media file: Invalid data' END,
       CASE WHEN i %% 50 = 0 THEN 'not_media' END
FROM generate_series(%(low)s::int, %(high)s::int) AS i,
     LATERAL (SELECT now() - (%(n)s::int - i) * interval '20 seconds' AS t) AS c
"""


def template_record() -> tuple[dict[str, Any], dict[str, Any]]:
    """(metadata, raw ffprobe JSON) of a real clip, as the prober stores them."""
    from prober.ffprobe import ffprobe_version
    from prober.probe import probe_file

    result = probe_file(common.clips(1)[0], version=ffprobe_version())
    return {**result.metadata, "sha256": "0" * 64}, result.raw or {}


def fill(url: str, n: int, metadata: dict[str, Any], raw: dict[str, Any]) -> None:
    """``n`` rows in ``videos``: indexes dropped, INSERT ... SELECT (two halves on two
    connections: one per core), indexes rebuilt; ``video_folders`` (migration 0008) filled
    in one statement, as the migration does, instead of by its trigger row by row."""

    def insert(low: int, high: int) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(FILL, {"n": n, "low": low, "high": high, "metadata": Jsonb(metadata),
                                "raw": Jsonb(raw)})

    with psycopg.connect(url, autocommit=True) as conn:
        constraints = conn.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'videos'::regclass AND contype = 'u'").fetchall()
        indexes = conn.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = 'videos'"
            " AND i.indexname NOT IN (SELECT conname FROM pg_constraint"
            "  WHERE conrelid = 'videos'::regclass)").fetchall()
        for name, _ in constraints:
            conn.execute(f'ALTER TABLE videos DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        conn.execute("SET maintenance_work_mem = '256MB'")
        conn.execute("ALTER TABLE videos DISABLE TRIGGER USER")
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda span: insert(*span), [(1, n // 2), (n // 2 + 1, n)]))
        conn.execute("ALTER TABLE videos ENABLE TRIGGER USER")
        for name, definition in constraints:
            conn.execute(f'ALTER TABLE videos ADD CONSTRAINT "{name}" {definition}')
        for name, definition in indexes:
            took = common.timed(lambda d=definition: conn.execute(d))
            common.log(f"catalog: index {name} on {n:,} rows built in {took:.1f} s")
        conn.execute("INSERT INTO video_folders (folder, status, created_at, id)"
                     " SELECT f, v.status, v.created_at, v.id"
                     " FROM videos AS v, video_folders_of(v.origin) AS f")
        conn.execute("VACUUM (ANALYZE) videos")
        conn.execute("VACUUM (ANALYZE) video_folders")


class Client:
    """One keep-alive HTTP/1.1 connection; ``get`` returns (seconds, status, body)."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(base_url)
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port,
                                               timeout=30)
        self.headers = headers

    def get(self, path: str) -> tuple[float, int, bytes]:
        """One GET; on a connection the server closed meanwhile (its keep-alive ran out
        while the other catalog's slow request ran) one more on a new connection, timed
        alone."""
        for attempt in (1, 2):
            t0 = time.perf_counter()
            try:
                self.conn.request("GET", path, headers=self.headers)
                resp = self.conn.getresponse()
                body = resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                if attempt == 2:
                    raise
                continue
            return time.perf_counter() - t0, resp.status, body
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


class Target:
    """One catalog behind its own API: the paths to request and the timings so far."""

    def __init__(self, system: common.System, url: str, n: int) -> None:
        from api.http.params import encode_cursor
        from videodrop.catalog import Sort

        rng = random.Random(n)
        with psycopg.connect(url) as conn:
            ids = rng.sample(range(1, n + 1), min(n, LOOKUPS + WARMUP))
            tokens = [t for (t,) in conn.execute(
                "SELECT access_token FROM videos WHERE id = ANY(%s)", (ids,)).fetchall()]
            mid = conn.execute("SELECT created_at, id FROM videos"
                               " ORDER BY created_at DESC, id DESC OFFSET %s LIMIT 1",
                               (n // 2,)).fetchone()
            by_name = conn.execute("SELECT name, id FROM videos ORDER BY name, id"
                                   " OFFSET %s LIMIT 1", (n // 2,)).fetchone()
            by_duration = conn.execute(
                "SELECT coalesce(duration, -1), id FROM videos"
                " ORDER BY coalesce(duration, -1) DESC, id DESC OFFSET %s LIMIT 1",
                (n // 2,)).fetchone()
        assert mid is not None and by_name is not None and by_duration is not None
        rng.shuffle(tokens)
        while len(tokens) < LOOKUPS + WARMUP:  # the small table has fewer rows than lookups
            tokens += tokens
        self.tokens = tokens[:LOOKUPS + WARMUP]
        self.middle = f"/api/videos?limit=50&cursor={encode_cursor((mid[0], mid[1]))}"
        self.deep_path = self.middle
        self.folder_middle = f"{self.middle}&origin=inbox/cam1"
        self.folder_path = self.folder_middle
        self.sorted_middle = {
            "name": "/api/videos?limit=50&sort=name&cursor="
                    + encode_cursor(tuple(by_name), Sort("name", False)),
            "duration": "/api/videos?limit=50&sort=-duration&cursor="
                        + encode_cursor(tuple(by_duration), Sort("duration", True))}
        self.sorted_path = dict(self.sorted_middle)
        # the original file name of a random row: clip_<i>.mp4 matches that row alone
        self.searches = [f"/api/videos?limit=50&q={quote(f'clip_{i}.mp4')}"
                         for i in rng.choices(range(1, n + 1), k=SEARCHES + 5)]
        self.client = Client(system.base_url, system.admin)
        self.times: dict[str, list[float]] = {"lookup": [], "first": [], "deep": [],
                                              "folder": [], "search": [], "nomatch": [],
                                              "name": [], "duration": []}

    def get(self, path: str) -> tuple[float, bytes]:
        seconds, status, body = self.client.get(path)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}: {body[:200]!r}")
        return seconds, body

    def lookup(self, i: int) -> None:
        self.times["lookup"].append(self.get(f"/api/video/{self.tokens[i]}/")[0])

    def first(self) -> None:
        self.times["first"].append(self.get("/api/videos?limit=50")[0])

    def deep(self) -> None:
        seconds, body = self.get(self.deep_path)
        self.times["deep"].append(seconds)
        nxt = json.loads(body)["next"]
        self.deep_path = path_of(nxt) if nxt else self.middle

    def sorted_page(self, key: str) -> None:
        seconds, body = self.get(self.sorted_path[key])
        self.times[key].append(seconds)
        nxt = json.loads(body)["next"]
        self.sorted_path[key] = path_of(nxt) if nxt else self.sorted_middle[key]

    def by_name(self) -> None:
        self.sorted_page("name")

    def by_duration(self) -> None:
        self.sorted_page("duration")

    def search(self, i: int) -> None:
        seconds, body = self.get(self.searches[i])
        if len(json.loads(body)["items"]) != 1:
            raise RuntimeError(f"{self.searches[i]} found other than one row")
        self.times["search"].append(seconds)

    def nomatch(self, i: int) -> None:
        seconds, body = self.get("/api/videos?limit=50&q=no%20such%20clip")
        if json.loads(body)["items"]:
            raise RuntimeError("q=no such clip found rows")
        self.times["nomatch"].append(seconds)

    def folder(self) -> None:
        seconds, body = self.get(self.folder_path)
        self.times["folder"].append(seconds)
        nxt = json.loads(body)["next"]
        self.folder_path = path_of(nxt) if nxt else self.folder_middle


def measure(targets: list[Target]) -> None:
    """Every request alternates between the catalogs, so both see the same machine."""
    for i in range(LOOKUPS + WARMUP):
        for t in targets:
            t.lookup(i)
    for step in (Target.first, Target.deep, Target.folder, Target.by_name, Target.by_duration):
        for _ in range(PAGES + 20):
            for t in targets:
                step(t)
    for i in range(SEARCHES + 5):
        for t in targets:
            t.search(i)
            t.nomatch(i)
    for t in targets:
        t.times["lookup"] = t.times["lookup"][WARMUP:]
        t.times["search"] = t.times["search"][5:]
        t.times["nomatch"] = t.times["nomatch"][5:]
        t.times["first"] = t.times["first"][20:]
        t.times["deep"] = t.times["deep"][20:]
        t.times["folder"] = t.times["folder"][20:]
        t.times["name"] = t.times["name"][20:]
        t.times["duration"] = t.times["duration"][20:]
        t.client.close()


def main() -> list[Row]:
    metadata, raw = template_record()
    # The token cache is off in both: with it on, 1k rows would all be answered from memory
    # and 1M mostly not, and the ratio would measure the cache, not the catalog.
    off = {"VIDEODROP_TOKEN_CACHE_SIZE": "0"}
    with Scratch("catalog-big", env=off) as big_s, Scratch("catalog-small", env=off) as small_s:
        for scratch, n in ((big_s, BIG), (small_s, SMALL)):
            with common.stage(f"catalog: {n:,} rows"):
                fill(scratch.database_url, n, metadata, raw)
        big = Target(big_s.system("api"), big_s.database_url, BIG)
        small = Target(small_s.system("api"), small_s.database_url, SMALL)
        with common.stage("catalog: requests, alternating between 1M and 1k rows"):
            measure([big, small])
    rows: list[Row] = []
    what: dict[str, str] = {
        "lookup": "GET /api/video/{token}/ p99, random tokens (database: cache off)",
        "first": "GET /api/videos?limit=50 p99, first page",
        "deep": "GET /api/videos?limit=50 p99, deep pages via next",
        "search": "GET /api/videos?limit=50&q=<a file name> p99 (one row matches)",
        "nomatch": "GET /api/videos?limit=50&q=no such clip p99 (no row matches)",
    }
    p: Callable[[list[float], float], float] = percentile
    for key, label in what.items():
        b, s = big.times[key], small.times[key]
        b99, s99 = p(b, 99), p(s, 99)
        target = SEARCH_TARGET if key in {"search", "nomatch"} else TARGET
        common.log(f"{label}: 1M rows p50 {ms(p(b, 50))} p99 {ms(b99)};"
                   f" 1k rows p50 {ms(p(s, 50))} p99 {ms(s99)}")
        rows.append(row(f"catalog 1M rows: {label}", ms(b99), f"{ms(s99)} (1k rows)",
                        b99 / s99, f"<= {target}x", b99 / s99 <= target))
    folder, plain = p(big.times["folder"], 99), p(big.times["deep"], 99)
    common.log(f"GET /api/videos?origin=inbox/cam1&limit=50 at 1M rows: p50"
               f" {ms(p(big.times['folder'], 50))} p99 {ms(folder)}")
    rows.append(row("catalog 1M rows: GET /api/videos?origin=inbox/cam1&limit=50 p99, deep"
                    " pages via next (a folder with a subfolder per day)", ms(folder),
                    f"{ms(plain)} (deep pages, no filter)", folder / plain,
                    f"<= {FOLDER_TARGET}x", folder / plain <= FOLDER_TARGET))
    for key, query in (("name", "sort=name"), ("duration", "sort=-duration")):
        took = p(big.times[key], 99)
        common.log(f"GET /api/videos?{query}&limit=50 at 1M rows: p50"
                   f" {ms(p(big.times[key], 50))} p99 {ms(took)}")
        rows.append(row(f"catalog 1M rows: GET /api/videos?{query}&limit=50 p99, deep pages"
                        " via next", ms(took), f"{ms(plain)} (deep pages, no filter)",
                        took / plain, f"<= {SORT_TARGET}x", took / plain <= SORT_TARGET))
    return rows


if __name__ == "__main__":
    common.standalone(main, "catalog at a million rows")
