"""ThrowawayRabbitMQ: a private RabbitMQ node started from the local rabbitmq-server."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from .probes import RABBITMQ_INSTALL, amqp_answers, find_rabbitmq_server
from .throwaway import DEVNULL, DevstackError, Throwaway, free_port, port_free, read_json, run, tail

if TYPE_CHECKING:
    from typing import Self


def _machine_cookie() -> str:
    """The cookie `rabbitmqctl` uses on this machine, so `rabbitmqctl -n NODE` reaches our node."""
    for path in (Path("/var/lib/rabbitmq/.erlang.cookie"), Path.home() / ".erlang.cookie"):
        try:
            return path.read_text().strip()
        except OSError:
            continue
    return secrets.token_hex(16).upper()


def _proc_group(pgid: int, marker: bytes) -> list[tuple[int, str]]:
    """(pid, command) of the live processes in group `pgid` whose environment holds `marker`."""
    members = []
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit():
                continue
            stat = (entry / "stat").read_text()
            state, _, group = stat.rpartition(")")[2].split()[:3]
            if int(group) == pgid and state != "Z" and marker in (entry / "environ").read_bytes():
                members.append((int(entry.name), stat.partition("(")[2].partition(")")[0]))
        except (OSError, ValueError):
            continue
    return members


class ThrowawayRabbitMQ(Throwaway):
    """A private RabbitMQ node under `base_dir`; never the machine's shared rabbit@localhost.

    Node vd-<hex>@localhost, AMQP on a free 127.0.0.1 port, its own distribution port, data,
    logs, cookie copy and config (no plugins); guest/guest from loopback. State lives in
    `base_dir/node.json`: `restart()` and a new object on the same directory reuse the same
    port and data, so durable queues and persistent messages survive.
    """

    def __init__(self, base_dir: str | os.PathLike[str], *, port: int | None = None) -> None:
        self.base_dir = Path(base_dir).absolute()
        self._state = self.base_dir / "node.json"
        server = find_rabbitmq_server()
        if server is None:
            raise DevstackError(f"rabbitmq-server not found; install it: {RABBITMQ_INSTALL}")
        self.server = server
        saved = read_json(self._state)
        self.node: str = saved.get("node") or f"vd-{secrets.token_hex(4)}@localhost"
        self.port: int = port or int(saved.get("port", 0)) or free_port()
        self.dist_port: int = int(saved.get("dist_port", 0)) or free_port()
        self._pgid: int | None = saved.get("pgid")
        self._started_epmd = bool(saved.get("started_epmd"))
        self._proc: subprocess.Popen[bytes] | None = None
        self.start_seconds: float | None = None

    @property
    def url(self) -> str:
        return self.url_for("/")

    def url_for(self, vhost: str) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/{quote(vhost, safe='')}"

    def _env(self) -> dict[str, str]:
        skip = ("ERL_FLAGS", "ERL_AFLAGS", "ERL_ZFLAGS")
        env = {
            k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_") and k not in skip
        }
        env.update(
            {
                f"RABBITMQ_{key}": str(self.base_dir / name)
                for key, name in (
                    ("MNESIA_BASE", "mnesia"),
                    ("LOG_BASE", "log"),
                    ("PID_FILE", "rabbitmq.pid"),
                    ("CONFIG_FILE", "rabbitmq.conf"),
                    ("ADVANCED_CONFIG_FILE", "advanced.config"),
                    ("ENABLED_PLUGINS_FILE", "enabled_plugins"),
                    ("CONF_ENV_FILE", "rabbitmq-env.conf"),
                )
            }
        )
        env.update(
            HOME=str(self.base_dir), RABBITMQ_NODENAME=self.node,
            RABBITMQ_DIST_PORT=str(self.dist_port), ERL_EPMD_ADDRESS="127.0.0.1",
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
        )  # fmt: skip
        return env

    def _save(self) -> None:
        state = {"node": self.node, "port": self.port, "dist_port": self.dist_port}
        state.update(pgid=self._pgid, started_epmd=self._started_epmd)
        self._state.write_text(json.dumps(state))

    def _prepare(self) -> None:
        for sub in ("mnesia", "log"):
            (self.base_dir / sub).mkdir(parents=True, exist_ok=True)
        if not (cookie := self.base_dir / ".erlang.cookie").exists():
            cookie.write_text(_machine_cookie())
            cookie.chmod(0o400)
        (self.base_dir / "enabled_plugins").write_text("[].\n")
        (self.base_dir / "rabbitmq-env.conf").write_text("# all settings come from the env\n")
        (self.base_dir / "rabbitmq.conf").write_text("\n".join([
            f"listeners.tcp.1 = 127.0.0.1:{self.port}", "listeners.ssl = none",
            "loopback_users.guest = true", "log.console = false", "log.file.level = info",
            "disk_free_limit.absolute = 50MB", ""]))  # fmt: skip

    def _members(self) -> list[tuple[int, str]]:
        if self._proc is not None:
            self._proc.poll()  # reap our own child so it does not linger as a zombie
        marker = f"RABBITMQ_NODENAME={self.node}\0".encode()  # guards against reused pids
        return _proc_group(self._pgid, marker) if self._pgid else []

    def running(self) -> bool:
        return bool(self._members()) and amqp_answers(self.url, timeout=1)

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run rabbitmqctl against this node."""
        cmd = [str(self.server.parent / "rabbitmqctl"), "-n", self.node, *args]
        return run(cmd, timeout=timeout, env=self._env(), cwd=self.base_dir)

    def start(self, timeout: float = 90) -> Self:
        started = time.monotonic()
        if self.running():
            return self
        self.stop()  # whatever is left of a node that did not come up
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port if port_free(self.port) else free_port()
        self.dist_port = self.dist_port if port_free(self.dist_port) else free_port()
        self._prepare()
        try:
            socket.create_connection(("127.0.0.1", 4369), timeout=1).close()
        except OSError:
            self._started_epmd = True  # the node will start epmd; stop() ends it again
        with (self.base_dir / "server.out").open("ab") as out:
            # Its own session and output file: `eval "$(devstack.py up)"` must not wait on a
            # pipe the broker inherited, and Ctrl-C in that terminal must not reach it.
            self._proc = subprocess.Popen(
                [str(self.server)], env=self._env(), cwd=self.base_dir, stdin=DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self._pgid = self._proc.pid
        self._save()
        deadline = time.monotonic() + timeout
        while not amqp_answers(self.url, timeout=1):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                out_file = self.base_dir / "server.out"
                raise DevstackError(
                    f"RabbitMQ node {self.node} did not start; {out_file} ends with:\n"
                    f"{tail(out_file)}\n(logs in {self.base_dir / 'log'})"
                )
            time.sleep(0.1)
        self.start_seconds = time.monotonic() - started
        return self

    def stop(self, timeout: float = 30) -> None:
        """Graceful stop (SIGTERM to the VM); kill what is left after `timeout`."""
        members = self._members()
        # Only the VM gets SIGTERM: ending erl_child_setup first would crash it mid-shutdown.
        for pid in [p for p, cmd in members if cmd.startswith("beam")] or [p for p, _ in members]:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self._members() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._pgid and self._members():
            os.killpg(self._pgid, signal.SIGKILL)
            while self._members():
                time.sleep(0.05)
        if self._proc is not None:
            self._proc.wait()
            self._proc = None
        if self._started_epmd and (epmd := shutil.which("epmd")):
            if "name " not in run([epmd, "-names"], timeout=10).stdout:
                run([epmd, "-kill"], timeout=10)  # epmd refuses while other nodes are there
            self._started_epmd = False
        self._pgid = None
        if self._state.exists():
            self._save()
