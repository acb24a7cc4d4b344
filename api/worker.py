"""The API's gunicorn worker: gthread, except that a thread is given to a connection only
once its request has arrived (``--worker-class api.worker.ArrivedRequestWorker``).

gunicorn's gthread worker gives a thread to each new connection at once; the thread waits
up to 5 s for a first byte, then reads the request head and body with blocking reads that
have no deadline (``gunicorn/workers/gthread.py``, ``ThreadWorker.handle``). Threads are few
(VIDEODROP_API_THREADS per worker), so a handful of sockets sending a header byte a second,
or a ``POST /login`` body a byte a second, held every thread for as long as they kept
sending, and sockets sending nothing held them 5 s at a time. Its graceful close (half-close,
then read for up to 2 s) ran in the main loop, which stopped accepting meanwhile.

This worker reads in the main loop instead, without blocking, in the selector gunicorn
already runs for kept-alive connections:

* a new connection, and a kept-alive one after each answer, waits there; what arrives is
  collected until the request head is complete and, when it announces one of at most
  ``HELD_BODY`` bytes (``Content-Length``: forms, JSON), its body too;
* the head (and such a body) must be complete within ``header_timeout`` seconds
  (VIDEODROP_HEADER_TIMEOUT) of the connection opening, or of the first byte of the next
  request on a kept-alive connection; a kept-alive connection that sends nothing is closed
  after gunicorn's ``--keep-alive``. A started request that runs out of time is answered 408,
  a head over ``MAX_HEAD`` bytes 431, and the connection is closed;
* then a thread takes the connection, with what was read put back in front of gunicorn's
  parser (``Unreader.unread``), which parses and checks the request as it always does: the
  thread does not wait for the client to send the request;
* a larger or chunked body (an upload) is read by the thread as the application asks for
  it; every read and write of a thread waits at most ``client_timeout`` seconds
  (``api.uploads.receive.IDLE_TIMEOUT``, what an upload allows between two packets), so a
  slow-but-progressing upload goes on and a stalled one ends. After such a request the
  connection is closed, not drained;
* closing a connection the client may still be sending on (half-close, read what comes for
  up to ``LINGER`` seconds, close: RFC 9112 section 9.6) happens in the selector too.

What still holds a thread: the work of a request, an answer being sent to a client that
reads it slowly (a download: nginx with VIDEODROP_ACCEL_REDIRECT or VIDEODROP_STREAM_LINKS
takes those over) and the body of an upload (admin only: the credential is checked before
the body is read). So one client (an address, as api/clients.py names it: behind a trusted
proxy, the one it forwards for) may hold all of a worker's threads but
:data:`KEPT_FOR_OTHERS` (and at least one); a request beyond that is answered 503 with
``Retry-After`` from the main loop, and those threads stay free for everyone else. A
browser's six parallel requests fit in the default eight threads; slow readers from
several addresses together can still hold them all (then nginx serving the files,
VIDEODROP_ACCEL_REDIRECT or VIDEODROP_STREAM_LINKS, is the answer). TLS and HTTP/2 are nginx's:
this worker refuses to start with them.

Its own answers (408, 431, 503) are counted and logged by api/ops/refusals.py.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import time
from dataclasses import dataclass, field
from enum import Enum
from functools import partial
from selectors import EVENT_READ
from typing import Any

from gunicorn.http.errors import NoMoreData
from gunicorn.workers.gthread import STOP_KEEPALIVE_LINGER, TConn, ThreadWorker

from api.auth.clients import ClientAddress
from videodrop.settings import Settings

HELD_BODY = 64 * 1024  # bodies up to this size arrive before a thread is given
# A request head (request line, fields and the blank line ending them) of more bytes than
# this is answered 431, as soon as that many have arrived without the blank line.
MAX_HEAD = 64 * 1024
READ_SIZE = 64 * 1024
LINGER = 2.0  # seconds a closing connection may still send (gunicorn's close_graceful)
LINGER_BYTES = 64 * 1024
DRAIN_SECONDS = 1.0  # an unread held body is in memory already: draining it is instant
SWEEP_SECONDS = 0.25  # how often deadlines are checked

TIMED_OUT = (b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
HEAD_TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n"
                  b"Content-Length: 0\r\n\r\n")
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
KEPT_FOR_OTHERS = 2  # threads of a worker that one client cannot take
CLIENT_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\n"
               b"Content-Type: application/json\r\nContent-Length: 81\r\n\r\n"
               b'{"title": "Too many requests at once", "description": "Finish the others first."}')


class Arrived(Enum):
    NOT_YET = "not yet"  # keep reading
    WHOLE = "whole"  # head and body (if any) are here: a thread may parse and answer
    STREAMED = "streamed"  # the head is here; the thread reads the body (large or chunked)
    TOO_LARGE = "too large"  # no end of head within MAX_HEAD bytes


@dataclass(frozen=True)
class Verdict:
    arrived: Arrived
    expects_continue: bool = False  # HTTP/1.1 Expect: 100-continue, body held and not sent


def is_liveness(head: bytes | bytearray) -> bool:
    """Whether the request whose head starts ``head`` is ``GET``/``HEAD /healthz``: answered
    at once and never refused for its client's share (a monitor on the address of a
    client that holds its share must still see the process answer)."""
    return bytes(head[:16]).startswith((b"GET /healthz ", b"HEAD /healthz ",
                                        b"GET /healthz?", b"HEAD /healthz?"))


def assess(data: bytes | bytearray) -> Verdict:
    """How much of the request at the start of ``data`` has arrived: TOO_LARGE when its
    head (up to and including the blank line) is, or is sure to be, longer than
    ``MAX_HEAD`` bytes, whether or not its end is in ``data``. Only what is needed
    to know where it ends is looked at; gunicorn's parser checks the request afterwards, so
    anything odd here (a bad or repeated Content-Length) is handed over as WHOLE for it to
    refuse."""
    end = data.find(b"\r\n\r\n", 0, MAX_HEAD)
    if end < 0:
        # no end within MAX_HEAD bytes: once that many are here, the head is longer
        return Verdict(Arrived.TOO_LARGE if len(data) >= MAX_HEAD else Arrived.NOT_YET)
    lines = bytes(data[:end]).split(b"\r\n")
    length: int | None = None
    expect = False
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            continue
        name = name.lower()
        if name == b"transfer-encoding":
            return Verdict(Arrived.STREAMED)
        if name == b"content-length":
            if length is not None or not value.strip().isdigit():
                return Verdict(Arrived.WHOLE)  # gunicorn answers 400
            length = int(value.strip())
        elif name == b"expect":
            expect = value.strip().lower() == b"100-continue"
    body = len(data) - end - 4
    if not length or body >= length:
        return Verdict(Arrived.WHOLE)
    if length > HELD_BODY:
        return Verdict(Arrived.STREAMED)
    return Verdict(Arrived.NOT_YET, expect and not body and lines[0].endswith(b"HTTP/1.1"))


def receive(conn: TConn) -> bytes | None:
    """What a non-blocking socket holds now: None if nothing yet, b"" if it is closed (or
    failed)."""
    try:
        return conn.sock.recv(READ_SIZE)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return b""


@dataclass
class Arrival:
    """A connection waiting in the selector for its next request."""

    deadline: float
    kept_alive: bool
    data: bytearray = field(default_factory=bytearray)
    continued: bool = False  # 100 Continue sent


class ArrivedRequestWorker(ThreadWorker):
    """gunicorn's ThreadWorker with the request read in the main loop (module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = 10.0
        self.client_timeout = 60.0
        self.arriving: dict[TConn, Arrival] = {}
        self.closing: dict[TConn, list[float]] = {}  # conn -> [deadline, bytes read]
        # handed from the main loop to a thread: what was read, and whether the thread
        # reads the rest of the body (set and popped whole: atomic under the GIL)
        self.held: dict[TConn, tuple[bytes, bool]] = {}
        self.next_sweep = 0.0
        # threads in use per client, counted in the main loop only
        self.clients = ClientAddress(Settings().trusted_proxies)
        self.per_client = 1
        self.busy: dict[str, int] = {}
        self.busy_of: dict[TConn, str] = {}
        self.refusals: Any = None  # api.ops.refusals.Refusals, made in the worker

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        super().check_config(cfg, log)
        if cfg.is_ssl or cfg.http2_cleartext != "off":
            raise RuntimeError("api.worker.ArrivedRequestWorker speaks HTTP/1.1 in clear "
                               "text only: terminate TLS and HTTP/2 at nginx (deploy/)")

    def init_process(self) -> None:
        """In the worker, after the fork (this module is loaded by the master too, where
        the app's modules must not be imported: their metrics belong to each worker)."""
        from api.ops.refusals import Refusals  # noqa: PLC0415 - see the docstring
        from api.uploads.receive import IDLE_TIMEOUT  # noqa: PLC0415 - see the docstring

        settings = Settings.from_env()
        self.header_timeout = settings.header_timeout
        self.client_timeout = IDLE_TIMEOUT
        self.clients = ClientAddress(settings.trusted_proxies)
        self.per_client = max(1, self.cfg.threads - KEPT_FOR_OTHERS)
        self.refusals = Refusals()
        super().init_process()

    # --- the main loop ------------------------------------------------------------------

    def accept(self, listener: socket.socket) -> None:
        try:
            sock, address = listener.accept()
        except OSError as exc:
            if exc.errno in {errno.EAGAIN, errno.ECONNABORTED, errno.EMFILE, errno.ENFILE}:
                return  # out of descriptors: the connection waits in the backlog
            raise
        self.nr_conns += 1
        conn = TConn(self.cfg, sock, address, listener.getsockname())  # non-blocking
        self.await_request(conn, b"", kept_alive=False)

    def await_request(self, conn: TConn, data: bytes, *, kept_alive: bool) -> None:
        """Put ``conn`` in the selector until its next request has arrived (``data``: what
        was read of it already)."""
        timeout = self.cfg.keepalive if kept_alive and not data else self.header_timeout
        if not self.alive:
            timeout = min(timeout, STOP_KEEPALIVE_LINGER)
        arrival = Arrival(time.monotonic() + timeout, kept_alive, bytearray(data))
        self.arriving[conn] = arrival
        self.poller.register(conn.sock, EVENT_READ, partial(self.on_arrival, conn))
        if data:
            self.advance(conn, arrival)

    def on_arrival(self, conn: TConn, _sock: Any) -> None:
        arrival = self.arriving[conn]
        chunk = receive(conn)
        if chunk is None:
            return
        if not chunk:
            self.leave(conn)
            self.drop(conn)
            return
        if not arrival.data and arrival.kept_alive:
            arrival.deadline = time.monotonic() + self.header_timeout  # a request begins
        arrival.data += chunk
        self.advance(conn, arrival)

    def advance(self, conn: TConn, arrival: Arrival) -> None:
        verdict = assess(arrival.data)
        if verdict.arrived is Arrived.NOT_YET:
            if verdict.expects_continue and not arrival.continued:
                arrival.continued = True
                self.send_now(conn, CONTINUE)
            return
        self.leave(conn)
        client = self.client_of(conn, arrival.data)
        if verdict.arrived is Arrived.TOO_LARGE:
            self.refuse(conn, HEAD_TOO_LARGE, "head_too_large", client, arrival.data)
            return
        if self.busy.get(client, 0) >= self.per_client and not is_liveness(arrival.data):
            self.refuse(conn, CLIENT_BUSY, "client_busy", client, arrival.data)  # its share
            return
        self.busy[client] = self.busy.get(client, 0) + 1
        self.busy_of[conn] = client
        self.held[conn] = (bytes(arrival.data), verdict.arrived is Arrived.STREAMED)
        self.enqueue_req(conn)

    def client_of(self, conn: TConn, data: bytes | bytearray) -> str:
        """Who sent the request whose head is in ``data`` (api/clients.py)."""
        peer = conn.client[0] if isinstance(conn.client, tuple) else ""
        env = {"REMOTE_ADDR": peer}
        end = data.find(b"\r\n\r\n")
        head = bytes(data[: end if end >= 0 else len(data)])
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            key = name.strip().lower()
            if key in {b"x-forwarded-for", b"x-real-ip"}:
                env["HTTP_" + key.decode("latin-1").upper().replace("-", "_")] = \
                    value.strip().decode("latin-1")
        return self.clients.of(env)

    def release(self, conn: TConn) -> None:
        """The thread ``conn`` held is free again (its client's count goes down)."""
        client = self.busy_of.pop(conn, None)
        if client is None:
            return
        left = self.busy.get(client, 1) - 1
        if left > 0:
            self.busy[client] = left
        else:
            self.busy.pop(client, None)

    def leave(self, conn: TConn) -> None:
        """Out of the selector and of the connections awaiting a request."""
        self.arriving.pop(conn, None)
        self.unwatch(conn)

    def unwatch(self, conn: TConn) -> None:
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)

    def send_now(self, conn: TConn, data: bytes) -> None:
        """A short answer from the main loop: what the socket takes at once, or nothing."""
        with contextlib.suppress(OSError):
            conn.sock.send(data)

    def refuse(self, conn: TConn, answer: bytes, reason: str, client: str,
               head: bytes | bytearray) -> None:
        """Answer and close; counted and logged (api/ops/refusals.py)."""
        self.send_now(conn, answer)
        self.close_later(conn)
        if self.refusals is not None:
            body = len(answer) - answer.find(b"\r\n\r\n") - 4
            self.refusals.refused(reason, client, head, body)

    def drop(self, conn: TConn) -> None:
        self.nr_conns -= 1
        conn.close()

    def close_later(self, conn: TConn) -> None:
        """Half-close now; the rest in the selector (``LINGER``), never blocking the loop."""
        try:
            conn.sock.setblocking(False)
            conn.sock.shutdown(socket.SHUT_WR)
            self.poller.register(conn.sock, EVENT_READ, partial(self.on_closing, conn))
        except (OSError, ValueError, KeyError):
            self.drop(conn)
            return
        self.closing[conn] = [time.monotonic() + LINGER, 0]

    def on_closing(self, conn: TConn, _sock: Any) -> None:
        chunk = receive(conn)
        if chunk is None:
            return
        state = self.closing[conn]
        state[1] += len(chunk)
        if not chunk or state[1] >= LINGER_BYTES:
            self.closed(conn)

    def closed(self, conn: TConn) -> None:
        self.closing.pop(conn, None)
        self.unwatch(conn)
        self.drop(conn)

    def murder_pending(self) -> None:
        """gunicorn calls this after every turn of its loop: the deadlines, a few times a
        second (and at once while stopping, when no connection may wait longer than
        gunicorn's STOP_KEEPALIVE_LINGER)."""
        super().murder_pending()
        now = time.monotonic()
        if now < self.next_sweep:
            return
        self.next_sweep = now + SWEEP_SECONDS
        for conn, arrival in list(self.arriving.items()):
            if not self.alive:
                arrival.deadline = min(arrival.deadline, now + STOP_KEEPALIVE_LINGER)
            if arrival.deadline <= now:
                self.leave(conn)
                if arrival.data:
                    self.refuse(conn, TIMED_OUT, "timed_out",
                                self.client_of(conn, arrival.data), arrival.data)
                else:
                    self.drop(conn)
        for conn, (deadline, _) in list(self.closing.items()):
            if deadline <= now:
                self.closed(conn)

    def finish_request(self, conn: TConn, fs: Any) -> None:
        """In the main loop, after a thread is done with ``conn``: back to the selector for
        the next request (with what the thread read of it already), or closed."""
        self.held.pop(conn, None)
        self.release(conn)
        try:
            keep = not fs.cancelled() and fs.result() is True
            if keep:
                ahead = conn.parser.unreader.take_buffered()
                conn.sock.setblocking(False)
                self.await_request(conn, ahead, kept_alive=True)
            else:
                self.close_later(conn)
        except Exception:  # the connection only: the worker's loop goes on for the others
            self.log.exception("finishing a request failed; its connection is dropped")
            self.leave(conn)
            self.drop(conn)

    # --- a thread -----------------------------------------------------------------------

    def handle(self, conn: TConn) -> bool:
        """Parse and answer the request that has arrived; True to keep the connection."""
        held = self.held.pop(conn, None)
        if held is None:
            return False
        data, streamed = held
        req = None
        try:
            conn.init()  # once per connection: gunicorn's HTTP/1 parser, blocking mode
            conn.sock.settimeout(self.client_timeout)
            conn.parser.unreader.unread(data)
            req = next(conn.parser)
            if not req:
                return False
            keep = bool(self.handle_request(req, conn))
            return keep and not streamed and bool(
                conn.parser.finish_body(deadline=time.monotonic() + DRAIN_SECONDS))
        except (NoMoreData, StopIteration, TimeoutError) as exc:
            self.log.debug("Closing connection: %r", exc)
        except OSError as exc:
            if exc.errno not in {errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN}:
                self.log.exception("Socket error processing request.")
        except Exception as exc:
            self.handle_error(req, conn.sock, conn.client, exc)
        return False
