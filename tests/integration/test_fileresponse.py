"""send_file over real HTTP: a tiny Falcon app on real gunicorn (gthread), real sockets.

Every HTTP-semantics test runs on both stores (the ``server`` fixture's params): ``file``
serves files with send_file, ``s3`` serves the same bytes as objects of a real S3 server
(weed mini, tests/s3server.py) with send_object in ``proxy`` mode (VIDEODROP_S3_SERVE=proxy),
through the same ``answer()`` (api/files/response.py); the S3 endpoint is a counting relay
(testbed/relay.py), so a test can see what the API asked the store for. The ``redirect``
mode is checked against the file route of the same app. Tests of the file mechanism
(sendfile, X-Accel-Redirect, descriptors) run on ``file`` only."""

from __future__ import annotations

import http.client
import io
import os
import re
import secrets
import shutil
import signal
import socket
import string
import struct
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import requests
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from api.files.conditional import http_date
from api.files.response import accel_redirect_uri, content_disposition
from testbed.relay import Relay
from testbed.s3 import S3Server
from tests.harness import wait_for
from tests.integration.test_prober_pipeline import s3_store
from videodrop.storage import MediaStore

REPO = Path(__file__).resolve().parents[2]
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
HUGE_SIZE = 256 * 1024 * 1024  # sparse: costs no disk, outgrows any socket buffer
FILES = {  # key -> (file name, content type); mirrored in the app module below
    "big": ("big.mp4", "video/mp4"),
    "small": ("small.webm", "video/webm"),
    "cafe": ("café vidéo.mp4", "video/mp4"),
    "empty": ("empty.mp4", "video/mp4"),
    "huge": ("huge.mkv", "video/x-matroska"),
    "missing": ("missing.mp4", "video/mp4"),
}
APP_MODULE = textwrap.dedent(f"""
    import os
    from pathlib import Path
    import falcon
    from api.files.response import send_file

    ROOT = Path(os.environ["FILEAPP_ROOT"])
    FILES = {FILES!r}
    if os.environ.get("VIDEODROP_STORAGE_URL", "").startswith("s3://"):
        from api.files.objects import send_object
        from videodrop.settings import Settings
        from videodrop.storage import from_settings
        SETTINGS = Settings.from_env()
        STORE = from_settings(SETTINGS)
    else:
        STORE = None

    class Serve:
        def __init__(self, disposition, accel=False, how=None):
            self.disposition, self.accel, self.how = disposition, accel, how

        def on_get(self, req, resp, key):
            if key not in FILES:
                raise falcon.HTTPNotFound()
            name, ctype = FILES[key]
            how = self.how or ("object" if STORE is not None else "file")
            if how == "file":
                send_file(req, resp, ROOT / name, content_type=ctype,
                          disposition=self.disposition, filename=name,
                          accel_prefix="/protected/" if self.accel else None,
                          accel_path="videos/" + name if self.accel else None)
            else:  # the object under the same name, as VIDEODROP_S3_SERVE says or redirect
                mode = SETTINGS.s3_serve if how == "object" else how
                send_object(req, resp, STORE, "videos/" + name, mode=mode, content_type=ctype,
                            disposition=self.disposition, filename=name)

        on_head = on_get

    class Health:
        def on_get(self, req, resp):
            resp.media = {{"ok": True}}

    app = falcon.App()
    app.add_route("/healthz", Health())
    app.add_route("/stream/{{key}}/", Serve("inline"))
    app.add_route("/download/{{key}}/", Serve("attachment"))
    app.add_route("/accel/{{key}}/", Serve("inline", accel=True, how="file"))
    app.add_route("/file/{{key}}/", Serve("inline", how="file"))
    if STORE is not None:
        app.add_route("/redirect/{{key}}/", Serve("inline", how="redirect"))
""")


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    master: int
    log: Path
    store: MediaStore | None = None  # the store its objects are in (s3), else files
    relay: Relay | None = None  # the counting relay in front of that store

    def workers(self) -> list[int]:
        pids = []
        for stat_file in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat_file.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.master:
                pids.append(int(stat_file.parent.name))
        return pids

    def open_files_under(self, root: Path) -> list[str]:
        found = []
        for pid in self.workers():
            for fd in Path(f"/proc/{pid}/fd").glob("*"):
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith(str(root)):
                    found.append(target)
        return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.master, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.master, signal.SIGKILL)
                self.proc.kill()
                self.proc.wait()


def start_server(workdir: Path, data_dir: Path, *, name: str = "gunicorn",
                 strace_log: Path | None = None, env: dict[str, str] | None = None) -> Server:
    """Run gunicorn on a socket we bound ourselves (fd://): no port race, no sleeps."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    fd = listener.fileno()
    os.set_inheritable(fd, True)
    pidfile, log = workdir / f"{name}.pid", workdir / f"{name}.log"
    pidfile.unlink(missing_ok=True)
    cmd = [GUNICORN, "--bind", f"fd://{fd}", "--worker-class", "gthread", "--threads", "4",
           "--workers", "2", "--pythonpath", f"{workdir},{REPO}", "--pid", str(pidfile),
           "--error-logfile", str(log), "--graceful-timeout", "5", "fileapp:app"]
    if strace_log is not None:
        cmd = ["strace", "-f", "-qq", "-e", "trace=sendfile", "-e", "signal=none",
               "-o", str(strace_log), *cmd]
    proc = subprocess.Popen(cmd, pass_fds=(fd,), cwd=REPO,
                            env={**os.environ, **(env or {}), "FILEAPP_ROOT": str(data_dir)})
    listener.close()
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            pytest.fail(f"gunicorn exited: {log.read_text() if log.exists() else ''}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("gunicorn did not answer /healthz")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200 and pidfile.exists():
                break
        except OSError:
            time.sleep(0.05)  # not ready: the request sat in the backlog; ask again
        finally:
            conn.close()
    return Server(proc, port, int(pidfile.read_text().strip()), log)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("fileresponse")
    (work / "data").mkdir()
    (work / "fileapp.py").write_text(APP_MODULE)
    return work


@pytest.fixture(scope="module")
def files(workdir: Path) -> dict[str, bytes]:
    data_dir = workdir / "data"
    contents = {"big": os.urandom(3 * 1024 * 1024 + 7), "small": os.urandom(1000),
                "cafe": os.urandom(10_000), "empty": b""}
    for key, body in contents.items():
        path = data_dir / FILES[key][0]
        path.write_bytes(body)
        hour_ago = time.time() - 3600  # so that Last-Modified is a strong validator
        os.utime(path, (hour_ago, hour_ago))
    with open(data_dir / FILES["huge"][0], "wb") as f:
        f.truncate(HUGE_SIZE)
    return contents


#: The object standing for the sparse "huge" file on s3 (a real upload: kept small).
HUGE_OBJECT_SIZE = 48 * 1024 * 1024


@pytest.fixture(scope="module", params=["file", "s3"])
def server(request: pytest.FixtureRequest, workdir: Path, files: dict[str, bytes]
           ) -> Iterator[Server]:
    """The app on ``file`` (send_file) or ``s3`` (the same bytes as objects, proxied)."""
    if request.param == "file":
        srv = start_server(workdir, workdir / "data")
        yield srv
        srv.stop()
        return
    s3: S3Server = request.getfixturevalue("s3_server")
    bucket: str = request.getfixturevalue("s3_bucket")
    relay = Relay(urlsplit_host_port(s3.endpoint))
    env = {**s3.env(), "VIDEODROP_S3_ENDPOINT_URL": relay.endpoint,
           "VIDEODROP_S3_SERVE": "proxy",
           "VIDEODROP_STORAGE_URL": f"s3://{bucket}/fileresponse-{secrets.token_hex(4)}/"}
    store = s3_store({**env, "VIDEODROP_S3_ENDPOINT_URL": s3.endpoint})  # not counted
    for key, body in files.items():
        store.put_stream("videos/" + FILES[key][0], io.BytesIO(body))
    sparse = workdir / "huge-object"
    with open(sparse, "wb") as f:
        f.truncate(HUGE_OBJECT_SIZE)
    store.put_file("videos/" + FILES["huge"][0], sparse)
    sparse.unlink()
    srv = start_server(workdir, workdir / "data", name="gunicorn-s3", env=env)
    srv.store, srv.relay = store, relay
    yield srv
    srv.stop()
    relay.down()


def urlsplit_host_port(endpoint: str) -> tuple[str, int]:
    parts = urlsplit(endpoint)
    return parts.hostname or "127.0.0.1", parts.port or 80


def file_only(reason: str) -> pytest.MarkDecorator:
    """Run a test on the ``file`` server only; ``reason`` says why (documentation)."""
    del reason
    return pytest.mark.parametrize("server", ["file"], indirect=True)


def get(srv: Server, path: str, headers: dict[str, str] | None = None, method: str = "GET",
        conn: http.client.HTTPConnection | None = None
        ) -> tuple[int, Message, bytes]:
    own = conn is None
    c = conn or http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        body = r.read()
        return r.status, r.headers, body
    finally:
        if own:
            c.close()


CONTENT_RANGE = re.compile(r"bytes ([0-9]+)-([0-9]+)/([0-9]+)")


def parse_parts(headers: Message, body: bytes, size: int) -> list[tuple[int, int, bytes]]:
    """The (first, last, bytes) of a 206, single or multipart/byteranges (parsed by hand)."""
    ctype = headers["Content-Type"]
    if not ctype.startswith("multipart/byteranges"):
        m = CONTENT_RANGE.fullmatch(headers["Content-Range"])
        assert m and int(m[3]) == size
        return [(int(m[1]), int(m[2]), body)]
    boundary = re.fullmatch(r"multipart/byteranges; boundary=([0-9A-Za-z'()+_,./:=?-]+)", ctype)
    assert boundary, ctype
    delim = b"--" + boundary[1].encode()
    assert body.startswith(delim + b"\r\n") and body.endswith(b"\r\n" + delim + b"--\r\n")
    parts = []
    for segment in body[len(delim) + 2: -(len(delim) + 6)].split(b"\r\n" + delim + b"\r\n"):
        head, sep, payload = segment.partition(b"\r\n\r\n")
        assert sep
        fields = dict(line.split(": ", 1) for line in head.decode("latin-1").split("\r\n"))
        m = CONTENT_RANGE.fullmatch(fields["Content-Range"])
        assert m and int(m[3]) == size
        parts.append((int(m[1]), int(m[2]), payload))
    return parts


def check_consistent(status: int, headers: Message, body: bytes, data: bytes) -> None:
    """What holds for any response to any Range header."""
    size = len(data)
    assert status in (200, 206, 416), (status, body[:200])
    if status == 416:
        assert headers["Content-Range"] == f"bytes */{size}"
        return
    assert int(headers["Content-Length"]) == len(body)
    if status == 200:
        assert body == data
        return
    previous_last = -2
    for first, last, payload in parse_parts(headers, body, size):
        assert previous_last + 1 < first <= last < size  # sorted, merged, in bounds
        assert payload == data[first: last + 1]
        previous_last = last


# --- property: hundreds of random Range headers vs an independent oracle ------------------

Spec = tuple[str, int, int | None]


def expected_cover(specs: list[Spec], size: int) -> list[tuple[int, int]] | None:
    """None for an invalid header; else the satisfiable intervals (RFC 9110 §14.1.2)."""
    if any(kind == "ab" and b is not None and b < a for kind, a, b in specs):
        return None
    cover = []
    for kind, a, b in specs:
        if kind == "suffix":
            if a > 0 and size > 0:
                cover.append((max(0, size - a), size - 1))
        elif a < size:
            cover.append((a, size - 1 if b is None else min(b, size - 1)))
    return cover


def render(n: int, zeros: int) -> str:
    return "0" * zeros + str(n)


@st.composite
def range_cases(draw: st.DrawFn, size: int) -> tuple[str, list[Spec] | None]:
    kind = draw(st.sampled_from(["specs"] * 6 + ["garbage", "bytes-garbage", "fixed"]))
    if kind == "garbage":
        return draw(st.text(string.ascii_letters + string.digits + " -=,;*\t", max_size=40)), None
    if kind == "bytes-garbage":
        return "bytes=" + draw(st.text(string.digits + " -,+x.", max_size=30)), None
    if kind == "fixed":
        return draw(st.sampled_from(["bytes=", "bytes=-", "bytes=5-2", "bytes=1-2-3",
                                     "items=0-1", "bytes=0x10-", "bytes=--5", "bytes=0-1;2-3",
                                     "bytes=0-1,,2-3", "bytes 0-1", ""])), None
    huge = st.integers(10**29, 10**30 - 1) | st.integers(2**63, 2**64)

    def number() -> int:
        pick = draw(st.sampled_from(["any"] * 4 + ["start", "end", "huge"]))
        return draw({"any": st.integers(0, size + 2), "start": st.integers(0, 3),
                     "end": st.integers(max(0, size - 60), size + 3), "huge": huge}[pick])

    def length() -> int:
        pick = draw(st.sampled_from(["small"] * 4 + ["any", "huge"]))
        return draw({"small": st.integers(1, 40), "any": st.integers(1, size + 2),
                     "huge": huge}[pick])

    specs: list[Spec] = []
    count = draw(st.sampled_from([1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 6, 17]))
    for _ in range(count):
        form = draw(st.sampled_from(["ab"] * 6 + ["a-", "a-", "suffix", "suffix", "invalid",
                                                  "touching", "touching"]))
        a = number()
        previous = specs[-1] if specs else None
        if form == "touching" and previous and previous[0] == "ab" and previous[2] is not None:
            # starts right after, or inside, the previous range: must be merged
            start = previous[2] + 1 - draw(st.integers(0, 2))
            specs.append(("ab", start, start + length() - 1))
        elif form in ("ab", "touching"):
            specs.append(("ab", a, a + length() - 1))
        elif form == "invalid":  # last < first, sometimes both beyond int()'s comfort
            specs.append(("ab", a + 1, draw(st.integers(0, a))))
        elif form == "suffix":
            specs.append(("suffix", draw(st.integers(0, 3)) if draw(st.booleans()) else length(),
                          None))
        else:
            specs.append(("ab", a, None))
    zeros = st.sampled_from([0, 0, 0, 2])
    text = []
    for kind_, a, b in specs:
        if kind_ == "suffix":
            text.append("-" + render(a, draw(zeros)))
        else:
            last = "" if b is None else render(b, draw(zeros))
            text.append(render(a, draw(zeros)) + "-" + last)
    sep = draw(st.sampled_from([",", ", ", " , ", ",\t"]))
    unit = draw(st.sampled_from(["bytes", "bytes", "Bytes", "BYTES"]))
    return f"{unit}={sep.join(text)}", specs


@pytest.fixture(scope="module")
def keepalive(server: Server) -> Iterator[http.client.HTTPConnection]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    yield conn
    conn.close()


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_random_range_headers_match_the_bytes(
    server: Server, files: dict[str, bytes], keepalive: http.client.HTTPConnection,
    data: st.DataObject,
) -> None:
    key = data.draw(st.sampled_from(["big", "small", "small", "cafe", "empty"]))
    content = files[key]
    size = len(content)
    header, specs = data.draw(range_cases(size))
    # One kept-alive connection for all examples: a wrong Content-Length would corrupt the
    # next response on it.
    status, headers, body = get(server, f"/stream/{key}/", {"Range": header}, conn=keepalive)
    check_consistent(status, headers, body, content)
    multipart = headers.get("Content-Type", "").startswith("multipart/")
    event(f"{'structured' if specs else 'garbage'} → {status}{' multipart' if multipart else ''}")
    if specs is not None:
        check_against_oracle(status, headers, body, size, header, specs=specs)


def check_against_oracle(status: int, headers: Message, body: bytes, size: int, header: str, *,
                         specs: list[Spec], invalid: tuple[int, ...] = (200,)) -> None:
    """The answer to a structured Range header against :func:`expected_cover`; an invalid
    header may get one of ``invalid``."""
    cover = expected_cover(specs, size)
    if cover is None:
        assert status in invalid, header  # invalid syntax: ignored
    elif not cover:
        assert status == 416
    elif status == 200:
        # refusing a set is allowed only for several ranges that are many or add up past
        # the size; one range, or up to three adding up to less, must be honoured
        assert len(specs) > 3 or sum(b - a + 1 for a, b in cover) > size, header
    else:
        assert status == 206
        want, got = bytearray(size), bytearray(size)
        for a, b in cover:
            want[a: b + 1] = b"\x01" * (b - a + 1)
        for a, b, _payload in parse_parts(headers, body, size):
            got[a: b + 1] = b"\x01" * (b - a + 1)
        assert got == want, header


# --- the individual rules ----------------------------------------------------------------

def test_whole_file_with_all_headers(server: Server, files: dict[str, bytes]) -> None:
    r = requests.get(f"http://127.0.0.1:{server.port}/stream/big/", timeout=30)
    assert r.status_code == 200
    assert r.content == files["big"]
    h = r.headers
    assert h["Content-Length"] == str(len(files["big"]))
    assert h["Content-Type"] == "video/mp4"
    assert h["Accept-Ranges"] == "bytes"
    if server.store is None:
        mtime = int((server_data(server) / "big.mp4").stat().st_mtime)
        assert h["ETag"] == f'"{mtime:x}-{len(files["big"]):x}"'  # as nginx spells it
    else:
        info = server.store.stat("videos/big.mp4")
        mtime = int(info.mtime)
        assert h["ETag"] == info.etag  # the store's own validator
    assert h["Last-Modified"] == http_date(mtime)
    assert h["Cache-Control"] == "private, max-age=3600"
    assert h["Content-Disposition"] == 'inline; filename="big.mp4"'
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["Referrer-Policy"] == "no-referrer"


def server_data(server: Server) -> Path:
    return server.log.parent / "data"


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [("bytes=0-1", 0, 1), ("bytes=100-", 100, None), ("bytes=-500", -500, None),
     ("bytes=0-" + "9" * 30, 0, None), ("bytes=1000-2999", 1000, 2999)],
)
def test_single_ranges(server: Server, files: dict[str, bytes], header: str, first: int,
                       last: int | None) -> None:
    data = files["big"]
    size = len(data)
    r = requests.get(f"http://127.0.0.1:{server.port}/stream/big/", headers={"Range": header},
                     timeout=30)
    a = first % size
    b = size - 1 if last is None else last
    assert r.status_code == 206
    assert r.headers["Content-Range"] == f"bytes {a}-{b}/{size}"
    assert r.headers["Content-Length"] == str(b - a + 1)
    assert r.content == data[a: b + 1]


def test_multipart(server: Server, files: dict[str, bytes]) -> None:
    data = files["big"]
    status, headers, body = get(server, "/stream/big/", {"Range": "bytes=-10,0-9,500-599,550-"
                                                          "650"})
    assert status == 206
    assert int(headers["Content-Length"]) == len(body)
    parts = parse_parts(headers, body, len(data))
    assert [(a, b) for a, b, _ in parts] == [(0, 9), (500, 650), (len(data) - 10, len(data) - 1)]
    for a, b, payload in parts:
        assert payload == data[a: b + 1]
    assert b"Content-Type: video/mp4\r\n" in body


def test_unsatisfiable(server: Server, files: dict[str, bytes]) -> None:
    size = len(files["big"])
    for header in (f"bytes={size}-", "bytes=-0", f"bytes={'9' * 30}-"):
        status, headers, _ = get(server, "/stream/big/", {"Range": header})
        assert status == 416
        assert headers["Content-Range"] == f"bytes */{size}"
        assert headers["Cache-Control"] == "no-store"


def test_empty_file(server: Server) -> None:
    assert get(server, "/stream/empty/")[0::2] == (200, b"")
    status, headers, _ = get(server, "/stream/empty/", {"Range": "bytes=0-"})
    assert (status, headers["Content-Range"]) == (416, "bytes */0")


def test_missing_file_is_404(server: Server) -> None:
    assert get(server, "/stream/missing/")[0] == 404


def test_head_same_headers_no_body_and_connection_reusable(server: Server,
                                                          files: dict[str, bytes]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        s_head, h_head, b_head = get(server, "/download/cafe/", method="HEAD", conn=conn)
        s_get, h_get, b_get = get(server, "/download/cafe/", conn=conn)  # same connection
    finally:
        conn.close()
    assert (s_head, s_get, b_head, b_get) == (200, 200, b"", files["cafe"])
    drop = {"Date"}
    assert {k: v for k, v in h_head.items() if k not in drop} == {
        k: v for k, v in h_get.items() if k not in drop}
    # RFC 9110 §14.2: Range is defined for GET only, so HEAD describes the whole file.
    status, headers, body = get(server, "/stream/big/", {"Range": "bytes=0-1"}, method="HEAD")
    assert (status, headers["Content-Length"], body) == (200, str(len(files["big"])), b"")


def test_conditional_get(server: Server, files: dict[str, bytes]) -> None:
    _, headers, _ = get(server, "/stream/small/", method="HEAD")
    etag, last_modified = headers["ETag"], headers["Last-Modified"]
    for cond in ({"If-None-Match": etag}, {"If-None-Match": "W/" + etag},
                 {"If-None-Match": f'"nope", {etag}'}, {"If-None-Match": "*"},
                 {"If-Modified-Since": last_modified}):
        for method in ("GET", "HEAD"):
            status, h, body = get(server, "/stream/small/", cond, method=method)
            assert (status, body) == (304, b""), cond
            assert h["ETag"] == etag
    older = http_date(int(time.time()) - 7200)
    for cond in ({"If-None-Match": '"nope"'}, {"If-Modified-Since": older},
                 {"If-None-Match": '"nope"', "If-Modified-Since": last_modified}):
        status, _, body = get(server, "/stream/small/", cond)
        assert (status, body) == (200, files["small"]), cond
    for cond in ({"If-Match": '"nope"'}, {"If-Unmodified-Since": older}):
        assert get(server, "/stream/small/", cond)[0] == 412
    assert get(server, "/stream/small/", {"If-Match": etag})[0] == 200


def test_if_range(server: Server, files: dict[str, bytes]) -> None:
    data = files["small"]
    _, headers, _ = get(server, "/stream/small/", method="HEAD")
    etag, last_modified = headers["ETag"], headers["Last-Modified"]
    # a date validates a range only once Last-Modified is a strong validator (a second old):
    # the files are an hour old, an object may have been put this second
    strong_from = parsedate_to_datetime(last_modified).timestamp() + 1
    wait_for(lambda: time.time() >= strong_from, timeout=10,
             what="Last-Modified to be a strong validator")
    for validator in (etag, last_modified):
        status, h, body = get(server, "/stream/small/",
                              {"Range": "bytes=10-19", "If-Range": validator})
        assert (status, h["Content-Range"], body) == (206, f"bytes 10-19/{len(data)}",
                                                      data[10:20])
    for stale in ('"stale"', "W/" + etag, http_date(int(time.time()) - 7200)):
        status, h, body = get(server, "/stream/small/", {"Range": "bytes=10-19", "If-Range": stale})
        assert (status, body) == (200, data), stale
        assert "Content-Range" not in h


def test_content_disposition_non_ascii(server: Server) -> None:
    _, headers, _ = get(server, "/download/cafe/", method="HEAD")
    value = headers["Content-Disposition"]
    assert value == ('attachment; filename="cafe video.mp4"; '
                     "filename*=UTF-8''caf%C3%A9%20vid%C3%A9o.mp4")
    assert unquote(value.split("''", 1)[1]) == "café vidéo.mp4"
    assert get(server, "/stream/cafe/", method="HEAD")[1]["Content-Disposition"].startswith(
        'inline; filename="cafe video.mp4"; filename*=')


@pytest.mark.parametrize(
    ("name", "expected"),
    [("plain.mp4", 'attachment; filename="plain.mp4"'),
     ('a"b\\c.mp4', "attachment; filename=\"a_b_c.mp4\"; filename*=UTF-8''a%22b_c.mp4"),
     ("x\r\ny.mp4", 'attachment; filename="x__y.mp4"'),
     ("日本.mp4", "attachment; filename=\"__.mp4\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.mp4"),
     ("../../etc/passwd", 'attachment; filename="_.._etc_passwd"'),
     ("", 'attachment; filename="download"')],
)
def test_content_disposition_values(name: str, expected: str) -> None:
    assert content_disposition("attachment", name) == expected


@file_only("X-Accel-Redirect names a file for nginx; an object is proxied or redirected")
def test_accel_redirect(server: Server) -> None:
    for method in ("GET", "HEAD"):
        status, headers, body = get(server, "/accel/cafe/", {"Range": "bytes=0-1"}, method=method)
        assert (status, body) == (200, b"")
        assert headers["X-Accel-Redirect"] == "/protected/videos/caf%C3%A9%20vid%C3%A9o.mp4"
        assert headers["Content-Type"] == "video/mp4"
        assert headers["ETag"] and headers["Last-Modified"]
        assert "filename*=UTF-8''caf%C3%A9" in headers["Content-Disposition"]
        assert headers["X-Content-Type-Options"] == "nosniff"
    assert accel_redirect_uri("/p/", "a b/c?d%.mp4") == "/p/a%20b/c%3Fd%25.mp4"
    with pytest.raises(ValueError):
        accel_redirect_uri("/p/", "a/../../etc/passwd")


@file_only("open descriptors of files: an object holds a connection to the store instead")
def test_descriptors_closed_after_every_kind_of_response(server: Server) -> None:
    data_dir = server_data(server)
    for headers, method in (({}, "HEAD"), ({"If-None-Match": "*"}, "GET"),
                            ({"Range": "bytes=999999999-"}, "GET"), ({"If-Match": '"x"'}, "GET"),
                            ({"Range": "bytes=0-1,5-6"}, "GET"), ({}, "GET")):
        get(server, "/stream/small/", headers, method=method)
    # A client that stalls mid-download holds a descriptor (positive control) ...
    for request in (b"GET /stream/huge/ HTTP/1.1\r\nHost: t\r\n\r\n",
                    b"GET /stream/huge/ HTTP/1.1\r\nHost: t\r\nRange: bytes=0-99999999,"
                    b"150000000-249999999\r\n\r\n"):
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.connect(("127.0.0.1", server.port))
        client.sendall(request)
        assert client.recv(1024).startswith(b"HTTP/1.1 20")
        wait_for(lambda: server.open_files_under(data_dir), timeout=20,
                 what="a worker to hold the file open")
        # ... and drops it when the client goes away (RST).
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        wait_for(lambda: not server.open_files_under(data_dir), timeout=20,
                 what="the descriptor to be closed")


def peak_kib(server: Server) -> dict[int, int]:
    """Each worker's peak resident memory so far (VmHWM), KiB."""
    found = {}
    for pid in server.workers():
        peak = re.search(r"VmHWM:\s+([0-9]+)", Path(f"/proc/{pid}/status").read_text())
        assert peak
        found[pid] = int(peak[1])
    return found


def read_through(server: Server, path: str, headers: dict[str, str]) -> tuple[int, int, int]:
    """(status, bytes read, Content-Length) of a GET read 1 MiB at a time."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        total = 0
        while chunk := r.read(1024 * 1024):
            total += len(chunk)
        return r.status, total, int(r.headers["Content-Length"])
    finally:
        conn.close()


@file_only("a 256 MiB sparse file; the s3 counterpart below proxies a 48 MiB object")
def test_multipart_memory_stays_flat(server: Server) -> None:
    status, total, length = read_through(server, "/stream/huge/",
                                         {"Range": "bytes=0-99999999,150000000-"})
    assert status == 206
    assert total == length > 200_000_000
    for pid, peak in peak_kib(server).items():
        assert peak < 100 * 1024, f"worker {pid} peaked at {peak} KiB"


@pytest.mark.parametrize("server", ["s3"], indirect=True)
def test_proxied_multipart_streams_the_ranges_only(server: Server) -> None:
    """A proxied multipart/byteranges of a large object asks the store for its ranges
    only (the relay counts what the store sent) and holds no part in memory."""
    assert server.relay is not None
    before = peak_kib(server)
    sent_before = server.relay.downstream_bytes
    ranges = {"Range": "bytes=0-19999999,30000000-"}  # ~38 MB of a 48 MiB object
    status, total, length = read_through(server, "/stream/huge/", ranges)
    assert status == 206
    assert total == length > 38_000_000
    from_store = server.relay.downstream_bytes - sent_before
    wanted = 20_000_000 + HUGE_OBJECT_SIZE - 30_000_000
    assert wanted <= from_store < wanted + 64 * 1024  # the ranges plus the store's headers
    for pid, peak in peak_kib(server).items():
        grew = peak - before.get(pid, 0)
        assert grew < 16 * 1024, f"worker {pid} grew {grew} KiB serving {total} bytes"


@pytest.mark.parametrize("server", ["s3"], indirect=True)
@pytest.mark.parametrize("header", ["bytes=1000-2999", "bytes=-100", "bytes=3145000-"])
def test_a_proxied_range_asks_the_store_for_that_range_only(
        server: Server, files: dict[str, bytes], header: str) -> None:
    assert server.relay is not None
    sent_before = server.relay.downstream_bytes
    status, headers, body = get(server, "/stream/big/", {"Range": header})
    assert status == 206
    [(first, last, payload)] = parse_parts(headers, body, len(files["big"]))
    assert payload == files["big"][first: last + 1]
    from_store = server.relay.downstream_bytes - sent_before
    assert len(body) <= from_store < len(body) + 8 * 1024  # plus a HEAD's and a GET's headers


#: Representative Range headers for the redirect mode (one range each: an S3 server
#: answers one range, never multipart/byteranges). Past the size, the last position is
#: kept within 64 bits: weed mini answers 416 to "bytes=0-" + "9" * 30 (the API's own
#: parser takes any length; docs/storage.md, serving).
REDIRECT_CASES = ["", "bytes=0-99", "bytes=-500", "bytes=100-", "bytes=1000-2999",
                  "bytes=0-99999999999", "bytes=-99999999999", "bytes=99999999-"]


@pytest.mark.parametrize("server", ["s3"], indirect=True)
@pytest.mark.parametrize("header", REDIRECT_CASES)
def test_redirect_followed_with_a_range_answers_like_the_file(server: Server, header: str
                                                              ) -> None:
    """The 307 followed with the same Range header: the store's answer has the status,
    Content-Range and bytes the file store gives for that header."""
    asked = {"Range": header} if header else {}
    status, headers, body = get(server, "/redirect/big/", asked)
    assert (status, body) == (307, b"")
    followed = requests.get(headers["Location"], headers=asked, timeout=30)
    f_status, f_headers, f_body = get(server, "/file/big/", asked)
    assert followed.status_code == f_status
    assert followed.headers.get("Content-Range") == f_headers.get("Content-Range")
    if f_status != 416:
        assert followed.content == f_body
        assert followed.headers["Content-Type"] == f_headers["Content-Type"]


def test_gunicorn_uses_sendfile_bounded_by_content_length(
    workdir: Path, files: dict[str, bytes], tmp_path: Path,
) -> None:
    if shutil.which("strace") is None:
        pytest.fail("strace is not installed: apt-get install strace (make test does)")
    trace = tmp_path / "strace.log"
    srv = start_server(workdir, workdir / "data", name="traced", strace_log=trace)
    try:
        size = len(files["big"])
        assert get(srv, "/stream/big/")[2] == files["big"]
        assert get(srv, "/stream/big/", {"Range": "bytes=1000-2999"})[2] == files["big"][1000:3000]
        assert get(srv, "/stream/big/", {"Range": "bytes=-100"})[2] == files["big"][-100:]
    finally:
        srv.stop()  # strace exits with its tracees and flushes the log
    calls = [tuple(int(x) for x in m.groups()) for m in re.finditer(
        r"sendfile\([0-9]+, [0-9]+, \[([0-9]+)\] => \[[0-9]+\], ([0-9]+)\)\s+=\s+([0-9]+)",
        trace.read_text())]
    # (offset, count, returned): gunicorn passes the fd's current offset as the offset and
    # Content-Length as the count; nothing else was sent with sendfile.
    starts = {(offset, count) for offset, count, _ in calls}
    assert {(0, size), (1000, 2000), (size - 100, 100)} <= starts, calls
    assert sum(sent for _, _, sent in calls) == size + 2000 + 100, calls
    print("sendfile calls (offset, count, returned):", calls)


def test_reads_stay_inside_the_range_without_sendfile(files: dict[str, bytes],
                                                      workdir: Path) -> None:
    """Without wsgi.file_wrapper (falcon.testing here; TLS or --no-sendfile in gunicorn) the
    body is read through _FileWindow.read(), which must stop at the end of the range."""
    import falcon
    import falcon.testing

    from api.files.response import send_file

    class One:
        def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
            send_file(req, resp, workdir / "data" / "big.mp4", content_type="video/mp4",
                      disposition="inline", filename="big.mp4")

    app = falcon.App()
    app.add_route("/f", One())
    client = falcon.testing.TestClient(app)
    result = client.simulate_get("/f", headers={"Range": "bytes=1000-300000"})
    assert result.status_code == 206
    assert result.content == files["big"][1000:300001]
    assert client.simulate_get("/f").content == files["big"]
