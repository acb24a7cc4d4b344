"""The request body of an upload as it arrives: counted, bounded to the upload's limit,
and telling a client that went away (an error from the server's input, or EOF before
Content-Length: :class:`ClientGone`) from the end of the body."""

from __future__ import annotations

from typing import Protocol

from api.uploads.rawbody import SocketSource

CHUNK = 1 << 20


class TooLarge(Exception):
    """More bytes than the upload may hold (VIDEODROP_MAX_FILE_SIZE)."""


class ClientGone(Exception):
    """The body stopped before its end: closed, reset, truncated, idle."""


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class Body:
    """The request body as it arrives: counted, bounded, and telling a client that went
    away (an error from the server's input, or EOF before Content-Length) from the end."""

    def __init__(self, raw: Readable, expected: int | None, limit: int,
                 direct: SocketSource | None = None) -> None:
        self.raw = raw
        self.expected = expected
        self.limit = limit
        self.count = 0
        self.direct = direct  # the same body straight from the socket (api/uploads/rawbody.py)

    def readinto(self, buf: memoryview) -> int:
        """Fill the start of ``buf``; 0 at the end of the body."""
        if self.direct is None:
            data = self.read(len(buf))
            buf[:len(data)] = data
            return len(data)
        want = len(buf)
        if self.expected is not None:
            want = min(want, self.expected - self.count)
            if want <= 0:
                return 0
        try:
            n = self.direct.readinto(buf[:want])
        except Exception as exc:  # OSError, socket timeout
            raise ClientGone(f"{type(exc).__name__}: {exc}") from exc
        if n == 0:
            raise ClientGone(f"body ended after {self.count} of {self.expected} bytes")
        self.count += n
        if self.count > self.limit:
            raise TooLarge()
        return n

    def read(self, size: int = -1, /) -> bytes:
        if self.expected is not None:
            remaining = self.expected - self.count
            if remaining <= 0:
                return b""
            size = remaining if size is None or size < 0 else min(size, remaining)
        elif size is None or size < 0:
            size = CHUNK
        try:
            data = self.raw.read(size)
        except Exception as exc:  # OSError, timeout, gunicorn's NoMoreData/chunk errors
            raise ClientGone(f"{type(exc).__name__}: {exc}") from exc
        if not data:
            if self.expected is not None:
                raise ClientGone(f"body ended after {self.count} of {self.expected} bytes")
            return b""
        self.count += len(data)
        if self.count > self.limit:
            raise TooLarge()
        return data
