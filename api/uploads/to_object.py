"""An upload streamed to a store without local files (s3): the request's body goes
straight into :meth:`MediaStore.put_stream` under the row's ``stored_path``, a part at a
time (a multipart upload of ``VIDEODROP_S3_PART_SIZE`` parts; memory: the store's
``(max_in_flight + 1) x part_size``, never the file; no local copy).

The upload protocol is one request (api/uploads/receive.py), so one put spans it. The
put makes the object visible only once every byte arrived, was hashed (SHA-256) and
counted, every part's checksum was checked by the store and the upload was completed;
:func:`verify` then checks the object's size as the store reports it before the row turns
``processing`` (with the SHA-256 recorded) and the probe request is published. A client
that goes away, a refusal or an error aborts the multipart upload (nothing visible); a
process killed mid-put leaves an open multipart upload, invisible to readers, which the
API's housekeeping aborts (api/uploads/probe_requests.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from api.uploads.body import CHUNK, Readable, TooLarge
from videodrop.storage import IntegrityFailure, MediaStore, ObjectMissing, Stored


class CountedSource:
    """The upload's bytes as ``put_stream`` reads them: counted (``size``), bounded to
    ``limit`` bytes (:class:`TooLarge` past it) and calling ``beat(received)`` at most
    every ``heartbeat`` seconds of ``clock`` (the row's heartbeat, which may raise to stop
    the put)."""

    def __init__(self, source: Readable, *, limit: int, beat: Callable[[int], None],
                 clock: Callable[[], float], heartbeat: float) -> None:
        self.source = source
        self.limit = limit
        self.beat = beat
        self.clock = clock
        self.heartbeat = heartbeat
        self.size = 0
        self._next_beat = clock() + heartbeat

    def read(self, size: int = -1, /) -> bytes:
        data = self.source.read(CHUNK if size is None or size < 0 else min(size, 4 * CHUNK))
        self.size += len(data)
        if self.size > self.limit:
            raise TooLarge()
        if self.clock() >= self._next_beat:
            self._next_beat = self.clock() + self.heartbeat
            self.beat(self.size)
        return data


def put(media: MediaStore, key: str, source: CountedSource) -> Stored:
    """Stream ``source`` to ``key`` (see the module docstring); the store's errors as
    :meth:`MediaStore.put_stream` raises them, the source's (client gone, too large)
    through, nothing visible after either."""
    return media.put_stream(key, source)  # type: ignore[arg-type]  # read() is all it uses


def verify(media: MediaStore, stored: Stored) -> None:
    """The object the put completed is there with ``stored.size`` bytes
    (:class:`IntegrityFailure` otherwise): what the store holds is what was received and
    hashed."""
    try:
        info = media.stat(stored.key)
    except ObjectMissing as exc:
        raise IntegrityFailure(f"{stored.key}: no object after its put") from exc
    if info.size != stored.size:
        raise IntegrityFailure(f"{stored.key}: the store holds {info.size} bytes,"
                               f" {stored.size} were sent")


def move(media: MediaStore, stored: Stored, key: str) -> Stored:
    """The object ``stored`` copied to ``key`` (a form whose ``source_id`` came after its
    file moves the row's ``stored_path``), the copy verified against ``stored``'s size
    and SHA-256, then the old object removed. Streams through this process (the store
    interface has no server-side copy); rare."""
    with contextlib.closing(media.open(stored.key)) as reader:
        moved = media.put_stream(key, reader, size=stored.size,  # type: ignore[arg-type]
                                 sha256=stored.sha256)
    media.delete(stored.key)
    return moved
