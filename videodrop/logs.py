"""structlog set-up: JSON lines on stdout for the journal, the console renderer on a TTY.

A busy path (the API's line per request) logs through :class:`LaterLogger`: when JSON
lines are written in batches, an ``info`` call renders its line directly
(:func:`render_json`: the same line structlog's processor chain would have written, for a
third of its cost) and leaves it to the writer thread of :class:`BatchedLines`."""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import structlog

from videodrop.tokens import redact_tokens

BATCH_SECONDS = 0.2

# What render_json renders: (time.time_ns(), the context of the call, the logger's name,
# the event, the keywords).
Captured = tuple[int, contextvars.Context, str, str, dict[str, Any]]


class BatchedLines:
    """Log lines for a busy process (the API: a line per request). ``debug`` and ``info``
    lines are collected and written together by a thread every ``interval`` seconds (one
    write for many lines, instead of a write and a GIL hand-off per request); a warning or
    worse is written at once, after the lines collected before it. At exit everything is
    written; a process killed outright loses at most ``interval`` seconds of info lines.

    Lines are rendered before they are handed over: rendering a whole batch in the writer
    thread held the GIL long enough to stall requests (p99.9 of 90 ms at 2 connections)."""

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
            for tick in list(_ticks):
                with contextlib.suppress(Exception):  # the writer must go on writing
                    tick()
            self.flush()


_ticks: list[Callable[[], None]] = []


def every_batch(tick: Callable[[], None]) -> None:
    """Have the writer thread call ``tick`` before each batch (every ``BATCH_SECONDS``),
    e.g. to write a summary that is due even when no request comes."""
    _ticks.append(tick)


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


# --- the fast path: an info line rendered without structlog's chain ---------------------------

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
# The C encoder JSONEncoder.encode builds on every call, built once (the same arguments:
# ensure_ascii, ", " and ": ", no key sorting, NaN allowed); None without the C module.
_C_ENCODE = json.encoder.c_make_encoder and json.encoder.c_make_encoder(  # type: ignore[attr-defined]
    None, _json_default, json.encoder.encode_basestring_ascii, None, ": ", ", ", False,
    False, True)


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
        return "".join(_C_ENCODE(line, 0)) if _C_ENCODE else _ENCODER.encode(line)
    except Exception as exc:  # a line that cannot be rendered must not fail the request
        return json.dumps({"event": event, "logger": name, "level": "error",
                           "error": f"log line not rendered: {exc!r}"})


class LaterLogger:
    """``info`` for a line written very often (the API's line per request).

    While :func:`configure` has JSON lines written in batches at level ``info`` or lower,
    ``info(event, **kw)`` renders the line itself (:func:`render_json`: same keys, order,
    timestamp format and bound context variables as structlog) and hands it to the writer
    thread. Otherwise (console, lines written at once, a higher level,
    ``exc_info``/``stack_info``), the call goes through structlog as any other."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._log = get(name)

    def info(self, event: str, **kw: Any) -> None:
        lines = _later
        if lines is None or "exc_info" in kw or "stack_info" in kw:
            self._log.info(event, **kw)
        else:
            lines.later(render_json((time.time_ns(), contextvars.copy_context(), self.name,
                                     event, kw)))


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
    processors += [structlog.processors.format_exc_info, _redact_tokens]
    if use_console:
        processors.append(structlog.dev.ConsoleRenderer())
    else:
        processors.append(structlog.processors.JSONRenderer())
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
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactTokens) for f in handler.filters):
            handler.addFilter(RedactTokens())


_role: str | None = None  # the role configure() was given


def _role_of_process(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    """``role`` on every line, also from threads whose context is empty (a gunicorn gthread
    worker's request threads: a new thread starts with a new context)."""
    if _role is not None:
        event.setdefault("role", _role)
    return event


# Fields that name a file a writer dropped into the inbox: theirs, kept whole (the recipes
# in docs/operations.md select lines by them). Every other text may quote a request's path
# or an error naming a stream link, and is redacted.
_KEPT_WHOLE = frozenset({"path"})


def _redact_tokens(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    """No whole token in a line: token-shaped runs in the texts of ``event`` (the message,
    errors, a traceback) are cut to a prefix (videodrop.tokens.redact_tokens)."""
    for key, value in event.items():
        if isinstance(value, str) and key not in _KEPT_WHOLE:
            event[key] = redact_tokens(value)
    return event


class RedactTokens(logging.Filter):
    """The same for stdlib logging's records (libraries, gunicorn's own error log): the
    message and the traceback, once formatted, with token-shaped runs cut to a prefix."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_tokens(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info:
            record.exc_text = redact_tokens(_FORMATTER.formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact_tokens(record.exc_text)
        return True


_FORMATTER = logging.Formatter()


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
