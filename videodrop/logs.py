"""structlog set-up: JSON lines on stdout for the journal, the console renderer on a TTY."""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import time
from typing import Any, TextIO

import structlog

BATCH_SECONDS = 0.2


class BatchedLines:
    """Log lines for a busy process (the API: a line per request). ``debug`` and ``info``
    lines are collected and written together by a thread every ``interval`` seconds (one
    write for many lines, instead of a write and a GIL hand-off per request); a warning or
    worse is written at once, after the lines collected before it. At exit everything is
    written; a process killed outright loses at most ``interval`` seconds of info lines."""

    def __init__(self, stream: TextIO, interval: float = BATCH_SECONDS) -> None:
        self._stream = stream
        self._pending: list[str] = []
        self._lock = threading.Lock()  # guards _pending
        self._write_lock = threading.Lock()  # keeps batches in order
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True,
                                        name="videodrop-log-writer")
        self._thread.start()
        atexit.register(self.flush)

    def later(self, message: str) -> None:
        with self._lock:
            self._pending.append(message)

    def now(self, message: str) -> None:
        with self._lock:
            self._pending.append(message)
        self.flush()

    def flush(self) -> None:
        with self._write_lock:
            with self._lock:
                batch, self._pending = self._pending, []
            if batch:
                try:
                    self._stream.write("\n".join(batch) + "\n")
                    self._stream.flush()
                except (OSError, ValueError):  # stdout closed: nowhere left to write
                    pass

    def _run(self, interval: float) -> None:
        while True:  # a daemon thread: it ends with the process (atexit writes the rest)
            time.sleep(interval)
            self.flush()


class BatchedLogger:
    """structlog's final logger over :class:`BatchedLines`."""

    def __init__(self, lines: BatchedLines) -> None:
        self._lines = lines

    def debug(self, message: str) -> None:
        self._lines.later(message)

    info = msg = debug

    def warning(self, message: str) -> None:
        self._lines.now(message)

    warn = error = err = critical = fatal = exception = failure = warning


_batched: BatchedLines | None = None


def flush() -> None:
    """Write out collected lines now (a gunicorn worker calls this as it exits)."""
    if _batched is not None:
        _batched.flush()


def configure(*, role: str, fmt: str = "auto", level: str = "info",
              batched: bool = False) -> None:
    """Call once at a process's edge. ``fmt`` is auto, json or console; ``batched`` writes
    info lines in batches (:class:`BatchedLines`), for the API's line per request."""
    global _batched
    use_console = sys.stdout.isatty() if fmt == "auto" else fmt == "console"
    lvl = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    if use_console:
        processors.append(structlog.dev.ConsoleRenderer())
    else:
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    factory: Any = structlog.PrintLoggerFactory(sys.stdout)
    if batched:
        if _batched is None:
            _batched = BatchedLines(sys.stdout)
        logger = BatchedLogger(_batched)
        factory = lambda *_: logger  # noqa: E731 - one logger for every name
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(role=role)
    # Libraries (pika, psycopg, watchdog) speak through stdlib logging: warnings and up only.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")


def _logger_name(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    """``logger_name`` bound by :func:`get` is shown as ``logger``."""
    name = event.pop("logger_name", None)
    if name is not None:
        event["logger"] = name
    return event


def get(name: str) -> Any:
    return structlog.get_logger(logger_name=name)
