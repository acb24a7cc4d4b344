#!/usr/bin/env python3
"""Find or start the PostgreSQL and RabbitMQ servers videodrop needs (standard library only).

  python3 deploy/devstack.py up --var ./var     # prints `export VIDEODROP_..._URL=...` lines
  python3 deploy/devstack.py down --var ./var   # stops what `up` started (--purge: data too)
  python3 deploy/devstack.py check postgres|amqp [URL]   # exit 0 when the server answers

`up` keeps each server whose URL answers and otherwise starts a throwaway one from the local
binaries under VAR/pg or VAR/rabbitmq: detached, its state kept there so a second `up` reuses it.

Importable by path (the tests do): it puts its own directory on sys.path for its siblings
devstack_common.py, devstack_postgres.py and devstack_rabbitmq.py, and re-exports what they hold.
"""

from __future__ import annotations

import argparse
import getpass
import os
import shlex
import shutil
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from devstack_common import (
    PG_INSTALL,
    RABBITMQ_INSTALL,
    DevstackError,
    amqp_answers,
    find_postgres_bindir,
    find_rabbitmq_server,
    free_port,
    log,
    pg_tool,
    postgres_answers,
    redact,
    run,
)
from devstack_postgres import ThrowawayPostgres
from devstack_rabbitmq import ThrowawayRabbitMQ

__all__ = [
    "DEFAULT_AMQP_URL",
    "DEFAULT_DATABASE_URL",
    "DevstackError",
    "ThrowawayPostgres",
    "ThrowawayRabbitMQ",
    "amqp_answers",
    "ensure_amqp",
    "ensure_database",
    "ensure_postgres",
    "find_postgres_bindir",
    "find_rabbitmq_server",
    "free_port",
    "main",
    "postgres_answers",
]

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


def cmd_up(var: Path) -> int:
    var.mkdir(parents=True, exist_ok=True)
    exports, problems = [], []
    for name, default, ensure in (
        ("VIDEODROP_DATABASE_URL", DEFAULT_DATABASE_URL, ensure_postgres),
        ("VIDEODROP_AMQP_URL", DEFAULT_AMQP_URL, ensure_amqp),
    ):
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


def cmd_down(var: Path, purge: bool) -> int:
    if (var / "pg" / "throwaway.json").exists():
        ThrowawayPostgres(var / "pg").stop()
        log(f"stopped the throwaway PostgreSQL under {var / 'pg'}")
    if (var / "rabbitmq" / "node.json").exists():
        ThrowawayRabbitMQ(var / "rabbitmq").stop()
        log(f"stopped the throwaway RabbitMQ under {var / 'rabbitmq'}")
    for sub in ("pg", "rabbitmq") if purge else ():
        shutil.rmtree(var / sub, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Find or start videodrop's servers.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("up", "down"):
        sub = commands.add_parser(name)
        sub.add_argument("--var", type=Path, default=Path("var"), help="state directory")
        if name == "down":
            sub.add_argument("--purge", action="store_true", help="delete their data too")
    check = commands.add_parser("check", help="exit 0 when the server answers")
    check.add_argument("kind", choices=["postgres", "amqp"])
    check.add_argument("url", nargs="?")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            return cmd_up(args.var.absolute())
        if args.command == "down":
            return cmd_down(args.var.absolute(), args.purge)
        if args.kind == "postgres":
            url = args.url or os.environ.get("VIDEODROP_DATABASE_URL") or DEFAULT_DATABASE_URL
            return 0 if postgres_answers(url) else 1
        url = args.url or os.environ.get("VIDEODROP_AMQP_URL") or DEFAULT_AMQP_URL
        return 0 if amqp_answers(url) else 1
    except DevstackError as exc:
        log(str(exc))
        return 1


if __name__ == "__main__":
    sys.exit(main())
