"""Real PostgreSQL and RabbitMQ for the tests: a pytest plugin (tests/conftest.py lists it).

Where each server comes from, first match wins:

1. ``VIDEODROP_TEST_DATABASE_URL`` / ``VIDEODROP_TEST_AMQP_URL``: a server URL (it must answer);
2. the machine's own server on 127.0.0.1:5432 (user postgres) / 127.0.0.1:5672 (guest);
3. testcontainers, when a Docker engine answers;
4. a throwaway server started from the local binaries (deploy/devstack/).

``VIDEODROP_TEST_SERVERS=throwaway`` skips 2 and 3. Each session gets a fresh database
``videodrop_test_<hex>``, a migrated template ``vdtemplate_<hex>`` that each test's
database is cloned from (both dropped at the end), and AMQP names under the prefix
``vdtest_<hex>`` (deleted at the end). A server that cannot be had fails the tests, in CI
and out of it, with a message that says how to install it: never a skip.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote, urlsplit, urlunsplit

import pika
import pika.exceptions
import psycopg
import pytest
from psycopg import sql

from deploy import devstack
from testbed.broker import delete_amqp_names
from testbed.databases import create_template, drop_database

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_AMQP = "amqp://guest:guest@127.0.0.1:5672/%2F"




def with_dbname(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(dbname), parts.query, ""))


def _missing(what: str, install: str, tried: list[str], local_only: bool = False) -> NoReturn:
    ci = " (CI: a missing server is a failure, never a skip)" if os.environ.get("CI") else ""
    env = f"VIDEODROP_TEST_{'DATABASE' if what == 'PostgreSQL' else 'AMQP'}_URL"
    how = f"sudo {install}" if local_only else f"sudo {install}; or run Docker; or set {env}"
    pytest.fail(
        f"no {what} for the tests{ci}. Tried:\n  - " + "\n  - ".join(tried) + "\n"
        f"Install it: {how}",
        pytrace=False,
    )


def _auto() -> bool:
    return os.environ.get("VIDEODROP_TEST_SERVERS", "auto") != "throwaway"


def _unused(source: str, reason: str) -> str:
    return f"{source}: {reason if _auto() else 'skipped (VIDEODROP_TEST_SERVERS=throwaway)'}"


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


def _postgres_error(url: str) -> str | None:
    """Why we cannot create databases as `url`'s user, or None when we can."""
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
    except psycopg.Error as exc:
        return str(exc).strip()
    return None if row and row[0] else "the user may not create databases"


def _amqp_error(url: str) -> str | None:
    try:
        pika.BlockingConnection(pika.URLParameters(url)).close()
    except pika.exceptions.AMQPError as exc:
        return repr(exc)
    return None


def _container(kind: str) -> Any:
    """A testcontainers container (not started) for `kind`: postgres or rabbitmq."""
    if kind == "postgres":
        try:
            from testcontainers.community.postgres import PostgresContainer
        except ImportError:  # testcontainers < 4.11
            from testcontainers.postgres import PostgresContainer
        return PostgresContainer("postgres:16-alpine")
    try:
        from testcontainers.community.rabbitmq import RabbitMqContainer
    except ImportError:
        from testcontainers.rabbitmq import RabbitMqContainer
    return RabbitMqContainer("rabbitmq:3.13-alpine")


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A PostgreSQL server URL whose user may create databases (see the module docstring)."""
    tried: list[str] = []
    if env_url := os.environ.get("VIDEODROP_TEST_DATABASE_URL"):
        if error := _postgres_error(env_url):
            pytest.fail(
                f"VIDEODROP_TEST_DATABASE_URL={env_url} does not work: {error}", pytrace=False
            )
        yield env_url
        return
    if _auto() and devstack.postgres_answers(LOCAL_POSTGRES):
        if not (error := _postgres_error(LOCAL_POSTGRES)):
            yield LOCAL_POSTGRES
            return
        tried.append(f"{LOCAL_POSTGRES}: {error}")
    else:
        tried.append(_unused(LOCAL_POSTGRES, "nothing answers"))
    if _auto() and _docker_answers():
        with _container("postgres") as container:
            yield container.get_connection_url(driver=None)
        return
    tried.append(_unused("testcontainers", "no Docker engine answers"))
    if devstack.find_postgres_bindir() is None:
        tried.append("a throwaway server: no PostgreSQL server binaries (initdb, pg_ctl)")
        _missing("PostgreSQL", devstack.PG_INSTALL, tried)
    base = tempfile.mkdtemp(prefix="vdpg-")  # not tmp_path: the postgres user must reach it
    try:
        with devstack.ThrowawayPostgres(base, fsync=False) as server:
            yield server.url
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty database for this test session, dropped at its end."""
    name = f"videodrop_test_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield with_dbname(postgres_server_url, name)
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        conn.execute(drop.format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def template_database(database_url: str) -> Iterator[str]:
    """This session's migrated template (its URL): each test's database is a clone of it
    (testbed.databases). It accepts no connections; it is dropped at the session's end."""
    url = create_template(database_url)
    yield url
    drop_database(database_url, url)


@pytest.fixture(scope="session")
def amqp_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A RabbitMQ URL for this session (isolate with `amqp_prefix`)."""
    tried: list[str] = []
    if env_url := os.environ.get("VIDEODROP_TEST_AMQP_URL"):
        if error := _amqp_error(env_url):
            pytest.fail(f"VIDEODROP_TEST_AMQP_URL={env_url} does not work: {error}", pytrace=False)
        yield env_url
        return
    if _auto() and devstack.amqp_answers(LOCAL_AMQP):
        if not (error := _amqp_error(LOCAL_AMQP)):
            yield LOCAL_AMQP
            return
        tried.append(f"{LOCAL_AMQP}: {error}")
    else:
        tried.append(_unused(LOCAL_AMQP, "nothing answers"))
    if _auto() and _docker_answers():
        with _container("rabbitmq") as container:
            host, port = container.get_container_host_ip(), container.get_exposed_port(5672)
            yield f"amqp://guest:guest@{host}:{port}/%2F"
        return
    tried.append(_unused("testcontainers", "no Docker engine answers"))
    if devstack.find_rabbitmq_server() is None:
        tried.append("a throwaway node: no rabbitmq-server")
        _missing("RabbitMQ", devstack.RABBITMQ_INSTALL, tried)
    with devstack.ThrowawayRabbitMQ(tmp_path_factory.mktemp("rabbitmq")) as node:
        yield node.url


@pytest.fixture(scope="session")
def amqp_prefix(amqp_url: str) -> Iterator[str]:
    """This session's VIDEODROP_AMQP_PREFIX; its exchanges and queues are deleted at the end."""
    prefix = f"vdtest_{secrets.token_hex(6)}"
    yield prefix
    delete_amqp_names(amqp_url, prefix)


@pytest.fixture
def throwaway_rabbitmq(tmp_path: Path) -> Iterator[Any]:
    """A started private RabbitMQ node (devstack.ThrowawayRabbitMQ) to stop and restart."""
    if devstack.find_rabbitmq_server() is None:
        tried = ["a throwaway node: no rabbitmq-server"]
        _missing("RabbitMQ", devstack.RABBITMQ_INSTALL, tried, local_only=True)
    with devstack.ThrowawayRabbitMQ(tmp_path / "rabbitmq") as node:
        yield node


@pytest.fixture
def throwaway_postgres() -> Iterator[Any]:
    """A started private PostgreSQL (devstack.ThrowawayPostgres) to stop and restart."""
    if devstack.find_postgres_bindir() is None:
        tried = ["a throwaway server: no PostgreSQL server binaries (initdb, pg_ctl)"]
        _missing("PostgreSQL", devstack.PG_INSTALL, tried, local_only=True)
    base = tempfile.mkdtemp(prefix="vdpg-")  # not tmp_path: the postgres user must reach it
    try:
        with devstack.ThrowawayPostgres(base, fsync=False) as server:
            yield server
    finally:
        shutil.rmtree(base, ignore_errors=True)
