"""Eight bytes of memory shared by every worker of a gunicorn master: the API token cache's
"something changed, forget everything" stamp (api/tokens/cache.py).

The master makes it explicitly (``make_for_workers()``, called by ``api/gunicorn_conf.py``
before any worker is forked); each worker's ``get_app()`` takes it with
``made_for_workers()``, which refuses (ConfigurationError) when no master made one: a
worker with a private copy would keep serving a token another worker revoked.
"""

from __future__ import annotations

import mmap
import os

from videodrop.errors import ConfigurationError

__all__ = ["SharedStamp", "made_for_workers", "make_for_workers"]

NOT_MADE = ("the API's workers share a page of memory that the gunicorn master makes "
            "before it forks them (so a revoked token stops at once in every worker), and "
            "this master made none: start the API with `videodrop api`, or with "
            "`gunicorn -c python:api.gunicorn_conf 'api.app:get_app()'`, or turn the token "
            "cache off (VIDEODROP_TOKEN_CACHE_SIZE=0)")


class SharedStamp:
    """Eight bytes of anonymous shared memory: the same page in every process forked after
    it is made. A change writes fresh random bytes, so two concurrent changes never cancel
    out."""

    def __init__(self) -> None:
        self._page = mmap.mmap(-1, 8)

    def read(self) -> bytes:
        return self._page[:8]

    def change(self) -> None:
        self._page[:8] = os.urandom(8)


_for_workers: SharedStamp | None = None


def make_for_workers() -> SharedStamp:
    """In the gunicorn master, before the fork: the stamp every worker will share."""
    global _for_workers
    if _for_workers is None:
        _for_workers = SharedStamp()
    return _for_workers


def made_for_workers() -> SharedStamp:
    """In a worker: the master's stamp; ConfigurationError when the master made none."""
    if _for_workers is None:
        raise ConfigurationError(NOT_MADE)
    return _for_workers
