"""deploy/nginx.conf in front of the real API with VIDEODROP_ACCEL_REDIRECT: the API checks
the token, nginx sends the bytes (ranges, conditionals), uploads pass through unbuffered."""

from __future__ import annotations

import base64
import http.client
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import requests

from testbed.nginx import nginx_in_front
from tests.harness import System, wait_for
from tests.integration.test_api_uploads import wait_status


@pytest.fixture
def fronted(make_system, tmp_path) -> Iterator[tuple[System, str]]:
    system = make_system(VIDEODROP_ACCEL_REDIRECT="/protected/",
                         VIDEODROP_MAX_FILE_SIZE="100MB").start("api", "prober")
    with nginx_in_front(system, tmp_path / "nginx") as url:
        yield system, url


def test_nginx_sends_the_bytes_the_api_allows(fronted, samples):
    system, url = fronted
    src = samples / "bbb_chapters.mp4"
    data = src.read_bytes()
    with src.open("rb") as fh:  # an upload through nginx (unbuffered)
        up = requests.post(f"{url}/api/videos", params={"filename": src.name}, data=fh,
                           headers={**system.admin, "Content-Type": "video/mp4"}, timeout=30)
    assert up.status_code == 202, up.text
    token = up.json()["api_links"]["access_token"]
    assert wait_status(system, token)["status"] == "ready"

    direct = requests.get(f"{system.base_url}/stream/{token}/", timeout=5)
    assert direct.status_code == 200 and direct.content == b""  # the API only redirects
    assert direct.headers["X-Accel-Redirect"].startswith("/protected/videos/")

    whole = requests.get(f"{url}/stream/{token}/", timeout=10)
    assert whole.status_code == 200 and whole.content == data
    assert "X-Accel-Redirect" not in whole.headers
    assert whole.headers["Content-Type"] == "video/mp4"
    assert whole.headers["Content-Disposition"].startswith("inline")
    assert whole.headers["Referrer-Policy"] == "no-referrer"
    assert whole.headers["X-Content-Type-Options"] == "nosniff"
    part = requests.get(f"{url}/stream/{token}/", headers={"Range": "bytes=100-1099"},
                        timeout=5)
    assert part.status_code == 206 and part.content == data[100:1100]
    assert part.headers["Content-Range"] == f"bytes 100-1099/{len(data)}"
    download = requests.get(f"{url}/api/video/{token}/download/", timeout=10)
    assert download.content == data
    assert download.headers["Content-Disposition"].startswith("attachment")

    # The API still decides: revoked → the same 404, and the internal location is closed.
    requests.delete(f"{url}/api/videos/{up.json()['id']}/token", headers=system.admin,
                    timeout=5).raise_for_status()
    assert requests.get(f"{url}/stream/{token}/", timeout=5).status_code == 404
    stored = up.json()["file_info"]["filename"]
    assert requests.get(f"{url}/protected/{stored}", timeout=5).status_code == 404


@pytest.fixture(params=["api sends the bytes", "X-Accel-Redirect"])
def proxied(request, make_system, tmp_path) -> Iterator[tuple[System, str]]:
    accel = {"VIDEODROP_ACCEL_REDIRECT": "/protected/"} if request.param != (
        "api sends the bytes") else {}
    system = make_system(**accel).start("api", "prober")
    with nginx_in_front(system, tmp_path / "nginx") as url:
        yield system, url


def test_the_longest_names_fit_nginx_s_header_buffers(proxied, samples):
    """A 1,020-emoji file name (13.7 KB of Content-Disposition once) and a source_id spelled
    with escapes: /download/ and /stream/ answer through deploy/nginx.conf's defaults."""
    system, url = proxied
    data = (samples / "tiny_av1.mp4").read_bytes()
    name = "\N{CLAPPER BOARD}" * 1020 + ".mp4"
    up = requests.post(f"{url}/api/videos", headers=system.admin, timeout=30,
                       files=[("file", (name, data)), ("source_id", (None, "a" + "." * 60))])
    assert up.status_code == 202, up.text
    rec = wait_status(system, up.json()["api_links"]["access_token"])
    assert rec["status"] == "ready", rec
    stored_name = rec["original_filename"]
    assert stored_name.endswith(".mp4") and len(stored_name.encode()) <= 255
    assert stored_name == "\N{CLAPPER BOARD}" * 62 + ".mp4"  # cut between characters
    token = rec["api_links"]["access_token"]
    whole = requests.get(f"{url}/api/video/{token}/download/", timeout=10)
    assert whole.status_code == 200 and whole.content == data
    assert "filename*=UTF-8''" + "%F0%9F%8E%AC" * 62 + ".mp4" in whole.headers[
        "Content-Disposition"]
    part = requests.get(f"{url}/stream/{token}/", headers={"Range": "bytes=10-99"}, timeout=10)
    assert part.status_code == 206 and part.content == data[10:100]
    assert len(str(whole.headers).encode()) < 4096


def test_the_access_log_cuts_tokens(fronted, samples):
    """deploy/nginx.conf's access log names requests by their path with the token cut to
    its first 6 characters, as the API's own lines do."""
    system, url = fronted
    with (samples / "tiny_av1.mp4").open("rb") as fh:
        up = requests.post(f"{url}/api/videos", params={"filename": "tiny.mp4"}, data=fh,
                           headers={**system.admin, "Content-Type": "video/mp4"}, timeout=30)
    token = up.json()["api_links"]["access_token"]
    for path in (f"/api/video/{token}/", f"/stream/{token}/video.mp4", f"/api/video/{token}x/"):
        requests.get(url + path, timeout=5)
    log = Path(system.root).parent / "nginx" / "access.log"

    def written() -> str | None:  # the site file writes its log every second
        text = log.read_text() if log.exists() else ""
        return text if text.count("\n") >= 4 else None

    text = wait_for(written, timeout=10, what="nginx's access log")
    assert token not in text
    assert f'"GET /api/video/{token[:6]}.../ HTTP/1.1" ' in text
    assert f'"GET /stream/{token[:6]}.../video.mp4 HTTP/1.1" ' in text
    assert '"POST /api/videos?filename=tiny.mp4 HTTP/1.1" 202' in text


def every_escape(text: str, *, lower: bool = False, every: int = 1) -> str:
    """``text`` with every ``every``-th character %-encoded."""
    return "".join(f"%{ord(ch):02x}" if lower else f"%{ord(ch):02X}" if i % every == 0 else ch
                   for i, ch in enumerate(text))


def decoded(line: str) -> str:
    """``line`` %-decoded until nothing changes (a doubly encoded token included)."""
    while (once := unquote(line)) != line:
        line = once
    return line


def test_no_log_line_holds_a_whole_token_in_any_shape(make_system, tmp_path):
    """Token-shaped runs are cut wherever and however often they appear in a request: in
    the query as well as the path, several in one path, %-encoded (wholly, partly, in
    lowercase, twice), in the Referer. Checked in nginx's access log and in the API's output
    (gunicorn's access and error logs, the request log), each line %-decoded first."""
    system: System = make_system()
    system.start_role("api", "--access-logfile", "-")  # gunicorn's own access log too
    wait_for(lambda: system.http.get(f"{system.base_url}/healthz", timeout=2).ok, timeout=30,
             what="the API")
    t1, t2, t3, t4 = (secrets.token_urlsafe(32) for _ in range(4))
    paths = [
        f"/api/video/{t1}/?t={t2}",
        f"/stream/{t1}/{t2}",
        f"/api/video/{every_escape(t1)}/",
        f"/api/video/{every_escape(t2, lower=True, every=2)}/metadata/",
        f"/api/video/{every_escape(every_escape(t3))}/",  # %25 then the digits
        f"/x/{t1}/{t2}/{t3}/{t4}?a={t1}&b={t4}",
        f"/api/videos?token={t3}",
    ]
    with nginx_in_front(system, tmp_path / "nginx") as url:
        for base in (url, system.base_url):
            for path in paths:
                conn = http.client.HTTPConnection(urlsplit(base).netloc, timeout=10)
                basic = base64.b64encode(f"{t3}:x".encode()).decode()
                conn.request("GET", path, headers={"Referer": f"{url}/api/video/{t4}/?x={t1}",
                                                   "User-Agent": f"agent/{t2}",
                                                   "Authorization": f"Basic {basic}",
                                                   "Connection": "close"})
                conn.getresponse().read()
                conn.close()
        # refusals (limit_req: 429) quote their request line in nginx's error log
        refused = 0
        for _ in range(40):
            conn = http.client.HTTPConnection(urlsplit(url).netloc, timeout=10)
            conn.request("POST", f"/login?next=/stream/{t1}/", body="token=x",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
            refused += conn.getresponse().status == 429
            conn.close()
        assert refused
        log = tmp_path / "nginx" / "access.log"

        def written() -> str | None:  # the site file writes its log every second
            text = log.read_text() if log.exists() else ""
            return text if text.count("\n") >= len(paths) + 41 else None  # /healthz, login

        nginx_lines = wait_for(written, timeout=10, what="nginx's access log").splitlines()
    system.stop()
    api_lines = system.log_text("api").splitlines()
    tokens = (t1, t2, t3, t4)
    error_lines = (tmp_path / "nginx" / "error.log").read_text().splitlines()
    leaks = [line for line in nginx_lines + api_lines + error_lines
             if any(t in decoded(line) for t in tokens)]
    assert not leaks, f"{len(leaks)} lines hold a whole token, e.g. {leaks[:3]}"
    nginx_text = "\n".join(nginx_lines)  # ...and the requests were logged, cut
    assert f"/stream/{t1[:6]}.../{t2[:6]}... HTTP/1.1" in nginx_text
    assert f"/api/video/{t1[:6]}.../?t={t2[:6]}... HTTP/1.1" in nginx_text
    assert f'"{url}/api/video/{t4[:6]}...[cut]"' in nginx_text
    assert f"/x/{t1[:6]}.../{t2[:6]}.../{t3[:6]}...[cut] HTTP/1.1" in nginx_text
    assert '"GET /healthz HTTP/1.1" 200 16 "-" "python-requests/' in nginx_text
    assert f' - {t3[:6]}...[cut] [' in nginx_text and f'"agent/{t2[:6]}...[cut]"' in nginx_text
    gunicorn = [line for line in api_lines if '"GET /stream/' in line]
    assert gunicorn and f"/stream/{t1[:6]}…/{t2[:6]}…" in gunicorn[0]
