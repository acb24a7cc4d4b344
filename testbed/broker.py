"""The broker names of a run, all derived from its VIDEODROP_AMQP_PREFIX."""

from __future__ import annotations

import contextlib

import pika
import pika.exceptions

from videodrop.settings import Settings


def amqp_names(prefix: str) -> list[str]:
    """The exchange and queue names the app derives from VIDEODROP_AMQP_PREFIX (every one
    ``videodrop.broker.declare`` declares: a name left out leaks a quorum queue a run)."""
    return list(Settings(amqp_prefix=prefix).amqp_names)


def delete_amqp_names(url: str, prefix: str) -> None:
    """Delete the queues and exchanges named after ``prefix``; missing ones are fine."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        for name in amqp_names(prefix):
            for delete in ("queue_delete", "exchange_delete"):
                with contextlib.suppress(pika.exceptions.ChannelClosedByBroker):
                    getattr(conn.channel(), delete)(name)
    finally:
        conn.close()
