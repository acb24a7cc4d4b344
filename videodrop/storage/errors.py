"""The media store's errors: what a caller does next depends only on the class.

- :class:`StoreUnavailable` (a :class:`~videodrop.errors.TransientFileError`): the store
  cannot be reached or answered 5xx / slow down / timed out. Retry later; nothing was made
  visible and nothing the caller holds (an inbox file, an upload) may be dropped.
- :class:`~videodrop.errors.StorageFull`: the store has no room (a file system's ENOSPC,
  EDQUOT). Transient as well.
- :class:`ObjectMissing`: the key names no object (a file store's ENOENT, S3's 404).
- :class:`IntegrityFailure`: the bytes read from the source or received by the store are
  not the bytes announced (size or SHA-256 differ, the store refused a part's digest).
  The put was withdrawn: nothing is visible under the key. Retrying the same source gives
  the same answer, so the caller records a failure instead of retrying forever.
- :class:`StoreRefused`: the store refuses us (no such bucket, bad credentials, access
  denied): an operator has to act; a role logs it and stops taking work.
"""

from __future__ import annotations

from videodrop.errors import StorageFull, TransientFileError, VideodropError

__all__ = ["IntegrityFailure", "ObjectMissing", "StorageFull", "StoreError",
           "StoreRefused", "StoreUnavailable"]


class StoreError(VideodropError):
    """Base class of the media store's own errors (bar the transient ones)."""


class StoreUnavailable(TransientFileError):
    """The store cannot be reached or is overloaded right now: retry later."""


class ObjectMissing(StoreError, KeyError):
    """No object under this key."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key

    def __str__(self) -> str:
        return f"no object {self.key!r} in the media store"


class IntegrityFailure(StoreError):
    """The bytes are not the ones announced (size, SHA-256 or a part's digest): the put
    was withdrawn, nothing is visible under the key."""


class StoreRefused(StoreError):
    """The store refuses the request (no bucket, bad credentials, access denied)."""
