"""Stream links (VIDEODROP_STREAM_LINKS, videodrop/links.py) behind deploy/nginx.conf: nginx
answers /stream/{token}/ alone from the token's link, and a revoked, rotated or deleted
token stops at once all the same; everything a link cannot answer goes to the API."""

from __future__ import annotations

import http.client
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from psycopg import conninfo

from testbed.system import events
from tests.harness import REPO, System, drop_database, fresh_database, wait_for
from tests.integration.test_api_nginx import nginx_in_front
from tests.integration.test_api_uploads import wait_status
from tests.integration.test_fileresponse import (
    check_against_oracle,
    check_consistent,
    parse_parts,
    range_cases,
)
from tests.servers import delete_amqp_names
from videodrop import logs
from videodrop.catalog import Catalog, ProbeOutcome, Video
from videodrop.changes import ChangeListener
from videodrop.errors import CatalogUnavailable
from videodrop.links import LinkRemover, StreamLinks, Target

SAMPLE = "bbb_chapters.mp4"
# Which server answered: nginx alone logs "-" as the upstream.
LOG_FORMAT = "$request_uri $status upstream=$upstream_addr"
SAME_HEADERS = ("Content-Type", "Content-Length", "Content-Range", "ETag", "Last-Modified",
                "Cache-Control", "Referrer-Policy", "X-Content-Type-Options")


@pytest.fixture(scope="module")
def linked(tmp_path_factory, database_url, amqp_url, amqp_prefix
           ) -> Iterator[tuple[System, str]]:
    """API + prober with stream links, nginx in front: one for the module, on a database
    and queues of its own (the property test needs a long-lived server; each test uses
    videos of its own)."""
    root = tmp_path_factory.mktemp("links")
    db = fresh_database(database_url)
    prefix = f"{amqp_prefix}_{secrets.token_hex(3)}"
    system = System(root=root / "system", database_url=db, amqp_url=amqp_url, prefix=prefix,
                    extra_env={"VIDEODROP_STREAM_LINKS": str(root / "system" / "links")})
    try:
        system.start("api", "prober")
        with nginx_in_front(system, root / "nginx", log_format=LOG_FORMAT) as url:
            yield system, url
    finally:
        system.stop()
        drop_database(database_url, db)
        delete_amqp_names(amqp_url, prefix)


def links_dir(system: System) -> Path:
    return Path(system.env["VIDEODROP_STREAM_LINKS"])


def upload(system: System, path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        up = requests.post(f"{system.base_url}/api/videos", params={"filename": path.name},
                           data=fh, headers={**system.admin, "Content-Type": "video/mp4"},
                           timeout=30)
    assert up.status_code == 202, up.text
    record: dict[str, Any] = up.json()
    assert wait_status(system, record["api_links"]["access_token"])["status"] == "ready"
    return record


def link_of(system: System, token: str) -> Path | None:
    found = list(links_dir(system).glob(f"{token[:2]}/{token}.*"))
    assert len(found) <= 1
    return found[0] if found else None


def served_by(system: System, url: str, path: str, headers: dict[str, str] | None = None
              ) -> tuple[requests.Response, str]:
    """GET through nginx: the response and who answered ("nginx" or "api")."""
    log = Path(system.root).parent / "nginx" / "access.log"
    before = log.stat().st_size if log.exists() else 0
    resp = requests.get(f"{url}{path}", headers=headers or {}, timeout=10)

    def logged() -> str | None:
        lines = [ln for ln in log.read_bytes()[before:].decode().splitlines()
                 if ln.startswith(path + " ")]
        return lines[-1] if lines else None
    line = wait_for(logged, timeout=10, what="nginx's access log line")
    return resp, ("nginx" if line.endswith("upstream=-") else "api")


def test_a_ready_video_is_served_by_nginx_with_the_apis_headers(linked, samples):
    system, url = linked
    data = (samples / SAMPLE).read_bytes()
    record = upload(system, samples / SAMPLE)
    token = record["api_links"]["access_token"]
    link = link_of(system, token)
    assert link is not None and link.suffix == ".mp4"
    assert link.resolve() == (system.media_root / record["file_info"]["filename"]).resolve()

    path = f"/stream/{token}/"
    for headers in ({}, {"Range": "bytes=0-1"}, {"Range": "bytes=100-"},
                    {"Range": "bytes=-500"}, {"Range": f"bytes={len(data) - 10}-{10**12}"}):
        resp, who = served_by(system, url, path, headers)
        assert who == "nginx", headers
        direct = requests.get(f"{system.base_url}{path}", headers=headers, timeout=10)
        assert resp.status_code == direct.status_code, headers
        assert resp.content == direct.content, headers
        for name in SAME_HEADERS:
            assert resp.headers.get(name) == direct.headers.get(name), (name, headers)
        assert resp.headers["Content-Disposition"] == "inline"
        if resp.status_code == 200:  # nginx does not repeat it on a 206 (RFC 9110: MAY)
            assert resp.headers["Accept-Ranges"] == "bytes"
        assert resp.headers["X-Request-ID"]
    safari, _ = served_by(system, url, path, {"Range": "bytes=0-1"})
    assert safari.status_code == 206 and safari.content == data[:2]

    # One validator whichever server answers: nginx's conditionals honour the API's ETag.
    etag = requests.head(f"{system.base_url}{path}", timeout=5).headers["ETag"]
    resp, who = served_by(system, url, path, {"If-None-Match": etag})
    assert (resp.status_code, who) == (304, "nginx")
    resp, _ = served_by(system, url, path, {"Range": "bytes=0-9", "If-Range": etag})
    assert resp.status_code == 206 and resp.content == data[:10]
    resp, _ = served_by(system, url, path, {"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert resp.status_code == 200 and resp.content == data
    assert requests.head(f"{url}{path}", timeout=5).headers["Content-Length"] == str(len(data))


def test_what_a_link_cannot_answer_goes_to_the_api(linked, samples):
    system, url = linked
    data = (samples / SAMPLE).read_bytes()
    token = upload(system, samples / SAMPLE)["api_links"]["access_token"]
    path = f"/stream/{token}/"
    # several ranges: the API merges overlapping ones into one multipart answer
    resp, who = served_by(system, url, path, {"Range": "bytes=0-9,5-19,100-109"})
    assert (resp.status_code, who) == (206, "api")
    assert resp.headers["Content-Type"].startswith("multipart/byteranges")
    spans = [(a, b) for a, b, _ in parse_parts(resp.headers, resp.content, len(data))]
    assert spans == [(0, 19), (100, 109)]
    # 30 digits: still the whole file (nginx alone would answer 416)
    resp, who = served_by(system, url, path, {"Range": "bytes=0-" + "9" * 30})
    assert (who, resp.status_code) == ("api", 206) and resp.content == data
    # the other endpoints are the API's
    download, who = served_by(system, url, f"/api/video/{token}/download/")
    assert who == "api" and download.content == data
    # unknown tokens: the API's 404
    resp, who = served_by(system, url, "/stream/" + "x" * 43 + "/")
    assert (resp.status_code, who) == (404, "api")


def test_revoke_rotate_delete_and_expiry_stop_the_link_at_once(linked, samples):
    system, url = linked
    record = upload(system, samples / SAMPLE)
    video_id, token = record["id"], record["api_links"]["access_token"]
    assert served_by(system, url, f"/stream/{token}/")[1] == "nginx"

    rotated = requests.post(f"{url}/api/videos/{video_id}/token", headers=system.admin,
                            timeout=5)
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["api_links"]["access_token"]
    assert requests.get(f"{url}/stream/{token}/", timeout=5).status_code == 404  # at once
    assert link_of(system, token) is None
    resp, who = served_by(system, url, f"/stream/{new}/")
    assert (resp.status_code, who) == (200, "nginx")

    # a token with an expiry has no link: the API checks the clock on every request
    expiring = requests.post(f"{url}/api/videos/{video_id}/token", headers=system.admin,
                             json={"expires_at": "2999-01-01T00:00:00Z"}, timeout=5)
    assert expiring.status_code == 200, expiring.text
    timed = expiring.json()["api_links"]["access_token"]
    assert requests.get(f"{url}/stream/{new}/", timeout=5).status_code == 404
    assert link_of(system, timed) is None
    resp, who = served_by(system, url, f"/stream/{timed}/")
    assert (resp.status_code, who) == (200, "api")

    final = requests.post(f"{url}/api/videos/{video_id}/token", headers=system.admin,
                          timeout=5).json()["api_links"]["access_token"]
    assert link_of(system, final) is not None
    assert requests.delete(f"{url}/api/videos/{video_id}/token", headers=system.admin,
                           timeout=5).status_code in (200, 204)
    assert requests.get(f"{url}/stream/{final}/", timeout=5).status_code == 404
    assert link_of(system, final) is None

    other = upload(system, samples / SAMPLE)
    gone = other["api_links"]["access_token"]
    assert link_of(system, gone) is not None
    assert requests.delete(f"{url}/api/videos/{other['id']}", headers=system.admin,
                           timeout=5).status_code in (200, 204)
    assert requests.get(f"{url}/stream/{gone}/", timeout=5).status_code == 404
    assert link_of(system, gone) is None


def test_changes_made_around_the_catalog_remove_the_link(linked, samples):
    system, url = linked
    record = upload(system, samples / SAMPLE)
    token = record["api_links"]["access_token"]
    assert link_of(system, token) is not None
    with psycopg.connect(system.database_url, autocommit=True) as conn:
        conn.execute("UPDATE videos SET access_token = NULL WHERE id = %s", (record["id"],))
    wait_for(lambda: link_of(system, token) is None, timeout=10,
             what="the API's listener to remove the link")
    # every worker's listener hears it (milliseconds apart): then the API refuses it too
    wait_for(lambda: requests.get(f"{url}/stream/{token}/", timeout=5).status_code == 404,
             timeout=10, what="every API worker to drop the token")


def test_videodrop_links_puts_the_folder_in_step(linked, samples):
    system, _url = linked
    token = upload(system, samples / SAMPLE)["api_links"]["access_token"]
    link = link_of(system, token)
    assert link is not None
    target = os.readlink(link)
    link.unlink()  # lost
    stray = links_dir(system) / "zz" / ("zz" + "q" * 41 + ".mp4")  # no such token
    stray.parent.mkdir(exist_ok=True)
    stray.symlink_to(target)
    wrong = links_dir(system) / "zz" / "not-a-link.mp4"
    wrong.write_bytes(b"")
    # temporaries of StreamLinks.add: one under way (young), one left by a crash (old)
    under_way, left = (links_dir(system) / "zz" / f".new-{n}" for n in ("young", "old"))
    for temporary in (under_way, left):
        temporary.symlink_to(target)
    an_hour_ago = time.time() - 3600
    os.utime(left, (an_hour_ago, an_hour_ago), follow_symlinks=False)
    out = subprocess.run([sys.executable, "-m", "videodrop", "links"], env=system.env,
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert link_of(system, token) is not None and os.readlink(link) == target
    assert not stray.exists() and not stray.is_symlink() and not wrong.exists()
    assert under_way.is_symlink() and not left.is_symlink()
    [line] = [e for e in events(out.stdout) if "made" in e]
    assert (line["made"], line["removed"]) == (1, 1), out.stdout


@pytest.fixture(scope="module")
def linked_video(linked, samples) -> tuple[str, bytes]:
    system, _url = linked
    return upload(system, samples / SAMPLE)["api_links"]["access_token"], \
        (samples / SAMPLE).read_bytes()


@pytest.fixture(scope="module")
def keepalive(linked) -> Iterator[http.client.HTTPConnection]:
    _system, url = linked
    conn = http.client.HTTPConnection(url.removeprefix("http://").split(":")[0],
                                      int(url.rsplit(":", 1)[1]), timeout=30)
    yield conn
    conn.close()


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_range_headers_through_nginx_match_the_bytes(
    linked_video: tuple[str, bytes], keepalive: http.client.HTTPConnection,
    data: st.DataObject,
) -> None:
    """The property test of tests/integration/test_fileresponse.py, through nginx and the
    links: single ranges are nginx's, several ranges and huge numbers the API's."""
    token, content = linked_video
    size = len(content)
    header, specs = data.draw(range_cases(size))
    keepalive.request("GET", f"/stream/{token}/", headers={"Range": header})
    r = keepalive.getresponse()
    status, headers, body = r.status, r.headers, r.read()
    assert isinstance(headers, Message)
    check_consistent(status, headers, body, content)
    event(f"{'structured' if specs else 'garbage'} → {status}")
    if specs is not None:  # nginx refuses some invalid headers with 416: RFC 9110 allows it
        check_against_oracle(status, headers, body, size, header, specs=specs, invalid=(200, 416))


# --- the catalog's two rules, on real PostgreSQL ------------------------------------------

class Watching(StreamLinks):
    """Stream links that look at the database from outside each time they change: is the
    change that removes a link still invisible? can the row that gets a link be changed?"""

    def __init__(self, root: Path, media_root: Path, database_url: str) -> None:
        super().__init__(root, media_root)
        self.database_url = database_url
        self.seen: list[tuple[str, bool]] = []

    def remove(self, token: str) -> None:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            still = conn.execute("SELECT 1 FROM videos WHERE access_token = %s AND"
                                 " status = 'ready'", (token,)).fetchone() is not None
        self.seen.append(("remove: the old row still visible", still))
        super().remove(token)

    def add(self, target: Target) -> None:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '200ms'")
            try:
                conn.execute("UPDATE videos SET access_token = NULL WHERE access_token = %s",
                             (target.token,))
                held = False
            except psycopg.errors.LockNotAvailable:
                held = True
        self.seen.append(("add: the row held against changes", held))
        super().add(target)


def test_links_go_before_a_change_commits_and_come_only_from_a_held_ready_row(db_url, tmp_path):
    media_root = tmp_path / "media"
    watching = Watching(tmp_path / "links", media_root, db_url)
    catalog = Catalog.connect(db_url, links=watching)
    try:
        video = catalog.create_upload(filename="clip.mp4")
        stored = media_root / video.stored_path
        stored.parent.mkdir(parents=True)
        stored.write_bytes(b"x")
        catalog.upload_received(video.id, 1)
        catalog.start_processing(video.id)
        ready = ProbeOutcome(status="ready", error=None, size=1, sha256=None,
                             metadata={"format": "mp4"}, raw=None)
        catalog.finish_processing(video.id, ready)
        assert watching.seen == [("add: the row held against changes", True)]
        assert watching.is_current(watching.target(
            {"access_token": video.access_token, "stored_path": video.stored_path,
             "format": "mp4", "original_filename": "clip.mp4"}) or pytest.fail("no target"))

        rotated = catalog.rotate_token(video.id)
        assert rotated is not None and rotated.access_token != video.access_token
        catalog.revoke_token(video.id)
        catalog.rotate_token(video.id)
        catalog.start_processing(video.id)  # probed again: no link meanwhile
        catalog.finish_processing(video.id, ready)
        catalog.delete_video(video.id)
        assert [what for what, _ in watching.seen] == [
            "add: the row held against changes",
            "remove: the old row still visible", "add: the row held against changes",
            "remove: the old row still visible",
            "add: the row held against changes",
            "remove: the old row still visible",
            "add: the row held against changes",
            "remove: the old row still visible"]
        assert all(ok for _, ok in watching.seen), watching.seen
        assert all(not shard for shard in watching.shards())  # no link left
    finally:
        catalog.close()


READY = ProbeOutcome(status="ready", error=None, size=1, sha256=None,
                     metadata={"format": "mp4"}, raw=None)


def ready_video(catalog: Catalog, filename: str = "clip.mp4") -> Video:
    """An upload taken through to ready (its file need not exist for a link)."""
    video = catalog.create_upload(filename=filename)
    catalog.upload_received(video.id, 1)
    catalog.start_processing(video.id)
    catalog.finish_processing(video.id, READY)
    return video


class Stuck(StreamLinks):
    def remove(self, token: str) -> None:
        raise OSError(30, "Read-only file system")


def test_a_link_that_cannot_be_removed_refuses_the_change(db_url, tmp_path):
    """Committing a revocation while its link still serves would keep the token working."""
    catalog = Catalog.connect(db_url, links=Stuck(tmp_path / "links", tmp_path / "media"))
    try:
        video = ready_video(catalog)
        for change in (catalog.revoke_token, catalog.rotate_token, catalog.delete_video,
                       catalog.start_processing):
            with pytest.raises(CatalogUnavailable, match="not removed"):
                change(video.id)
        after = catalog.by_id(video.id)
        assert after is not None and after.status == "ready"
        assert after.access_token == video.access_token
    finally:
        catalog.close()


def test_only_changes_made_around_the_catalog_are_announced(db_url, tmp_path):
    """The catalog removes links itself; a notice of its own change could arrive after it
    made the row's next link (a video probed again keeps its token) and remove that."""
    media_root = tmp_path / "media"
    links = StreamLinks(tmp_path / "links", media_root)
    catalog = Catalog.connect(db_url, links=links)
    ready = READY
    try:
        a, b = (ready_video(catalog, name) for name in ("a.mp4", "b.mp4"))
        with psycopg.connect(db_url, autocommit=True) as listener:
            listener.execute("LISTEN videodrop_links")
            catalog.start_processing(a.id)  # probed again: same token, new link
            catalog.finish_processing(a.id, ready)
            rotated = catalog.rotate_token(a.id)
            with psycopg.connect(db_url, autocommit=True) as outside:  # then a psql change
                outside.execute("UPDATE videos SET access_token = NULL WHERE id = %s", (b.id,))
            heard = [n.payload for n in listener.notifies(timeout=10, stop_after=1)]
        assert heard == [b.access_token]  # in commit order: nothing of the catalog's before
        assert rotated is not None and rotated.access_token
        target = links.target({"access_token": rotated.access_token,
                               "stored_path": rotated.stored_path, "format": "mp4",
                               "original_filename": "a.mp4"})
        assert target is not None and links.is_current(target)
    finally:
        catalog.close()


def test_a_change_made_while_no_listener_heard_is_found_when_one_is_back(db_url, tmp_path):
    """A psql change while the API's listener is disconnected sends a notice nobody hears;
    the listener, back, removes the links of such changes before it listens on."""
    links = StreamLinks(tmp_path / "links", tmp_path / "media")
    catalog = Catalog.connect(db_url, links=links)
    role = f"vd_listener_{secrets.token_hex(4)}"
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")
    listener = ChangeListener(conninfo.make_conninfo(db_url, user=role), log=logs.get("test"))
    LinkRemover(links, catalog.prune_links, logs.get("test")).subscribe(listener)
    try:
        video = ready_video(catalog)
        target = links.target({"access_token": video.access_token,
                               "stored_path": video.stored_path, "format": "mp4",
                               "original_filename": "clip.mp4"})
        assert target is not None and links.is_current(target)
        listener.start()
        assert listener.wait_listening(10), "the listener did not start"

        with psycopg.connect(db_url, autocommit=True) as admin:  # the listener's outage
            admin.execute(f"ALTER ROLE {role} NOLOGIN")
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE usename = %s AND datname = current_database()", (role,))
            wait_for(lambda: not listener.listening, timeout=10, what="the listener to go")
            admin.execute("UPDATE videos SET access_token = NULL WHERE id = %s", (video.id,))
            assert links.is_current(target)  # its notice went unheard
            admin.execute(f"ALTER ROLE {role} LOGIN")
        wait_for(lambda: not links.is_current(target), timeout=20,
                 what="the listener, back, to remove the link")
        assert listener.listening
    finally:
        listener.close()
        catalog.close()
        with psycopg.connect(db_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE usename = %s AND datname = current_database()", (role,))
            admin.execute(f"DROP ROLE {role}")


def renditions_made(system: System) -> None:
    """A derive role making renditions on the module's shared system (one, whichever test
    starts it)."""
    running = system.procs.get("derive")
    if running is None or running.poll() is not None:
        system.start_role("derive", env={"VIDEODROP_DERIVE": "rendition"})


def test_the_link_points_at_the_rendition_once_it_is_ready(linked, camera_corpus):
    """A video with a browser rendition: nginx serves the rendition (one link a token,
    whatever the original's extension)."""
    system, url = linked
    renditions_made(system)
    for name in ("h264-aac.ts", "moov-at-end.mp4"):
        record = upload(system, camera_corpus / name)
        token = record["api_links"]["access_token"]
        made = system.media_root / "derivatives" / record["source_id"] / "rendition.mp4"
        link = wait_for(lambda t=token, m=made: (found := link_of(system, t)) is not None
                        and found.resolve() == m.resolve() and found, timeout=60,
                        interval=0.2, what=f"the link of {name} to its rendition")
        assert link.suffix == ".mp4"
        resp, who = served_by(system, url, f"/stream/{token}/")
        assert (resp.status_code, who) == (200, "nginx")
        assert resp.content == made.read_bytes()
        assert resp.headers["Content-Type"] == "video/mp4"
        # ?rendition=hevc is the API's (the link is the rendition every browser plays):
        # these have no HEVC rendition
        resp, who = served_by(system, url, f"/stream/{token}/?rendition=hevc")
        assert (resp.status_code, who) == (404, "api")
        resp, who = served_by(system, url, f"/stream/{token}/?rendition=")  # refused there
        assert (resp.status_code, who) == (400, "api")


def rendition_state(system: System, token: str) -> tuple[str | None, str | None]:
    playback = requests.get(f"{system.base_url}/api/video/{token}/", timeout=5).json()["playback"]
    return playback["status"], playback["error_code"]


def test_a_transcode_awaiting_a_viewer_has_no_link_so_a_stream_starts_it(linked, camera_corpus):
    """VIDEODROP_TRANSCODE=on-view (the default): a video whose transcode waits for someone
    to watch has no link, so its ``/stream/`` goes to the API, which asks for the transcode
    (nginx answering alone never would); once made, the link points at the rendition."""
    system, url = linked
    renditions_made(system)
    record = upload(system, camera_corpus / "hevc-aac.ts")
    token = record["api_links"]["access_token"]
    wait_for(lambda: rendition_state(system, token) == ("skipped", "on_view"), timeout=60,
             interval=0.2, what="the transcode planned for a viewer")
    assert link_of(system, token) is None
    resp, who = served_by(system, url, f"/stream/{token}/", {"Range": "bytes=0-99"})
    assert (resp.status_code, who) == (206, "api")
    made = system.media_root / "derivatives" / record["source_id"] / "rendition.mp4"
    link = wait_for(lambda: (found := link_of(system, token)) is not None
                    and found.resolve() == made.resolve() and found, timeout=120,
                    interval=0.3, what="the viewer's transcode made and linked")
    assert rendition_state(system, token) == ("ready", None)
    resp, who = served_by(system, url, f"/stream/{token}/")
    assert (resp.status_code, who) == (200, "nginx")
    assert resp.content == made.read_bytes() and link.suffix == ".mp4"


def test_retention_removes_the_link_before_the_file(linked, samples, tmp_path):
    """An expired video's link goes in the transaction that expires it (the retention
    command has the links too), so nginx hands /stream/ to the API, which answers 410."""
    system, url = linked
    record = upload(system, samples / SAMPLE)
    video_id, token = record["id"], record["api_links"]["access_token"]
    wait_for(lambda: link_of(system, token), what="the video's stream link")
    with psycopg.connect(system.database_url, autocommit=True) as conn:
        conn.execute("UPDATE videos SET created_at = now() - interval '2 days' WHERE id = %s",
                     (video_id,))
    rules = tmp_path / "rules.toml"
    rules.write_text('[uploads]\nmax_age = "1d"\n')
    done = subprocess.run([sys.executable, "-m", "videodrop", "retention"], cwd=REPO,
                          env={**system.env, "VIDEODROP_RETENTION_FILE": str(rules)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert link_of(system, token) is None
    resp, who = served_by(system, url, f"/stream/{token}/")
    assert (resp.status_code, who) == (410, "api")
