"""Throwaway databases: each a clone of one migrated template, or migrated itself.

Migrating costs every migration's statements and a commit each; cloning a migrated
template (``CREATE DATABASE … TEMPLATE``) copies its files in one statement. A run makes
its template once (:func:`create_template`) and clones it for every test
(:func:`fresh_database` with ``template=``); the pattern of procrastinate's
``tests/conftest.py``.

PostgreSQL clones a database only while nobody else is connected to it, so a template is
closed to connections once migrated (``ALLOW_CONNECTIONS false``): no stray session can
make a clone fail. URLs are libpq URLs or conninfo strings; the server URL is any database
on the server whose user may create databases.
"""

from __future__ import annotations

import secrets
from typing import Any

import psycopg
from psycopg import conninfo, sql

from videodrop.migrate import migrate


def _name(url: str) -> str:
    return str(conninfo.conninfo_to_dict(url)["dbname"])


def _url(server_url: str, name: str) -> str:
    return conninfo.make_conninfo(server_url, dbname=name)


def create_template(server_url: str, prefix: str = "vdtemplate") -> str:
    """A new, migrated database on the server that accepts no connections: the URL of a
    template for :func:`fresh_database`. Drop it with :func:`drop_database`."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = _url(server_url, name)
    migrate(url)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false")
                     .format(sql.Identifier(name)))
    return url


def fresh_database(server_url: str, prefix: str = "vdtest", template: str | None = None
                   ) -> str:
    """A new, migrated database on the server behind ``server_url``: its URL.

    With ``template`` (a URL from :func:`create_template` on the same server) the database
    is a clone of it; without, it is created empty and migrated.
    """
    name = f"{prefix}_{secrets.token_hex(4)}"
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(_name(template)))
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(create)
    url = _url(server_url, name)
    if template is None:
        migrate(url)
    return url


def drop_database(server_url: str, url: str) -> None:
    """Drop the database of ``url`` (its sessions are ended first); a missing one is fine."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                     .format(sql.Identifier(_name(url))))


def rows(db: str, query: str, *params: object) -> list[tuple[Any, ...]]:
    """The rows of one query on the database of ``db``."""
    with psycopg.connect(db) as conn:
        return conn.execute(query, params).fetchall()
