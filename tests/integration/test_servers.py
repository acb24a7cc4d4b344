"""The server fixtures are real and isolated (tests/servers.py, deploy/devstack/)."""

from __future__ import annotations

from typing import Any

import pika
import pika.exceptions
import psycopg
import pytest

from testbed.broker import amqp_names, delete_amqp_names
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
    assert amqp_names("p") == ["p", "p.probe", "p.probe.dead", "p.dead"]


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
