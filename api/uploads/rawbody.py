"""A raw upload body read straight from gunicorn's socket into one reusable buffer.

gunicorn hands a body to the application through its Unreader: every ``recv()`` lands in
a ``BytesIO``, is copied out with ``getvalue()`` and sliced, so each byte is copied three
times in Python before the application sees it; at 1 GiB that, not the disk, bounds an
upload (bench/upload.py). For a body of known length on a gunicorn worker we take what
gunicorn has already read ahead and then ``recv_into()`` the caller's buffer: the kernel
copies into it, ``os.write`` copies out, nothing else.

Anything else (another server, a chunked body, a gunicorn whose internals differ) gets
None, and the caller reads ``wsgi.input`` as before."""

from __future__ import annotations

import io
import socket
from typing import Any


class SocketSource:
    """``readinto`` over the rest of one request body: the read-ahead, then the socket.
    Returns 0 at the end of the body, never reads past it (pipelined requests)."""

    def __init__(self, sock: socket.socket, ahead: bytes, on_socket: int) -> None:
        self.sock = sock
        self.ahead = memoryview(ahead)
        self.on_socket = on_socket

    def readinto(self, buf: memoryview) -> int:
        if self.ahead:
            n = min(len(buf), len(self.ahead))
            buf[:n] = self.ahead[:n]
            self.ahead = self.ahead[n:]
            return n
        if self.on_socket <= 0:
            return 0
        n = self.sock.recv_into(buf, min(len(buf), self.on_socket))
        self.on_socket -= n
        return n  # 0: the client closed early (the caller counts against Content-Length)


def socket_source(env: dict[str, Any], expected: int | None) -> SocketSource | None:
    """The body of this request as a SocketSource, or None where that is not safe."""
    body: Any = env.get("wsgi.input")
    sock = env.get("gunicorn.socket")
    reader: Any = getattr(body, "reader", None)
    unreader: Any = getattr(reader, "unreader", None)
    if (expected is None or not isinstance(sock, socket.socket)
            or type(reader).__name__ != "LengthReader"
            or not isinstance(getattr(body, "buf", None), io.BytesIO)
            or not hasattr(unreader, "take_buffered") or not hasattr(unreader, "unread")
            or getattr(reader, "length", None) != expected or body.buf.tell()):
        return None  # not an untouched gunicorn body of known length
    ahead = unreader.take_buffered()
    if len(ahead) > expected:  # the next pipelined request: give it back
        unreader.unread(ahead[expected:])
        ahead = ahead[:expected]
    reader.length = 0  # gunicorn now sees the body as read; we read the rest ourselves
    return SocketSource(sock, ahead, expected - len(ahead))
