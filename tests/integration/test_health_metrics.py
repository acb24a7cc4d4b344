"""`videodrop health` on real servers; the API's metrics and systemd hooks under a real
gunicorn with several workers (api/gunicorn_conf.py); the roles' metrics end to end.

The gunicorn tests serve a small Falcon app defined here (``metrics_test_app``) with the
real middleware, resource and hooks, so they do not depend on how app.py is wired; the
tests marked "wiring pending" run the real roles and pass once the calls are in place.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import falcon
import psycopg
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql

from tests.harness import REPO, System, free_port, wait_for
from tests.integration.test_prober_pipeline import s3_store

# --- an app for gunicorn ---------------------------------------------------------------------


class _Hello:
    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        resp.media = {"hello": name, "pid": os.getpid()}


class _Env:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {k: os.environ.get(k) for k in
                      ("NOTIFY_SOCKET", "WATCHDOG_USEC", "PROMETHEUS_MULTIPROC_DIR")}


class _Healthz:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}


def metrics_test_app() -> falcon.App:
    """What gunicorn serves in these tests (imported by each worker after the fork)."""
    from api.ops.metrics import Metrics, RequestMetrics

    time.sleep(float(os.environ.get("TEST_APP_LOAD_DELAY", "0")))  # a slow app load
    app = falcon.App(middleware=[RequestMetrics()])
    app.add_route("/hello/{name}/", _Hello())
    app.add_route("/env", _Env())
    app.add_route("/healthz", _Healthz())
    app.add_route("/metrics", Metrics.from_environment())
    return app


def families(text: str) -> dict[str, list[Any]]:
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def sample(text: str, name: str, **labels: str) -> float:
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


class Gunicorn:
    def __init__(self, tmp_path: Path, *, workers: int = 2, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / "gunicorn.log"
        full_env = {k: v for k, v in os.environ.items()
                    if k not in {"PROMETHEUS_MULTIPROC_DIR", "NOTIFY_SOCKET", "WATCHDOG_USEC"}}
        full_env.update(env)
        argv = [sys.executable, "-m", "gunicorn", "-c", "python:api.gunicorn_conf",
                "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers),
                "--worker-class", "gthread", "--threads", "2", "--graceful-timeout", "5",
                "--no-control-socket", "--error-logfile", "-",
                "tests.integration.test_health_metrics:metrics_test_app()"]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(argv, cwd=REPO, env=full_env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def get(self, path: str) -> requests.Response:
        # A new connection each time, so the kernel spreads them over the workers.
        return requests.get(self.url + path, timeout=5, headers={"Connection": "close"})

    def wait_up(self) -> None:
        wait_for(lambda: self.get("/healthz").ok, timeout=30, what="gunicorn to answer")

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[type[Gunicorn]]:
    started: list[Gunicorn] = []

    def start(**kwargs: Any) -> Gunicorn:
        g = Gunicorn(tmp_path, **kwargs)
        started.append(g)
        return g

    yield start  # type: ignore[misc]
    for g in started:
        g.stop()


class NotifySocket:
    """A datagram socket standing in for systemd's notify socket (abstract name)."""

    def __init__(self) -> None:
        self.address = f"@videodrop-test-{secrets.token_hex(6)}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.address[1:])
        self.messages: list[str] = []

    def wait_for(self, field: str, timeout: float = 30) -> str:
        """The first message (after those already read) holding ``field`` as a line."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                msg = self.sock.recv(4096).decode()
            except TimeoutError:
                break
            self.messages.append(msg)
            if field in msg.split("\n"):
                return msg
        raise AssertionError(f"no {field} within {timeout} s; got {self.messages!r}")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket() -> Iterator[NotifySocket]:
    s = NotifySocket()
    yield s
    s.close()


# --- the API under gunicorn -------------------------------------------------------------------

def test_metrics_add_up_across_gunicorn_workers(gunicorn: type[Gunicorn]) -> None:
    g = gunicorn(workers=2)
    g.wait_up()
    pids: set[int] = set()
    sent = 0
    deadline = time.monotonic() + 30
    while (len(pids) < 2 or sent < 20) and time.monotonic() < deadline:
        pids.add(g.get(f"/hello/token-{sent}/").json()["pid"])
        sent += 1
    assert len(pids) == 2, "the requests never reached the second worker"

    route = "/hello/{name}/"
    # A worker writes its counts every 0.2 s (and before it answers /metrics itself):
    # the other worker's requests may take that long to show.
    wait_for(lambda: sample(g.get("/metrics").text, "videodrop_http_requests_total",
                            method="GET", route=route, status="200") == sent,
             timeout=5, what="every worker's requests in /metrics")
    for _ in range(6):  # whichever worker answers, it reports every worker's requests
        text = g.get("/metrics").text
        assert sample(text, "videodrop_http_requests_total", method="GET", route=route,
                      status="200") == sent
        assert sample(text, "videodrop_http_request_seconds_count", route=route) == sent
        assert sample(text, "videodrop_http_response_bytes_total", route=route) > 0
        assert "token-1" not in text
        names = families(text)
        assert not [n for n in names if n.startswith(("videodrop_ingest", "videodrop_prober"))]

    env = g.get("/env").json()
    folder = Path(env["PROMETHEUS_MULTIPROC_DIR"])
    assert folder.is_dir() and list(folder.glob("*.db"))
    assert g.stop() == 0
    assert not folder.exists(), "the temporary metrics folder outlived gunicorn"


def test_a_given_multiprocess_folder_is_emptied_at_start(gunicorn: type[Gunicorn],
                                                         tmp_path: Path) -> None:
    folder = tmp_path / "prom"
    folder.mkdir()
    # Counters of an earlier run: must not be added to this run's.
    shutil.copy(Path(__file__), folder / "counter_12345.db")
    g = gunicorn(workers=1, PROMETHEUS_MULTIPROC_DIR=str(folder))
    g.wait_up()
    assert not (folder / "counter_12345.db").exists()
    g.get("/hello/a/")
    text = g.get("/metrics").text
    assert sample(text, "videodrop_http_requests_total", route="/hello/{name}/") == 1
    assert g.stop() == 0
    assert folder.is_dir(), "an operator's folder is emptied at start, never removed"


def test_gunicorn_master_speaks_for_systemd(gunicorn: type[Gunicorn],
                                            notify_socket: NotifySocket) -> None:
    g = gunicorn(workers=2, NOTIFY_SOCKET=notify_socket.address, WATCHDOG_USEC="1000000",
                 TEST_APP_LOAD_DELAY="3")
    ready = notify_socket.wait_for("READY=1")
    # Only once a worker has loaded the app and answers, not when the socket is bound
    # (gunicorn's own READY=1): the app takes 3 s to load, this may take 1 s at most.
    assert requests.get(g.url + "/healthz", timeout=1).ok
    assert "STATUS=serving on 127.0.0.1:" in ready
    assert not [m for m in notify_socket.messages if "Gunicorn arbiter booted" in m]
    notify_socket.wait_for("WATCHDOG=1", timeout=5)
    notify_socket.wait_for("WATCHDOG=1", timeout=5)

    env = g.get("/env").json()
    assert env["NOTIFY_SOCKET"] is None and env["WATCHDOG_USEC"] is None, \
        "workers must not inherit the notify socket"

    os.killpg(g.proc.pid, signal.SIGTERM)
    notify_socket.wait_for("STOPPING=1", timeout=20)
    assert g.proc.wait(timeout=20) == 0


def test_gunicorn_without_systemd_sends_nothing(gunicorn: type[Gunicorn]) -> None:
    g = gunicorn(workers=1)
    g.wait_up()
    assert g.get("/env").json()["NOTIFY_SOCKET"] is None
    assert g.stop() == 0


# --- videodrop health --------------------------------------------------------------------------

def health(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("VIDEODROP_")}
    full.update(env)
    return subprocess.run([sys.executable, "-m", "videodrop", "health", *args], env=full,
                          cwd=REPO, capture_output=True, text=True, timeout=60)


@pytest.fixture
def health_env(tmp_path: Path, db_url: str, amqp_url: str, broker_prefix: str) -> dict[str, str]:
    for folder in ("inbox", "media"):
        (tmp_path / folder).mkdir()
    return {"VIDEODROP_DATABASE_URL": db_url, "VIDEODROP_AMQP_URL": amqp_url,
            "VIDEODROP_AMQP_PREFIX": broker_prefix,
            "VIDEODROP_INBOX": str(tmp_path / "inbox"),
            "VIDEODROP_MEDIA_ROOT": str(tmp_path / "media")}


def test_health_passes_on_a_working_set_up(health_env: dict[str, str],
                                           store_env: dict[str, str]) -> None:
    """Once per media store (``store_env``): on s3 the "media root" line is the bucket's."""
    done = health({**health_env, **store_env})
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["CHECK", "STATUS", "MS"]
    checks = {line.split("  ")[0].strip(): line for line in lines[1:]}
    assert set(checks) == {"database", "broker", "inbox", "media root", "ffprobe", "ffmpeg"}
    assert all(" ok " in line for line in checks.values()), done.stdout
    assert "schema up to date" in checks["database"]
    assert f"{health_env['VIDEODROP_AMQP_PREFIX']}.derive:" in checks["broker"]
    assert not list(Path(health_env["VIDEODROP_INBOX"]).iterdir()), "health wrote in the inbox"
    assert not list(Path(health_env["VIDEODROP_MEDIA_ROOT"]).iterdir())
    if store_env:
        assert f"{store_env['VIDEODROP_STORAGE_URL']}" in checks["media root"]
        assert not list(s3_store(store_env).list_objects()), "health left an object"


def test_health_json_and_roles(health_env: dict[str, str]) -> None:
    done = health(health_env, "--role", "ingest", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["healthy"] is True
    assert [c["check"] for c in report["checks"]] == ["broker", "inbox (read)"]

    broken = {**health_env, "VIDEODROP_DATABASE_URL": f"postgresql://127.0.0.1:{free_port()}/x",
              "VIDEODROP_FFPROBE": "/nonexistent/ffprobe"}
    assert health(broken, "--role", "ingest").returncode == 0  # needs neither
    done = health(broken, "--role", "prober", "--json")
    assert done.returncode == 1
    failed = {c["check"]: c["detail"] for c in json.loads(done.stdout)["checks"] if not c["ok"]}
    assert set(failed) == {"database", "ffprobe"}
    assert "unavailable" in failed["database"]
    assert "not found" in failed["ffprobe"]

    done = health({**health_env, "VIDEODROP_FFMPEG": "/nonexistent/ffmpeg"}, "--role",
                  "derive", "--json")
    assert done.returncode == 1
    checks = json.loads(done.stdout)["checks"]
    assert [c["check"] for c in checks] == ["database", "broker", "media root", "ffmpeg"]
    failed = {c["check"]: c["detail"] for c in checks if not c["ok"]}
    assert failed == {"ffmpeg": "/nonexistent/ffmpeg: not found (apt-get install ffmpeg,"
                                " or set VIDEODROP_FFMPEG)"}
    # the whole set-up needs ffmpeg while the derive role is on, and not once it is off
    assert health({**health_env, "VIDEODROP_FFMPEG": "/nonexistent/ffmpeg"}).returncode == 1
    done = health({**health_env, "VIDEODROP_FFMPEG": "/nonexistent/ffmpeg",
                   "VIDEODROP_DERIVE": ""}, "--json")
    assert done.returncode == 0, done.stdout
    assert "ffmpeg" not in {c["check"] for c in json.loads(done.stdout)["checks"]}


def test_health_fails_loudly(health_env: dict[str, str], postgres_server_url: str,
                             tmp_path: Path, store_env: dict[str, str]) -> None:
    """Once per media store (``store_env``): a media root that is no folder, a bucket
    that does not exist."""
    bucket = f"vdmissing-{secrets.token_hex(4)}"
    media = ({**store_env, "VIDEODROP_STORAGE_URL": f"s3://{bucket}/x"} if store_env
             else {"VIDEODROP_MEDIA_ROOT": str(tmp_path / "missing")})
    name = f"vdhealth_{secrets.token_hex(4)}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = psycopg.conninfo.make_conninfo(postgres_server_url, dbname=name)
        env = {**health_env, "VIDEODROP_DATABASE_URL": url,
               "VIDEODROP_AMQP_URL": f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F",
               **media}
        done = health(env, "--role", "api")
        assert done.returncode == 1
        rows = {line.split("  ")[0].strip(): line for line in done.stdout.splitlines()[1:]}
        assert "FAIL" in rows["database"] and "videodrop migrate" in rows["database"]
        assert "FAIL" in rows["broker"]
        assert "FAIL" in rows["media root"]
        assert (f"no bucket '{bucket}'" if store_env else "no such folder") in rows["media root"]
        assert " ok " in rows["inbox"]
    finally:
        with psycopg.connect(postgres_server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))


# --- the real roles ----------------------------------------------------------

def test_every_role_exposes_its_metrics(make_system: Any, samples: Path) -> None:
    first = free_port()
    system: System = make_system(VIDEODROP_METRICS_BIND=f"127.0.0.1:{first}-{first + 20}")
    system.start()
    system.start_role("derive")
    shutil.copy(samples / "bbb_chapters.mp4", system.inbox / "clip.mp4")
    assert system.wait_record("clip.mp4", timeout=60)["status"] == "ready"

    def scrape_all() -> dict[str, str]:
        found: dict[str, str] = {}
        for port in range(first, first + 21):
            try:
                text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except requests.ConnectionError:
                continue
            for role in ("ingest", "prober", "derive"):
                if f"videodrop_{role}_" in text:
                    found[role] = text
        return found

    def both() -> dict[str, str] | None:
        found = scrape_all()
        made = "derive" in found and sample(found["derive"], "videodrop_derive_derivatives_total",
                                            kind="poster", outcome="ready",
                                            error_code="") >= 1
        return found if len(found) == 3 and made else None

    texts = wait_for(both, timeout=90, what="the ingest, prober and derive metrics servers")
    assert sample(texts["derive"], "videodrop_derive_seconds_count", kind="poster") >= 1
    assert "videodrop_derive_backlog{" in texts["derive"]
    assert "videodrop_prober_" not in texts["derive"]
    assert sample(texts["ingest"], "videodrop_ingest_files_published_total") >= 1
    assert sample(texts["prober"], "videodrop_prober_probes_total", outcome="ready") >= 1
    assert sample(texts["prober"], "videodrop_prober_probe_seconds_count") >= 1
    api = system.http.get(f"{system.base_url}/metrics", timeout=5)
    assert api.status_code == 200
    wait_for(lambda: sample(system.http.get(f"{system.base_url}/metrics", timeout=5).text,
                            "videodrop_http_requests_total", route="/api/videos") >= 1,
             timeout=5, what="the API's requests in its /metrics")
