"""The server fixtures are real and isolated (tests/servers.py), and `python3 -m deploy.devstack
up|down` starts and stops throwaway servers that outlive it (deploy/devstack/)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import psycopg
import pytest

from testbed.broker import amqp_names, delete_amqp_names
from testbed.waits import wait_for
from tests.harness import REPO
from tests.servers import devstack
from videodrop.migrate import migrate


def test_session_database_is_fresh_empty_and_its_own(
    database_url: str, postgres_server_url: str
) -> None:
    with psycopg.connect(database_url) as conn:
        name = conn.execute("SELECT current_database()").fetchone()
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables"
            " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchone()
    assert name is not None and name[0].startswith("videodrop_test_")
    assert len(name[0]) == len("videodrop_test_") + 12
    assert tables == (0,)
    with psycopg.connect(postgres_server_url) as conn:
        same = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname = %s", (name[0],)
        ).fetchone()
    assert same == (1,)
    assert name[0] not in postgres_server_url


def test_a_tests_database_is_a_migrated_clone_of_the_closed_template(
    db_url: str, template_database: str
) -> None:
    assert migrate(db_url) == []  # every migration is in place already
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM videos").fetchone() == (0,)
    # nobody connects to the template, so that no stray session can make a clone fail
    with pytest.raises(psycopg.OperationalError, match="not currently accepting connections"):
        psycopg.connect(template_database).close()


def test_amqp_prefix_names_are_this_sessions(amqp_url: str, amqp_prefix: str) -> None:
    assert amqp_prefix.startswith("vdtest_") and len(amqp_prefix) == len("vdtest_") + 12
    queue = f"{amqp_prefix}.probe"
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = conn.channel()
        channel.queue_declare(queue, durable=True)
        channel.basic_publish("", queue, b"hello")
        assert _get(channel, queue) == b"hello"
    finally:
        conn.close()
    delete_amqp_names(amqp_url, amqp_prefix)
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="NOT_FOUND"):
            conn.channel().queue_declare(queue, passive=True)
    finally:
        conn.close()


def test_a_runs_broker_names_are_all_deleted(amqp_url: str, amqp_prefix: str) -> None:
    """Every exchange and queue the roles declare is deleted with the run's prefix: each
    one left behind is a quorum queue a test leaks on a shared RabbitMQ (the derive queues
    were, and a few thousand of them wedged this machine's broker)."""
    from videodrop import broker
    from videodrop.settings import Settings

    prefix = f"{amqp_prefix}_names"
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        broker.declare(conn.channel(), Settings(amqp_prefix=prefix))
    finally:
        conn.close()
    names = amqp_names(prefix)
    assert {f"{prefix}.derive", f"{prefix}.derive.dead", f"{prefix}.probe"} <= set(names)
    delete_amqp_names(amqp_url, prefix)
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        for name in names:
            for kind in ("queue_declare", "exchange_declare"):
                with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="NOT_FOUND"):
                    getattr(conn.channel(), kind)(name, passive=True)
    finally:
        conn.close()


def _get(channel: Any, queue: str, tries: int = 100) -> bytes | None:
    for _ in range(tries):
        _, _, body = channel.basic_get(queue, auto_ack=True)
        if body is not None:
            return bytes(body)
        channel.connection.sleep(0.02)
    return None


def test_throwaway_rabbitmq_keeps_durable_messages_across_restart(
    throwaway_rabbitmq: Any,
) -> None:
    node = throwaway_rabbitmq
    assert node.port != 5672 and not node.node.startswith("rabbit@")
    params = pika.URLParameters(node.url)
    conn = pika.BlockingConnection(params)
    channel = conn.channel()
    channel.confirm_delivery()
    channel.queue_declare("kept", durable=True)
    channel.queue_declare("echo")
    channel.basic_publish("", "echo", b"ping")
    assert _get(channel, "echo") == b"ping"
    persistent = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent)
    channel.basic_publish("", "kept", b"survivor", properties=persistent)
    conn.close()

    port = node.port
    node.stop()
    assert not devstack.amqp_answers(node.url, timeout=1)
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika.BlockingConnection(pika.URLParameters(f"{node.url}?connection_attempts=1"))

    node.start()
    assert node.port == port
    conn = pika.BlockingConnection(params)
    try:
        assert _get(conn.channel(), "kept") == b"survivor"
    finally:
        conn.close()


def test_throwaway_postgres_keeps_data_across_restart(throwaway_postgres: Any) -> None:
    server = throwaway_postgres
    assert server.port != 5432
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (note text)")
        conn.execute("INSERT INTO kept VALUES ('survivor')")
    server.stop()
    assert not devstack.postgres_answers(server.url, timeout=1)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(server.url, connect_timeout=2)
    server.restart()
    with psycopg.connect(server.url) as conn:
        assert conn.execute("SELECT note FROM kept").fetchall() == [("survivor",)]


# --- python3 -m deploy.devstack up|down: throwaway servers that outlive the command ---------


def _devstack(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The command as deploy/bootstrap.sh and `make services` run it; `-S`: no site-packages,
    so it must make do with the standard library (bootstrap runs it before .venv exists)."""
    return subprocess.run([sys.executable, "-S", "-m", "deploy.devstack", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=240, check=False)


def _exports(stdout: str) -> dict[str, str]:
    """{name: value} of `up`'s `export NAME=VALUE` lines."""
    return dict(word.split("=", 1) for word in shlex.split(stdout) if word != "export")


def _live(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def _group_live(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group `pgid`."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            fields = (proc / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(proc.name))
    return found


@pytest.fixture
def devstack_var() -> Iterator[tuple[Path, dict[str, str]]]:
    """A scratch VAR folder (under /tmp: the postgres OS user must reach it) and an
    environment whose URLs name free ports, so that `up` must start its own servers."""
    var = Path(tempfile.mkdtemp(prefix="vdstack-"))
    var.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIDEODROP_", "PG"))}
    env["VIDEODROP_DATABASE_URL"] = f"postgresql://127.0.0.1:{devstack.free_port()}/vd_up"
    env["VIDEODROP_AMQP_URL"] = f"amqp://guest:guest@127.0.0.1:{devstack.free_port()}/vd_up"
    try:
        yield var, env
    finally:
        _devstack("down", "--var", str(var), env=env)
        shutil.rmtree(var, ignore_errors=True)


def test_up_starts_detached_throwaway_servers_and_down_stops_them(
    devstack_var: tuple[Path, dict[str, str]],
) -> None:
    var, env = devstack_var
    if devstack.find_postgres_bindir() is None or devstack.find_rabbitmq_server() is None:
        pytest.fail(f"needs both servers' binaries: {devstack.PG_INSTALL} rabbitmq-server")
    up = _devstack("up", "--var", str(var), env=env)
    assert up.returncode == 0, up.stderr
    urls = _exports(up.stdout)
    assert set(urls) == {"VIDEODROP_DATABASE_URL", "VIDEODROP_AMQP_URL"}
    assert "throwaway server on 127.0.0.1" in up.stderr and "throwaway node vd-" in up.stderr
    # the command has ended; its servers answer, with the database and vhost the URLs name
    with psycopg.connect(urls["VIDEODROP_DATABASE_URL"], connect_timeout=5) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("vd_up",)
    assert urls["VIDEODROP_AMQP_URL"].endswith("/vd_up")
    pika.BlockingConnection(pika.URLParameters(urls["VIDEODROP_AMQP_URL"])).close()
    for kind, url in (("postgres", "VIDEODROP_DATABASE_URL"), ("amqp", "VIDEODROP_AMQP_URL")):
        assert _devstack("check", kind, urls[url], env=env).returncode == 0
        assert _devstack("check", kind, env=env).returncode == 1  # the configured URL: no one

    again = _devstack("up", "--var", str(var), env=env)  # reuses what runs
    assert again.returncode == 0 and _exports(again.stdout) == urls
    assert again.stderr.count("(already running)") == 2

    elsewhere = var / "unused"  # servers answer at the configured URLs: nothing is started
    answering = _devstack("up", "--var", str(elsewhere), env={**env, **urls})
    assert answering.returncode == 0 and _exports(answering.stdout) == urls
    assert answering.stderr.count("; using it") == 2 and list(elsewhere.iterdir()) == []

    postmaster = int((var / "pg/data/postmaster.pid").read_text().split()[0])
    node_group = json.loads((var / "rabbitmq/node.json").read_text())["pgid"]
    assert _live(postmaster) and _group_live(node_group)
    down = _devstack("down", "--var", str(var), env=env)
    assert down.returncode == 0, down.stderr
    assert "stopped the throwaway PostgreSQL" in down.stderr
    assert "stopped the throwaway RabbitMQ" in down.stderr
    assert not devstack.postgres_answers(urls["VIDEODROP_DATABASE_URL"], timeout=1)
    assert not devstack.amqp_answers(urls["VIDEODROP_AMQP_URL"], timeout=1)
    wait_for(lambda: not _live(postmaster), timeout=10, what="the postmaster to be gone")
    wait_for(lambda: not _group_live(node_group), timeout=10, what="the node's processes gone")
    assert (var / "pg/data").is_dir()  # kept for the next `up`; --purge deletes it
    assert _devstack("down", "--purge", "--var", str(var), env=env).returncode == 0
    assert not (var / "pg").exists() and not (var / "rabbitmq").exists()
