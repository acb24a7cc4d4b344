"""structlog set-up: JSON lines on stdout for the journal, the console renderer on a TTY.

A busy path (the API's line per request) logs through :class:`LaterLogger`: when JSON
lines are written in batches, an ``info`` call only keeps its values, the time and the
context, and the writer thread of :class:`BatchedLines` renders them (:func:`render_json`)
into the same line structlog's processor chain would have written."""

from __future__ import annotations

import atexit
import contextvars
import json
import logging
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import structlog

BATCH_SECONDS = 0.2

# An info line kept for the writer thread: (time.time_ns(), the context of the call, the
# logger's name, the event, the keywords). Made by LaterLogger, rendered by render_json.
Captured = tuple[int, contextvars.Context, str, str, dict[str, Any]]


class BatchedLines:
    """Log lines for a busy process (the API: a line per request). ``debug`` and ``info``
    lines are collected and written together by a thread every ``interval`` seconds (one
    write for many lines, instead of a write and a GIL hand-off per request); a warning or
    worse is written at once, after the lines collected before it. At exit everything is
    written; a process killed outright loses at most ``interval`` seconds of info lines.

    Captured lines (:class:`LaterLogger`) are rendered when their batch is written, in the
    place they were collected."""

    def __init__(self, stream: TextIO, interval: float = BATCH_SECONDS) -> None:
        self._stream = stream
        self._pending: list[str | Captured] = []
        self._lock = threading.Lock()  # guards _pending
        self._write_lock = threading.Lock()  # keeps batches in order
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True,
                                        name="videodrop-log-writer")
        self._thread.start()
        atexit.register(self.flush)

    def later(self, message: str | Captured) -> None:
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
                text = "\n".join([m if isinstance(m, str) else render_json(m) for m in batch])
                try:
                    self._stream.write(text + "\n")
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


# --- the fast path: an info line rendered by the writer thread -----------------------------

_STRUCTLOG_PREFIX = "structlog_"  # how structlog.contextvars names its context variables
_PREFIX_LENGTH = len(_STRUCTLOG_PREFIX)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _json_default(value: Any) -> Any:
    """What structlog's JSONRenderer does with a value JSON has no type for."""
    try:
        return value.__structlog__()
    except AttributeError:
        return repr(value)


_ENCODER = json.JSONEncoder(default=_json_default)  # json.dumps(..., default=...), made once


_second: tuple[int, str] = (0, "1970-01-01T00:00:00")  # the last second iso_utc rendered


def iso_utc(ns: int) -> str:
    """``datetime.now(UTC).isoformat().replace("+00:00", "Z")`` (structlog's ISO UTC
    stamp) of the time ``time.time_ns()`` gave: whole microseconds (``now()`` truncates
    too), none shown when there are none (as ``isoformat``). The date and time of day are
    rendered once a second."""
    global _second
    second, micro = divmod(ns // 1000, 1_000_000)
    last = _second
    if last[0] != second:
        text = (_EPOCH + timedelta(seconds=second)).isoformat()[:-6]  # without "+00:00"
        last = _second = (second, text)
    return f"{last[1]}.{micro:06d}Z" if micro else f"{last[1]}Z"


def render_json(captured: Captured) -> str:
    """The JSON line ``configure(fmt="json")``'s processor chain makes of an ``info`` call,
    from what :class:`LaterLogger` kept of it. Step by step, as structlog does: the bound
    logger's context (``logger_name``), the keywords and ``event``; the bound context
    variables not already there (``merge_contextvars``, in the context's order); ``role``
    if no context variable gave it (``_role_of_process``); ``level``;
    ``logger_name`` moved to ``logger``; ``timestamp`` (``TimeStamper(fmt="iso",
    utc=True)``); ``JSONRenderer``. tests/unit/test_logs.py holds it to structlog's output."""
    ns, context, name, event, kw = captured
    try:
        line: dict[str, Any] = {"logger_name": name, **kw, "event": event}
        for var, value in context.items():
            key = var.name
            if key.startswith(_STRUCTLOG_PREFIX) and value is not Ellipsis:
                line.setdefault(key[_PREFIX_LENGTH:], value)
        if _role is not None:
            line.setdefault("role", _role)
        line["level"] = "info"
        logger = line.pop("logger_name", None)
        if logger is not None:
            line["logger"] = logger
        line["timestamp"] = iso_utc(ns)
        return _ENCODER.encode(line)
    except Exception as exc:  # the writer thread must go on writing
        return json.dumps({"event": event, "logger": name, "level": "error",
                           "error": f"log line not rendered: {exc!r}"})


class LaterLogger:
    """``info`` for a line written very often (the API's line per request).

    While :func:`configure` has JSON lines written in batches at level ``info`` or lower,
    ``info(event, **kw)`` keeps the time, the context (a copy costs next to nothing) and
    the keywords, and the writer thread renders the line (:func:`render_json`): same keys,
    order, timestamp format and bound context variables as structlog. Otherwise (console,
    lines written at once, a higher level, ``exc_info``/``stack_info``), the call goes
    through structlog as any other. The values must not change after the call (they are
    read when the batch is written, up to ``BATCH_SECONDS`` later)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._log = get(name)

    def info(self, event: str, **kw: Any) -> None:
        lines = _later
        if lines is None or "exc_info" in kw or "stack_info" in kw:
            self._log.info(event, **kw)
        else:
            lines.later((time.time_ns(), contextvars.copy_context(), self.name, event, kw))


_batched: BatchedLines | None = None
_later: BatchedLines | None = None  # _batched, when LaterLogger may capture lines for it


def flush() -> None:
    """Write out collected lines now (a gunicorn worker calls this as it exits)."""
    if _batched is not None:
        _batched.flush()


def configure(*, role: str, fmt: str = "auto", level: str = "info",
              batched: bool = False) -> None:
    """Call once at a process's edge. ``fmt`` is auto, json or console; ``batched`` writes
    info lines in batches (:class:`BatchedLines`), for the API's line per request."""
    global _batched, _later
    use_console = sys.stdout.isatty() if fmt == "auto" else fmt == "console"
    lvl = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    global _role
    _role = role
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _role_of_process,
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
    _later = None
    if batched:
        if _batched is None:
            _batched = BatchedLines(sys.stdout)
        logger = BatchedLogger(_batched)
        factory = lambda *_: logger  # noqa: E731 - one logger for every name
        if not use_console and lvl <= logging.INFO:
            _later = _batched
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


_role: str | None = None  # the role configure() was given


def _role_of_process(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    """``role`` on every line, also from threads whose context is empty (a gunicorn gthread
    worker's request threads: a new thread starts with a new context)."""
    if _role is not None:
        event.setdefault("role", _role)
    return event


def _logger_name(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    """``logger_name`` bound by :func:`get` is shown as ``logger``."""
    name = event.pop("logger_name", None)
    if name is not None:
        event["logger"] = name
    return event


def get(name: str) -> Any:
    return structlog.get_logger(logger_name=name)


def later(name: str) -> LaterLogger:
    """A :class:`LaterLogger` named ``name`` (``logger`` in its lines, as :func:`get`)."""
    return LaterLogger(name)


def context_variable(key: str) -> contextvars.ContextVar[Any]:
    """structlog's context variable for ``key``: the one ``bind_contextvars(key=...)`` sets
    and ``merge_contextvars`` reads. ``set(value)`` on it binds ``key`` for the price of
    one ``ContextVar.set``; ``set(...)`` (Ellipsis) unbinds it, as ``unbind_contextvars``."""
    token = structlog.contextvars.bind_contextvars(**{key: ...})[key]
    token.var.reset(token)
    return token.var
