"""The start-up every long-running role shares (ingest, prober, derive).

A role's ``main`` makes one :class:`Role` at its edge and uses it::

    role = Role("prober", settings)       # log set-up; role.log, role.stop, role.notifier
    ...                                    # the role's own checks (ConfigurationError: exit 78)
    role.start(stopping="finishing the files in hand")  # metrics server, signal handlers
    while not role.stop.is_set():          # a loop of its own, or role.watch(threads, ...)
        ...
        role.tick(status, ready=...)       # STATUS=, READY=1 once, WATCHDOG=1 per interval

What it keeps for every role: the log lines go out as ``logs.configure`` sets them up for
the role; ``/metrics`` is served on ``VIDEODROP_METRICS_BIND`` when it is set (a bind that
cannot be had raises :class:`~videodrop.errors.ConfigurationError`, which the ``videodrop``
command turns into exit 78); SIGTERM and SIGINT set :attr:`Role.stop` and tell systemd
``STOPPING=1``; systemd hears ``READY=1`` once, ``STATUS=`` when the text changes and
``WATCHDOG=1`` at most once per watchdog interval (:class:`~videodrop.notify.Notifier`).
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from videodrop import logs, metrics
from videodrop.errors import ConfigurationError
from videodrop.notify import Notifier
from videodrop.settings import Settings


class Consumer(Protocol):
    """What :meth:`Role.run_consumers` runs: videodrop/consumer.py's consumers."""

    name: str
    connected: threading.Event  # set while attached to its queue

    def run(self, stop: threading.Event) -> None: ...


def consumer_arguments(prog: str, description: str, *, concurrency: int, setting: str,
                       unit: str) -> argparse.ArgumentParser:
    """The command line of a consumer role (``videodrop prober``, ``videodrop derive``):
    ``--concurrency`` (``unit`` at once; default ``concurrency``, from ``setting``)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--concurrency", type=int, default=concurrency,
                        help=f"{unit} at once (default {setting})")
    return parser


class Role:
    """One role process's edge. ``name`` is the role (``ingest``, ``prober``, ``derive``):
    the ``role`` of its log lines, its logger's name and its metrics registry."""

    def __init__(self, name: str, settings: Settings, *, notifier: Notifier | None = None
                 ) -> None:
        if problem := settings.store_in_use_problem(name):
            raise ConfigurationError(problem)  # exit 78: systemd does not restart
        logs.configure(role=name, fmt=settings.log_format, level=settings.log_level)
        self.name = name
        self.settings = settings
        self.log: Any = logs.get(name)
        self.notifier = notifier or Notifier()
        self.stop = threading.Event()  # set by SIGTERM or SIGINT (after :meth:`start`)

    def start(self, *, stopping: str = "stopping") -> None:
        """Serve ``/metrics`` when ``VIDEODROP_METRICS_BIND`` is set (logged as
        ``metrics`` with its ``url``) and answer SIGTERM and SIGINT by telling systemd
        ``STOPPING=1`` with ``stopping`` as the status and setting :attr:`stop`. Call it
        from the main thread (Python installs signal handlers there only).
        :class:`~videodrop.errors.ConfigurationError` when the metrics bind cannot be had."""
        if self.settings.metrics_bind:
            server = metrics.start_metrics_server(self.settings.metrics_bind, self.name)
            self.log.info("metrics", url=server.url)

        def on_signal(*_: object) -> None:
            self.notifier.stopping(stopping)
            self.stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    def tick(self, status: str, *, ready: bool = True) -> None:
        """Once per turn of the role's loop: ``READY=1`` the first time ``ready`` is true
        (with ``status``), ``STATUS=status`` when the text changed since the last one
        sent, ``WATCHDOG=1`` when a watchdog interval has passed since the last ping."""
        if ready and not self.notifier.is_ready:
            self.notifier.ready(status)
        else:
            self.notifier.status(status)
        self.notifier.watchdog()

    def watch(self, threads: Sequence[threading.Thread], status: Callable[[], tuple[str, bool]],
              *, every: float = 0.5, required: Sequence[threading.Thread] = ()) -> bool:
        """Until :attr:`stop` is set, every ``every`` seconds: :meth:`tick` with what
        ``status()`` returns (the text, and whether the role is ready). False (logged as
        ``every worker thread has died``, or ``a required thread has died`` naming it) as
        soon as none of ``threads`` is alive or any of ``required`` is not; True once
        stopped."""
        while not self.stop.is_set():
            self.stop.wait(every)
            if not any(t.is_alive() for t in threads):
                self.log.error("every worker thread has died")
                return False
            dead = [t.name for t in required if not t.is_alive()]
            if dead:
                self.log.error("a required thread has died", threads=dead)
                return False
            text, ready = status()
            self.tick(text, ready=ready)
        return True

    def run_consumers(self, workers: Sequence[Consumer], queue: str, *,
                      required: Sequence[threading.Thread] = ()) -> bool:
        """Run each of ``workers`` on a thread of its own (named after it) and start
        ``required``; :meth:`watch` them, the status saying how many workers are attached
        to ``queue`` (ready when all are); once stopped, wait up to 60 s for each thread
        to finish its work in hand. False when the watch ended on dead threads."""
        threads = [threading.Thread(target=w.run, args=(self.stop,), name=w.name,
                                    daemon=True) for w in workers]
        for t in [*threads, *required]:
            t.start()

        def status() -> tuple[str, bool]:
            attached = sum(w.connected.is_set() for w in workers)
            return (f"{attached}/{len(workers)} consumers attached to {queue}",
                    attached == len(workers))

        if not self.watch(threads, status, required=required):
            return False
        for t in [*threads, *required]:
            t.join(timeout=60)
        return True


__all__ = ["Consumer", "Role", "consumer_arguments"]
