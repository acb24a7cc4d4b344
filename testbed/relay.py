"""A TCP relay for tests: a loopback port in front of a server (an S3 endpoint) that can be
taken down and brought back on the same port, and counts what the server sends back."""

from __future__ import annotations

import contextlib
import socket
import threading

from testbed.s3 import free_ports


class Relay:
    """A TCP relay on a fixed loopback port in front of the S3 server: :meth:`down` closes
    its listener and cuts every connection (the store gone: connection refused),
    :meth:`stall` takes connections and never answers (the store hung), :meth:`up` relays
    again on the same port (the same endpoint, so the same signatures).
    :attr:`downstream_bytes` counts the bytes the server sent back through it; with
    :attr:`drop_answers_holding` set, an answer holding those bytes is never relayed: its
    connection is cut instead (the server did the work, the client never hears it)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        [self.port] = free_ports(1)
        self.downstream_bytes = 0
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        self.stalled = False
        self.drop_answers_holding: bytes | None = None
        self.up()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        """Listen (again) on the port; after :meth:`stall`, the connections it holds are
        cut and new ones relayed."""
        if self.stalled:
            self.down()
            self.stalled = False
        self._listen()

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        if self.listener is not None:
            # a close alone leaves a listener that a thread's accept() waits on listening
            # until that accept returns: shutdown wakes it (EINVAL) and stops the listening
            with contextlib.suppress(OSError):
                self.listener.shutdown(socket.SHUT_RDWR)
            self.listener.close()
            self.listener = None
        with self.lock:
            conns, self.conns = self.conns, []
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def stall(self) -> None:
        """The store hangs (a stopped server, a partition that drops packets): every
        connection is cut and new ones are accepted, then neither read nor answered."""
        self.down()
        self.stalled = True
        self._listen()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self.stalled:  # held open, never read
                with self.lock:
                    self.conns.append(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self.lock:
                self.conns += [client, server]
            for a, b, back in ((client, server, False), (server, client, True)):
                threading.Thread(target=self._pump, args=(a, b, back), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, back: bool) -> None:
        try:
            while data := src.recv(1 << 16):
                if back:
                    if self.drop_answers_holding and self.drop_answers_holding in data:
                        for conn in (src, dst):
                            with contextlib.suppress(OSError):
                                conn.shutdown(socket.SHUT_RDWR)
                        return
                    with self.lock:
                        self.downstream_bytes += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
