"""Eight bytes of memory shared by every worker of a gunicorn master: the API token cache's
"something changed, forget everything" stamp (api/tokencache.py). Its own module, with no
dependencies, so that the master can make it (``api/gunicorn_conf.py`` imports this) before
it forks the workers."""

from __future__ import annotations

import mmap
import os


class SharedStamp:
    """Eight bytes of anonymous shared memory, created at import: the same page in every
    process forked after it. A change writes fresh random bytes, so two concurrent changes
    never cancel out."""

    def __init__(self) -> None:
        self._page = mmap.mmap(-1, 8)

    def read(self) -> bytes:
        return self._page[:8]

    def change(self) -> None:
        self._page[:8] = os.urandom(8)


STAMP = SharedStamp()
