"""videodrop.notify against a real AF_UNIX datagram socket standing in for systemd."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from videodrop.notify import Notifier, notify, watchdog_interval


class FakeSystemd:
    """A datagram socket bound where ``$NOTIFY_SOCKET`` points, as systemd's is."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.settimeout(2)

    def receive(self) -> str:
        return self.sock.recv(4096).decode()

    def nothing_pending(self) -> bool:
        self.sock.setblocking(False)
        try:
            self.sock.recv(4096)
        except BlockingIOError:
            return True
        finally:
            self.sock.settimeout(2)
        return False

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(params=["path", "abstract"])
def systemd(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FakeSystemd]:
    if request.param == "path":
        address = str(tmp_path / "notify.sock")
        if len(address) > 100:  # sun_path is 108 bytes
            address = f"/tmp/vd-notify-{secrets.token_hex(4)}.sock"
    else:
        address = f"@videodrop-test-{secrets.token_hex(6)}"
    fake = FakeSystemd(address)
    yield fake
    fake.close()
    if not address.startswith("@"):
        Path(address).unlink(missing_ok=True)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_notify_sends_one_datagram(systemd: FakeSystemd) -> None:
    assert notify("READY=1\nSTATUS=hello", {"NOTIFY_SOCKET": systemd.address})
    assert systemd.receive() == "READY=1\nSTATUS=hello"


def test_notify_without_socket_is_a_no_op() -> None:
    assert notify("READY=1", {}) is False
    assert notify("READY=1", {"NOTIFY_SOCKET": ""}) is False
    assert notify("READY=1", {"NOTIFY_SOCKET": "vsock:2:1234"}) is False


def test_notify_to_a_missing_socket_does_not_raise(tmp_path: Path) -> None:
    assert notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}) is False


def test_watchdog_interval_is_half_of_watchdog_usec() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) \
        == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None
    assert watchdog_interval({}) is None


def test_notifier_speaks_the_protocol(systemd: FakeSystemd) -> None:
    clock = Clock()
    notifier = Notifier({"NOTIFY_SOCKET": systemd.address, "WATCHDOG_USEC": "10000000"},
                        clock=clock)
    assert notifier.enabled and notifier.interval == 5.0

    assert notifier.ready("consuming")
    assert systemd.receive() == "READY=1\nSTATUS=consuming"
    assert notifier.is_ready

    # READY=1 only once; a second call only updates the status, if it changed.
    assert notifier.ready("consuming") is False
    assert notifier.ready("still consuming")
    assert systemd.receive() == "STATUS=still consuming"

    assert notifier.status("2 files pending")
    assert systemd.receive() == "STATUS=2 files pending"
    assert notifier.status("2 files pending") is False  # unchanged: nothing sent

    assert notifier.watchdog()
    assert systemd.receive() == "WATCHDOG=1"
    clock.now += 4.9
    assert notifier.watchdog() is False  # rate-limited to one ping per interval
    clock.now += 0.2
    assert notifier.watchdog()
    assert systemd.receive() == "WATCHDOG=1"

    assert notifier.stopping("draining")
    assert systemd.receive() == "STOPPING=1\nSTATUS=draining"
    assert systemd.nothing_pending()


def test_notifier_without_watchdog_never_pings(systemd: FakeSystemd) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": systemd.address})
    assert notifier.interval is None
    assert notifier.watchdog() is False
    assert notifier.stopping()
    assert systemd.receive() == "STOPPING=1"
    assert systemd.nothing_pending()


def test_notifier_outside_systemd_does_nothing() -> None:
    notifier = Notifier({"WATCHDOG_USEC": "1000000"})
    assert not notifier.enabled
    assert notifier.interval is None
    assert notifier.ready("x") is False
    assert notifier.status("y") is False
    assert notifier.watchdog() is False
    assert notifier.stopping() is False


def test_notifier_reads_the_environment_once(systemd: FakeSystemd,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", systemd.address)
    notifier = Notifier()
    monkeypatch.delenv("NOTIFY_SOCKET")  # e.g. taken away so children do not inherit it
    assert notifier.ready()
    assert systemd.receive() == "READY=1"


def test_a_role_tells_systemd_ready_once_then_status_changes_and_stopping(
        systemd: FakeSystemd) -> None:
    """videodrop.role.Role, the start-up ingest, prober and derive share: READY=1 once,
    STATUS= only when its text changes (no flip-flop between two texts), and SIGTERM sets
    the stop event after STOPPING=1."""
    import signal

    from videodrop.role import Role
    from videodrop.settings import Settings

    role = Role("ingest", Settings(), notifier=Notifier({"NOTIFY_SOCKET": systemd.address}))
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        role.start(stopping="draining")
        role.tick("2/3 attached", ready=False)
        assert systemd.receive() == "STATUS=2/3 attached"
        role.tick("3/3 attached")
        assert systemd.receive() == "READY=1\nSTATUS=3/3 attached"
        role.tick("3/3 attached")
        assert systemd.nothing_pending()
        role.tick("2/3 attached", ready=False)
        assert systemd.receive() == "STATUS=2/3 attached"
        assert not role.stop.is_set()
        os.kill(os.getpid(), signal.SIGTERM)
        assert role.stop.wait(5)
        assert systemd.receive() == "STOPPING=1\nSTATUS=draining"
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def test_a_role_watching_its_threads_ends_when_every_one_has_died(
        systemd: FakeSystemd) -> None:
    """Role.watch ticks with the status the role gives (READY=1 once it says ready) and
    returns False once no worker thread is alive (the prober then exits 1)."""
    import threading

    from videodrop.role import Role
    from videodrop.settings import Settings

    role = Role("prober", Settings(), notifier=Notifier({"NOTIFY_SOCKET": systemd.address}))
    release = threading.Event()
    worker = threading.Thread(target=release.wait, daemon=True)
    worker.start()
    turns: list[int] = []

    def status() -> tuple[str, bool]:
        turns.append(1)
        if len(turns) == 2:
            release.set()
            worker.join()
        return f"turn {len(turns)}", len(turns) >= 2

    assert role.watch([worker], status, every=0.01) is False
    assert systemd.receive() == "STATUS=turn 1"
    assert systemd.receive() == "READY=1\nSTATUS=turn 2"
    assert systemd.nothing_pending()
