"""The web pages over plain HTTP against the real system: the login cookie on the API
(with its CSRF checks), the library's search, filter and pages, headers and errors."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import requests

from tests.harness import System, wait_for
from videodrop.catalog import Catalog
from videodrop.errorcodes import ErrorCode


def logged_in(system: System) -> tuple[requests.Session, str]:
    """A session holding the login cookie, and the CSRF token the pages carry."""
    http = requests.Session()
    resp = http.post(f"{system.base_url}/login",
                     data={"token": system.admin_token, "next": "/upload"},
                     allow_redirects=False, timeout=5)
    assert resp.status_code == 303 and resp.headers["Location"] == "/upload"
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    page = http.get(f"{system.base_url}/", timeout=5)
    assert page.status_code == 200
    match = re.search(r'data-csrf="([^"]+)"', page.text)
    assert match
    return http, match.group(1)


def test_the_api_takes_the_login_cookie_with_a_csrf_token(system: System,
                                                          samples: Path) -> None:
    http, csrf = logged_in(system)
    api = f"{system.base_url}/api/videos"
    assert http.get(api, timeout=5).status_code == 200
    assert requests.get(api, timeout=5).status_code == 401

    def post(**headers: str) -> requests.Response:
        with (samples / "tiny_av1.mp4").open("rb") as fh:
            return http.post(api, files={"file": ("tiny.mp4", fh, "video/mp4")},
                             headers=headers, timeout=10)

    assert post().status_code == 403  # the cookie alone cannot change anything
    assert post(**{"X-CSRF-Token": "forged"}).status_code == 403
    assert post(**{"X-CSRF-Token": csrf, "Origin": "https://evil.example"}).status_code == 403
    assert system.videos() == []  # nothing refused left a row
    made = post(**{"X-CSRF-Token": csrf, "Origin": system.base_url})
    assert made.status_code == 202, made.text
    video_id = made.json()["id"]

    token_url = f"{api}/{video_id}/token"
    assert http.delete(token_url, timeout=5).status_code == 403
    revoked = http.delete(token_url, headers={"X-CSRF-Token": csrf}, timeout=5)
    assert revoked.status_code == 200 and revoked.json()["api_links"]["access_token"] is None
    # a bearer token still works as before, cookie or not
    rotated = requests.post(token_url, headers=system.admin, timeout=5)
    assert rotated.status_code == 200 and rotated.json()["api_links"]["access_token"]
    wrong_bearer = http.get(api, headers={"Authorization": "Bearer wrong"}, timeout=5)
    assert wrong_bearer.status_code == 401  # a wrong bearer is not rescued by the cookie

    # log out: a forged form is refused, the real one clears the cookie
    assert http.post(f"{system.base_url}/logout", data={"csrf": "forged"},
                     allow_redirects=False, timeout=5).status_code == 403
    out = http.post(f"{system.base_url}/logout", data={"csrf": csrf}, allow_redirects=False,
                    timeout=5)
    assert out.status_code == 303 and out.headers["Location"] == "/login?done=loggedout"
    assert "videodrop_session" not in http.cookies
    assert http.get(f"{system.base_url}/", allow_redirects=False,
                    timeout=5).headers["Location"] == "/login?next=%2F"


def test_library_search_filter_and_pages(system: System) -> None:
    catalog = Catalog.connect(system.database_url)
    try:
        for i in range(30):
            video = catalog.create_upload(filename=f"clip{i:02d}.mp4", name=f"Clip {i:02d}",
                                          source_id=f"cam-{i % 3}-{i:02d}")
            if i % 10 == 0:
                catalog.mark_failed(video.id, "upload interrupted",
                                    ErrorCode.UPLOAD_INTERRUPTED)
    finally:
        catalog.close()
    http, _ = logged_in(system)

    def names(html: str) -> list[str]:
        return re.findall(r'<a href="/videos/\d+"[^>]*>([^<]+)</a>', html)

    first = http.get(f"{system.base_url}/", timeout=5).text
    assert names(first) == [f"Clip {i:02d}" for i in range(29, 4, -1)]  # newest first, 25
    assert 'data-count="all">30<' in first and 'data-count="failed">3<' in first
    older = re.search(r'href="([^"]+)" rel="next"', first)
    assert older
    second = http.get(system.base_url + older.group(1).replace("&amp;", "&"), timeout=5).text
    assert names(second) == [f"Clip {i:02d}" for i in range(4, -1, -1)]
    assert 'rel="next"' not in second
    newer = re.search(r'href="([^"]+)" rel="prev"', second)
    assert newer
    back = http.get(system.base_url + newer.group(1).replace("&amp;", "&"), timeout=5).text
    assert names(back) == names(first)

    found = http.get(f"{system.base_url}/", params={"q": "cam-1-"}, timeout=5).text
    assert names(found) == [f"Clip {i:02d}" for i in range(28, -1, -1) if i % 3 == 1]
    assert 'data-count="all">10<' in found
    assert names(http.get(f"{system.base_url}/", params={"q": "CLIP 07"}, timeout=5).text) == [
        "Clip 07"]
    assert names(http.get(f"{system.base_url}/", params={"q": "100%_"}, timeout=5).text) == []
    failed = http.get(f"{system.base_url}/", params={"status": "failed"}, timeout=5).text
    assert names(failed) == ["Clip 20", "Clip 10", "Clip 00"]

    live = http.get(f"{system.base_url}/library.json", params={"status": "failed", "q": "clip"},
                    timeout=5)
    assert live.status_code == 200 and live.headers["Cache-Control"] == "no-store"
    body = live.json()
    assert [r["name"] for r in body["rows"]] == ["Clip 20", "Clip 10", "Clip 00"]
    assert body["counts"] == {"uploading": 27, "processing": 0, "ready": 0, "failed": 3,
                              "expired": 0}
    assert 'data-status="failed"' in body["rows"][0]["html"]
    assert requests.get(f"{system.base_url}/library.json", timeout=5).status_code == 401


def test_page_headers_redirects_and_errors(system: System) -> None:
    http, _ = logged_in(system)
    base = system.base_url
    page = http.get(f"{base}/source-management/add/", params={"type": "file"}, timeout=5)
    assert page.status_code == 200 and 'type="file"' in page.text and "multiple" in page.text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert '"maxSize": 100000000' in page.text  # the limit the browser checks against
    assert http.get(f"{base}/upload", timeout=5).status_code == 200
    slash = http.get(f"{base}/source-management/add?type=file", allow_redirects=False,
                     timeout=5)
    assert slash.status_code == 308
    assert slash.headers["Location"].endswith("/source-management/add/?type=file")
    assert http.get(f"{base}/source-management/add/?type=rtsp", timeout=5).status_code == 404
    missing = http.get(f"{base}/videos/424242", timeout=5)
    assert missing.status_code == 404 and "No such video" in missing.text
    for src in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
        asset = requests.get(base + src.replace("&amp;", "&"), timeout=5)
        assert asset.status_code == 200 and "immutable" in asset.headers["Cache-Control"]
    assert "http://" not in re.sub(r'(value|href)="http[^"]*"', "", page.text.split("<main")[0])


def test_login_is_disabled_without_an_admin_token(make_system) -> None:
    system: System = make_system(VIDEODROP_ADMIN_TOKEN="").start("api")
    page = requests.get(f"{system.base_url}/login", timeout=5)
    assert page.status_code == 200 and "VIDEODROP_ADMIN_TOKEN" in page.text
    tried = requests.post(f"{system.base_url}/login", data={"token": ""},
                          allow_redirects=False, timeout=5)
    assert tried.status_code == 200 and "Set-Cookie" not in tried.headers
    assert requests.get(f"{system.base_url}/", allow_redirects=False,
                        timeout=5).status_code == 303


def test_a_video_page_offers_only_links_that_answer(system: System, samples: Path) -> None:
    """A failed (or still processing) video's page offers its record and metadata, never
    stream or download links that would answer 409; a ready one offers all four."""
    from tests.integration.test_api_uploads import upload_raw, wait_status

    http, _ = logged_in(system)
    for sample, status in (("tiny-broken.flv", "failed"), ("tiny_av1.mp4", "ready")):
        token = upload_raw(system, samples / sample).json()["api_links"]["access_token"]
        rec = wait_status(system, token)
        assert rec["status"] == status
        page = http.get(f"{system.base_url}/videos/{rec['id']}", timeout=5).text
        offered = set(re.findall(r'(?:href|value)="(https?://[^"]+)"', page))
        links = rec["api_links"]
        file_links = {links["stream_url"], links["download_url"]}
        assert {links["api_endpoint"], links["metadata_url"]} <= offered
        assert (file_links <= offered) if status == "ready" else not file_links & offered
        for url in offered:
            if url.startswith(system.base_url):
                answer = requests.head(url, timeout=5)
                assert answer.status_code == 200, (url, answer.status_code)


def test_library_search_matches_the_origin(system: System) -> None:
    catalog = Catalog.connect(system.database_url)
    try:
        camera = catalog.create_upload(filename="porch.mp4", source_id="porch-1")
        catalog.create_upload(filename="yard.mp4", source_id="yard-1")
    finally:
        catalog.close()
    with psycopg.connect(system.database_url, autocommit=True) as conn:
        conn.execute("UPDATE videos SET origin = 'inbox/cam7/2026-11-30' WHERE id = %s",
                     (camera.id,))
    http, _ = logged_in(system)
    found = http.get(f"{system.base_url}/", params={"q": "cam7"}, timeout=5).text
    assert re.findall(r'<a href="/videos/\d+"[^>]*>([^<]+)</a>', found) == ["porch"]


def test_an_uploading_row_shows_the_bytes_received(system: System) -> None:
    """A running upload records what it has received (every few seconds while data
    arrives): the library's row says so."""
    import socket
    import threading
    from urllib.parse import urlsplit

    http, _ = logged_in(system)
    where = urlsplit(system.base_url)
    stop = threading.Event()
    conn = socket.create_connection((where.hostname, where.port), timeout=10)

    def send_slowly() -> None:
        conn.sendall(b"POST /api/videos?filename=slow.mp4 HTTP/1.1\r\n"
                     b"Host: x\r\nContent-Type: video/mp4\r\nContent-Length: 100000000\r\n"
                     b"Authorization: Bearer " + system.admin_token.encode() + b"\r\n\r\n")
        while not stop.wait(0.05):
            conn.sendall(b"\0" * 65536)

    sender = threading.Thread(target=send_slowly, daemon=True)
    sender.start()
    try:
        def received() -> str | None:
            rows = http.get(f"{system.base_url}/library.json", timeout=5).json()["rows"]
            html = rows[0]["html"] if rows else ""
            found = re.search(r"([\d.]+ [kM]B) received", html)
            return found.group(1) if found else None

        assert wait_for(received, timeout=30, what="the bytes received in the row")
    finally:
        stop.set()
        sender.join(10)
        conn.close()


def test_library_sorts_keep_to_their_pages_and_the_live_list(system: System) -> None:
    """Sorted by name, duration, size or added, either way: the headers say which (aria-sort)
    and link to the other way; "next" and the live list (library.json) keep the sort."""
    catalog = Catalog.connect(system.database_url)
    try:
        made = [catalog.create_upload(filename=f"c{i:02d}.mp4", name=f"Clip {(i * 7) % 30:02d}",
                                      source_id=f"sort-{i:02d}") for i in range(30)]
    finally:
        catalog.close()
    with psycopg.connect(system.database_url, autocommit=True) as conn:
        for i, video in enumerate(made):  # every third duration unknown; sizes 0..29 kB
            conn.execute("UPDATE videos SET duration = %s, size = %s WHERE id = %s",
                         (None if i % 3 == 0 else float(i), 1000 * i, video.id))
    http, _ = logged_in(system)

    def names(html: str) -> list[str]:
        return re.findall(r'<a href="/videos/\d+"[^>]*>([^<]+)</a>', html)

    by_name = http.get(f"{system.base_url}/", params={"sort": "name"}, timeout=5).text
    assert names(by_name) == [f"Clip {i:02d}" for i in range(25)]
    assert re.search(r'<th scope="col" class="sortable" aria-sort="ascending">\s*'
                     r'<a href="/\?sort=-name">Name', by_name), by_name
    assert 'href="/?sort=-duration">Duration' in by_name  # another column: its first way
    assert '<input type="hidden" name="sort" value="name">' in by_name  # the search keeps it
    nxt = re.search(r'href="([^"]+)" rel="next"', by_name)
    assert nxt and "sort=name" in nxt.group(1)
    rest = http.get(system.base_url + nxt.group(1).replace("&amp;", "&"), timeout=5).text
    assert names(rest) == [f"Clip {i:02d}" for i in range(25, 30)]
    prev = re.search(r'href="([^"]+)" rel="prev"', rest)
    assert prev and "sort=name" in prev.group(1)
    back = http.get(system.base_url + prev.group(1).replace("&amp;", "&"), timeout=5).text
    assert names(back) == names(by_name)

    # longest first: unknown durations last; the live list says the same
    longest = [f"Clip {(i * 7) % 30:02d}" for i in range(29, -1, -1) if i % 3]
    unknown = [f"Clip {(i * 7) % 30:02d}" for i in range(27, -1, -3)]
    page = http.get(f"{system.base_url}/", params={"sort": "-duration"}, timeout=5).text
    assert names(page) == (longest + unknown)[:25]
    assert 'data-live="/library.json?sort=-duration"' in page
    live = http.get(f"{system.base_url}/library.json", params={"sort": "-duration"},
                    timeout=5).json()
    assert [r["name"] for r in live["rows"]] == (longest + unknown)[:25]
    smallest = http.get(f"{system.base_url}/library.json", params={"sort": "size", "q": "c0"},
                        timeout=5).json()
    assert [r["name"] for r in smallest["rows"]] == [f"Clip {(i * 7) % 30:02d}"
                                                     for i in range(10)]

    # an unknown sort: a 400 naming the allowed ones, as a page and as JSON
    wrong = http.get(f"{system.base_url}/", params={"sort": "length"}, timeout=5)
    assert wrong.status_code == 400 and "Sort is one of -added, added, name" in wrong.text
    wrong_live = http.get(f"{system.base_url}/library.json", params={"sort": "length"},
                          timeout=5)
    assert wrong_live.status_code == 400
    assert wrong_live.json()["title"] == "Bad sort"
    assert "-added, added, name, -name, duration" in wrong_live.json()["description"]


def test_the_expired_tab_shows_only_where_retention_removed_something(system: System) -> None:
    """A catalog without expired videos has no Expired tab (one it would never use); asked
    for by its URL, the tab is there."""
    http, _ = logged_in(system)
    assert 'data-count="expired"' not in http.get(f"{system.base_url}/", timeout=5).text
    asked = http.get(f"{system.base_url}/", params={"status": "expired"}, timeout=5).text
    assert 'data-count="expired">0<' in asked
