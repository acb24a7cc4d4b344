"""Is a server there, and where are the binaries to start one."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from .throwaway import run

PG_INSTALL = "apt-get install postgresql"
RABBITMQ_INSTALL = "apt-get install rabbitmq-server"


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


def postgres_answers(url: str, timeout: float = 3.0) -> bool:
    """True when a PostgreSQL server accepts connections at `url` (no authentication tried)."""
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
    """True when an AMQP 0-9-1 broker answers the protocol header at `url`."""
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


def find_rabbitmq_server() -> Path | None:
    """The real rabbitmq-server script (not Debian's /usr/sbin wrapper, which su's)."""
    lib = Path("/usr/lib/rabbitmq")
    found = [lib / "bin/rabbitmq-server"]
    found += sorted(lib.glob("lib/rabbitmq_server-*/sbin/rabbitmq-server"), reverse=True)
    if (path := shutil.which("rabbitmq-server")) and b"su rabbitmq" not in Path(path).read_bytes():
        found.insert(0, Path(path))
    return next((path for path in found if path.is_file()), None)
