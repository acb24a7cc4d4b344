"""The real roles as child processes on a database and broker names of their own, with
HTTP over a socket: what tests and benchmarks start and stop."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pika
import requests

from testbed.broker import amqp_parameters, delete_amqp_names
from testbed.databases import drop_database, fresh_database
from testbed.processes import REPO, free_port, stop_processes
from testbed.waits import wait_for
from videodrop.inboxpolicy import INBOX_ID, INGEST_LOCK, SPOOL


def token_lookups(base_url: str) -> dict[str, float]:
    """``videodrop_api_token_lookups_total`` by source (cache, database), from ``/metrics``."""
    found = {"cache": 0.0, "database": 0.0}
    for line in requests.get(f"{base_url}/metrics", timeout=5).text.splitlines():
        if line.startswith("videodrop_api_token_lookups_total{"):
            labels, value = line.rsplit(" ", 1)
            for source in found:
                if f'source="{source}"' in labels:
                    found[source] += float(value)
    return found


@dataclass
class System:
    """The real roles as child processes of the test, on their own database and queues."""

    root: Path
    database_url: str
    amqp_url: str
    prefix: str
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # processes of a role started again while they ran (``procs`` names the newest one):
    # stopped with the system, never left behind
    superseded: list[subprocess.Popen[bytes]] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def __post_init__(self) -> None:
        self.inbox = self.root / "inbox"
        self.media_root = self.root / "media"
        self.logs = self.root / "logs"
        for folder in (self.inbox, self.media_root, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        self.http = requests.Session()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIDEODROP_")}
        env.update({
            "VIDEODROP_DATABASE_URL": self.database_url,
            "VIDEODROP_AMQP_URL": self.amqp_url,
            "VIDEODROP_AMQP_PREFIX": self.prefix,
            "VIDEODROP_INBOX": str(self.inbox),
            "VIDEODROP_MEDIA_ROOT": str(self.media_root),
            "VIDEODROP_BASE_URL": self.base_url,
            "VIDEODROP_BIND": f"127.0.0.1:{self.port}",
            "VIDEODROP_ADMIN_TOKEN": self.admin_token,
            "VIDEODROP_LOG_FORMAT": "json",
            "VIDEODROP_SETTLE_SECONDS": "1",
            "VIDEODROP_PROBER_CONCURRENCY": "2",
            "VIDEODROP_API_WORKERS": "1",
            "VIDEODROP_API_THREADS": "8",  # the default: a browser opens six connections
            "PYTHONUNBUFFERED": "1",
        })
        env.update(self.extra_env)
        return env

    def start(self, *roles: str) -> System:
        for role in roles or ("api", "prober", "ingest"):
            self.start_role(role)
        if "api" in (roles or ("api",)):
            wait_for(lambda: self.http.get(f"{self.base_url}/healthz", timeout=2).ok,
                     timeout=30, what="the API to answer /healthz")
        if "prober" in (roles or ("prober",)):
            self.wait_consumers(1)
        return self

    def start_role(self, role: str, *args: str, env: dict[str, str] | None = None
                   ) -> subprocess.Popen[bytes]:
        """Start ``videodrop ROLE ARGS…`` with this system's environment (and ``env`` over
        it), its output appended to ``logs/ROLE.log``."""
        with (self.logs / f"{role}.log").open("ab") as log:
            proc = self.spawn([sys.executable, "-m", "videodrop", role, *args],
                              {**self.env, **(env or {})}, log)
        if (earlier := self.procs.get(role)) is not None and earlier.poll() is None:
            self.superseded.append(earlier)
        self.procs[role] = proc
        return proc

    def spawn(self, argv: list[str], env: dict[str, str], log: IO[bytes]
              ) -> subprocess.Popen[bytes]:
        """One role's process, from the checkout, its output to ``log``: in a session (and
        process group) of its own."""
        return subprocess.Popen(argv, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def kill(self, role: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(role)
        os.killpg(proc.pid, sig)
        proc.wait(timeout=30)

    def stop(self) -> None:
        # First the client side: an API worker's graceful stop waits (gunicorn's
        # STOP_KEEPALIVE_LINGER) for connections still open to it, and a request that timed
        # out while the API started (a ReadTimeout) leaves its socket in a reference cycle,
        # open until the garbage collector runs.
        self.http.close()
        gc.collect()
        procs = [*self.procs.values(), *self.superseded]
        self.procs.clear()
        self.superseded.clear()
        stop_processes(procs)

    def inbox_entries(self) -> list[str]:
        """Names in the inbox folder, but for the ingest's lock and identity and the
        prober's spool (sorted)."""
        return sorted(p.name for p in self.inbox.iterdir()
                      if p.name not in (INGEST_LOCK, SPOOL, INBOX_ID))

    def log_text(self, role: str) -> str:
        path = self.logs / f"{role}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log_events(self, role: str, event: str | None = None) -> list[dict[str, Any]]:
        """The role's JSON log lines (those named ``event`` when given), parsed."""
        return events(self.log_text(role), event)

    def wait_log_events(self, role: str, event: str, count: int = 1, timeout: float = 15,
                        **fields: Any) -> list[dict[str, Any]]:
        """The role's ``event`` lines whose ``fields`` match, once there are ``count`` of
        them: a role logs a line after the commit a test saw, so a test waits for it."""
        def matching() -> list[dict[str, Any]] | None:
            found = [e for e in self.log_events(role, event)
                     if all(e.get(k) == v for k, v in fields.items())]
            return found if len(found) >= count else None
        return wait_for(matching, timeout=timeout,
                        what=f"{count} {event!r} line(s) {fields or ''} in the {role} log")

    # --- the broker -------------------------------------------------------------------

    def queue_counts(self, queue: str = "probe") -> tuple[int, int]:
        """(messages, consumers) on the ``probe`` (or ``derive``) queue."""
        conn = pika.BlockingConnection(amqp_parameters(self.amqp_url))
        try:
            ok = conn.channel().queue_declare(f"{self.prefix}.{queue}", passive=True)
            return ok.method.message_count, ok.method.consumer_count
        finally:
            conn.close()

    def wait_consumers(self, n: int, timeout: float = 60, queue: str = "probe") -> None:
        def enough() -> bool:
            try:
                return self.queue_counts(queue)[1] >= n
            except pika.exceptions.ChannelClosedByBroker:  # not declared yet
                return False
        wait_for(enough, timeout=timeout, what=f"{n} consumer(s) on the {queue} queue")

    # --- the API ----------------------------------------------------------------------

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def videos(self, **params: Any) -> list[dict[str, Any]]:
        """Every record through the admin list, following ``next``."""
        items: list[dict[str, Any]] = []
        url: str | None = f"{self.base_url}/api/videos"
        params.setdefault("limit", 1000)
        while url:
            resp = self.http.get(url, params=params, headers=self.admin, timeout=10)
            resp.raise_for_status()
            body = resp.json()
            items += body["items"]
            url, params = body["next"], {}
        return items

    def records_named(self, name: str) -> list[dict[str, Any]]:
        return [v for v in self.videos() if v["original_filename"] == name]

    def wait_record(self, name: str, timeout: float = 60) -> dict[str, Any]:
        """Wait for the one record of the file called ``name`` to finish processing."""
        def finished() -> dict[str, Any] | None:
            found = self.records_named(name)
            assert len(found) <= 1, f"{name} recorded {len(found)} times"
            return found[0] if found and found[0]["status"] in {"ready", "failed"} else None
        return wait_for(finished, timeout=timeout, interval=0.2, what=f"{name} to be processed")

    def wait_done(self, count: int, timeout: float = 60) -> list[dict[str, Any]]:
        """Wait until ``count`` records exist and none is still uploading/processing."""
        def done() -> list[dict[str, Any]] | None:
            items = self.videos()
            finished = [v for v in items if v["status"] in {"ready", "failed"}]
            return items if len(items) >= count and len(finished) == len(items) else None
        return wait_for(done, timeout=timeout, interval=0.2,
                        what=f"{count} video(s) to finish processing")


@contextlib.contextmanager
def own_system(root: Path, server_url: str, amqp_url: str, prefix: str, *roles: str,
               template: str | None = None, **extra_env: str) -> Iterator[System]:
    """The real system on a database and queue names of its own (for a module's tests):
    started with ``roles`` (default all), and everything of it removed afterwards. The
    database is a clone of ``template`` when given (:func:`testbed.databases.fresh_database`)."""
    db = fresh_database(server_url, template=template)
    system = System(root, db, amqp_url, prefix, extra_env=extra_env)
    try:
        yield system.start(*roles)
    finally:
        system.stop()
        drop_database(server_url, db)
        delete_amqp_names(amqp_url, prefix)


def events(text: str, event: str | None = None) -> list[dict[str, Any]]:
    """The JSON objects among the lines of ``text`` (those named ``event`` when given)."""
    found = []
    for line in text.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and (event is None or item.get("event") == event):
            found.append(item)
    return found
