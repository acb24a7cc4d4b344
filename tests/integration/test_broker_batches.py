"""videodrop.broker.BatchPublisher against a real RabbitMQ: a batch is confirmed and
queued, counted by the broker; its one reach into pika's internals (wrapped_channel) still
finds what it needs."""

from __future__ import annotations

import pika
import pika.channel
import pytest

from testbed.waits import wait_for
from videodrop.broker import BatchPublisher, connect, wrapped_channel
from videodrop.messages import InboxFile
from videodrop.settings import Settings


def queued(settings: Settings) -> int:
    """Messages ready in the probe queue, as the broker counts them."""
    conn = connect(settings, name="test-count")
    try:
        ok = conn.channel().queue_declare(settings.probe_queue, passive=True)
        return int(ok.method.message_count)
    finally:
        conn.close()


def test_a_batch_is_confirmed_and_queued(amqp_url: str, broker_prefix: str) -> None:
    settings = Settings(amqp_url=amqp_url, amqp_prefix=broker_prefix)
    publisher = BatchPublisher(settings, name="test-batch")
    try:
        # more than 256: the publisher also takes confirms while it is still sending
        msgs = [InboxFile(f"cam/{i}.mp4", 1, i, 10, i, i) for i in range(600)]
        assert publisher.publish_batch(msgs) == msgs
        assert publisher.publish_batch(msgs[:5]) == msgs[:5]  # the same channel, again
    finally:
        publisher.close()
    assert wait_for(lambda: queued(settings) == 605, timeout=10, what="605 queued")


def test_the_wrapped_channel_is_pikas(amqp_url: str, broker_prefix: str) -> None:
    """The one private attribute of pika videodrop reads: this fails when pika moves it."""
    settings = Settings(amqp_url=amqp_url, amqp_prefix=broker_prefix)
    conn = connect(settings, name="test-wrapped")
    try:
        channel = conn.channel()
        wrapped = wrapped_channel(channel)
        assert isinstance(wrapped, pika.channel.Channel)
        assert wrapped.channel_number == channel.channel_number
    finally:
        conn.close()
    with pytest.raises(TypeError, match="BatchPublisher needs it"):
        wrapped_channel(object())  # type: ignore[arg-type]


@pytest.mark.timeout(60)
def test_the_wait_for_confirms_ends_when_they_come(amqp_url: str, broker_prefix: str) -> None:
    """A confirm ends the publisher's wait at once, not at the end of its poll: with a
    poll of 10 minutes the batches still come back (pytest-timeout fails the test when
    the wait runs to the poll's end, as it did: every published file paid 10 ms)."""
    settings = Settings(amqp_url=amqp_url, amqp_prefix=broker_prefix)
    publisher = BatchPublisher(settings, name="test-poll", confirm_timeout=900, poll=600)
    try:
        for i in range(3):
            msg = InboxFile(f"cam/poll-{i}.mp4", 1, i, 10, i, i)
            assert publisher.publish_batch([msg]) == [msg]
    finally:
        publisher.close()
