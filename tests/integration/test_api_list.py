"""The admin list: filters, keyset pagination, and plans that stay index scans."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import requests

from videodrop.catalog import Catalog
from videodrop.sql import query

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ORIGINS = ("upload", "inbox", "inbox/cam1")
STATUSES = ("ready", "failed", "processing", "uploading")


def seed(db: str, n: int, first: int = 1) -> list[dict[str, Any]]:
    """``n`` rows: statuses and origins mixed, creation times with ties (same instant)."""
    with psycopg.connect(db) as conn:
        conn.execute(
            "INSERT INTO videos (source_id, name, status, access_token, original_filename,"
            " origin, stored_path, created_at, updated_at, error_code)"
            " SELECT 's' || g, 'n' || g, (%s::text[])[1 + g %% 4], 't' || g, 'f.mp4',"
            "  (%s::text[])[1 + g %% 3], 'videos/s' || g || '/f.mp4',"
            "  %s + (g / 3) * interval '1 minute', now(),"
            "  CASE WHEN g %% 4 = 1 THEN 'not_media' END"  # STATUSES[1] is failed
            " FROM generate_series(%s::int, %s::int) g",
            (list(STATUSES), list(ORIGINS), T0, first, first + n - 1))
        got = conn.execute("SELECT id, status, origin, created_at FROM videos").fetchall()
    return [dict(zip(("id", "status", "origin", "created_at"), r, strict=True)) for r in got]


def expected(all_rows: list[dict[str, Any]], **filters: Any) -> list[int]:
    def keep(r: dict[str, Any]) -> bool:
        return ((filters.get("status") in (None, r["status"]))
                and (filters.get("origin") in (None, r["origin"]))
                and ("created_after" not in filters or r["created_at"] >= filters["created_after"])
                and ("created_before" not in filters
                     or r["created_at"] < filters["created_before"]))
    chosen = sorted((r for r in all_rows if keep(r)), key=lambda r: (r["created_at"], r["id"]),
                    reverse=True)
    return [r["id"] for r in chosen]


def walk(system: Any, limit: int, **filters: Any) -> tuple[list[int], int]:
    """Every id through the pages, and how many pages it took."""
    params = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in filters.items()}
    url: str | None = f"{system.base_url}/api/videos"
    ids: list[int] = []
    pages = 0
    first: dict[str, Any] | None = {"limit": limit, **params}
    while url:
        resp = requests.get(url, params=first, headers=system.admin, timeout=10)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert len(body["items"]) <= limit
        ids += [item["id"] for item in body["items"]]
        url, first = body["next"], None
        pages += 1
    return ids, pages


def test_filters_and_pages(make_system):
    system = make_system().start("api")
    all_rows = seed(system.database_url, 240)
    window = {"created_after": T0 + timedelta(minutes=10),
              "created_before": T0 + timedelta(minutes=50)}
    mixes: list[dict[str, Any]] = [{}, *({"status": s} for s in STATUSES),
                                   *({"origin": o} for o in ORIGINS), window,
                                   {"created_after": window["created_after"]},
                                   {"status": "failed", "origin": "inbox/cam1", **window}]
    mixes += [{"status": s, "origin": o} for s, o in itertools.product(STATUSES[:2], ORIGINS)]
    for filters in mixes:
        want = expected(all_rows, **filters)
        for limit in (7, 20, 1000):
            got, pages = walk(system, limit, **filters)
            assert got == want, (filters, limit)
            assert pages == max(1, -(-len(want) // limit)), (filters, limit)  # no empty page
    assert walk(system, 5, origin="nowhere") == ([], 1)


def test_pages_are_stable_while_rows_arrive(make_system):
    system = make_system().start("api")
    all_rows = seed(system.database_url, 30)
    first = requests.get(f"{system.base_url}/api/videos", params={"limit": 10},
                         headers=system.admin, timeout=5).json()
    seed(system.database_url, 5, first=1000)  # newer rows: they belong before the cursor, not after
    rest: list[int] = []
    url = first["next"]
    while url:
        page = requests.get(url, headers=system.admin, timeout=5).json()
        rest += [item["id"] for item in page["items"]]
        url = page["next"]
    assert [i["id"] for i in first["items"]] + rest == expected(all_rows)


def test_bad_parameters_are_400(make_system):
    system = make_system().start("api")
    url = f"{system.base_url}/api/videos"
    for params in ({"limit": 0}, {"limit": 1001}, {"limit": "x"}, {"status": "done"},
                   {"cursor": "abc"}, {"cursor": "1_99999999999999999999"},
                   {"cursor": "999999999999999999_1"}, {"created_after": "yesterday"},
                   {"created_before": "2026-13-01"}, {"created_after": "2026-01-01"},
                   {"created_after": "2026-01-01T00:00:00"},  # RFC 3339: a zone is required
                   {"limit": ""}, {"status": ""}, {"origin": ""}, {"cursor": ""},
                   {"created_after": ""}, {"origin": "x" * 1025}):
        resp = requests.get(url, params=params, headers=system.admin, timeout=5)
        assert resp.status_code == 400, (params, resp.text)
        assert set(resp.json()) <= {"title", "description"} and resp.json()["title"]
    odd = requests.get(url, params={"origin": "a\x00b"}, headers=system.admin, timeout=5)
    assert odd.status_code == 200 and odd.json() == {"items": [], "next": None}
    zones = requests.get(url, headers=system.admin, timeout=5, params={
        "created_after": "2026-01-01T05:00:00+05:00", "created_before": "2026-01-01t00:00:01z"})
    assert zones.status_code == 200


# --- plans -----------------------------------------------------------------------------

def plan(conn: psycopg.Connection[Any], statement: Any, params: dict[str, Any]) -> str:
    out = conn.execute(psycopg.sql.SQL("EXPLAIN (FORMAT JSON) ") + statement, params,
                       prepare=False).fetchone()
    assert out is not None
    return json.dumps(out[0])


@pytest.fixture(scope="module")
def big_db(database_url: str) -> Any:
    """100,000 rows (bench/... and the report use 1,000,000; the plans are the same)."""
    from tests.harness import drop_database, fresh_database
    db = fresh_database(database_url, prefix="vdlist")
    seed(db, 100_000)
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE videos")
    yield db
    drop_database(database_url, db)


CURSOR = (T0 + timedelta(days=20), 10**9)
MIXES: list[dict[str, Any]] = [
    {}, {"status": "failed"}, {"origin": "inbox/cam1"}, {"status": "ready", "origin": "upload"},
    {"created_after": T0 + timedelta(days=3), "created_before": T0 + timedelta(days=4)},
    {"status": "processing", "created_after": T0 + timedelta(days=3)},
    {"origin": "upload", "created_before": T0 + timedelta(days=30)},
    {"cursor": CURSOR}, {"status": "uploading", "cursor": CURSOR},
    {"status": "failed", "origin": "inbox", "cursor": CURSOR,
     "created_after": T0 + timedelta(days=1)},
]


@pytest.mark.parametrize("filters", MIXES, ids=lambda f: "+".join(f) or "none")
def test_every_filter_mix_is_an_ordered_index_scan(big_db, filters):
    statement, params = Catalog.list_statement(limit=51, **filters)
    with psycopg.connect(big_db) as conn:
        text = plan(conn, statement, params)
    assert "Seq Scan" not in text and '"Sort"' not in text, text
    assert "Index Scan" in text, text


def test_token_lookup_is_a_unique_index_lookup(big_db):
    with psycopg.connect(big_db) as conn:
        text = plan(conn, psycopg.sql.SQL(query("get_by_token")),
                    {"token": "t12345", "now": datetime.now(UTC)})
    assert "videos_access_token_key" in text and "Seq Scan" not in text, text
