"""Every response carries the safety headers and a Cache-Control fitting its endpoint;
errors are Falcon's JSON with the right status. Plus the file endpoints of the real API
(the Range machinery itself is covered in depth by test_fileresponse.py).

Once per media store (``store_env``): the file store, then s3 with VIDEODROP_S3_SERVE=proxy,
where the API answers with the bytes itself and owes the file store's headers, ranges and
conditionals (docs/storage.md). s3's default, ``redirect``, answers the file endpoints with
a 307 (``no-store``) and the store answers the rest: test_object_serving.py."""

from __future__ import annotations

import requests

from tests.integration.test_api_uploads import ready_upload, upload_raw

RECORD = "no-store"
FILE = "private, max-age=3600"
#: /stream/: what it serves may change (a rendition), so it is revalidated every time
STREAM = "private, no-cache"


def check(resp: requests.Response, status: int, cache: str) -> None:
    where = f"{resp.request.method} {resp.request.path_url} → {resp.status_code}"
    assert resp.status_code == status, f"{where}: {resp.text[:200]}"
    assert resp.headers["Referrer-Policy"] == "no-referrer", where
    assert resp.headers["X-Content-Type-Options"] == "nosniff", where
    assert resp.headers["Cache-Control"] == cache, where
    if status >= 400 and resp.request.method != "HEAD":
        assert resp.headers["Content-Type"].startswith("application/json"), where
        body = resp.json()
        assert set(body) <= {"title", "description"} and body["title"], where


def test_headers_on_every_endpoint(make_system, samples, store_env):
    store = {**store_env, "VIDEODROP_S3_SERVE": "proxy"} if store_env else {}
    system = make_system(VIDEODROP_MAX_FILE_SIZE="1MB", **store).start("api", "prober")
    src = samples / "sar_2x1.mp4"
    rec = ready_upload(system, src)
    pending = upload_raw(system, samples / "tiny-broken.flv")  # fails in the prober
    token = rec["api_links"]["access_token"]
    b, admin, size = system.base_url, system.admin, src.stat().st_size
    get, head, post, delete = (requests.get, requests.head, requests.post, requests.delete)

    for method in (get, head):
        check(method(f"{b}/api/video/{token}/", timeout=5), 200, RECORD)
        check(method(f"{b}/api/video/{token}/metadata/", timeout=5), 200, RECORD)
        for path, cache in ((f"/api/video/{token}/download/", FILE),
                            (f"/stream/{token}/", STREAM)):
            check(method(b + path, timeout=5), 200, cache)
            check(method(b + path, headers={"Range": "bytes=0-1"}, timeout=5),
                  206 if method is get else 200, cache)
        check(method(f"{b}/api/video/{'x' * 43}/", timeout=5), 404, RECORD)
        check(method(f"{b}/stream/{'x' * 43}/", timeout=5), 404, RECORD)
        check(method(f"{b}/api/videos", headers=admin, timeout=5), 200, RECORD)
        check(method(f"{b}/api/videos/{rec['id']}", headers=admin, timeout=5), 200, RECORD)
        check(method(f"{b}/api/openapi.json", timeout=5), 200, "no-cache")
        check(method(f"{b}/healthz", timeout=5), 200, RECORD)

    stream = f"{b}/stream/{token}/"
    whole = get(stream, timeout=5)
    etag, modified = whole.headers["ETag"], whole.headers["Last-Modified"]
    assert whole.content == src.read_bytes() and whole.headers["Content-Type"] == "video/mp4"
    assert whole.headers["Content-Disposition"].startswith("inline")
    check(get(stream, headers={"If-None-Match": etag}, timeout=5), 304, STREAM)
    check(get(stream, headers={"If-Modified-Since": modified}, timeout=5), 304, STREAM)
    check(get(stream, headers={"Range": f"bytes={size}-"}, timeout=5), 416, RECORD)
    unsat = get(stream, headers={"Range": f"bytes={size}-"}, timeout=5)
    assert unsat.headers["Content-Range"] == f"bytes */{size}"
    check(get(stream, headers={"If-Match": '"nope"'}, timeout=5), 412, RECORD)
    safari = get(stream, headers={"Range": "bytes=0-1"}, timeout=5)
    assert safari.content == src.read_bytes()[:2]
    huge = get(stream, headers={"Range": "bytes=0-" + "9" * 30}, timeout=5)
    assert huge.status_code == 206 and huge.content == src.read_bytes()
    multi = get(stream, headers={"Range": "bytes=0-9,100-109"}, timeout=5)
    assert multi.status_code == 206
    assert multi.headers["Content-Type"].startswith("multipart/byteranges; boundary=")
    stale = get(stream, headers={"Range": "bytes=0-9", "If-Range": '"stale"'}, timeout=5)
    assert stale.status_code == 200 and len(stale.content) == size
    fresh = get(stream, headers={"Range": "bytes=0-9", "If-Range": etag}, timeout=5)
    assert fresh.status_code == 206 and fresh.content == src.read_bytes()[:10]
    download = get(f"{b}/api/video/{token}/download/", timeout=5)
    assert download.headers["Content-Disposition"].startswith("attachment")

    # Not ready yet, then failed: 409 with the status or the reason.
    bad = pending.json()
    check(get(f"{b}/stream/{bad['api_links']['access_token']}/", timeout=5), 409, RECORD)

    # Admin errors and the upload's refusals.
    check(get(f"{b}/api/videos", timeout=5), 401, RECORD)
    check(get(f"{b}/api/videos", params={"status": "x"}, headers=admin, timeout=5), 400, RECORD)
    check(get(f"{b}/api/videos/123456", headers=admin, timeout=5), 404, RECORD)
    check(post(f"{b}/api/videos", headers=admin, files={"file": ("a.txt", b"x")}, timeout=5),
          415, RECORD)
    check(post(f"{b}/api/videos", headers=admin, files={"file": ("a.mp4", b"x" * 1_100_000)},
               timeout=10), 413, RECORD)
    duplicate = {"filename": "a.mp4", "source_id": rec["source_id"]}
    check(post(f"{b}/api/videos", headers={**admin, "Content-Type": "video/mp4"},
               params=duplicate, data=b"x", timeout=5), 409, RECORD)
    check(post(f"{b}/api/videos/{rec['id']}/token", headers=admin, data=b"{",
               timeout=5), 400, RECORD)
    check(delete(f"{b}/api/videos/123456/token", headers=admin, timeout=5), 404, RECORD)

    # Routing: unknown path, method not allowed, the 308 to the slash.
    check(get(f"{b}/nowhere", timeout=5), 404, RECORD)
    check(requests.put(f"{b}/api/video/{token}/", timeout=5), 405, RECORD)
    check(get(f"{b}/api/video/{token}", allow_redirects=False, timeout=5), 308, RECORD)
