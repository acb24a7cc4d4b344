"""Holds and tombstones over real HTTP (gunicorn, a real upload probed by the prober):
a held video outlives its rule, an expired one keeps its record and answers 410 Gone on
every file endpoint. Once per media store (``store_env``: the file store, then a prefix of
the session's bucket on a real S3 server): the expiry removes the file or the object."""

from __future__ import annotations

import requests

from tests.harness import rows, videodrop
from tests.integration.test_api_uploads import media_of, ready_upload

SAMPLE = "tiny_av1.mp4"


def file_urls(base: str, token: str) -> list[str]:
    video = f"{base}/api/video/{token}"
    return [f"{video}/download/", f"{base}/stream/{token}/", f"{video}/poster/",
            f"{video}/storyboard/", f"{video}/scenes.vtt", f"{video}/frame/?t=0",
            f"{video}/frames/?t=0,0.1", f"{video}/clip/?start=0&end=0.5"]


def signed_in(system) -> requests.Session:
    """A browser's session on the web pages (the login form, with its Origin)."""
    session = requests.Session()
    resp = session.post(f"{system.base_url}/login", data={"token": system.admin_token,
                                                          "next": "/"},
                        headers={"Origin": system.base_url}, timeout=10)
    assert resp.ok, resp.text
    return session


def test_hold_then_expiry_then_gone(make_system, samples, tmp_path, store_env):
    rules = tmp_path / "rules.toml"
    rules.write_text('[uploads]\nmax_age = "1d"\n')
    system = make_system(VIDEODROP_RETENTION_FILE=str(rules), **store_env).start("api",
                                                                                 "prober")
    rec = ready_upload(system, samples / SAMPLE)
    token, video_id = rec["api_links"]["access_token"], rec["id"]
    assert rec["held_at"] is None and rec["expired_at"] is None
    rows(system.database_url, "UPDATE videos SET created_at = now() - interval '2 days'"
         " RETURNING id")
    stored, media = rec["file_info"]["filename"], media_of(system)
    hold = f"{system.base_url}/api/videos/{video_id}/hold"

    page = signed_in(system)
    assert 'data-action="hold"' in page.get(f"{system.base_url}/videos/{video_id}",
                                            timeout=10).text
    held = requests.post(hold, headers=system.admin, timeout=5)
    assert held.status_code == 200 and held.json()["held_at"]
    html = page.get(f"{system.base_url}/videos/{video_id}", timeout=10).text
    assert 'data-action="release"' in html and "Held since" in html
    assert requests.post(hold, timeout=5).status_code == 401  # admin only
    assert videodrop(system, "retention").returncode == 0
    assert requests.get(f"{system.base_url}/api/video/{token}/download/",
                        timeout=5).status_code == 200
    assert media.exists(stored)

    released = requests.delete(hold, headers=system.admin, timeout=5)
    assert released.status_code == 200 and released.json()["held_at"] is None
    dry = videodrop(system, "retention", "--dry-run")
    assert f"{video_id}\tupload\t" in dry.stdout and "max_age" in dry.stdout
    assert videodrop(system, "retention").returncode == 0

    assert not media.exists(stored)
    for url in file_urls(system.base_url, token):
        resp = requests.get(url, timeout=10)
        assert resp.status_code == 410, (url, resp.status_code, resp.text)
        assert "max_age" in resp.json()["description"]
    record = requests.get(f"{system.base_url}/api/video/{token}/", timeout=5).json()
    assert record["status"] == "expired" and record["expired_reason"] == "max_age"
    assert record["expired_at"] and "older than max_age 1d" in record["expired_detail"]
    assert record["file_info"]["size"] == rec["file_info"]["size"]  # metadata kept
    by_id = requests.get(f"{system.base_url}/api/videos/{video_id}", headers=system.admin,
                         timeout=5).json()
    assert by_id["status"] == "expired"
    html = page.get(f"{system.base_url}/videos/{video_id}", timeout=10).text
    assert "<strong>Expired</strong>" in html and "older than max_age 1d" in html
    assert 'data-action="hold"' not in html and 'data-action="release"' not in html
    again = requests.post(hold, headers=system.admin, timeout=5)
    assert again.status_code == 409
    assert requests.post(f"{system.base_url}/api/videos/999999/hold", headers=system.admin,
                         timeout=5).status_code == 404
