"""The admin list: filters, keyset pagination, strict parameters, and plans that stay
index scans."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import requests

from videodrop.catalog import VideoFilter
from videodrop.catalog.lists import page_statement
from videodrop.catalog.reads import _lookup_statement

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
        origin = filters.get("origin")
        return ((filters.get("status") in (None, r["status"]))
                and (origin is None or r["origin"] == origin
                     or r["origin"].startswith(origin + "/"))
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
    {"origin": "inbox", "cursor": CURSOR},
    {"cursor": CURSOR}, {"status": "uploading", "cursor": CURSOR},
    {"status": "failed", "origin": "inbox", "cursor": CURSOR,
     "created_after": T0 + timedelta(days=1)},
]


@pytest.mark.parametrize("filters", MIXES, ids=lambda f: "+".join(f) or "none")
def test_every_filter_mix_is_an_ordered_index_scan(big_db, filters):
    filters = dict(filters)
    cursor = filters.pop("cursor", None)
    statement, params = page_statement(VideoFilter(**filters), limit=51, before=cursor)
    with psycopg.connect(big_db) as conn:
        text = plan(conn, statement, params)
    assert "Seq Scan" not in text and '"Sort"' not in text, text
    assert "Index Scan" in text or "Index Only Scan" in text, text


@pytest.mark.parametrize("filters", [{"source_id": "s77"},
                                     {"source_id": "s77", "origin": "inbox", "status": "ready"}],
                         ids="+".join)
def test_source_id_is_a_unique_index_lookup(big_db, filters):
    statement, params = page_statement(VideoFilter(**filters), limit=51)
    with psycopg.connect(big_db) as conn:
        text = plan(conn, statement, params)
    assert "videos_source_id_key" in text and "Seq Scan" not in text, text


def test_token_lookup_is_a_unique_index_lookup(big_db):
    with psycopg.connect(big_db) as conn:
        text = plan(conn, psycopg.sql.SQL(_lookup_statement()),
                    {"token": "t12345", "now": datetime.now(UTC)})
    assert "videos_access_token_key" in text and "Seq Scan" not in text, text


# --- strict parameters, source_id, q, origin folders -----------------------------------

def get_list(system: Any, **params: Any) -> requests.Response:
    return requests.get(f"{system.base_url}/api/videos", params=params, headers=system.admin,
                        timeout=10)


def ids_of(resp: requests.Response) -> list[int]:
    assert resp.status_code == 200, resp.text
    return [item["id"] for item in resp.json()["items"]]


def test_unknown_parameters_are_400_naming_the_allowed_ones(make_system):
    system = make_system().start("api")
    seed(system.database_url, 3)
    for params in ({"bogus": "1"}, {"limit": "5", "sourceid": "s1"}, {"search": "x"}):
        resp = get_list(system, **params)
        assert resp.status_code == 400, (params, resp.text)
        description = resp.json()["description"]
        unknown = next(k for k in params if k != "limit")
        assert unknown in description, description
        for allowed in ("limit", "cursor", "status", "origin", "source_id", "q",
                        "created_after", "created_before"):
            assert allowed in description, description
    for params in ({"source_id": ""}, {"q": ""}, {"q": "x" * 1025}, {"origin": "/"}):
        assert get_list(system, **params).status_code == 400, params
    # each at most once, as docs/api.md says (not the first of several silently)
    for query in ("limit=1&limit=2", "status=ready&status=failed", "q=a&q=b"):
        resp = system.http.get(f"{system.base_url}/api/videos?{query}", headers=system.admin,
                               timeout=5)
        assert resp.status_code == 400, (query, resp.text)
        assert "more than once" in resp.json()["description"]


def insert(db: str, rows: list[tuple[str, str, str, str]]) -> dict[str, int]:
    """(source_id, name, original_filename, origin) rows, one minute apart in list order:
    {source_id: id}."""
    with psycopg.connect(db) as conn:
        out = {}
        for i, (sid, name, filename, origin) in enumerate(rows):
            got = conn.execute(
                "INSERT INTO videos (source_id, name, status, original_filename, origin,"
                " stored_path, created_at) VALUES (%s, %s, 'processing', %s, %s, %s, %s)"
                " RETURNING id",
                (sid, name, filename, origin, f"videos/{sid}/{filename}",
                 T0 + timedelta(minutes=i))).fetchone()
            assert got is not None
            out[sid] = got[0]
    return out


def test_source_id_q_and_origin_folders(make_system):
    system = make_system().start("api")
    ids = insert(system.database_url, [
        ("cam7-0001", "Front door", "front.mp4", "inbox/cam1"),
        ("cam7-00010", "Back door", "back.mp4", "inbox/cam1/2026-11-30"),
        ("cam7-0002", "Garden", "garden_50%.mp4", "inbox/cam10"),
        ("up-1", "Holiday", "holiday.mp4", "upload"),
        ("root-1", "Loose", "loose.mp4", "inbox"),
        ("deep-1", "Deeper", "d.mp4", "inbox/cam1/2026-11-30/night"),
    ])
    # source_id: exact, not a prefix or substring
    assert ids_of(get_list(system, source_id="cam7-0001")) == [ids["cam7-0001"]]
    assert ids_of(get_list(system, source_id="cam7-000")) == []
    # q: any case, in name, original filename, source_id or origin; % and _ are plain
    assert ids_of(get_list(system, q="DOOR")) == [ids["cam7-00010"], ids["cam7-0001"]]
    assert ids_of(get_list(system, q="garden_50%")) == [ids["cam7-0002"]]
    assert ids_of(get_list(system, q="do_r")) == []  # _ is no wildcard ("door")
    assert ids_of(get_list(system, q="UP-1")) == [ids["up-1"]]
    assert ids_of(get_list(system, q="cam10")) == [ids["cam7-0002"]]  # the origin
    # origin: the folder and everything under it, not a sibling sharing its prefix
    cam1 = [ids["deep-1"], ids["cam7-00010"], ids["cam7-0001"]]
    assert ids_of(get_list(system, origin="inbox/cam1")) == cam1
    assert ids_of(get_list(system, origin="inbox/cam1/")) == cam1
    assert ids_of(get_list(system, origin="inbox/cam1/2026-11-30")) == cam1[:2]
    assert ids_of(get_list(system, origin="inbox/cam10")) == [ids["cam7-0002"]]
    assert ids_of(get_list(system, origin="inbox/cam")) == []
    assert len(ids_of(get_list(system, origin="inbox"))) == 5
    # together, and paged through next
    assert ids_of(get_list(system, origin="inbox/cam1", q="back")) == [ids["cam7-00010"]]
    got, pages = walk(system, 1, origin="inbox/cam1")
    assert (got, pages) == (cam1, 3)


def test_origin_folders_follow_status_changes_and_deletes(make_system):
    """The folder rows (migration 0008) keep the status filter right when a row changes
    status, and a deleted video leaves no folder row behind."""
    system = make_system().start("api")
    ids = insert(system.database_url, [("a", "a", "a.mp4", "inbox/cam1/x"),
                                       ("b", "b", "b.mp4", "inbox/cam1")])
    assert ids_of(get_list(system, origin="inbox/cam1", status="processing")) == [
        ids["b"], ids["a"]]
    with psycopg.connect(system.database_url) as conn:
        conn.execute("UPDATE videos SET status = 'failed', error_code = 'not_media'"
                     " WHERE id = %s", (ids["a"],))
    assert ids_of(get_list(system, origin="inbox/cam1", status="failed")) == [ids["a"]]
    assert ids_of(get_list(system, origin="inbox/cam1", status="processing")) == [ids["b"]]
    deleted = requests.delete(f"{system.base_url}/api/videos/{ids['a']}", headers=system.admin,
                              timeout=10)
    assert deleted.status_code in (200, 204), deleted.text
    assert ids_of(get_list(system, origin="inbox/cam1")) == [ids["b"]]
    with psycopg.connect(system.database_url) as conn:
        left = conn.execute("SELECT count(*) FROM video_folders WHERE id = %s",
                            (ids["a"],)).fetchone()
    assert left == (0,)


# --- sorts ------------------------------------------------------------------------------

def seed_sortable(db: str, n: int) -> list[dict[str, Any]]:
    """``n`` rows whose names, durations and sizes tie often and are sometimes unknown
    (NULL); names of one case and one shape, so that every collation orders them alike."""
    with psycopg.connect(db) as conn:
        conn.execute(
            "INSERT INTO videos (source_id, name, status, original_filename, origin,"
            " stored_path, created_at, duration, size, error_code)"
            " SELECT 's' || g, 'v' || lpad((g %% 9)::text, 2, '0'), (%s::text[])[1 + g %% 4],"
            "  'f.mp4', (%s::text[])[1 + g %% 3], 'videos/s' || g || '/f.mp4',"
            "  %s + (g / 3) * interval '1 minute',"
            "  CASE WHEN g %% 5 = 0 THEN NULL ELSE (g %% 7) * 1.5 END,"
            "  CASE WHEN g %% 6 = 0 THEN NULL ELSE (g %% 4) * 1000 END,"
            "  CASE WHEN g %% 4 = 1 THEN 'not_media' END"
            " FROM generate_series(1, %s) g",
            (list(STATUSES), list(ORIGINS), T0, n))
        got = conn.execute("SELECT id, name, status, origin, created_at, duration, size"
                           " FROM videos").fetchall()
    names = ("id", "name", "status", "origin", "created_at", "duration", "size")
    return [dict(zip(names, r, strict=True)) for r in got]


def in_order(all_rows: list[dict[str, Any]], sort: str, **filters: Any) -> list[int]:
    """The ids of the rows matching ``filters`` in the order ``sort`` promises."""
    key = sort.lstrip("-")
    column = {"added": "created_at"}.get(key, key)

    def sort_key(r: dict[str, Any]) -> tuple[Any, int]:
        value = r[column]
        return (-1 if value is None else value), r["id"]

    wanted = set(expected(all_rows, **filters))
    chosen = [r for r in all_rows if r["id"] in wanted]
    return [r["id"] for r in sorted(chosen, key=sort_key, reverse=sort.startswith("-"))]


def test_every_sort_pages_both_ways_in_its_order(make_system):
    from videodrop.catalog import SORTS

    system = make_system().start("api")
    all_rows = seed_sortable(system.database_url, 120)
    for sort in SORTS:
        for filters in ({}, {"status": "ready"}, {"origin": "inbox"},
                        {"status": "failed", "origin": "inbox/cam1"}):
            want = in_order(all_rows, sort, **filters)
            for limit in (7, 1000):
                got, pages = walk(system, limit, sort=sort, **filters)
                assert got == want, (sort, filters, limit)
                assert pages == max(1, -(-len(want) // limit)), (sort, filters, limit)
    # the next link keeps the sort; a q search sorts too
    first = get_list(system, sort="-size", limit=5).json()
    assert "sort=-size" in first["next"]
    assert ids_of(get_list(system, sort="name", q="v03")) == [
        r["id"] for r in sorted((r for r in all_rows if r["name"] == "v03"),
                                key=lambda r: r["id"])]


def test_unknown_sorts_and_cursors_of_another_sort_are_400(make_system):
    system = make_system().start("api")
    seed_sortable(system.database_url, 10)
    for value in ("length", "", "NAME", "--name", "name,-size", "created_at"):
        resp = get_list(system, sort=value)
        assert resp.status_code == 400, (value, resp.text)
        body = resp.json()
        assert body["title"] == "Bad sort"
        assert body["description"].startswith(
            "sort is one of -added, added, name, -name, duration, -duration, size, -size")
    by_size = get_list(system, sort="size", limit=3).json()
    cursor = by_size["next"].split("cursor=")[1].split("&")[0]
    resp = get_list(system, sort="name", cursor=cursor)
    assert resp.status_code == 400 and "sort=size" in resp.json()["description"], resp.text
    assert get_list(system, cursor=cursor).status_code == 400  # the default sort's
    assert get_list(system, sort="size", cursor=cursor).status_code == 200


SORT_MIXES: list[dict[str, Any]] = [
    {"sort": s, **extra} for s in ("name", "-name", "duration", "-duration", "size", "-size",
                                   "added")
    for extra in ({}, {"cursor": True})]


@pytest.mark.parametrize("mix", SORT_MIXES, ids=lambda m: "+".join(f"{k}={v}" for k, v in
                                                                    m.items()))
def test_every_sort_is_an_ordered_index_scan(big_db, mix):
    from videodrop.catalog import Sort

    sort = Sort.parse(mix["sort"])
    cursor = None
    if mix.get("cursor"):
        with psycopg.connect(big_db) as conn:
            key = {"added": "created_at", "name": "name"}.get(
                sort.key, f"coalesce({sort.key}, -1)")
            cursor = conn.execute(f"SELECT {key}, id FROM videos ORDER BY 1, 2"
                                  " OFFSET 50000 LIMIT 1").fetchone()
    statement, params = page_statement(VideoFilter(), limit=51, sort=sort,
                                       after=None if cursor is None else tuple(cursor))
    with psycopg.connect(big_db) as conn:
        text = plan(conn, statement, params)
    assert "Seq Scan" not in text and '"Sort"' not in text, text
    assert "Index Scan" in text, text


def test_a_rare_search_reads_the_trigram_index(big_db):
    """q is a substring search; at 100,000 rows a text of one row is found through the
    trigram index (migration 0011), not by reading every row."""
    for search in ("s77777", "S77777", "no such text"):
        statement, params = page_statement(VideoFilter(search=search), limit=51)
        with psycopg.connect(big_db) as conn:
            text = plan(conn, statement, params)
            found = conn.execute(statement, params, prepare=False).fetchall()
        assert "videos_search_trgm_idx" in text and "Seq Scan" not in text, text
        assert len(found) == (0 if search == "no such text" else 1)
