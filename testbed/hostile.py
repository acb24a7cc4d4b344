"""Hostile HTTP clients for the tests and bench/slow_clients.py: sockets that send a request
head or body one byte at a time, sockets that send nothing, and a liveness prober that times
ordinary requests while they run. Loopback only, bounded in number and in time.

:class:`SlowClients` keeps ``slow_headers + slow_bodies + silent`` sockets open from one
thread (non-blocking sockets, a byte each per ``interval`` seconds). A socket the server
closes is opened again at once, as an attacker would: the pressure stays constant whatever
timeouts the server applies. :class:`Liveness` asks, one after the other on a fresh
connection each, ``GET`` of each of its paths and records how long every answer took.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from testbed.waits import wait_for

SLOW_HEAD = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: "
SLOW_BODY_HEAD = (b"POST /login HTTP/1.1\r\nHost: localhost\r\n"
                  b"Content-Type: application/x-www-form-urlencoded\r\n"
                  b"Content-Length: 4000\r\n\r\ntoken=")


@dataclass
class Hostile:
    """One hostile socket: what it sends first (at once), then a byte per tick."""

    kind: str  # "header", "body", "silent"
    sock: socket.socket | None = None
    sent: int = 0


@dataclass
class SlowClients:
    """``with SlowClients(url, slow_headers=64, slow_bodies=32): ...`` keeps that many
    hostile sockets open against ``url`` (``http://127.0.0.1:port``) while the block runs."""

    url: str
    slow_headers: int = 64
    slow_bodies: int = 32
    silent: int = 0
    interval: float = 1.0
    opened: int = 0  # sockets opened in all (reopened ones included)
    closed_by_server: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _clients: list[Hostile] = field(default_factory=list)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.hostname not in {"127.0.0.1", "localhost", "::1"}:
            raise ValueError(f"hostile clients stay on loopback, not {self.url}")
        self.address = (parts.hostname, parts.port or 80)

    def __enter__(self) -> SlowClients:
        self._clients = ([Hostile("header") for _ in range(self.slow_headers)]
                         + [Hostile("body") for _ in range(self.slow_bodies)]
                         + [Hostile("silent") for _ in range(self.silent)])
        for client in self._clients:
            self._open(client)
        self._thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for client in self._clients:
            if client.sock is not None:
                client.sock.close()

    def wait_started(self, timeout: float = 10.0) -> None:
        """Until every socket that sends has sent its first bytes (the head's start)."""
        wait_for(lambda: all(c.sent or c.kind == "silent" for c in self._clients),
                 timeout=timeout, interval=0.05, what="the hostile sockets to start sending")

    def _open(self, client: Hostile) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        code = sock.connect_ex(self.address)
        if code not in {0, errno.EINPROGRESS}:
            sock.close()
            return
        client.sock, client.sent = sock, 0
        self.opened += 1
        first = {"header": SLOW_HEAD, "body": SLOW_BODY_HEAD, "silent": b""}[client.kind]
        if first:
            with contextlib.suppress(BlockingIOError):
                sock.send(first)  # fails while connecting: the first tick sends it then
                client.sent = 1

    def _tick(self, client: Hostile) -> None:
        sock = client.sock
        if sock is None:
            self._open(client)
            return
        try:
            with contextlib.suppress(BlockingIOError):
                if sock.recv(65536) == b"":  # the server closed it (or answered, then closed)
                    raise ConnectionResetError
            if client.kind == "silent":
                return
            if not client.sent:
                sock.send(SLOW_HEAD if client.kind == "header" else SLOW_BODY_HEAD)
            else:
                sock.send(b"a")
            client.sent += 1
        except BlockingIOError:
            pass  # still connecting, or the server's buffer is full: try next tick
        except OSError:
            sock.close()
            client.sock = None
            self.closed_by_server += 1
            self._open(client)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for client in self._clients:
                self._tick(client)


@dataclass
class Probe:
    path: str
    seconds: float
    status: int | None  # None: no answer (the error in ``error``)
    error: str = ""


@dataclass
class Liveness:
    """Ordinary requests, one at a time on fresh connections, timed until ``stop()``."""

    url: str
    paths: tuple[str, ...]
    timeout: float = 15.0
    pause: float = 0.1
    probes: list[Probe] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Liveness:
        self._thread = threading.Thread(target=self._run, name="liveness", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[Probe]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 5)
        return self.probes

    def ask(self, path: str) -> Probe:
        parts = urlsplit(self.url)
        t0 = time.perf_counter()
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80,
                                          timeout=self.timeout)
        try:
            conn.request("GET", path, headers={"Connection": "close"})
            resp = conn.getresponse()
            resp.read()
            return Probe(path, time.perf_counter() - t0, resp.status)
        except (OSError, http.client.HTTPException) as exc:
            return Probe(path, time.perf_counter() - t0, None, f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            for path in self.paths:
                self.probes.append(self.ask(path))
            self._stop.wait(self.pause)


def under_attack(url: str, paths: tuple[str, ...], seconds: float, *, slow_headers: int = 64,
                 slow_bodies: int = 32, silent: int = 0) -> tuple[list[Probe], SlowClients]:
    """Liveness probes of ``paths`` for ``seconds`` while :class:`SlowClients` (that many
    slow heads, slow bodies and silent sockets) press on ``url``."""
    with SlowClients(url, slow_headers=slow_headers, slow_bodies=slow_bodies,
                     silent=silent) as attack:
        attack.wait_started()
        liveness = Liveness(url, paths).start()
        time.sleep(seconds)  # the length of the measurement, not a wait for something
        probes = liveness.stop()
    return probes, attack


@contextlib.contextmanager
def threads_held(url: str, admin_token: str, count: int, forwarded_for: str | None = None
                 ) -> Iterator[list[socket.socket]]:
    """``count`` of the API's threads held by one client: this machine's loopback address,
    or ``forwarded_for`` as a trusted proxy names it (``X-Forwarded-For``). Each is an
    upload that announces a 100 MB body and sends none of it, held once its
    ``100 Continue`` arrives, which gunicorn sends from the thread that took the request
    (api/worker.py gives a thread only then). A 503 (the client's requests of a moment
    ago still count until the worker's main loop has seen them end) is tried again.
    Leaving closes them: each upload ends as interrupted and its thread is free again."""
    parts = urlsplit(url)
    forwarded = f"X-Forwarded-For: {forwarded_for}\r\n" if forwarded_for else ""
    head = (f"POST /api/videos?filename=held.mp4 HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: Bearer {admin_token}\r\nContent-Type: video/mp4\r\n{forwarded}"
            "Content-Length: 100000000\r\nExpect: 100-continue\r\n\r\n").encode()
    held: list[socket.socket] = []

    def hold() -> bool:
        sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80),
                                        timeout=30)
        sock.sendall(head)
        answer = sock.recv(64)
        if answer.startswith(b"HTTP/1.1 100 "):
            held.append(sock)
            return True
        sock.close()
        if not answer.startswith(b"HTTP/1.1 503 "):
            raise RuntimeError(f"the API did not take the upload: {answer!r}")
        return False

    try:
        for _ in range(count):
            wait_for(hold, timeout=30, what="a thread of the API to hold")
        yield held
    finally:
        for sock in held:
            sock.close()
