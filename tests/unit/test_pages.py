"""The pure parts of the web pages: redirects, formatting, the inbox listing, library URLs,
templates and static files (no services). The session cookie, which PostgreSQL keeps, is
tested in tests/integration/test_api_sessions.py."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

import falcon
import falcon.testing
import pytest

from api.pages import library as pages_library
from api.pages.render import (
    Static,
    elapsed,
    environment,
    human_bitrate,
    human_duration,
    human_size,
    when,
)
from api.pages.site import safe_next
from videodrop.inboxpolicy import INGEST_LOCK
from videodrop.settings import DEFAULT_IGNORE


@pytest.mark.parametrize(("target", "expected"), [
    ("/videos/3", "/videos/3"), ("/?q=a&status=ready", "/?q=a&status=ready"), (None, "/"),
    ("", "/"), ("//evil.example/", "/"), ("https://evil.example/", "/"), ("/\\evil", "/"),
    ("javascript:alert(1)", "/"), ("videos/3", "/"),
    # what cannot go into a Location header: dropped, not a 500
    ("/a\r\nSet-Cookie: x=1", "/"), ("/a\nb", "/"), ("/a\x00b", "/"), ("/a\u2028b", "/"),
    ("/a\u0085b", "/"), ("/a b", "/"), ("/vidéos", "/"), ("/a\tb", "/"), ("/a\x7fb", "/"),
])
def test_safe_next(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_human_formats() -> None:
    assert human_size(None) == "—" and human_size(999) == "999 B"
    assert human_size(1_295_235) == "1.3 MB" and human_size(2_500_000_000) == "2.5 GB"
    assert human_duration(None) == "—" and human_duration(10.008) == "0:10.01"
    assert human_duration(3725.5) == "1:02:05"
    assert human_bitrate(None) == "—" and human_bitrate(128_000) == "128 kb/s"
    assert human_bitrate(1_035_359) == "1.04 Mb/s"
    start = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert str(when(start)) == ('<time datetime="2026-01-02T03:04:05Z">'
                                "2026-01-02 03:04:05 UTC</time>")
    assert elapsed(start, start.replace(second=7)) == "2.0 s"
    assert elapsed(start, None) == "—"


def test_arriving_lists_inbox_files_newest_write_first(tmp_path: Path) -> None:
    (tmp_path / "cam1").mkdir()
    old = tmp_path / "cam1" / "old.mp4"
    old.write_bytes(b"x" * 10)
    os.utime(old, (1000, 1000))
    new = tmp_path / "new.mkv"
    new.write_bytes(b"y" * 5)
    os.utime(new, (1900, 1900))
    (tmp_path / ".new.mkv.Ab12Cd").write_bytes(b"z")  # rsync's temporary
    os.utime(tmp_path / ".new.mkv.Ab12Cd", (1950, 1950))
    (tmp_path / INGEST_LOCK).write_text("{}")  # the ingest's: never shown
    found = pages_library.arriving(tmp_path, DEFAULT_IGNORE, now=2000)
    assert [(a.path, a.size, a.age, a.temporary) for a in found] == [
        (".new.mkv.Ab12Cd", 1, 50, True), ("new.mkv", 5, 100, False),
        ("cam1/old.mp4", 10, 1000, False)]
    assert len(pages_library.arriving(tmp_path, limit=2)) == 2
    assert pages_library.arriving(tmp_path / "missing") == []


def test_arriving_shows_any_name_and_what_the_inbox_refuses(tmp_path: Path) -> None:
    (tmp_path / os.fsdecode(b"Caf\xe9.mp4")).write_bytes(b"x")  # Latin-1, not UTF-8
    (tmp_path / "clip.xml").write_bytes(b"<x/>")  # a camera's sidecar
    (tmp_path / "empty.mp4").write_bytes(b"")
    with (tmp_path / "sparse.mp4").open("wb") as f:
        f.truncate(64 << 20)  # all hole
    (tmp_path / "fresh.mp4").write_bytes(b"")  # still being written: not refused yet
    later = time.time() + 60
    os.utime(tmp_path / "fresh.mp4", (later, later))
    found = {a.path: a.refused for a in pages_library.arriving(tmp_path, DEFAULT_IGNORE,
                                                               now=later)}
    assert found.pop("Café.mp4") is None and found.pop("fresh.mp4") is None
    assert found.pop("clip.xml").startswith("not a video: .xml")
    assert found.pop("empty.mp4") == "empty file"
    assert found.pop("sparse.mp4").startswith("sparse file")
    assert found == {}


def test_library_query_urls() -> None:
    q = pages_library.LibraryQuery(status="ready", search="door cam", before="1_2")
    assert q.url() == "/?status=ready&q=door+cam&before=1_2"
    assert q.status_url(None) == "/?q=door+cam"
    assert q.url("/library.json", before=None, after="5_6") == (
        "/library.json?status=ready&q=door+cam&after=5_6")


def test_library_sort_urls_toggle_and_keep_the_filters() -> None:
    from videodrop.catalog import Sort

    newest = pages_library.LibraryQuery(status="ready", search="door", after="1_2")
    assert newest.sort_param is None and newest.sort_words == "newest first"
    assert newest.aria_sort("added") == "descending" and newest.aria_sort("name") is None
    # a column not sorted by: its first direction; the sorted one: the other way
    assert newest.sort_url("name") == "/?status=ready&q=door&sort=name"
    assert newest.sort_url("duration") == "/?status=ready&q=door&sort=-duration"
    assert newest.sort_url("size") == "/?status=ready&q=door&sort=-size"
    assert newest.sort_url("added") == "/?status=ready&q=door&sort=added"
    by_name = pages_library.LibraryQuery(search="door", sort=Sort("name", False), before="x")
    assert by_name.url() == "/?q=door&sort=name&before=x"
    assert by_name.status_url("failed") == "/?status=failed&q=door&sort=name"
    assert by_name.sort_url("name") == "/?q=door&sort=-name"
    assert by_name.aria_sort("name") == "ascending" and by_name.sort_words == "by name, A to Z"
    oldest = pages_library.LibraryQuery(sort=Sort("added", False))
    assert oldest.sort_url("added") == "/"  # back to the default, which the URL leaves out


def test_static_files_are_served_with_long_cache_when_versioned() -> None:
    static = Static()
    assert {"app.css", "common.js", "library.js", "upload.js", "video.js",
            "icon.svg"} <= set(static.files)
    app = falcon.App()
    app.add_route("/static/{name}", static)
    client = falcon.testing.TestClient(app)
    url = static.url("app.css")
    versioned = client.simulate_get(url.split("?")[0], params={"v": url.split("v=")[1]})
    assert versioned.status_code == 200
    assert versioned.headers["Content-Type"] == "text/css; charset=utf-8"
    assert "immutable" in versioned.headers["Cache-Control"]
    plain = client.simulate_get("/static/app.css")
    assert plain.headers["Cache-Control"] == "public, max-age=300"
    again = client.simulate_get("/static/app.css", headers={"If-None-Match": plain.headers["ETag"]})
    assert again.status_code == 304
    assert client.simulate_get("/static/../pages.py").status_code == 404
    assert client.simulate_get("/static/nope.js").status_code == 404


def test_templates_escape_what_they_show() -> None:
    env = environment(Static())
    html = env.get_template("message.html").render(
        title="<script>x</script>", message="a & b", logged_in=False, csrf="", notice=None,
        path="/")
    assert "<script>x</script>" not in html and "&lt;script&gt;" in html
    assert "a &amp; b" in html


@pytest.mark.parametrize(("state", "said"), [
    ({"status": "ready"}, "Ready."),
    ({"status": "pending"}, "The poster is being made; it shows here when it is ready."),
    ({"status": "skipped", "error_code": "no_picture",
      "error": "every frame looked at is black or uniform."},
     "No poster: every frame looked at is black or uniform (no_picture)."),
    ({"status": "failed", "error_code": "timeout", "error": "ffmpeg took over 600 s"},
     "The poster could not be made: ffmpeg took over 600 s (timeout)."),
    ({"status": "failed", "error_code": None, "error": None},
     "The poster could not be made: no reason recorded."),
    ({}, "Not made (the derive role was not asked for it)."),
])
def test_a_derivative_s_state_is_one_plain_sentence(state: dict[str, str | None],
                                                    said: str) -> None:
    macros = environment(Static()).get_template("_derivatives.html").module
    assert str(macros.state_sentence("poster", state)) == said  # type: ignore[attr-defined]


def test_derivative_states_are_escaped() -> None:
    macros = environment(Static()).get_template("_derivatives.html").module
    html = str(macros.state_rows({"poster": {"status": "failed",  # type: ignore[attr-defined]
                                             "error": "<b>bad</b>"}}))
    assert "<b>" not in html and "&lt;b&gt;bad&lt;/b&gt;" in html
    assert 'data-derivative="storyboard" data-derivative-status="none"' in html
