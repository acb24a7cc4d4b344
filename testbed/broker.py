"""The broker names of a run, all derived from its VIDEODROP_AMQP_PREFIX."""

from __future__ import annotations

import contextlib

import pika
import pika.exceptions

from videodrop.brokerurls import split_amqp_urls
from videodrop.settings import Settings


def amqp_names(prefix: str) -> list[str]:
    """The exchange and queue names the app derives from VIDEODROP_AMQP_PREFIX (every one
    ``videodrop.broker.declare`` declares: a name left out leaks a quorum queue a run)."""
    return list(Settings(amqp_prefix=prefix).amqp_names)


def amqp_parameters(url: str) -> list[pika.URLParameters]:
    """pika's parameters of each URL of ``url`` (a VIDEODROP_AMQP_URL: one URL or several,
    comma-separated), in its order: a connection to the first that answers."""
    return [pika.URLParameters(u) for u in split_amqp_urls(url)]


def delete_amqp_names(url: str, prefix: str) -> None:
    """Delete the queues and exchanges named after ``prefix``; missing ones are fine."""
    conn = pika.BlockingConnection(amqp_parameters(url))
    try:
        for name in amqp_names(prefix):
            for delete in ("queue_delete", "exchange_delete"):
                with contextlib.suppress(pika.exceptions.ChannelClosedByBroker):
                    getattr(conn.channel(), delete)(name)
    finally:
        conn.close()
