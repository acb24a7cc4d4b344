"""Token lifecycle and the by-id admin endpoints, over real HTTP against gunicorn.

The cases that remove the stored file or find it gone run once per media store
(``store_env``: the file store, then a prefix of the session's bucket on a real S3
server; /download/ and /stream/ there a 307 to a presigned URL, followed): a delete
removes the video's file and no other, a file gone answers "File missing". The others
are about tokens, routing and refusals, answered before the store is asked: file store
only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import requests

from tests.harness import rows
from tests.integration.test_api_uploads import media_of, ready_upload, stored_files, upload_raw

SAMPLE = "tiny_av1.mp4"


def token_urls(base: str, token: str) -> list[str]:
    return [f"{base}/api/video/{token}/", f"{base}/api/video/{token}/metadata/",
            f"{base}/api/video/{token}/download/", f"{base}/stream/{token}/"]


def statuses(base: str, token: str) -> list[int]:
    return [requests.get(url, timeout=5).status_code for url in token_urls(base, token)]


def test_rotate_revoke_and_rotate_again(make_system, samples):
    # File store only: the tokens are the catalog's; on s3 no worker serves a rotated or
    # revoked token's /stream/ (no 307 to a presigned URL): test_token_cache.py
    system = make_system().start("api", "prober")
    rec = ready_upload(system, samples / SAMPLE)
    old = rec["api_links"]["access_token"]
    assert statuses(system.base_url, old) == [200, 200, 200, 200]
    url = f"{system.base_url}/api/videos/{rec['id']}/token"

    rotated = requests.post(url, headers=system.admin, timeout=5)
    assert rotated.status_code == 200
    new = rotated.json()["api_links"]["access_token"]
    assert new != old and len(new) >= 43
    assert rotated.json()["api_links"]["stream_url"] == f"{system.base_url}/stream/{new}/"
    assert statuses(system.base_url, old) == [404] * 4  # the old one stops at once
    assert statuses(system.base_url, new) == [200] * 4
    unknown = requests.get(f"{system.base_url}/api/video/{'A' * 43}/", timeout=5)
    gone = requests.get(f"{system.base_url}/api/video/{old}/", timeout=5)
    assert gone.json() == unknown.json()  # the same 404 as an unknown token

    revoked = requests.delete(url, headers=system.admin, timeout=5)
    assert revoked.status_code == 200
    assert set(revoked.json()["api_links"].values()) == {None}
    assert revoked.json()["token_expires_at"] is None
    assert statuses(system.base_url, new) == [404] * 4
    [(stored,)] = rows(system.database_url, "SELECT access_token FROM videos")
    assert stored is None

    again = requests.post(url, headers=system.admin, timeout=5).json()
    assert statuses(system.base_url, again["api_links"]["access_token"]) == [200] * 4
    by_id = requests.get(f"{system.base_url}/api/videos/{rec['id']}", headers=system.admin,
                         timeout=5)
    assert by_id.status_code == 200 and by_id.json() == again


def test_expiry(make_system, samples):
    system = make_system().start("api", "prober")
    rec = ready_upload(system, samples / SAMPLE)
    url = f"{system.base_url}/api/videos/{rec['id']}/token"
    future = datetime.now(UTC) + timedelta(hours=1)
    later = requests.post(url, json={"expires_at": future.isoformat()}, headers=system.admin,
                          timeout=5)
    assert later.status_code == 200
    token = later.json()["api_links"]["access_token"]
    assert later.json()["token_expires_at"] == future.isoformat().replace("+00:00", "Z")
    assert statuses(system.base_url, token) == [200] * 4

    past = requests.post(url, json={"expires_at": "2020-01-01T00:00:00Z"},
                         headers=system.admin, timeout=5)
    assert past.status_code == 200
    expired = past.json()["api_links"]["access_token"]
    assert statuses(system.base_url, expired) == [404] * 4
    assert statuses(system.base_url, token) == [404] * 4  # rotated away as well

    never = requests.post(url, json={"expires_at": None}, headers=system.admin, timeout=5)
    assert never.json()["token_expires_at"] is None
    assert statuses(system.base_url, never.json()["api_links"]["access_token"]) == [200] * 4

    zoned = requests.post(url, json={"expires_at": "2999-01-01T02:00:00+02:00"},
                          headers=system.admin, timeout=5)
    assert zoned.json()["token_expires_at"] == "2999-01-01T00:00:00Z"
    naive = requests.post(url, json={"expires_at": "2999-01-01T00:00:00"},
                          headers=system.admin, timeout=5)
    assert naive.status_code == 400  # RFC 3339: the zone is not optional


def test_bad_token_requests(make_system, samples):
    system = make_system().start("api")
    rec = upload_raw(system, samples / SAMPLE).json()
    url = f"{system.base_url}/api/videos/{rec['id']}/token"
    for body, ctype in [(b"{", "application/json"), (b"[]", "application/json"),
                        (b"null", "application/json"),
                        (b'{"expires_at": 5}', "application/json"),
                        (b'{"expires_at": "soon"}', "application/json"),
                        (b'{"other": 1}', "application/json")]:
        resp = requests.post(url, data=body, headers={**system.admin, "Content-Type": ctype},
                             timeout=5)
        assert resp.status_code == 400, (body, resp.text)
        assert set(resp.json()) <= {"title", "description"}
    plain = requests.post(url, data=b"x", headers={**system.admin,
                                                   "Content-Type": "text/plain"}, timeout=5)
    assert plain.status_code == 415
    # Nothing changed.
    same = requests.get(f"{system.base_url}/api/videos/{rec['id']}", headers=system.admin,
                        timeout=5).json()
    assert same["api_links"] == rec["api_links"]
    for method in ("post", "delete"):
        missing = getattr(requests, method)(f"{system.base_url}/api/videos/999999/token",
                                            headers=system.admin, timeout=5)
        assert missing.status_code == 404
    for path in ("/api/videos/0", "/api/videos/-1", "/api/videos/abc",
                 "/api/videos/99999999999999999999", "/api/videos/1/token/x"):
        assert requests.get(system.base_url + path, headers=system.admin,
                            timeout=5).status_code == 404


def test_admin_endpoints_need_the_token(make_system, samples):
    # 12 wrong tokens from one address: over the login throttle's default burst, which
    # would answer the last ones 429 (test_api_login_throttle.py)
    system = make_system(VIDEODROP_LOGIN_BURST="100").start("api")
    rec = upload_raw(system, samples / SAMPLE).json()
    base = f"{system.base_url}/api/videos"
    calls = [("get", base), ("post", base), ("get", f"{base}/{rec['id']}"),
             ("delete", f"{base}/{rec['id']}"), ("post", f"{base}/{rec['id']}/token"),
             ("delete", f"{base}/{rec['id']}/token")]
    for method, url in calls:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
            resp = requests.request(method, url, headers=headers, timeout=5)
            assert resp.status_code == 401, (method, url, headers)
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert statuses(system.base_url, rec["api_links"]["access_token"])[0] == 200


def test_delete_removes_row_and_file(make_system, samples, store_env):
    system = make_system(**store_env).start("api", "prober")
    keep = ready_upload(system, samples / "sar_2x1.mp4")
    rec = ready_upload(system, samples / SAMPLE, source_id="to_delete")
    assert "videos/to_delete/tiny_av1.mp4" in stored_files(system)
    url = f"{system.base_url}/api/videos/{rec['id']}"
    resp = requests.delete(url, headers=system.admin, timeout=5)
    assert resp.status_code == 204 and resp.content == b""
    assert statuses(system.base_url, rec["api_links"]["access_token"]) == [404] * 4
    assert requests.get(url, headers=system.admin, timeout=5).status_code == 404
    assert requests.delete(url, headers=system.admin, timeout=5).status_code == 404
    assert stored_files(system) == [keep["file_info"]["filename"]]  # (on s3: every object)
    assert not (system.media_root / "videos/to_delete").exists()
    assert [r[0] for r in rows(system.database_url, "SELECT id FROM videos")] == [keep["id"]]
    assert statuses(system.base_url, keep["api_links"]["access_token"]) == [200] * 4


def test_paths_without_the_trailing_slash_redirect(make_system, samples):
    system = make_system().start("api")
    token = upload_raw(system, samples / SAMPLE).json()["api_links"]["access_token"]
    for url in token_urls(system.base_url, token):
        resp = requests.get(url.rstrip("/") + "?x=1", allow_redirects=False, timeout=5)
        assert resp.status_code == 308
        assert resp.headers["Location"] == url.removeprefix(system.base_url) + "?x=1"
    followed = requests.get(f"{system.base_url}/api/video/{token}", timeout=5)
    assert followed.status_code == 200 and followed.json()["status"] == "processing"
    assert requests.get(f"{system.base_url}/api/video/not%20a%20token", allow_redirects=False,
                        timeout=5).status_code == 404


def test_a_stored_file_gone_from_disk_is_a_clear_404(make_system, samples, store_env):
    # On s3 the API's own answer, proxied: a redirect hands out the URL it made in the
    # last 10 s again without asking the store (api/files/objects.py, docs/storage.md),
    # so right after the GETs above it would be a 307 to the store's own 404; a redirect
    # of an object gone is the same "File missing" 404 (test_object_serving.py).
    extra = {**store_env, "VIDEODROP_S3_SERVE": "proxy"} if store_env else {}
    system = make_system(**extra).start("api", "prober")
    rec = ready_upload(system, samples / SAMPLE)
    token = rec["api_links"]["access_token"]
    assert statuses(system.base_url, token) == [200] * 4
    [stored] = stored_files(system)
    if store_env:  # an object deleted by hand
        assert media_of(system).delete(stored)
    else:
        (system.media_root / stored).unlink()  # an operator's mistake, or a disk problem
    for url in token_urls(system.base_url, token)[2:]:
        gone = requests.get(url, timeout=5)
        assert gone.status_code == 404
        assert gone.json()["title"] == "File missing"
    assert requests.get(token_urls(system.base_url, token)[0], timeout=5).status_code == 200
