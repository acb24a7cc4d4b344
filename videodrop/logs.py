"""structlog set-up: JSON lines on stdout for the journal, the console renderer on a TTY."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


def configure(*, role: str, fmt: str = "auto", level: str = "info") -> None:
    """Call once at a process's edge. ``fmt`` is auto, json or console."""
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
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
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
