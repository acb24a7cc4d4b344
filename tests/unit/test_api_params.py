"""Pure parts of the API: parameter parsing, upload naming and body accounting, and the
OpenAPI document agreeing with the app and with the server's own rules."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import falcon
import falcon.inspect
import pytest
from hypothesis import given
from hypothesis import strategies as st

from api import openapi
from api.app import create_app
from api.http import params
from api.uploads import receive as uploads
from videodrop.catalog import Catalog, Sort
from videodrop.settings import Settings

# --- params --------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [
    ("2026-11-25T12:00:00Z", datetime(2026, 11, 25, 12, tzinfo=UTC)),
    ("2026-11-25t12:00:00z", datetime(2026, 11, 25, 12, tzinfo=UTC)),
    ("2026-11-25T14:00:00+02:00", datetime(2026, 11, 25, 12, tzinfo=UTC)),
    ("2026-11-25T12:00:00.123456789Z", datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=UTC)),
    ("2016-12-31T23:59:60Z", datetime(2017, 1, 1, tzinfo=UTC)),  # a leap second
])
def test_parse_when(raw, expected):
    assert params.parse_when(raw, "t") == expected


@pytest.mark.parametrize("raw", ["", "2026-11-25", "2026-11-25T12:00:00", "yesterday",
                                 "2026-13-01T00:00:00Z", "2026-11-25T12:00:00+24:00",
                                 "0000-01-01T00:00:00Z", "2026-11-25 12:00:00Z"])
def test_parse_when_refuses(raw):
    with pytest.raises(falcon.HTTPBadRequest):
        params.parse_when(raw, "t")


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(5000, 1, 1),
                    timezones=st.just(UTC)), st.integers(1, 10**18 - 1))
def test_cursor_round_trip_is_exact(when, video_id):
    raw = params.encode_cursor((when, video_id))
    assert re.fullmatch(r"[0-9]{1,17}_[0-9]{1,18}", raw)
    assert params.decode_cursor(raw) == (when, video_id)


@pytest.mark.parametrize("raw", ["", "1", "a_1", "-1_1", "1_", "1_1_1", "1" * 18 + "_1",
                                 "1_" + "1" * 19, "size~1_1", "name~YQ_1"])
def test_bad_cursors(raw):
    with pytest.raises(falcon.HTTPBadRequest):
        params.decode_cursor(raw)


@given(st.text(min_size=0, max_size=600).map(lambda t: t.replace("\x00", "")),
       st.integers(1, 10**18 - 1))
def test_name_cursors_round_trip_or_name_the_row(name, video_id):
    by_name = Sort("name", False)
    raw = params.encode_cursor((name, video_id), by_name)
    assert params.CURSOR.fullmatch(raw) and params.CURSORS["name"].fullmatch(raw)
    key, got_id = params.decode_cursor(raw, by_name)
    assert got_id == video_id
    # a name too long for a URL is read from its row instead
    if len(name.encode()) <= 768:  # 1024 characters of base64 (MAX_NAME_IN_CURSOR)
        assert key == name
    else:
        assert key is None and raw == f"name~._{video_id}"


@given(st.one_of(st.floats(0, 1e7), st.just(-1.0)), st.integers(-1, 2**62),
       st.integers(1, 10**18 - 1))
def test_duration_and_size_cursors_are_exact(duration, size, video_id):
    for sort, key in ((Sort("duration"), duration), (Sort("size", False), size)):
        raw = params.encode_cursor((key, video_id), sort)
        assert params.CURSOR.fullmatch(raw), raw
        assert params.decode_cursor(raw, sort) == (key, video_id)


def test_a_cursor_of_another_sort_is_a_400_naming_it():
    raw = params.encode_cursor((12.5, 3), Sort("duration"))
    with pytest.raises(falcon.HTTPBadRequest) as caught:
        params.decode_cursor(raw, Sort("size"))
    assert "sort=duration" in caught.value.description
    assert "sort=-size" in caught.value.description
    with pytest.raises(falcon.HTTPBadRequest) as caught:
        params.parse_sort("length")
    assert caught.value.description.startswith("sort is one of -added, added, name, -name,")
    assert params.parse_sort(None) == Sort() and params.parse_sort("-size") == Sort("size")


def test_parse_int():
    assert params.parse_int("50", "limit", low=1, high=1000) == 50
    for raw in ("", "0", "1001", "-1", "+5", "5.0", " 5", "1" * 30):
        with pytest.raises(falcon.HTTPBadRequest):
            params.parse_int(raw, "limit", low=1, high=1000)


def test_text_is_storable():
    assert params.text("a\x00b") == "a\ufffdb"
    assert params.text("caf\udce9") == "caf\ufffd"
    assert params.text("déjà vu ✓") == "déjà vu ✓"


# --- upload naming -------------------------------------------------------------------------

@pytest.mark.parametrize(("header", "name"), [
    ('attachment; filename="a.mp4"', "a.mp4"),
    ("attachment; filename=a.mp4", "a.mp4"),
    ("attachment; filename=\"x.mp4\"; filename*=UTF-8''caf%C3%A9.mp4", "café.mp4"),
    ("attachment; filename*=UTF-8''%FF.mp4; filename=\"ok.mp4\"", "ok.mp4"),  # bad UTF-8
    ("inline", None), ("", None), (None, None),
])
def test_disposition_filename(header, name):
    assert uploads.disposition_filename(header) == name


def test_raw_filename():
    assert uploads.raw_filename("video/mp4", {"filename": "a.MKV"}, None) == "a.MKV"
    assert uploads.raw_filename("video/mp4", {}, 'attachment; filename="b.webm"') == "b.webm"
    assert uploads.raw_filename("video/webm", {}, None) == "video.webm"
    assert uploads.raw_filename("video/x-ms-wmv", {}, None) == "video.wmv"
    with pytest.raises(falcon.HTTPBadRequest):
        uploads.raw_filename("application/octet-stream", {}, None)
    with pytest.raises(falcon.HTTPBadRequest):
        uploads.raw_filename("video/mp4", {"filename": ""}, None)
    for refused in ({"filename": "a.gif"}, {"filename": "mp4"}, {"filename": "a.mp4 "}):
        with pytest.raises(falcon.HTTPUnsupportedMediaType):
            uploads.raw_filename("video/mp4", refused, None)
    with pytest.raises(falcon.HTTPUnsupportedMediaType):
        uploads.raw_filename("video/ogg", {}, None)
    with pytest.raises(falcon.HTTPBadRequest):
        uploads.raw_filename("video/mp4", {"filename": "x" * 200 + ".mp4"}, None)


@given(st.text(max_size=30), st.sampled_from(["mp4", "MoV", "webm", "gif", "mp4 ", "", "m4v"]))
def test_the_document_filename_pattern_is_the_server_rule(stem, ext):
    """What the OpenAPI pattern admits is exactly what the server takes (any case)."""
    name = f"{stem}.{ext}" if ext else stem
    pattern = re.compile(openapi.FILENAME)
    try:
        uploads.raw_filename("video/mp4", {"filename": name}, None)
        taken = True
    except falcon.HTTPError:
        taken = False
    admitted = bool(pattern.fullmatch(name)) and len(name) <= uploads.QUERY_LIMITS["filename"]
    assert taken == admitted, name


# --- the body -----------------------------------------------------------------------------

def test_body_counts_and_stops_at_content_length():
    body = uploads.Body(io.BytesIO(b"abcdefgh-and-more"), expected=8, limit=100)
    assert body.read(5) + body.read(100) + body.read(10) == b"abcdefgh"
    assert body.count == 8


def test_body_tells_a_short_body_from_the_end():
    body = uploads.Body(io.BytesIO(b"abc"), expected=8, limit=100)
    assert body.read(100) == b"abc"
    with pytest.raises(uploads.ClientGone, match="3 of 8"):
        body.read(100)
    chunked = uploads.Body(io.BytesIO(b"abc"), expected=None, limit=100)
    assert chunked.read() == b"abc" and chunked.read() == b""


def test_body_limit_and_errors():
    body = uploads.Body(io.BytesIO(b"x" * 20), expected=None, limit=10)
    with pytest.raises(uploads.TooLarge):
        while body.read(4):
            pass

    class Broken:
        def read(self, size: int = -1) -> bytes:
            raise ConnectionResetError(104, "reset by peer")

    with pytest.raises(uploads.ClientGone, match="ConnectionResetError"):
        uploads.Body(Broken(), expected=10, limit=100).read(5)


# --- the document and the app ----------------------------------------------------------------

def app_routes() -> dict[str, set[str]]:
    app = create_app(Settings(admin_token="x"), Catalog(None))  # type: ignore[arg-type]
    found = {}
    for route in falcon.inspect.inspect_routes(app):
        methods = {m.method.lower() for m in route.methods if not m.internal}
        path = re.sub(r"\{video_id:int\([^)]*\)\}", "{video_id}", route.path)
        found[path] = methods - {"options"}
    return found


def test_every_route_is_documented_with_its_methods():
    """The JSON API (/api/, /stream/, health): the browser pages are not part of it."""
    documented = {path: set(ops) for path, ops in openapi.document()["paths"].items()}
    api = {p: m for p, m in app_routes().items()
           if p.startswith(("/api/", "/stream/")) or p in ("/healthz", "/readyz")}
    # the 308s to the trailing slash (storyboard.vtt and the sheets end otherwise)
    redirects = {p for p in api if not p.endswith("/") and f"{p}/" in api}
    assert {p: m for p, m in api.items() if p not in redirects} == documented


def test_document_basics():
    doc = openapi.document()
    assert doc["openapi"] == "3.1.0"
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    for path, item in doc["paths"].items():
        for method, op in item.items():
            admin = path.startswith(("/api/videos", "/api/origins"))
            assert op["security"] == ([{"adminToken": []}] if admin else []), (method, path)
            if admin:
                assert "401" in op["responses"]
    cursor = next(p for p in doc["paths"]["/api/videos"]["get"]["parameters"]
                  if p["name"] == "cursor")
    assert cursor["schema"]["pattern"] == f"^{params.CURSOR.pattern}$"


def test_not_found_is_a_fresh_error_each_time():
    from api.tokens.endpoints import not_found
    assert not_found() is not not_found()
