"""The one keyset list builder (videodrop/catalog/lists.py): which fragments a filter mix
brings, which table serves it, which way a page reads, and the parameters."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from videodrop.catalog import VideoFilter
from videodrop.catalog.lists import counts_statement, like_pattern, page_statement

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
    assert sql.count(" AND ") == 4  # five fragments
    for fragment in ('"v".status = %(status)s', '"v".source_id = %(source_id)s',
                     '"v".created_at >= %(created_after)s',
                     '"v".created_at < %(created_before)s', '"v".name ILIKE %(pattern)s'):
        assert fragment in sql, fragment
    assert "IS NULL" not in sql
    assert params == {"limit": 51, "status": "failed", "source_id": "cam7-0001",
                      "pattern": "%x%", "created_after": AT, "created_before": AT}


def test_origin_reads_the_folder_table_in_its_order():
    sql, params = text(VideoFilter(origin="inbox/cam1", status="ready"), before=(AT, 9))
    assert "FROM video_folders AS k JOIN videos AS v ON v.id = k.id" in sql
    assert '"k".folder = %(origin)s' in sql and '"k".status = %(status)s' in sql
    assert '("k".created_at, "k".id) < (%(cursor_at)s, %(cursor_id)s)' in sql
    assert sql.endswith('ORDER BY "k".created_at DESC, "k".id DESC LIMIT %(limit)s')
    assert params["origin"] == "inbox/cam1" and params["cursor_at"] == AT
    assert params["cursor_id"] == 9


def test_the_page_before_a_cursor_reads_oldest_first():
    sql, _ = text(VideoFilter(), after=(AT, 9))
    assert '("v".created_at, "v".id) > (%(cursor_at)s, %(cursor_id)s)' in sql
    assert sql.endswith('ORDER BY "v".created_at ASC, "v".id ASC LIMIT %(limit)s')
    both, _ = text(VideoFilter(), before=(AT, 9), after=(AT, 1))  # before wins
    assert "DESC" in both and ") < (" in both


def test_counts_use_the_same_fragments():
    statement, params = counts_statement(VideoFilter(origin="upload", search="a"))
    sql = " ".join(statement.as_string(None).split())
    assert sql.startswith('SELECT "k".status, count(*) AS n FROM video_folders AS k')
    assert sql.endswith('GROUP BY "k".status')
    assert params == {"origin": "upload", "pattern": "%a%"}


@pytest.mark.parametrize(("search", "pattern"), [
    ("door", "%door%"), ("50%", "%50\\%%"), ("a_b", "%a\\_b%"), ("c:\\x", "%c:\\\\x%")])
def test_search_is_a_plain_substring(search, pattern):
    assert like_pattern(search) == pattern
