"""The one keyset list builder (videodrop/catalog/lists.py): which fragments a filter mix
brings, which table serves it, which way a page reads in each sort, and the parameters."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from videodrop.catalog import SORTS, Sort, VideoFilter
from videodrop.catalog.lists import counts_statement, like_pattern, page_statement
from videodrop.catalog.rows import Video

AT = datetime(2026, 11, 30, tzinfo=UTC)


def text(filters: VideoFilter, **page: object) -> tuple[str, dict[str, object]]:
    statement, params = page_statement(filters, limit=51, **page)  # type: ignore[arg-type]
    return " ".join(statement.as_string(None).split()), params


def test_no_filter_is_the_plain_newest_first_page():
    sql, params = text(VideoFilter())
    assert "FROM videos AS v ORDER BY \"v\".created_at DESC, \"v\".id DESC" in sql
    outer = sql.split(" AS derivatives ", 1)[1]  # past the derivatives' subquery (0009)
    assert "WHERE" not in outer and "video_folders" not in sql
    assert params == {"limit": 51}


def test_each_filter_is_one_plain_fragment():
    sql, params = text(VideoFilter(status="failed", source_id="cam7-0001", search="x",
                                   created_after=AT, created_before=AT))
    assert sql.count(" AND ") == 5  # five fragments (the search has one of its own)
    for fragment in ('"v".status = %(status)s', '"v".source_id = %(source_id)s',
                     '"v".created_at >= %(created_after)s',
                     '"v".created_at < %(created_before)s', '"v".name ILIKE %(pattern)s'):
        assert fragment in sql, fragment
    assert "IS NULL" not in sql
    assert params == {"limit": 51, "status": "failed", "source_id": "cam7-0001",
                      "pattern": "%x%", "created_after": AT, "created_before": AT}


def test_origin_reads_the_folder_table_in_its_order():
    sql, params = text(VideoFilter(origin="inbox/cam1", status="ready"), after=(AT, 9))
    assert "FROM video_folders AS k JOIN videos AS v ON v.id = k.id" in sql
    assert '"k".folder = %(origin)s' in sql and '"k".status = %(status)s' in sql
    assert '("k".created_at, "k".id) < (%(cursor_key)s, %(cursor_id)s)' in sql
    assert sql.endswith('ORDER BY "k".created_at DESC, "k".id DESC LIMIT %(limit)s')
    assert params["origin"] == "inbox/cam1" and params["cursor_key"] == AT
    assert params["cursor_id"] == 9


def test_the_page_before_a_cursor_reads_the_other_way():
    sql, _ = text(VideoFilter(), before=(AT, 9))
    assert '("v".created_at, "v".id) > (%(cursor_key)s, %(cursor_id)s)' in sql
    assert sql.endswith('ORDER BY "v".created_at ASC, "v".id ASC LIMIT %(limit)s')
    both, _ = text(VideoFilter(), after=(AT, 9), before=(AT, 1))  # after wins
    assert "DESC" in both and ") < (" in both


@pytest.mark.parametrize(("sort", "key", "order"), [
    ("name", '"v".name', "ASC"), ("-name", '"v".name', "DESC"),
    ("duration", 'coalesce("v".duration, -1)', "ASC"),
    ("-duration", 'coalesce("v".duration, -1)', "DESC"),
    ("size", 'coalesce("v".size, -1)', "ASC"), ("-size", 'coalesce("v".size, -1)', "DESC"),
    ("added", '"v".created_at', "ASC"), ("-added", '"v".created_at', "DESC")])
def test_each_sort_orders_by_its_key_and_the_id(sort, key, order):
    op = "<" if order == "DESC" else ">"
    sql, params = text(VideoFilter(status="ready"), sort=Sort.parse(sort), after=("k", 3))
    assert sql.endswith(f'ORDER BY {key} {order}, "v".id {order} LIMIT %(limit)s'), sql
    assert f'({key}, "v".id) {op} (%(cursor_key)s, %(cursor_id)s)' in sql, sql
    assert params == {"limit": 51, "status": "ready", "cursor_key": "k", "cursor_id": 3}
    back, _ = text(VideoFilter(), sort=Sort.parse(sort), before=("k", 3))
    other = "ASC" if order == "DESC" else "DESC"
    assert back.endswith(f'ORDER BY {key} {other}, "v".id {other} LIMIT %(limit)s'), back


def test_a_name_cursor_without_the_name_reads_it_from_its_row():
    sql, params = text(VideoFilter(), sort=Sort.parse("name"), after=(None, 7))
    assert ('("v".name, "v".id) > ((SELECT c.name FROM videos AS c WHERE c.id ='
            ' %(cursor_id)s), %(cursor_id)s)') in sql
    assert params == {"limit": 51, "cursor_id": 7}


def test_sorts_parse_print_and_key_rows():
    assert [str(Sort.parse(s)) for s in SORTS] == list(SORTS)
    assert Sort.parse("-added") == Sort() and Sort.parse("name") == Sort("name", False)
    for bad in ("", "Name", "--name", "+name", "-", "created_at", "name "):
        with pytest.raises(ValueError, match="sort is one of -added, added, name"):
            Sort.parse(bad)
    video = Video.from_row({f: None for f in Video.__dataclass_fields__} | {
        "id": 5, "name": "Front door", "created_at": AT})
    assert Sort.parse("name").key_of(video) == ("Front door", 5)
    assert Sort.parse("-added").key_of(video) == (AT, 5)
    assert Sort.parse("duration").key_of(video) == (-1.0, 5)  # unknown: -1
    assert Sort.parse("size").key_of(video) == (-1, 5)


def test_counts_use_the_same_fragments():
    statement, params = counts_statement(VideoFilter(origin="upload", search="a"))
    sql = " ".join(statement.as_string(None).split())
    assert sql.startswith('SELECT "k".status, count(*) AS n FROM video_folders AS k')
    assert sql.endswith('GROUP BY "k".status')
    assert params == {"origin": "upload", "pattern": "%a%"}


def test_search_has_the_indexed_form_and_the_exact_one():
    sql, _ = text(VideoFilter(search="door"))
    assert ('("v".name || \' \' || "v".source_id || \' \' || "v".original_filename'
            ' || \' \' || "v".origin) ILIKE %(pattern)s') in sql
    assert '"v".origin ILIKE %(pattern)s)' in sql


@pytest.mark.parametrize(("search", "pattern"), [
    ("door", "%door%"), ("50%", "%50\\%%"), ("a_b", "%a\\_b%"), ("c:\\x", "%c:\\\\x%")])
def test_search_is_a_plain_substring(search, pattern):
    assert like_pattern(search) == pattern
