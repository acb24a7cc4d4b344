"""Several "hosts" on one machine: each a set of roles with its own inbox, temporary
folder, logs, environment, process group and network, sharing only what hosts share in
production (PostgreSQL, RabbitMQ, the media store). What tests/integration/
test_several_hosts.py runs; docs/several-hosts.md says what each host needs.

A host's network is a network namespace of its own when ``unshare --net`` works (root on
Linux): the roles inside see the shared services at their usual ``127.0.0.1:PORT``
through a bridge (socat, over a Unix socket in a folder both sides see), and the API host's
port is published outside on an address of its own (127.0.0.3). Where namespaces are not
to be had, hosts share the machine's network and the API binds its own loopback address."""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import pika.exceptions
from psycopg.conninfo import conninfo_to_dict

from testbed.processes import REPO
from testbed.system import System
from testbed.waits import wait_for

SOCAT_INSTALL = "apt-get install socat"


@functools.cache
def netns_usable() -> bool:
    """Whether this process may make network namespaces (``unshare --net``) and enter them
    (``nsenter``), with socat there to bridge them."""
    if not all(shutil.which(tool) for tool in ("unshare", "nsenter", "socat", "ip")):
        return False
    try:
        done = subprocess.run(["unshare", "--net", "true"], check=False, capture_output=True,
                              timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def loopback_ports(database_url: str, amqp_url: str, *http_urls: str) -> list[int]:
    """The TCP ports a host in a namespace must reach: PostgreSQL's (``database_url``, a URI
    or libpq's keywords), each broker node's (``amqp_url``, comma-separated) and those of
    ``http_urls`` (an S3 endpoint; empty ones skipped). ValueError for a service not on
    127.0.0.1 or localhost (the bridge reaches only this machine's loopback)."""
    db = conninfo_to_dict(database_url)
    found = [(str(db.get("host") or "localhost"), int(db.get("port") or 5432))]
    defaults = {"amqp": 5672, "amqps": 5671, "http": 80, "https": 443}
    for url in (u for text in (amqp_url, *http_urls) for u in text.split(",") if u):
        parts = urlsplit(url)
        found.append((parts.hostname or "", parts.port or defaults[parts.scheme]))
    ports: list[int] = []
    for host, port in found:
        if host not in ("127.0.0.1", "localhost"):
            raise ValueError(f"{host}:{port}: a host in a namespace reaches only 127.0.0.1")
        if port not in ports:
            ports.append(port)
    return ports


class Namespace:
    """A network namespace with its loopback up, kept by a holder process; commands enter it
    with :meth:`enter`. Its bridges are socat processes, each in a session of its own (not
    the roles' process group: killing a host's roles leaves its network up)."""

    def __init__(self, name: str) -> None:
        self.name = name
        # Unix socket paths must stay under 108 bytes: a short folder of their own
        self.sockets = Path(tempfile.mkdtemp(prefix=f"vdnet-{name}-"))
        self.holder: subprocess.Popen[bytes] | None = None
        self.bridges: list[subprocess.Popen[bytes]] = []

    def start(self) -> Namespace:
        self.holder = subprocess.Popen(
            ["unshare", "--net", "--", "sh", "-c", "ip link set lo up && exec sleep 86400"],
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def lo_up() -> bool:
            shown = subprocess.run([*self.enter(), "ip", "-o", "link", "show", "lo"],
                                   check=False, capture_output=True, text=True, timeout=10)
            own = os.readlink("/proc/self/ns/net")
            inside = os.readlink(f"/proc/{self.holder_pid}/ns/net")
            return inside != own and ",UP" in shown.stdout
        wait_for(lo_up, timeout=30, what=f"host {self.name}'s network namespace")
        return self

    @property
    def holder_pid(self) -> int:
        assert self.holder is not None, "the namespace is not started"
        return self.holder.pid

    def enter(self) -> list[str]:
        """The command prefix that runs a program inside (nsenter execs it: same pid)."""
        return ["nsenter", f"--net=/proc/{self.holder_pid}/ns/net", "--"]

    def _socat(self, inside: bool, listen: str, connect: str) -> None:
        argv = ["socat", listen, connect]
        self.bridges.append(subprocess.Popen([*self.enter(), *argv] if inside else argv,
                                             start_new_session=True,
                                             stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL))

    def answers(self, port: int, address: str = "127.0.0.1", inside: bool = True) -> bool:
        """Whether a TCP connection to ``address:port`` inside (or outside) succeeds."""
        probe = [sys.executable, "-c",
                 "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])),"
                 " timeout=2).close()", address, str(port)]
        return subprocess.run([*self.enter(), *probe] if inside else probe,
                              check=False, capture_output=True, timeout=10).returncode == 0

    def reach(self, port: int) -> None:
        """``127.0.0.1:port`` of this machine answers inside at ``127.0.0.1:port``."""
        sock = self.sockets / f"out-{port}.sock"
        self._socat(False, f"UNIX-LISTEN:{sock},fork,unlink-early", f"TCP:127.0.0.1:{port}")
        wait_for(sock.exists, timeout=10, what=f"the bridge socket {sock}")
        self._socat(True, f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork",
                    f"UNIX-CONNECT:{sock}")
        wait_for(lambda: self.answers(port, "127.0.0.1", inside=True), timeout=10,
                 what=f"127.0.0.1:{port} inside host {self.name}")

    def publish(self, port: int, address: str) -> None:
        """``127.0.0.1:port`` inside answers outside at ``address:port`` (once something
        listens inside; connections before that are refused)."""
        sock = self.sockets / f"in-{port}.sock"
        self._socat(True, f"UNIX-LISTEN:{sock},fork,unlink-early", f"TCP:127.0.0.1:{port}")
        wait_for(sock.exists, timeout=10, what=f"the bridge socket {sock}")
        self._socat(False, f"TCP-LISTEN:{port},bind={address},reuseaddr,fork",
                    f"UNIX-CONNECT:{sock}")

    def stop(self) -> None:
        for proc in [*self.bridges, *([self.holder] if self.holder else [])]:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        self.bridges.clear()
        self.holder = None
        shutil.rmtree(self.sockets, ignore_errors=True)


@dataclass
class Host(System):
    """One host's roles (``videodrop ROLE`` processes, as :class:`System` starts them) with
    their own inbox, ``TMPDIR``, logs and environment under ``root``, all in one process
    group (:meth:`kill_roles` SIGKILLs the lot), on ``network`` (None: the machine's own),
    the API bound to ``address``. ``store_env`` names the shared media store
    (``VIDEODROP_MEDIA_ROOT`` and/or ``VIDEODROP_STORAGE_URL`` and its credentials)."""

    name: str = "host"
    address: str = "127.0.0.1"
    store_env: dict[str, str] = field(default_factory=dict)
    network: Namespace | None = None
    pgid: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.tmp = self.root / "tmp"
        self.tmp.mkdir(exist_ok=True)
        if root := self.store_env.get("VIDEODROP_MEDIA_ROOT"):
            self.media_root = Path(root)

    @property
    def base_url(self) -> str:
        return f"http://{self.address}:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        env = super().env
        env.update(self.store_env)
        env["TMPDIR"] = str(self.tmp)
        # inside a namespace the API listens on the namespace's loopback; the bridge
        # publishes it outside on ``address``
        env["VIDEODROP_BIND"] = f"{'127.0.0.1' if self.network else self.address}:{self.port}"
        return env

    def start_network(self, *ports: int, api: bool = False) -> Host:
        """Enter a network of its own (when ``network`` is set): ``ports`` of this machine's
        loopback reached from inside and, for an API host, the API's port published on
        ``address``."""
        if self.network is not None:
            self.network.start()
            for port in ports:
                self.network.reach(port)
            if api:
                self.network.publish(self.port, self.address)
        return self

    def assert_running(self) -> None:
        """AssertionError naming each role that has exited, with its exit status and the
        end of its log."""
        gone = {role: proc.returncode for role, proc in self.procs.items()
                if proc.poll() is not None}
        assert not gone, (f"host {self.name}: {gone} exited; "
                          + " | ".join(self.log_text(r)[-600:] for r in gone))

    def consumers(self, queue: str) -> int:
        """Consumers on this host's ``queue`` (``probe``, ``derive``); 0 while the queue is
        not declared yet."""
        try:
            return self.queue_counts(queue)[1]
        except pika.exceptions.ChannelClosedByBroker:
            return 0

    def _group_alive(self) -> bool:
        """Whether the host's process group still holds one of its roles. Only then is
        ``pgid`` signalled or joined: a child not yet reaped keeps its pid, so the group id
        cannot have passed to another's processes."""
        return self.pgid is not None and any(
            proc.poll() is None for proc in [*self.procs.values(), *self.superseded])

    def spawn(self, argv: list[str], env: dict[str, str], log: IO[bytes]
              ) -> subprocess.Popen[bytes]:
        """One role's process in this host's network and process group (the first role
        started leads a new group)."""
        group = self.pgid if self._group_alive() else 0
        enter = self.network.enter() if self.network else []
        proc = subprocess.Popen([*enter, *argv], env=env, cwd=REPO, stdout=log,
                                stderr=subprocess.STDOUT, process_group=group)
        if group == 0:
            self.pgid = proc.pid
        return proc

    def kill(self, role: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(role)
        proc.send_signal(sig)
        proc.wait(timeout=30)

    def kill_roles(self, sig: int = signal.SIGKILL) -> None:
        """``sig`` to the host's whole process group at once (the roles and their children:
        gunicorn workers, ffprobe, ffmpeg); returns once every role has gone."""
        if self._group_alive():
            assert self.pgid is not None
            os.killpg(self.pgid, sig)
        for proc in [*self.procs.values(), *self.superseded]:
            proc.wait(timeout=30)
        self.procs.clear()
        self.superseded.clear()
        self.pgid = None

    def stop(self) -> None:
        """SIGTERM the roles, SIGKILL what is left after 20 s, then the network."""
        if self._group_alive():
            assert self.pgid is not None
            os.killpg(self.pgid, signal.SIGTERM)
            try:
                for proc in [*self.procs.values(), *self.superseded]:
                    proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        self.kill_roles()
        if self.network is not None:
            self.network.stop()
        self.http.close()
