"""Find or start the PostgreSQL and RabbitMQ servers videodrop needs (standard library
only: ``deploy/bootstrap.sh`` runs it before the virtualenv exists).

  python3 -m deploy.devstack up --var ./var     # prints `export VIDEODROP_..._URL=...` lines
  python3 -m deploy.devstack down --var ./var   # stops what `up` started (--purge: data too)
  python3 -m deploy.devstack check postgres|amqp [URL]   # exit 0 when the server answers

Run from the checkout's root. `up` keeps each server whose URL answers and otherwise starts
a throwaway one from the local binaries under VAR/pg or VAR/rabbitmq: detached, its state
kept there so a second `up` reuses it. The tests and the benchmarks import it
(``from deploy import devstack``) for their own throwaway servers.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote, urlsplit, urlunsplit

if TYPE_CHECKING:
    from typing import Self

PG_INSTALL = "apt-get install postgresql"
RABBITMQ_INSTALL = "apt-get install rabbitmq-server"
DEFAULT_DATABASE_URL = "postgresql://localhost/videodrop"
DEFAULT_AMQP_URL = "amqp://guest:guest@localhost:5672/%2F"


class DevstackError(RuntimeError):
    """A server cannot be found or started; the message names what is missing."""


def log(message: str) -> None:
    print(f"devstack: {message}", file=sys.stderr, flush=True)


def run(cmd: list[str], timeout: float = 120, **kw: Any) -> subprocess.CompletedProcess[str]:
    """`cmd` without stdin, its output captured unless `stdout`/`stderr` say otherwise."""
    kw = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, **kw}
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, timeout=timeout, check=False, **kw)


def free_port(wanted: int = 0) -> int:
    """`wanted` when a server could listen on 127.0.0.1:`wanted` (TIME_WAIT leftovers do not
    count), else a port that no one listens on."""
    if wanted:
        with socket.socket() as sock, contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", wanted))
            return wanted
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redact(url: str) -> str:
    return re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", url)


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


# --- is a server there, where are the binaries to start one ---------------------------------


def find_postgres_bindir() -> Path | None:
    """The directory with initdb, pg_ctl and postgres: the highest /usr/lib/postgresql/N/bin."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)],
        reverse=True,
    )
    found += [Path(p).resolve().parent for n in ("pg_ctl", "postgres") if (p := shutil.which(n))]
    tools = ("initdb", "pg_ctl", "postgres")
    return next((d for d in found if all((d / t).is_file() for t in tools)), None)


def pg_tool(name: str) -> str | None:
    bindir = find_postgres_bindir()
    if bindir is not None and (bindir / name).is_file():
        return str(bindir / name)
    return shutil.which(name)


def find_rabbitmq_server() -> Path | None:
    """The real rabbitmq-server script (not Debian's /usr/sbin wrapper, which su's)."""
    lib = Path("/usr/lib/rabbitmq")
    found = [lib / "bin/rabbitmq-server"]
    found += sorted(lib.glob("lib/rabbitmq_server-*/sbin/rabbitmq-server"), reverse=True)
    if (path := shutil.which("rabbitmq-server")) and b"su rabbitmq" not in Path(path).read_bytes():
        found.insert(0, Path(path))
    return next((path for path in found if path.is_file()), None)


def postgres_answers(url: str, timeout: float = 3.0) -> bool:
    """True when a PostgreSQL server accepts connections at `url` (no authentication tried):
    pg_isready when installed, else a connect to its TCP port or Unix socket."""
    if pg_isready := pg_tool("pg_isready"):
        cmd = [pg_isready, "-q", "-t", str(max(1, round(timeout))), "-d", url]
        try:
            return run(cmd, timeout=timeout + 5).returncode == 0
        except subprocess.TimeoutExpired:
            return False
    parts, query = urlsplit(url), parse_qs(urlsplit(url).query)
    host = (query.get("host") or [""])[0] or unquote(parts.hostname or "")
    host = host or os.environ.get("PGHOST", "") or "/var/run/postgresql"
    port = int((query.get("port") or [""])[0] or parts.port or os.environ.get("PGPORT") or 5432)
    try:
        if host.startswith("/"):
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(timeout)
                sock.connect(os.path.join(host, f".s.PGSQL.{port}"))
        else:
            socket.create_connection((host, port), timeout=timeout).close()
    except OSError:
        return False
    return True


def amqp_answers(url: str, timeout: float = 3.0) -> bool:
    """True when an AMQP 0-9-1 broker answers the protocol header at `url` (amqps: when its
    port accepts a connection); of several comma-separated URLs (a cluster), at any."""
    if "," in url:
        return any(amqp_answers(one.strip(), timeout) for one in url.split(",") if one.strip())
    parts = urlsplit(url)
    tls = parts.scheme == "amqps"
    try:
        address = (parts.hostname or "localhost", parts.port or (5671 if tls else 5672))
        with socket.create_connection(address, timeout=timeout) as sock:
            if tls:
                return True
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            reply = sock.recv(8)
    except (OSError, ValueError):
        return False
    return reply[:1] == b"\x01" or reply.startswith(b"AMQP")  # connection.start or version


# --- throwaway servers ------------------------------------------------------------------------


class Throwaway:
    """A server run from the local binaries under `base_dir`, its ports kept in the JSON file
    `base_dir/<state_file>` so that a new object on the same directory reattaches to it.
    A context manager: started on entry, stopped on exit."""

    state_file = ""
    start_seconds: float | None = None  # how long start() took; None when it was running

    def __init__(self, base_dir: str | os.PathLike[str]) -> None:
        self.base_dir = Path(base_dir).absolute()
        self._state = self.base_dir / self.state_file
        try:
            saved = json.loads(self._state.read_text())
        except (OSError, ValueError):
            saved = {}
        self._saved: dict[str, Any] = saved if isinstance(saved, dict) else {}

    def how(self) -> str:
        return f"started in {self.start_seconds:.1f}s" if self.start_seconds else "already running"

    def start(self, timeout: float = 60) -> Self:
        raise NotImplementedError

    def stop(self, timeout: float = 30) -> None:
        raise NotImplementedError

    def restart(self) -> Self:
        self.stop()
        return self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class ThrowawayPostgres(Throwaway):
    """A private PostgreSQL cluster under `base_dir`: 127.0.0.1 on a free port (kept in
    `base_dir/throwaway.json`), trust auth, user `postgres`; `fsync=False` trades durability
    for speed. As root it runs as the `postgres` OS user (PostgreSQL refuses root)."""

    state_file = "throwaway.json"

    def __init__(self, base_dir: str | os.PathLike[str], *, fsync: bool = True) -> None:
        super().__init__(base_dir)
        self.data_dir = self.base_dir / "data"
        self.log_file = self.base_dir / "postgres.log"
        bindir = find_postgres_bindir()
        if bindir is None:
            raise DevstackError(
                "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in "
                f"/usr/lib/postgresql/*/bin or on PATH; install them: {PG_INSTALL}"
            )
        self.bindir, self.fsync = bindir, fsync
        self.port: int = int(self._saved.get("port", 0)) or free_port()
        self._as_user: dict[str, Any] = {}  # as root: the postgres OS user's ids
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam("postgres")
            except KeyError:
                raise DevstackError(
                    "running as root, but PostgreSQL refuses root and there is no `postgres` "
                    f"OS user ({PG_INSTALL} creates it)"
                ) from None
            self._as_user = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{quote(dbname, safe='')}"

    def _pg(self, tool: str, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return run([str(self.bindir / tool), *args], cwd=self.base_dir, **self._as_user, **kw)

    def _write(self, path: Path, text: str) -> None:
        path.write_text(text)
        if self._as_user:
            os.chown(path, self._as_user["user"], self._as_user["group"])

    def running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        return self._pg("pg_ctl", "status", "-D", str(self.data_dir)).returncode == 0

    def _prepare(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if self._as_user:
            uid = self._as_user["user"]
            for parent in self.base_dir.parents:
                st = parent.stat()
                if not (st.st_mode & 0o001 or (st.st_uid == uid and st.st_mode & 0o100)):
                    raise DevstackError(
                        f"the postgres OS user cannot reach {self.base_dir} ({parent} is not "
                        "searchable by others): use a directory under /tmp"
                    )
            os.chown(self.base_dir, uid, self._as_user["group"])
            self.base_dir.chmod(0o700)
        if not (self.data_dir / "PG_VERSION").exists():
            initdb = ["-D", str(self.data_dir), "-U", "postgres", "-A", "trust", "-E", "UTF8"]
            result = self._pg("initdb", *initdb, "--locale=C", "-N")
            if result.returncode != 0:
                raise DevstackError(f"initdb failed:\n{result.stdout}{result.stderr}")
            with (self.data_dir / "postgresql.conf").open("a") as conf:
                conf.write("\ninclude_if_exists = 'videodrop.conf'\n")
        sockets = str(self.base_dir) if len(str(self.base_dir)) < 90 else ""  # 107-byte limit
        sync = "on" if self.fsync else "off"
        self._write(self.data_dir / "videodrop.conf", "\n".join([
            f"port = {self.port}",
            "listen_addresses = '127.0.0.1'",
            "unix_socket_directories = '{}'".format(sockets.replace("'", "''")),
            f"fsync = {sync}\nsynchronous_commit = {sync}\nfull_page_writes = {sync}\n",
        ]))  # fmt: skip

    def start(self, timeout: float = 60) -> Self:
        started = time.monotonic()
        if self.running():
            return self
        self.port = free_port(self.port)
        self._prepare()
        self._write(self._state, json.dumps({"port": self.port}))
        with (self.base_dir / "pg_ctl.out").open("ab") as out:
            # A new session, so Ctrl-C in the terminal that ran `up` does not reach the server.
            args = ["start", "-w", "-t", str(int(timeout)), "-D", str(self.data_dir)]
            result = self._pg("pg_ctl", *args, "-l", str(self.log_file), timeout=timeout + 10,
                              stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        if result.returncode != 0:
            raise DevstackError(
                f"PostgreSQL did not start (pg_ctl exit {result.returncode}); "
                f"{self.log_file} ends with:\n{tail(self.log_file)}"
            )
        self.start_seconds = time.monotonic() - started
        return self

    def stop(self, timeout: float = 60) -> None:
        """Fast shutdown (disconnects clients, rolls back their transactions)."""
        if not self.running():
            return
        args = ["stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", str(int(timeout))]
        result = self._pg("pg_ctl", *args, timeout=timeout + 10)
        if result.returncode != 0 and self.running():
            raise DevstackError(f"PostgreSQL did not stop: {result.stdout}{result.stderr}")


def _machine_cookie() -> str:
    """The cookie `rabbitmqctl` uses on this machine, so `rabbitmqctl -n NODE` reaches our node."""
    for path in (Path("/var/lib/rabbitmq/.erlang.cookie"), Path.home() / ".erlang.cookie"):
        with contextlib.suppress(OSError):
            return path.read_text().strip()
    return secrets.token_hex(16).upper()


class ThrowawayRabbitMQ(Throwaway):
    """A private RabbitMQ node under `base_dir`; never the machine's shared rabbit@localhost.

    Node vd-<hex>@localhost, AMQP on a free 127.0.0.1 port, its own distribution port, data,
    logs, cookie copy and config (no plugins); guest/guest from loopback. State lives in
    `base_dir/node.json`: `restart()` and a new object on the same directory reuse the same
    port and data, so durable queues and persistent messages survive.
    """

    state_file = "node.json"
    files = {  # RABBITMQ_<key>: the node's file or folder under base_dir
        "MNESIA_BASE": "mnesia", "LOG_BASE": "log", "PID_FILE": "rabbitmq.pid",
        "CONFIG_FILE": "rabbitmq.conf", "ADVANCED_CONFIG_FILE": "advanced.config",
        "ENABLED_PLUGINS_FILE": "enabled_plugins", "CONF_ENV_FILE": "rabbitmq-env.conf",
    }  # fmt: skip

    def __init__(self, base_dir: str | os.PathLike[str]) -> None:
        super().__init__(base_dir)
        server = find_rabbitmq_server()
        if server is None:
            raise DevstackError(f"rabbitmq-server not found; install it: {RABBITMQ_INSTALL}")
        self.server = server
        self.node: str = self._saved.get("node") or f"vd-{secrets.token_hex(4)}@localhost"
        self.port: int = int(self._saved.get("port", 0)) or free_port()
        self.dist_port: int = int(self._saved.get("dist_port", 0)) or free_port()
        self._pgid: int | None = self._saved.get("pgid")
        self._started_epmd = bool(self._saved.get("started_epmd"))
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.url_for("/")

    def url_for(self, vhost: str) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/{quote(vhost, safe='')}"

    def _env(self) -> dict[str, str]:
        skip = ("ERL_FLAGS", "ERL_AFLAGS", "ERL_ZFLAGS")
        env = {k: v for k, v in os.environ.items() if k[:9] != "RABBITMQ_" and k not in skip}
        env.update({f"RABBITMQ_{key}": str(self.base_dir / n) for key, n in self.files.items()})
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
        """(pid, command) of the node's live processes: those in its process group whose
        environment names the node (a reused pid is not one of them)."""
        if self._proc is not None:
            self._proc.poll()  # reap our own child so it does not linger as a zombie
        marker, members = f"RABBITMQ_NODENAME={self.node}\0".encode(), []
        for proc in Path("/proc").glob("[0-9]*") if self._pgid else ():
            try:
                stat = (proc / "stat").read_text()
                state, _, group = stat.rpartition(")")[2].split()[:3]
                ours = int(group) == self._pgid and state != "Z"
                if ours and marker in (proc / "environ").read_bytes():
                    members.append((int(proc.name), stat.partition("(")[2].partition(")")[0]))
            except (OSError, ValueError):
                continue
        return members

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
        self.port, self.dist_port = free_port(self.port), free_port(self.dist_port)
        self._prepare()
        try:
            socket.create_connection(("127.0.0.1", 4369), timeout=1).close()
        except OSError:
            self._started_epmd = True  # the node will start epmd; stop() ends it again
        out_file = self.base_dir / "server.out"
        with out_file.open("ab") as out:
            # Its own session and output file: `eval "$(… up)"` must not wait on a pipe the
            # broker inherited, and Ctrl-C in that terminal must not reach it.
            self._proc = subprocess.Popen(
                [str(self.server)], env=self._env(), cwd=self.base_dir, stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self._pgid = self._proc.pid
        self._save()
        deadline = time.monotonic() + timeout
        while not amqp_answers(self.url, timeout=1):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
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


# --- use the server a URL names when it answers, else a throwaway one under VAR -------------


def ensure_database(url: str) -> None:
    """Create the database named in `url` when missing: as the URL's user, else as `postgres`
    (owned by the URL's user). Without psql it only says it cannot. Raises DevstackError when
    neither may create it."""
    dbname, psql = unquote(urlsplit(url).path.lstrip("/")), pg_tool("psql")
    if not psql:
        log(f"psql not found: cannot make sure database {dbname!r} exists")
    if not dbname or not psql:
        return
    parts = urlsplit(url)
    user = unquote(parts.username or "") or os.environ.get("PGUSER") or getpass.getuser()
    literal = "'{}'".format(dbname.replace("'", "''"))
    ident = '"{}"'.format(dbname.replace('"', '""'))
    admin = parts._replace(path="/postgres")
    admins = [(urlunsplit(admin), "")]
    if user != "postgres":
        owner = ' OWNER "{}"'.format(user.replace('"', '""'))
        as_postgres = admin._replace(netloc="postgres@" + parts.netloc.rpartition("@")[2])
        admins.append((urlunsplit(as_postgres), owner))
    error = ""
    for admin_url, owner in admins:
        cmd = [psql, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", admin_url, "-c"]
        result = run([*cmd, f"SELECT 1 FROM pg_database WHERE datname = {literal}"], timeout=30)
        if result.returncode == 0 and result.stdout.strip() == "1":
            return
        if result.returncode == 0:
            result = run([*cmd, f"CREATE DATABASE {ident}{owner}"], timeout=60)
            if result.returncode == 0:
                log(f"created database {dbname} at {redact(url)}")
                return
        error = result.stderr.strip()
    raise DevstackError(
        f"cannot create database {dbname!r} at {redact(url)}: {error}\n"
        f"  create it yourself, e.g.: sudo -u postgres createdb -O {user} {dbname}"
    )


def ensure_postgres(url: str, var: Path) -> str:
    """`url` when a PostgreSQL server answers there, else its database on the throwaway server
    under VAR/pg (started unless it runs); the database is created when missing. Raises
    DevstackError when neither can be had."""
    if postgres_answers(url):
        log(f"PostgreSQL answers at {redact(url)}; using it")
        ensure_database(url)
        return url
    if find_postgres_bindir() is None:
        raise DevstackError(
            f"PostgreSQL does not answer at {redact(url)} and no PostgreSQL server binaries "
            f"were found.\n  Install them: sudo {PG_INSTALL}\n"
            "  or set VIDEODROP_DATABASE_URL to a server that answers."
        )
    pg = ThrowawayPostgres(var / "pg").start()
    log(f"PostgreSQL does not answer at {redact(url)}; throwaway server on 127.0.0.1:{pg.port} "
        f"under {pg.base_dir} ({pg.how()})")  # fmt: skip
    target = pg.url_for(unquote(urlsplit(url).path.lstrip("/")) or "videodrop")
    ensure_database(target)
    return target


def ensure_amqp(url: str, var: Path) -> str:
    """`url` when a broker answers there, else its vhost (created when missing) on the
    throwaway node under VAR/rabbitmq (started unless it runs). Raises DevstackError when
    neither can be had."""
    if amqp_answers(url):
        log(f"RabbitMQ answers at {redact(url)}; using it")
        return url
    if find_rabbitmq_server() is None:
        raise DevstackError(
            f"RabbitMQ does not answer at {redact(url)} and no rabbitmq-server was found.\n"
            f"  Install it: sudo {RABBITMQ_INSTALL}\n"
            "  or set VIDEODROP_AMQP_URL to a broker that answers."
        )
    node = ThrowawayRabbitMQ(var / "rabbitmq").start()
    log(f"RabbitMQ does not answer at {redact(url)}; throwaway node {node.node} on "
        f"127.0.0.1:{node.port} under {node.base_dir} ({node.how()})")  # fmt: skip
    vhost = unquote(urlsplit(url).path[1:]) or "/"
    if vhost != "/":
        node.ctl("add_vhost", vhost)
        node.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    return node.url_for(vhost)


# --- the commands -------------------------------------------------------------------------

SERVERS = {  # check's kind: (the URL's variable, its default, probe, `up`'s find-or-start)
    "postgres": ("VIDEODROP_DATABASE_URL", DEFAULT_DATABASE_URL, postgres_answers, ensure_postgres),
    "amqp": ("VIDEODROP_AMQP_URL", DEFAULT_AMQP_URL, amqp_answers, ensure_amqp),
}
THROWAWAYS = ((ThrowawayPostgres, "pg", "PostgreSQL"), (ThrowawayRabbitMQ, "rabbitmq", "RabbitMQ"))


def up(var: Path) -> int:
    """Print the export lines for both URLs (exit 0), or say why a server cannot be had (1)."""
    var.mkdir(parents=True, exist_ok=True)
    exports, problems = [], []
    for name, default, _, ensure in SERVERS.values():
        try:
            url = ensure(os.environ.get(name) or default, var)
            exports.append(f"export {name}={shlex.quote(url)}")
        except DevstackError as exc:
            problems.append(str(exc))
    for problem in problems:
        log(problem)
    if not problems:
        print("\n".join(exports), flush=True)
    return 1 if problems else 0


def down(var: Path, purge: bool) -> int:
    """Stop the throwaway servers `up` started under `var`; `purge` deletes their folders."""
    for server, sub, what in THROWAWAYS:
        if (var / sub / server.state_file).exists():
            server(var / sub).stop()
            log(f"stopped the throwaway {what} under {var / sub}")
    for _, sub, _ in THROWAWAYS if purge else ():
        shutil.rmtree(var / sub, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python3 -m deploy.devstack up|down|check`` (the module's docstring); the exit status."""
    parser = argparse.ArgumentParser(prog="python3 -m deploy.devstack",
                                     description="Find or start videodrop's servers.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("up", "down"):
        sub = commands.add_parser(name)
        sub.add_argument("--var", type=Path, default=Path("var"), help="state directory")
        if name == "down":
            sub.add_argument("--purge", action="store_true", help="delete their data too")
    check = commands.add_parser("check", help="exit 0 when the server answers")
    check.add_argument("kind", choices=list(SERVERS))
    check.add_argument("url", nargs="?")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            return up(args.var.absolute())
        if args.command == "down":
            return down(args.var.absolute(), args.purge)
        name, default, answers, _ = SERVERS[args.kind]
        return 0 if answers(args.url or os.environ.get(name) or default) else 1
    except DevstackError as exc:
        log(str(exc))
        return 1
