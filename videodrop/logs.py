"""structlog set-up: JSON lines on stdout for the journal, the console renderer on a TTY.

JSON lines take structlog's documented fast path (its performance guide): orjson renders
each line to bytes (:func:`dumps`) and the final logger writes bytes,
``structlog.BytesLoggerFactory`` on stdout, or for a busy process (the API's line per
request, ``configure(batched=True)``) :class:`BatchedLogger` over :class:`BatchedLines`, a
timed buffer (``videodrop.batching``) written every ``BATCH_SECONDS``.

Every line, whichever logger wrote it: ``event``, the keywords of the call, the bound
context variables (``merge_contextvars``), ``role``, ``level``, ``logger``, ``timestamp``
(ISO 8601 UTC, ``Z``), ``exception`` when given ``exc_info``; token-shaped runs in its
texts cut to a prefix (:func:`redact_tokens_processor`)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from typing import Any, BinaryIO

import orjson
import structlog

from videodrop import batching
from videodrop.tokens import redact_tokens

BATCH_SECONDS = batching.INTERVAL


class BatchedLines:
    """Log lines for a busy process (the API: a line per request). ``debug`` and ``info``
    lines are collected in a :class:`videodrop.batching.TimedBuffer` and written together
    every ``BATCH_SECONDS`` (one write for many lines, instead of a write and a GIL
    hand-off per request); a warning or worse is written at once, after the lines collected
    before it. At exit everything is written; a process killed outright loses at most
    ``BATCH_SECONDS`` of info lines.

    ``stream``: where the lines go, as bytes (``sys.stdout.buffer``). ``ticker``: what
    flushes the buffer on time (None: only :meth:`flush` and warnings do, for tests)."""

    def __init__(self, stream: BinaryIO,
                 ticker: batching.Ticker | None = batching.TICKER) -> None:
        self._stream = stream
        self._lines: batching.TimedBuffer[bytes] = batching.TimedBuffer(self._write,
                                                                        ticker=ticker)
        self.later = self._lines.add  # collect a rendered line (no newline)
        self.flush = self._lines.flush

    def now(self, line: bytes) -> None:
        """Write ``line`` now, after every line collected before it."""
        self._lines.add(line)
        self._lines.flush()

    def _write(self, lines: list[bytes]) -> None:
        try:
            self._stream.write(b"\n".join(lines) + b"\n")
            self._stream.flush()
        except (OSError, ValueError):  # stdout closed: nowhere left to write
            pass


def every_batch(tick: Callable[[], None]) -> None:
    """Have the ticker thread call ``tick`` before each batch of lines (every
    ``BATCH_SECONDS``), e.g. to write a summary that is due even when no request comes."""
    batching.TICKER.every_tick(tick)


class BatchedLogger:
    """structlog's final logger over :class:`BatchedLines`: takes the rendered line, bytes
    (JSON) or text (console)."""

    def __init__(self, lines: BatchedLines) -> None:
        self._lines = lines

    def debug(self, message: bytes | str) -> None:
        self._lines.later(message if isinstance(message, bytes) else message.encode())

    info = msg = debug

    def warning(self, message: bytes | str) -> None:
        self._lines.now(message if isinstance(message, bytes) else message.encode())

    warn = error = err = critical = fatal = exception = failure = warning


def dumps(event: dict[str, Any], **kw: Any) -> bytes:
    """The JSON line of ``event`` (structlog's ``JSONRenderer`` serializer): orjson; what
    orjson refuses (an integer over 64 bits, a key that is not a string) by the standard
    library's ``json``, the same content; a line that cannot be rendered at all (a value
    that contains itself) becomes an ``error`` line naming the event, so that logging
    never fails the caller."""
    try:
        return orjson.dumps(event, **kw)
    except TypeError:
        pass
    try:
        return json.dumps(event, **kw).encode()
    except Exception as exc:  # any failure costs this line only
        return orjson.dumps({"event": str(event.get("event")),
                             "logger": str(event.get("logger")), "level": "error",
                             "error": f"log line not rendered: {exc!r}"})


_batched: BatchedLines | None = None


def flush() -> None:
    """Write out collected lines now (a gunicorn worker calls this as it exits)."""
    if _batched is not None:
        _batched.flush()


def _byte_stream() -> BinaryIO:
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:
        raise RuntimeError("JSON log lines need a stdout with a byte buffer")
    sys.stdout.flush()  # what was printed as text goes first
    return buffer


def configure(*, role: str, fmt: str = "auto", level: str = "info",
              batched: bool = False) -> None:
    """Call once at a process's edge. ``fmt`` is auto, json or console; ``batched`` writes
    info lines in batches (:class:`BatchedLines`), for the API's line per request."""
    global _batched, _role
    use_console = sys.stdout.isatty() if fmt == "auto" else fmt == "console"
    lvl = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    _role = role
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _role_of_process,
        structlog.processors.add_log_level,
        _logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        redact_tokens_processor,
    ]
    if use_console:
        processors.append(structlog.dev.ConsoleRenderer())
        factory: Any = structlog.PrintLoggerFactory(sys.stdout)
    else:
        processors.append(structlog.processors.JSONRenderer(serializer=dumps))
        factory = None
    if batched:
        if _batched is None:
            _batched = BatchedLines(_byte_stream())
            batching.TICKER.start()
        logger = BatchedLogger(_batched)
        factory = lambda *_: logger  # noqa: E731 - one logger for every name
    elif factory is None:
        factory = structlog.BytesLoggerFactory(_byte_stream())
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
    # pika logs each failed connection attempt with a traceback; every failure reaches our
    # code as an exception and is logged there as one JSON line ("broker unavailable")
    logging.getLogger("pika").setLevel(logging.CRITICAL)


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


def redact_tokens_processor(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
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


class ContextKey:
    """One key of structlog's context variables (``merge_contextvars`` puts it on every
    line logged in the context), bound and unbound through structlog's public calls."""

    def __init__(self, key: str) -> None:
        self.key = key

    def set(self, value: Any) -> None:
        """Bind the key to ``value`` (``bind_contextvars``)."""
        structlog.contextvars.bind_contextvars(**{self.key: value})

    def unbind(self) -> None:
        """Unbind the key (``unbind_contextvars``); unbound already is fine."""
        structlog.contextvars.unbind_contextvars(self.key)


def context_variable(key: str) -> ContextKey:
    """``key`` of structlog's context variables, to bind per request or unit of work."""
    return ContextKey(key)
