"""The timeline in the catalog: migration 0015's backfill of rows probed before it, a long
timeline walked page by page through the API (every gap and overlap exactly once), and
plans that stay index range scans. Rows are written with SQL here (no files: the timeline
reads rows only); the expected gaps come from the schedule the test wrote."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import requests

from api.admin.origins import MAX_RECORDINGS
from tests.harness import drop_database, fresh_database, rows
from tests.integration.test_error_codes import bare_db  # noqa: F401 (a fixture)
from videodrop.catalog import Catalog
from videodrop.catalog.timeline import BEFORE_WINDOW
from videodrop.derivatives import pack_activity
from videodrop.migrate import available, migrate
from videodrop.sql import query

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def _ms(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def test_rows_probed_before_the_migration_are_backfilled(bare_db: str) -> None:  # noqa: F811
    before = [m for m in available() if m.version < 15]
    with psycopg.connect(bare_db, autocommit=True) as conn:
        for mig in before:
            conn.execute(mig.sql.encode())
        conn.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY,"
                     " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        conn.cursor().executemany("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                         [(m.version, m.name) for m in before])
        mtime = T0 + timedelta(hours=1)
        made = T0 + timedelta(hours=2)
        for sid, status, origin, meta, mtime_ns, error_code in [
            ("a", "ready", "inbox/cam1/2026-11-30/001", {"creation_time": "2026-11-30T08:00:00Z"},
             123, None),
            ("b", "ready", "inbox/cam2", {"creation_time": None}, int(mtime.timestamp() * 1e9),
             None),
            ("c", "ready", "upload", {}, None, None),
            ("d", "failed", "inbox/cam1", {}, 5, "not_media"),
        ]:
            conn.execute(
                "INSERT INTO videos (source_id, name, status, original_filename, origin,"
                " stored_path, duration, metadata, claim_mtime_ns, error_code, created_at)"
                " VALUES (%s, 'x', %s, 'x.mp4', %s, %s, 10.5, %s, %s, %s, %s)",
                (sid, status, origin, f"videos/{sid}/x.mp4", json.dumps(meta), mtime_ns,
                 error_code, made))
        listener = psycopg.connect(bare_db, autocommit=True)
        listener.execute("LISTEN videodrop_videos")
    assert next(m.version for m in migrate(bare_db)) == 15  # and any later ones
    heard = []
    for notice in listener.notifies(timeout=30):
        heard.append(notice.payload)
        if notice.payload == "*":
            break
    listener.close()
    assert heard == ["*"]  # one notice for the backfill, none a row
    found = {r[0]: r[1:] for r in rows(
        bare_db, "SELECT source_id, recorded_start, recorded_end, recorded_source,"
                 " timeline_origin FROM videos")}
    length = timedelta(seconds=10.5)
    assert found == {
        "a": (T0, T0 + length, "creation_time", "inbox/cam1"),
        "b": (mtime - length, mtime, "mtime", "inbox/cam2"),
        "c": (made - length, made, "received", "upload"),
        "d": (None, None, None, None),
    }


def seed_timeline(db: str, origin: str, n: int, base: datetime = T0
                  ) -> tuple[list[tuple[datetime, datetime]], dict[int, float], set[int]]:
    """``n`` recordings of ``origin``: back to back at 10 s steps with durations jittered by
    up to ±200 ms, a gap before every 37th (1 to 600 s), an overlap of 2 s before every
    53rd. Returns the (start, end) of each, the gaps by the index they precede, and
    the indexes an overlap precedes."""
    plan: list[tuple[datetime, datetime]] = []
    gaps: dict[int, float] = {}
    overlaps: set[int] = set()
    sizes = [1, 2, 7, 30, 59, 61, 120, 599, 600]
    for i in range(n):
        duration = 10.0 + ((i * 7) % 5 - 2) / 10  # 9.8 .. 10.2 s
        if not plan:
            start = base
        elif i % 37 == 0:
            gaps[i] = sizes[(i // 37) % len(sizes)]
            start = plan[-1][1] + timedelta(seconds=gaps[i])
        elif i % 53 == 0:
            overlaps.add(i)
            start = plan[-1][1] - timedelta(seconds=2)
        else:
            start = plan[-1][0] + timedelta(seconds=10)
        plan.append((start, start + timedelta(seconds=duration)))
    with psycopg.connect(db) as conn:
        conn.cursor().executemany(
            "INSERT INTO videos (source_id, name, status, original_filename, origin,"
            " stored_path, duration, size, recorded_start, recorded_end, recorded_source,"
            " timeline_origin) VALUES (%s, 'x', 'ready', %s, %s, %s, %s, 100, %s, %s,"
            " 'file_name', %s)",
            [(f"{origin}-{i}", f"{i}.mp4", f"{origin}/2026-11-30", f"videos/{origin}-{i}/x",
              (e - s).total_seconds(), s, e, origin) for i, (s, e) in enumerate(plan)])
    return plan, gaps, overlaps


def test_a_long_timeline_page_by_page(make_system) -> None:
    system = make_system().start("api")
    plan, gaps, overlaps = seed_timeline(system.database_url, "inbox/cam1", 600)
    seed_timeline(system.database_url, "inbox/cam2", 40)  # another camera: not on it
    got_gaps: list[tuple[str, str]] = []
    got_overlaps: list[tuple[str, str]] = []
    starts: set[str] = set()
    params: dict[str, Any] = {"from": _ms(T0 - timedelta(hours=1)),
                              "to": _ms(T0 + timedelta(hours=23)), "limit": 45}
    pages = 0
    while True:
        resp = requests.get(f"{system.base_url}/api/origins/inbox/cam1/timeline",
                            params=params, headers=system.admin, timeout=10)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        pages += 1
        got_gaps += [(g["start"], g["end"]) for g in body["gaps"]]
        got_overlaps += [(o["start"], o["end"]) for o in body["overlaps"]]
        starts |= {r["start"] for r in body["recordings"]}
        if not body["truncated"]:
            break
        params["from"] = body["next_from"]
    assert pages == -(-len(plan) // 45)
    assert starts == {_ms(s) for s, _ in plan}
    assert got_gaps == [(_ms(plan[i - 1][1]), _ms(plan[i][0])) for i in sorted(gaps)]
    assert got_overlaps == [(_ms(plan[i][0]), _ms(plan[i - 1][1])) for i in sorted(overlaps)]
    # a window in the middle: the gap that spans its start is shown, whole
    i = sorted(gaps)[3]
    middle = plan[i - 1][1] + timedelta(seconds=gaps[i] / 2)
    body = requests.get(f"{system.base_url}/api/origins/inbox/cam1/timeline",
                        params={"from": _ms(middle), "to": _ms(middle + timedelta(minutes=1))},
                        headers=system.admin, timeout=10).json()
    assert (body["gaps"][0]["start"], body["gaps"][0]["end"]) == (_ms(plan[i - 1][1]),
                                                                  _ms(plan[i][0]))


def test_the_metrics_query_counts_the_last_day_s_gaps(db_url: str) -> None:
    now = datetime.now(UTC)
    recent, gaps, _ = seed_timeline(db_url, "inbox/new", 600, now - timedelta(hours=3))
    old, _, _ = seed_timeline(db_url, "inbox/old", 100, now - timedelta(days=10))
    # a camera whose last day had no gap: its recordings before the window count as cover
    steady, _, _ = seed_timeline(db_url, "inbox/steady", 36, now - timedelta(hours=24, minutes=3))
    catalog = Catalog.connect(db_url)
    try:
        found = catalog.origin_activity(now - timedelta(hours=24), {"inbox/new": 1.0}, 1.0,
                                        timedelta(hours=6))
        strict = catalog.origin_activity(now - timedelta(hours=24), {"inbox/new": 61.0}, 1.0,
                                         timedelta(hours=6))
    finally:
        catalog.close()
    assert [(a.origin, a.last_end, a.gaps) for a in found] == [
        ("inbox/new", max(e for _, e in recent), len(gaps)),
        ("inbox/old", max(e for _, e in old), 0),
        ("inbox/steady", max(e for _, e in steady), 0)]
    # a tolerance of 61 s: only the gaps of 120 s and more are gaps
    assert strict[0].gaps == sum(1 for g in gaps.values() if g >= 61)


@pytest.fixture(scope="module")
def big_db(database_url: str) -> Iterator[str]:
    """20 origins of 2,500 ready recordings each (one every 10 minutes)."""
    db = fresh_database(database_url, prefix="vdtimeline")
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO videos (source_id, name, status, original_filename, origin,"
            " stored_path, duration, size, recorded_start, recorded_end, recorded_source,"
            " timeline_origin)"
            " SELECT 's' || g, 'x', 'ready', 'x', 'inbox/cam' || (g %% 20), 'videos/s' || g,"
            "  60, 1000, %s + g * interval '30 seconds',"
            "  %s + g * interval '30 seconds' + interval '1 minute', 'file_name',"
            "  'inbox/cam' || (g %% 20)"
            " FROM generate_series(1, 50000) AS g", (T0, T0))
        conn.execute("VACUUM ANALYZE videos")
    yield db
    drop_database(database_url, db)


@pytest.mark.parametrize("name", ["timeline_before", "timeline_within", "timeline_after"])
def test_a_window_is_an_index_range_scan(big_db: str, name: str) -> None:
    """Every read is a range of the timeline index; the two whose range runs to the end
    of the origin's history (before and after the window) read it in order and stop at
    their limit (no sort of the history)."""
    params = {"origin": "inbox/cam12", "from": T0 + timedelta(days=10),
              "to": T0 + timedelta(days=11),
              "limit": BEFORE_WINDOW if name == "timeline_before" else MAX_RECORDINGS + 1}
    with psycopg.connect(big_db) as conn:
        out = conn.execute(f"EXPLAIN (FORMAT JSON) {query(name)}", params,
                           prepare=False).fetchone()
    text = json.dumps(out[0] if out else None)
    assert "videos_timeline_idx" in text and "Seq Scan" not in text, text
    if name != "timeline_within":  # (a day's rows at most MAX_RECORDINGS + 1: sorted is fine)
        assert '"Sort"' not in text, text


def test_the_timeline_says_where_the_picture_moved(make_system, tmp_path) -> None:
    """Each recording's ``activity``: the stretches of its scenes' activity at or over its
    origin's ``activity_threshold``, as times and as offsets into it; null while its scenes
    are not made (none, or pending)."""
    origins = tmp_path / "origins.toml"
    origins.write_text('[origins."inbox/cam5"]\nactivity_threshold = 4.0\n')
    system = make_system(VIDEODROP_ORIGINS_FILE=str(origins)).start("api")
    plan, _, _ = seed_timeline(system.database_url, "inbox/cam5", 3)
    ids = [i for (i,) in rows(system.database_url,
                              "SELECT id FROM videos ORDER BY recorded_start")]
    # the first: still, then 3 s of motion from its 4th second (one second of 2.25 levels,
    # under the threshold, three seconds before); the second: its scenes pending
    levels = [0.0, 2.25, 0.0, 9.0, 25.0, 4.0, 0.0, 0.0, 0.0, 0.0]
    with psycopg.connect(system.database_url) as conn:
        conn.execute("INSERT INTO derivatives (video_id, kind, status, data) VALUES"
                     " (%s, 'scenes', 'ready', %s), (%s, 'scenes', 'pending', '{}')",
                     (ids[0], json.dumps({"activity": pack_activity(levels)}), ids[1]))
    body = requests.get(f"{system.base_url}/api/origins/inbox/cam5/timeline",
                        params={"from": _ms(T0 - timedelta(minutes=1)),
                                "to": _ms(T0 + timedelta(minutes=5))},
                        headers=system.admin, timeout=10).json()
    assert body["activity_threshold"] == 4.0
    got = {r["id"]: r["activity"] for r in body["recordings"]}
    start = plan[0][0]
    assert got == {ids[0]: [{"start": _ms(start + timedelta(seconds=3)),
                             "end": _ms(start + timedelta(seconds=6)),
                             "offset": 3.0, "seconds": 3.0, "peak": 25.0}],
                   ids[1]: None, ids[2]: None}
