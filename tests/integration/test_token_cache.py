"""The API's token cache (api/tokens/cache.py) on real PostgreSQL and over real HTTP against
gunicorn with several workers: whoever changes a video, no worker keeps answering with
what it was."""

from __future__ import annotations

import secrets
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import requests

from api.tokens.cache import TokenCache
from api.tokens.sharedstamp import SharedStamp
from tests.harness import REPO, rows, token_lookups, wait_for
from tests.integration.test_api_uploads import ready_upload
from videodrop import links, logs
from videodrop.catalog import Catalog, Video
from videodrop.changes import APPLICATION_NAME, ChangeListener
from videodrop.links import LinkRemover, StreamLinks

SAMPLE = "tiny_av1.mp4"


def add_ready(db_url: str, name: str = "clip", expires_at: datetime | None = None
              ) -> tuple[int, str]:
    """A ready row, inserted (an insert sends no notification)."""
    token, source_id = secrets.token_urlsafe(32), secrets.token_hex(6)
    [(video_id,)] = rows(
        db_url, "INSERT INTO videos (source_id, name, status, access_token, original_filename,"
        " origin, stored_path, size, format, token_expires_at) VALUES (%s, %s, 'ready', %s,"
        " 'c.mp4', 'upload', %s, 1, 'mp4', %s) RETURNING id",
        source_id, name, token, f"videos/{source_id}/c.mp4", expires_at)
    return video_id, token


def execute(db_url: str, statement: str, *params: Any) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(statement, params)  # type: ignore[arg-type]


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def parts(db_url):
    clock = Clock()
    catalog = Catalog.connect(db_url, clock=clock)
    stamp = SharedStamp()
    made: list[ChangeListener] = []

    def cache(stream_links: StreamLinks | None = None, **kwargs: Any) -> TokenCache:
        """A worker's cache, following a change listener of its own (as get_app makes
        them), with the stream links' remover after it when ``stream_links`` is given."""
        listener = ChangeListener(db_url, log=logs.get("test"))
        made.append(listener)
        tokens = TokenCache(clock=clock, log=logs.get("test"), stamp=stamp, **kwargs)
        tokens.subscribe(listener)
        if stream_links is not None:
            LinkRemover(stream_links, catalog.prune_links, logs.get("test")).subscribe(listener)
        listener.start()
        assert tokens.wait_live(10), "the listener did not start"
        return tokens

    yield catalog, cache, clock
    for one in made:
        one.close()
    catalog.close()


def cached(cache: TokenCache, catalog: Catalog, token: str) -> Video:
    mark = cache.mark()
    video = catalog.lookup_token(token)
    assert video is not None
    cache.put(token, video, mark)
    assert cache.get(token) is not None
    return video


def test_a_change_from_another_process_reaches_the_cache(parts, db_url):
    catalog, make_cache, _ = parts
    cache = make_cache()
    video_id, token = add_ready(db_url)
    other_id, other = add_ready(db_url)
    cached(cache, catalog, token)
    cached(cache, catalog, other)

    execute(db_url, "UPDATE videos SET name = 'renamed' WHERE id = %s", video_id)
    wait_for(lambda: cache.get(token) is None, timeout=5, what="the notification")
    assert cache.get(other) is not None  # only that video was dropped
    assert cached(cache, catalog, token).name == "renamed"

    execute(db_url, "DELETE FROM videos WHERE id = %s", other_id)
    wait_for(lambda: cache.get(other) is None, timeout=5, what="the delete's notification")

    execute(db_url, "TRUNCATE videos CASCADE")  # (video_folders refers to it)
    wait_for(lambda: len(cache) == 0, timeout=5, what="the truncate's notification")


def test_a_row_read_before_a_change_is_not_stored_after_it(parts, db_url):
    catalog, make_cache, _ = parts
    cache = make_cache()
    video_id, token = add_ready(db_url)
    mark = cache.mark()
    before = catalog.lookup_token(token)
    assert before is not None
    execute(db_url, "UPDATE videos SET access_token = NULL WHERE id = %s", video_id)
    wait_for(lambda: cache.mark() != mark, timeout=5, what="the notification")
    cache.put(token, before, mark)  # too late: refused
    assert cache.get(token) is None


def test_a_write_in_one_worker_empties_every_worker_at_once(parts, db_url):
    catalog, make_cache, _ = parts
    first, second = make_cache(), make_cache()  # one stamp: two workers of one master
    _, token = add_ready(db_url)
    video = cached(first, catalog, token)
    cached(second, catalog, token)
    catalog.after_write = first.changed
    mark = second.mark()  # a read in the second worker begins before the write...
    assert catalog.revoke_token(video.id) is not None
    assert first.get(token) is None
    assert second.get(token) is None  # at once: no notification needed
    second.put(token, video, mark)  # ...and ends after it: not stored
    assert second.get(token) is None


def test_only_ready_rows_within_their_expiry_are_kept(parts, db_url):
    catalog, make_cache, clock = parts
    cache = make_cache(max_entries=2)
    _, token = add_ready(db_url, expires_at=clock.now + timedelta(seconds=10))
    cached(cache, catalog, token)
    clock.now += timedelta(seconds=11)
    assert cache.get(token) is None  # expired while cached

    _, waiting = add_ready(db_url)
    execute(db_url, "UPDATE videos SET status = 'processing' WHERE access_token = %s", waiting)
    mark = cache.mark()
    video = catalog.lookup_token(waiting)
    assert video is not None and video.status == "processing"
    cache.put(waiting, video, mark)
    assert cache.get(waiting) is None

    tokens = [add_ready(db_url)[1] for _ in range(3)]
    for one in tokens:
        cached(cache, catalog, one)
    assert len(cache) == 2 and cache.get(tokens[0]) is None  # the oldest went out


def test_a_link_notice_alone_drops_the_entry(parts, db_url, tmp_path):
    """A change around the catalog sends two notices (the row's id, the old token's link);
    whichever this worker hears first, it stops answering for the token from memory, so
    it never serves a token whose link it removed."""
    catalog, make_cache, _ = parts
    cache = make_cache(stream_links=StreamLinks(tmp_path / "links", tmp_path / "media"))
    _, token = add_ready(db_url)
    cached(cache, catalog, token)
    execute(db_url, "SELECT pg_notify(%s, %s)", links.CHANNEL, token)
    wait_for(lambda: cache.get(token) is None, timeout=5, what="the link notice")


def test_the_cache_is_off_while_its_listener_is_down(parts, db_url):
    catalog, make_cache, _ = parts
    cache = make_cache()
    _, token = add_ready(db_url)
    cached(cache, catalog, token)
    [(pid,)] = rows(db_url, "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
                    " AND datname = current_database()", APPLICATION_NAME)
    execute(db_url, "SELECT pg_terminate_backend(%s)", pid)
    # Until it has a new LISTEN in place nothing is served from memory; then it starts empty.
    wait_for(lambda: rows(db_url, "SELECT pid FROM pg_stat_activity WHERE application_name"
                          " = %s AND datname = current_database() AND pid <> %s"
                          " AND query LIKE 'LISTEN%%'", APPLICATION_NAME, pid)
             and cache.live, timeout=15, what="the listener to reconnect")
    assert cache.get(token) is None
    video_id = cached(cache, catalog, token).id
    execute(db_url, "UPDATE videos SET name = 'after' WHERE id = %s", video_id)
    wait_for(lambda: cache.get(token) is None, timeout=5, what="the new listener's notice")


# --- over HTTP, gunicorn with three workers ----------------------------------------------

def answers(base: str, token: str, n: int = 30) -> list[Any]:
    """``n`` lookups on fresh connections (spread over the workers): status or name."""
    got = []
    for _ in range(n):
        resp = requests.get(f"{base}/api/video/{token}/", timeout=5)
        got.append(resp.json()["name"] if resp.status_code == 200 else resp.status_code)
    return got


def streams(base: str, token: str, n: int = 10) -> list[int]:
    """The statuses of ``n`` HEADs of /stream/ on fresh connections (a redirect not
    followed: on s3 the 307 to a presigned URL is the answer)."""
    return [requests.head(f"{base}/stream/{token}/", allow_redirects=False,
                          timeout=5).status_code for _ in range(n)]


def test_every_worker_follows_every_change(make_system, samples, store_env):
    """Once per media store (``store_env``): on s3 no worker hands out a presigned URL
    for a token it no longer has."""
    system = make_system(VIDEODROP_API_WORKERS="3", **store_env).start("api", "prober")
    served = 307 if store_env else 200
    rec = ready_upload(system, samples / SAMPLE, name="first")
    base, token = system.base_url, rec["api_links"]["access_token"]
    assert answers(base, token) == ["first"] * 30
    # The workers answer from memory (each writes its counts every 0.2 s).
    wait_for(lambda: token_lookups(base)["cache"] > 0, timeout=5, what="cached lookups")

    # Another process (the command line, a re-probe) changes the row: a notification.
    execute(system.database_url, "UPDATE videos SET name = 'second' WHERE id = %s", rec["id"])
    wait_for(lambda: answers(base, token) == ["second"] * 30, timeout=10,
             what="every worker to see the new name")

    # The API's own writes: at once, in every worker.
    assert answers(base, token) == ["second"] * 30
    assert streams(base, token) == [served] * 10
    token_url = f"{base}/api/videos/{rec['id']}/token"
    new = requests.post(token_url, headers=system.admin, timeout=5).json()
    assert answers(base, token) == [404] * 30
    assert streams(base, token) == [404] * 10
    fresh = new["api_links"]["access_token"]
    assert answers(base, fresh) == ["second"] * 30
    assert streams(base, fresh) == [served] * 10
    assert requests.delete(token_url, headers=system.admin, timeout=5).status_code == 200
    assert answers(base, fresh) == [404] * 30

    again = requests.post(token_url, headers=system.admin, timeout=5).json()
    latest = again["api_links"]["access_token"]
    assert answers(base, latest) == ["second"] * 30
    execute(system.database_url, "UPDATE videos SET access_token = NULL WHERE id = %s",
            rec["id"])
    wait_for(lambda: answers(base, latest) == [404] * 30, timeout=10,
             what="every worker to drop a token revoked in the database")

    last = requests.post(token_url, headers=system.admin, timeout=5).json()
    gone = last["api_links"]["access_token"]
    assert answers(base, gone) == ["second"] * 30
    deleted = requests.delete(f"{base}/api/videos/{rec['id']}", headers=system.admin,
                              timeout=5)
    assert deleted.status_code == 204
    assert answers(base, gone) == [404] * 30
    assert requests.get(f"{base}/stream/{gone}/", timeout=5).status_code == 404


def test_the_cache_can_be_turned_off(make_system, samples):
    system = make_system(VIDEODROP_TOKEN_CACHE_SIZE="0").start("api", "prober")
    rec = ready_upload(system, samples / SAMPLE, name="plain")
    assert answers(system.base_url, rec["api_links"]["access_token"], 5) == ["plain"] * 5
    counts = wait_for(lambda: (c := token_lookups(system.base_url))["database"] >= 5 and c,
                      timeout=5, what="5 database lookups in /metrics")
    assert counts["cache"] == 0


# --- how gunicorn is started -------------------------------------------------------------

def test_gunicorn_started_without_the_master_hooks_refuses_to_serve_a_cache(make_system):
    """``gunicorn 'api.app:get_app()'`` without ``-c python:api.gunicorn_conf``: no master
    made the page the workers share, so the workers refuse to load the app (a private copy
    each would keep serving a token another worker revoked); with the cache off there is
    nothing to share and it serves. ``videodrop api`` (which passes ``-c``) is the test
    above."""
    system = make_system()
    bare = [sys.executable, "-m", "gunicorn", "api.app:get_app()", "--workers", "2",
            "--bind", f"127.0.0.1:{system.port}"]
    refused = subprocess.run(bare, env=system.env, cwd=REPO, capture_output=True, text=True,
                             timeout=60)
    assert refused.returncode != 0
    assert "share a page of memory" in refused.stderr, refused.stderr[-2000:]
    assert "gunicorn -c python:api.gunicorn_conf" in refused.stderr

    env = {**system.env, "VIDEODROP_TOKEN_CACHE_SIZE": "0"}
    served = subprocess.Popen(bare, env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _answers(f"{system.base_url}/healthz"), timeout=30,
                 what="gunicorn without -c and without the cache to answer")
    finally:
        served.terminate()
        served.wait(30)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False
