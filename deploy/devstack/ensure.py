"""Use the server a URL names when it answers, else start a throwaway one under VAR."""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from .postgres import ThrowawayPostgres
from .probes import (
    PG_INSTALL,
    RABBITMQ_INSTALL,
    amqp_answers,
    find_postgres_bindir,
    find_rabbitmq_server,
    pg_tool,
    postgres_answers,
)
from .rabbitmq import ThrowawayRabbitMQ
from .throwaway import DevstackError, log, redact, run

DEFAULT_DATABASE_URL = "postgresql://localhost/videodrop"
DEFAULT_AMQP_URL = "amqp://guest:guest@localhost:5672/%2F"


def _with_path(url: str, path: str, user: str | None = None) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc if user is None else f"{user}@{parts.netloc.rpartition('@')[2]}"
    return urlunsplit((parts.scheme, netloc, path, parts.query, parts.fragment))


def ensure_database(url: str) -> None:
    """Create the database named in `url` when missing: as the URL's user, else as `postgres`."""
    dbname = unquote(urlsplit(url).path.lstrip("/"))
    psql = pg_tool("psql")
    if not dbname or not psql:
        if not psql:
            log(f"psql not found: cannot make sure database {dbname!r} exists")
        return
    user = unquote(urlsplit(url).username or "") or os.environ.get("PGUSER") or getpass.getuser()
    literal, ident = (
        "'{}'".format(dbname.replace("'", "''")),
        '"{}"'.format(dbname.replace('"', '""')),
    )
    admins = [(_with_path(url, "/postgres"), "")]
    if user != "postgres":
        owner = ' OWNER "{}"'.format(user.replace('"', '""'))
        admins.append((_with_path(url, "/postgres", user="postgres"), owner))
    error = ""
    for admin, owner in admins:
        cmd = [psql, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", admin, "-c"]
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
    how = f"started in {pg.start_seconds:.1f}s" if pg.start_seconds else "already running"
    log(f"PostgreSQL does not answer at {redact(url)}; throwaway server on 127.0.0.1:{pg.port} "
        f"under {pg.base_dir} ({how})")  # fmt: skip
    target = pg.url_for(unquote(urlsplit(url).path.lstrip("/")) or "videodrop")
    ensure_database(target)
    return target


def ensure_amqp(url: str, var: Path) -> str:
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
    how = f"started in {node.start_seconds:.1f}s" if node.start_seconds else "already running"
    log(f"RabbitMQ does not answer at {redact(url)}; throwaway node {node.node} on "
        f"127.0.0.1:{node.port} under {node.base_dir} ({how})")  # fmt: skip
    vhost = unquote(urlsplit(url).path[1:]) or "/"
    if vhost != "/":
        node.ctl("add_vhost", vhost)
        node.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    return node.url_for(vhost)
