"""gunicorn hooks for the API (``gunicorn -c python:api.gunicorn_conf ...``).

Four jobs, all in the gunicorn master:

* **No whole token in gunicorn's own log** (``logger_class``: api/gunicorn_log.py).

* **Metrics across workers.** Before any worker exists, point
  ``$PROMETHEUS_MULTIPROC_DIR`` at a fresh, empty folder (a new temporary one, or the one
  the operator named, emptied), so the workers' counters add up in ``/metrics``
  (``api/ops/metrics.py``) and a restart starts from zero as Prometheus expects. A worker that
  exits is marked dead for the live gauges; the temporary folder goes away at exit.

* **One shared page for the token cache.** ``api.tokens.sharedstamp.make_for_workers()`` here
  makes the stamp every worker's cache watches, before the workers are forked from this
  process; a worker whose master made none refuses to load the app.

* **systemd ``Type=notify``.** gunicorn would send ``READY=1`` itself as soon as its
  socket is bound, before any worker has loaded the app, and never sends ``WATCHDOG=1``.
  So we take ``$NOTIFY_SOCKET`` away from gunicorn (and from the workers, which must not
  speak for the service) and speak ourselves from a thread of the master: ``READY=1``
  once ``/healthz`` answers through the listening socket, then ``WATCHDOG=1`` while at
  least one worker is alive and beating its heartbeat (a worker that hangs is killed and
  replaced by gunicorn after ``--timeout``; the watchdog catches a master that has lost
  all of them), ``STATUS=`` with the number of workers, and ``STOPPING=1`` at exit.
  The health check goes through the socket, not through a worker thread that might be
  busy streaming, and is used only for readiness: a watchdog that needed a free thread
  would kill a healthy API under a burst of long downloads.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from videodrop.notify import Notifier

MULTIPROC_VAR = "PROMETHEUS_MULTIPROC_DIR"
SYSTEMD_VARS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
_created_metrics_dir: str | None = None
_systemd_env: dict[str, str] = {}
_stop = threading.Event()
_notifier: Notifier | None = None


def prepare_metrics_dir() -> str:
    """Set ``$PROMETHEUS_MULTIPROC_DIR`` to an empty folder, before prometheus_client is
    imported anywhere in this process (it picks its mode at import)."""
    global _created_metrics_dir
    given = os.environ.get(MULTIPROC_VAR)
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink(missing_ok=True)
        return given
    made = tempfile.mkdtemp(prefix="videodrop-api-metrics-")
    _created_metrics_dir = made
    os.environ[MULTIPROC_VAR] = made
    return made


def take_systemd_environment() -> dict[str, str]:
    """Remove the notify variables from this process's environment and return them."""
    return {k: os.environ.pop(k) for k in SYSTEMD_VARS if k in os.environ}


prepare_metrics_dir()
_systemd_env = take_systemd_environment()

# The token cache's shared stamp (api/tokens/sharedstamp.py) is made here, in the master, so that
# every worker forked from it shares the same page.
from api.tokens.sharedstamp import make_for_workers  # noqa: E402

make_for_workers()

# gunicorn settings, as the hooks below (a class named by its path: gunicorn loads it)
logger_class = "api.gunicorn_log.RedactingLogger"


# --- gunicorn server hooks (names and signatures are gunicorn's) ---------------------------

def when_ready(server: Any) -> None:
    """The master has bound its sockets; workers are about to be spawned."""
    global _notifier
    notifier = Notifier(_systemd_env)
    if not notifier.enabled:
        return
    _notifier = notifier
    notifier.status("starting workers")
    thread = threading.Thread(target=_supervise, args=(server, notifier), daemon=True,
                              name="videodrop-systemd")
    thread.start()


def worker_exit(server: Any, worker: Any) -> None:
    """In the worker, as it exits: the log lines and the counts it collected go out."""
    from videodrop import logs, metrics  # noqa: PLC0415 - after the env var is set

    metrics.flush()
    logs.flush()


def child_exit(server: Any, worker: Any) -> None:
    """In the master, after a worker exited: its live gauges no longer count."""
    from prometheus_client import multiprocess  # noqa: PLC0415 - after the env var is set

    with contextlib.suppress(OSError):
        multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    _stop.set()
    if _notifier is not None:
        _notifier.stopping("stopped")
    if _created_metrics_dir is not None:
        shutil.rmtree(_created_metrics_dir, ignore_errors=True)


# --- the master's systemd thread ------------------------------------------------------------

def _supervise(server: Any, notifier: Notifier) -> None:
    tick = min(notifier.interval or 5.0, 5.0) / 2
    while not _stop.is_set() and not notifier.is_ready:
        address = _listener_address(server)
        if address is not None and _answers_healthz(*address):
            count = len(_live_workers(server))
            notifier.ready(f"serving on {_describe(server)}, {count} worker(s)")
            break
        _stop.wait(0.2)
    while not _stop.wait(tick):
        workers = _live_workers(server)
        beating = [w for w in workers if _heartbeat_fresh(w, server.timeout)]
        notifier.status(f"serving on {_describe(server)}, {len(beating)}/{len(workers)}"
                        " worker(s) alive")
        if beating:
            notifier.watchdog()


def _live_workers(server: Any) -> list[Any]:
    return list(server.WORKERS.values())


def _heartbeat_fresh(worker: Any, timeout: float) -> bool:
    """The worker beat its heartbeat within ``timeout`` (gunicorn's own test; it stamps
    the file with the monotonic clock, older versions with the wall clock)."""
    if not timeout:
        return True
    try:
        stamp = worker.tmp.last_update()
    except (OSError, ValueError, AttributeError):
        return False
    return min(abs(time.monotonic() - stamp), abs(time.time() - stamp)) <= timeout


def _listener_address(server: Any) -> tuple[int, Any] | None:
    listeners = list(getattr(server, "LISTENERS", []))
    if not listeners:
        return None
    sock = listeners[0].sock
    family, address = sock.family, sock.getsockname()
    if family == socket.AF_INET and address[0] == "0.0.0.0":
        address = ("127.0.0.1", address[1])
    elif family == socket.AF_INET6 and address[0] == "::":
        address = ("::1", address[1], 0, 0)
    return family, address


def _describe(server: Any) -> str:
    listeners = list(getattr(server, "LISTENERS", []))
    if not listeners:
        return "nothing"
    address = listeners[0].sock.getsockname()
    if isinstance(address, tuple):
        host = f"[{address[0]}]" if ":" in address[0] else address[0]
        return f"{host}:{address[1]}"
    return f"unix:{address}"


def _answers_healthz(family: int, address: Any, timeout: float = 2.0) -> bool:
    """``GET /healthz`` through the listening socket answers 200."""
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(address)
            sock.sendall(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n"
                         b"User-Agent: videodrop-systemd\r\n\r\n")
            status_line = sock.recv(64).split(b"\r\n", 1)[0]
    except OSError:
        return False
    parts = status_line.split()
    return len(parts) >= 2 and parts[1] == b"200"
