"""The project's own exceptions: drivers' errors are turned into these where we touch them."""

from __future__ import annotations


class VideodropError(Exception):
    """Base class."""


class ConfigurationError(VideodropError):
    """The process cannot run as configured (exit code 78, EX_CONFIG): don't restart it."""


class CatalogUnavailable(VideodropError):
    """PostgreSQL cannot be reached right now: retry later, the work is not lost."""


class BrokerUnavailable(VideodropError):
    """RabbitMQ cannot be reached right now: retry later."""


class Conflict(VideodropError):
    """The request clashes with what exists (duplicate source_id...)."""


class TransientFileError(VideodropError):
    """A file cannot be read or moved right now (disk full, permissions being fixed...)."""


class StorageFull(TransientFileError):
    """The media store has no room: files wait safely in the inbox until it has."""
