"""The systemd notify protocol (sd_notify(3)) with the standard library alone.

A service of ``Type=notify`` tells systemd how it is doing by sending datagrams such as
``READY=1`` or ``WATCHDOG=1`` to the AF_UNIX socket named in ``$NOTIFY_SOCKET`` (a path,
or an abstract name written with a leading ``@``). Outside systemd the variable is unset
and every call here does nothing, so the roles can call it unconditionally.

``$WATCHDOG_USEC`` (set when the unit has ``WatchdogSec=``) is the time within which
systemd wants to hear ``WATCHDOG=1``; we ping at half of it. ``$WATCHDOG_PID``, when set,
names the process the watchdog is meant for: any other process ignores it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Mapping


def _address(env: Mapping[str, str]) -> str | None:
    addr = env.get("NOTIFY_SOCKET") or None
    if addr is None or addr[0] not in "/@":
        return None  # unset, or a vsock address we do not speak (vsock:CID:PORT)
    return "\0" + addr[1:] if addr[0] == "@" else addr


def notify(state: str, env: Mapping[str, str] | None = None) -> bool:
    """Send one notification; ``True`` when it was delivered, ``False`` when there is no
    socket or it could not be reached (systemd gone: nothing useful to do about it)."""
    addr = _address(os.environ if env is None else env)
    if addr is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(addr)
            sock.sendall(state.encode())
    except OSError:
        return False
    return True


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Seconds between two ``WATCHDOG=1`` pings (half of ``$WATCHDOG_USEC``), or ``None``
    when no watchdog is asked of this process."""
    env = os.environ if env is None else env
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = env.get("WATCHDOG_PID")
    if usec <= 0 or (pid and pid != str(os.getpid())):
        return None
    return usec / 2_000_000


class Notifier:
    """What a role tells systemd: ``ready``, ``status``, ``watchdog`` and ``stopping``.

    It reads the environment once, when made; after that, calls are cheap and safe from
    any thread. ``watchdog()`` may be called from a busy loop: it sends at most one ping
    per interval (and never when the unit has no ``WatchdogSec=``); ``status()`` sends
    only when the text changes.
    """

    def __init__(self, env: Mapping[str, str] | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        env = dict(os.environ if env is None else env)
        self._env = {"NOTIFY_SOCKET": env.get("NOTIFY_SOCKET", "")}
        self.enabled = _address(self._env) is not None
        self.interval = watchdog_interval(env) if self.enabled else None
        self._clock = clock
        self._lock = threading.Lock()
        self._last_ping: float | None = None
        self._last_status: str | None = None
        self.is_ready = False

    def send(self, *fields: str) -> bool:
        if not self.enabled:
            return False
        return notify("\n".join(fields), self._env)

    def ready(self, status: str | None = None) -> bool:
        """``READY=1`` (once; later calls only update the status)."""
        with self._lock:
            first = not self.is_ready
            self.is_ready = True
            fields = ["READY=1"] if first else []
            if status is not None and status != self._last_status:
                self._last_status = status
                fields.append(f"STATUS={status}")
        return self.send(*fields) if fields else False

    def status(self, text: str) -> bool:
        with self._lock:
            if text == self._last_status:
                return False
            self._last_status = text
        return self.send(f"STATUS={text}")

    def watchdog(self) -> bool:
        """``WATCHDOG=1`` if an interval has passed since the last ping."""
        if self.interval is None:
            return False
        now = self._clock()
        with self._lock:
            if self._last_ping is not None and now - self._last_ping < self.interval:
                return False
            self._last_ping = now
        return self.send("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        fields = ["STOPPING=1"]
        if status is not None:
            fields.append(f"STATUS={status}")
        return self.send(*fields)


__all__ = ["Notifier", "notify", "watchdog_interval"]
