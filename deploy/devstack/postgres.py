"""ThrowawayPostgres: a private PostgreSQL cluster started from the local binaries."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .probes import PG_INSTALL, find_postgres_bindir
from .throwaway import DEVNULL, DevstackError, Throwaway, free_port, port_free, read_json, run, tail

if TYPE_CHECKING:
    from typing import Self


class ThrowawayPostgres(Throwaway):
    """A private PostgreSQL cluster under `base_dir`: 127.0.0.1 on a free port, trust auth.

    As root it runs as the `postgres` OS user (PostgreSQL refuses root). The port is kept in
    `base_dir/throwaway.json`, so a new object on the same directory reattaches to the cluster.
    """

    def __init__(
        self, base_dir: str | os.PathLike[str], *, port: int | None = None, fsync: bool = True
    ) -> None:
        self.base_dir = Path(base_dir).absolute()
        self.data_dir = self.base_dir / "data"
        self.log_file = self.base_dir / "postgres.log"
        self._state = self.base_dir / "throwaway.json"
        bindir = find_postgres_bindir()
        if bindir is None:
            raise DevstackError(
                "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in "
                f"/usr/lib/postgresql/*/bin or on PATH; install them: {PG_INSTALL}"
            )
        self.bindir = bindir
        self.fsync = fsync
        self.port: int = port or int(read_json(self._state).get("port", 0)) or free_port()
        self.start_seconds: float | None = None
        self._uid, self._gid, self._as_user = -1, -1, dict[str, Any]()
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam("postgres")
            except KeyError:
                raise DevstackError(
                    "running as root, but PostgreSQL refuses root and there is no `postgres` "
                    f"OS user ({PG_INSTALL} creates it)"
                ) from None
            self._uid, self._gid = entry.pw_uid, entry.pw_gid
            self._as_user = {"user": self._uid, "group": self._gid, "extra_groups": []}

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{quote(dbname, safe='')}"

    def _pg(self, tool: str, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / tool), *args]
        return run(cmd, cwd=self.base_dir, **self._as_user, **kw)

    def _write(self, path: Path, text: str) -> None:
        path.write_text(text)
        if self._as_user:
            os.chown(path, self._uid, self._gid)

    def running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        return self._pg("pg_ctl", "status", "-D", str(self.data_dir)).returncode == 0

    def _prepare(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if self._as_user:
            for parent in self.base_dir.parents:
                st = parent.stat()
                if not (st.st_mode & 0o001 or (st.st_uid == self._uid and st.st_mode & 0o100)):
                    raise DevstackError(
                        f"the postgres OS user cannot reach {self.base_dir} ({parent} is not "
                        "searchable by others): use a directory under /tmp"
                    )
            os.chown(self.base_dir, self._uid, self._gid)
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
        if not port_free(self.port):
            self.port = free_port()
        self._prepare()
        self._write(self._state, json.dumps({"port": self.port}))
        with (self.base_dir / "pg_ctl.out").open("ab") as out:
            # A new session, so Ctrl-C in the terminal that ran `up` does not reach the server.
            cmd = [str(self.bindir / "pg_ctl"), "start", "-w", "-t", str(int(timeout))]
            result = subprocess.run(
                [*cmd, "-D", str(self.data_dir), "-l", str(self.log_file)],
                stdin=DEVNULL, stdout=out, stderr=subprocess.STDOUT, check=False,
                timeout=timeout + 10, cwd=self.base_dir, start_new_session=True, **self._as_user,
            )  # fmt: skip
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
