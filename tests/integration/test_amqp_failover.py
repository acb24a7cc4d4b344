"""VIDEODROP_AMQP_URL with several URLs against the real broker, one of them a port nothing
listens on (a node that is down): publishers, consumers and `videodrop health` reach the
one that answers, whichever URL their connection starts at; with none answering, the
error names every URL and no password. The cluster itself: test_broker_cluster.py."""

from __future__ import annotations

import threading

import pytest

from api.ops.health import broker_answers
from testbed.waits import wait_for
from tests.integration.test_broker_batches import queued
from tests.integration.test_derive_pipeline import unreachable_url
from tests.integration.test_health_metrics import health, health_env  # noqa: F401 - fixture
from videodrop import logs
from videodrop.broker import BatchPublisher, Publisher, connect
from videodrop.consumer import Consumer
from videodrop.errors import BrokerUnavailable
from videodrop.messages import InboxFile, decode
from videodrop.settings import Settings


def with_a_dead_node(amqp_url: str) -> str:
    return f"{unreachable_url(amqp_url)},{amqp_url}"


def test_publishers_reach_the_node_that_answers(amqp_url: str, broker_prefix: str) -> None:
    settings = Settings(amqp_url=with_a_dead_node(amqp_url), amqp_prefix=broker_prefix)
    msgs = [InboxFile(f"cam/{i}.mp4", 1, i, 10, i, i) for i in range(4)]
    for msg in msgs[:2]:  # each a new connection: one starts at the dead node, one not
        publisher = Publisher(settings, name="test-failover")
        try:
            publisher.publish(msg)
        finally:
            publisher.close()
    for msg in msgs[2:]:
        batch = BatchPublisher(settings, name="test-failover-batch")
        try:
            assert batch.publish_batch([msg]) == [msg]
        finally:
            batch.close()
    assert wait_for(lambda: queued(settings) == 4, timeout=10, what="4 queued")


class Collect(Consumer):
    """Acks every message, keeping what it decoded."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, logs.get("test"), name="test-collect",
                         queue=settings.probe_queue)
        self.got: list[object] = []

    def decode_job(self, body: bytes) -> object:
        return decode(body)

    def process(self, msg: object) -> None:
        self.got.append(msg)


def test_consumers_reach_the_node_that_answers(amqp_url: str, broker_prefix: str) -> None:
    settings = Settings(amqp_url=with_a_dead_node(amqp_url), amqp_prefix=broker_prefix)
    msg = InboxFile("cam/one.mp4", 1, 2, 10, 3, 4)
    consumers = [Collect(settings) for _ in range(2)]  # two connections, two starting URLs
    stop = threading.Event()
    threads = [threading.Thread(target=c.run, args=(stop,)) for c in consumers]
    for thread in threads:
        thread.start()
    try:
        for consumer in consumers:
            assert consumer.connected.wait(30), "a consumer did not connect"
        publisher = Publisher(settings, name="test-failover")
        publisher.publish(msg)
        publisher.close()
        wait_for(lambda: sum(len(c.got) for c in consumers) == 1, timeout=30,
                 what="the message consumed")
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert [m for c in consumers for m in c.got] == [msg]


def test_no_node_answering_names_every_url_and_no_password(amqp_url: str) -> None:
    one = unreachable_url(amqp_url).replace("guest:guest@", "vd:s3cret@")
    dead = [one, f"{one.rsplit('/', 1)[0]}/another-vhost"]
    settings = Settings(amqp_url=",".join(dead))
    with pytest.raises(BrokerUnavailable) as caught:
        connect(settings, name="test-nothing")
    message = str(caught.value)
    assert "s3cret" not in message
    for url in dead:
        assert url.replace("s3cret", "***") in message


def test_health_checks_the_node_that_answers(health_env: dict[str, str]) -> None:  # noqa: F811
    url = health_env["VIDEODROP_AMQP_URL"]
    done = health({**health_env, "VIDEODROP_AMQP_URL": with_a_dead_node(url)}, "--role", "ingest")
    assert done.returncode == 0, done.stdout + done.stderr
    done = health({**health_env, "VIDEODROP_AMQP_URL": unreachable_url(url)}, "--role", "ingest")
    assert done.returncode == 1, done.stdout + done.stderr


def test_readiness_needs_one_node_that_answers(amqp_url: str) -> None:
    """/readyz's broker check."""
    dead = unreachable_url(amqp_url)
    assert broker_answers((dead, amqp_url)) == "ok"
    assert broker_answers((dead,)).startswith("unavailable: ")
