"""No log line holds a whole access token: a run of the whole system (ingest, prober, API
with stream links, gunicorn's own access log on) through every endpoint, errors included,
then every line of every role's output is searched for every token the run issued.

The errors are real ones: a stored file the API may not read (500 through Falcon, whose own
handler would log the path), request lines gunicorn refuses (its error log quotes them),
paths no route matches (the request line's route falls back to the path), a change made
with psql whose stream link cannot be removed (the error names the link, named by the
token), a client sending its token as X-Request-ID."""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import requests

from tests.harness import System, wait_for
from tests.integration.test_api_uploads import ready_upload, wait_status


def raw_request(system: System, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", system.port), timeout=10) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def lines_of(system: System) -> list[tuple[str, str]]:
    return [(role, line) for role in ("api", "prober", "ingest")
            for line in system.log_text(role).splitlines()]


def events(system: System, event: str) -> list[dict[str, Any]]:
    found = []
    for _, line in lines_of(system):
        if line.startswith("{"):
            parsed = json.loads(line)
            if parsed.get("event") == event:
                found.append(parsed)
    return found


def test_no_log_line_holds_a_whole_token(make_system, samples: Path, tmp_path: Path) -> None:
    links = tmp_path / "links"
    system: System = make_system(VIDEODROP_STREAM_LINKS=str(links))
    system.start_role("api", "--access-logfile", "-")  # gunicorn's own access log too
    system.start("prober", "ingest")
    wait_for(lambda: system.http.get(f"{system.base_url}/healthz", timeout=2).ok, timeout=30,
             what="the API")
    base, admin = system.base_url, system.admin
    issued: set[str] = set()

    # a watch-folder file and an upload, both ready
    shutil.copy(samples / "bbb_chapters.mp4", system.inbox / "cam.mp4")
    dropped = system.wait_record("cam.mp4")
    inbox_token = dropped["api_links"]["access_token"]
    uploaded = ready_upload(system, samples / "sar_2x1.mp4")
    token = uploaded["api_links"]["access_token"]
    issued |= {inbox_token, token}

    # every token endpoint, good and bad
    for path in ("", "metadata/", "download/"):
        for method in ("GET", "HEAD"):
            assert requests.request(method, f"{base}/api/video/{token}/{path}",
                                    timeout=10).status_code == 200
    part = requests.get(f"{base}/stream/{token}/", headers={"Range": "bytes=0-99"}, timeout=5)
    assert part.status_code == 206
    assert requests.get(f"{base}/stream/{token}/", headers={"If-None-Match": part.headers[
        "ETag"]}, timeout=5).status_code == 304
    assert requests.get(f"{base}/stream/{token}/", headers={"Range": "bytes=999999999-"},
                        timeout=5).status_code == 416
    assert requests.get(f"{base}/api/video/{token}", allow_redirects=False,
                        timeout=5).status_code == 308
    for unrouted in (f"/stream/{token}/video.mp4", f"/api/video/{token}//",
                     f"/api/video/{token}/nothing/", f"/api/video/{token}x/"):
        assert requests.get(base + unrouted, timeout=5).status_code == 404
    unknown = secrets.token_urlsafe(32)
    issued.add(unknown)  # not a token of ours, but token-shaped: no reason to log it either
    assert requests.get(f"{base}/api/video/{unknown}/", timeout=5).status_code == 404
    assert requests.get(f"{base}/healthz", headers={"X-Request-ID": token},
                        timeout=5).headers["X-Request-ID"] != token

    # request lines gunicorn refuses: its error log quotes them
    assert raw_request(system, f"GET /stream/{token}/ HTTP/1.1 junk\r\n\r\n".encode()
                       ).startswith(b"HTTP/1.1 400")
    assert raw_request(system, f"GET /stream/{token}/\x7f HTTP/1.1\r\nHost: x\r\n\r\n".encode()
                       ).startswith(b"HTTP/1.1 400")

    # a stored file the API cannot open (replaced by a symbolic link to itself: ELOOP, which
    # no resource expects; permissions would not stop the root user running the tests):
    # a 500 through the unplanned-error path
    stored = system.media_root / uploaded["file_info"]["filename"]
    kept = stored.with_name("kept")
    stored.rename(kept)
    stored.symlink_to(stored.name)
    try:
        failed = requests.get(f"{base}/api/video/{token}/download/", timeout=5)
    finally:
        stored.unlink()
        kept.rename(stored)
    assert failed.status_code == 500 and failed.json()["title"] == "Internal Server Error"

    # the management API and the pages
    video_id = uploaded["id"]
    assert requests.get(f"{base}/api/videos", headers=admin, timeout=5).status_code == 200
    assert requests.get(f"{base}/api/videos/{video_id}", headers=admin,
                        timeout=5).status_code == 200
    assert requests.get(f"{base}/api/videos", headers={"Authorization": f"Bearer {token}"},
                        timeout=5).status_code == 401
    rotated = requests.post(f"{base}/api/videos/{video_id}/token", headers=admin, timeout=5)
    new_token = rotated.json()["api_links"]["access_token"]
    issued.add(new_token)
    assert requests.get(f"{base}/api/video/{token}/", timeout=5).status_code == 404
    web = requests.Session()
    assert web.post(f"{base}/login", data={"token": system.admin_token},
                    timeout=5).status_code == 200
    assert token not in web.get(f"{base}/videos/{video_id}", timeout=5).text  # rotated away
    assert new_token in web.get(f"{base}/videos/{video_id}", timeout=5).text

    # a change made with psql whose stream link cannot be removed (a folder stands where the
    # link was): the listener's warning quotes the error, which names the link, which is
    # named by the token
    wait_status(system, inbox_token, {"ready"})
    shard = links / inbox_token[:2]
    link = wait_for(lambda: next(shard.glob(f"{inbox_token}.*"), None), timeout=10,
                    what="the link")
    link.unlink()
    (link / "in-the-way").mkdir(parents=True)
    psql_token = secrets.token_urlsafe(32)
    issued.add(psql_token)
    subprocess.run(["psql", system.database_url, "-v", "ON_ERROR_STOP=1", "-c",
                    f"UPDATE videos SET access_token = '{psql_token}'"
                    f" WHERE access_token = '{inbox_token}'"], check=True, capture_output=True)
    wait_for(lambda: events(system, "stream link not removed: run 'videodrop links'"),
             timeout=15, what="the listener's warning")
    shutil.rmtree(link)

    revoked = requests.delete(f"{base}/api/videos/{video_id}/token", headers=admin, timeout=5)
    assert revoked.status_code == 200
    assert requests.delete(f"{base}/api/videos/{video_id}", headers=admin,
                           timeout=5).status_code == 204
    system.stop()  # every role writes out what it holds

    lines = lines_of(system)
    leaks = [(role, line) for role, line in lines for t in issued if t in line]
    assert not leaks, f"{len(leaks)} lines hold a whole token, e.g. {leaks[:3]}"
    # ...and the run did reach what it was meant to reach
    text = "\n".join(line for _, line in lines)
    prefix = token[:6] + "…"
    assert [e for e in events(system, "request failed")
            if e["route"] == "/api/video/{token}/download/" and "Errno 40" in e["error"]]
    assert f"/stream/{prefix}/video.mp4" in text  # an unrouted path, cut
    assert "Invalid request from ip=" in text and f"/stream/{prefix}/" in text  # gunicorn's
    assert f'"GET /api/video/{prefix}/ HTTP/1.1" 200' in text  # gunicorn's access log
    assert events(system, "stream link not removed: run 'videodrop links'")
