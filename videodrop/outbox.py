"""The derive jobs' outbox relay: requests of derivatives that no job was published for
(rows written in the transaction that made their video ready, migration 0009) become
``DeriveVideo`` messages on the derive queue. Run by the derive role at start and every
few seconds, and by ``videodrop requeue --derivatives``.

Publishing and marking are not one transaction with the broker: a relay that dies between
the broker's confirm and its commit publishes those jobs again next time. A job is
idempotent (the derive worker makes only what is still pending, under a per-video lock),
so the cost of that is one duplicate message."""

from __future__ import annotations

from videodrop.broker import Publisher
from videodrop.catalog import Catalog
from videodrop.messages import DeriveVideo, encode

TRANSCODE_KEY = "transcode"  # routing key of the transcode queue (Settings.job_queues)

BATCH = 500  # requests read (and locked) per transaction


def relay(catalog: Catalog, publisher: Publisher) -> int:
    """Publish a job for every request that has none; the number of requests published.
    :class:`~videodrop.errors.BrokerUnavailable` or
    :class:`~videodrop.errors.CatalogUnavailable` when a part is down (what was
    published before it is marked)."""

    def publish(video_id: int, kinds: tuple[str, ...], wanted: bool) -> None:
        msg = DeriveVideo(video_id=video_id, kinds=kinds)
        if wanted:  # someone waits for its rendition: the transcode queue (derive/transcoder.py)
            publisher.publish_body(encode(msg), TRANSCODE_KEY)
        else:
            publisher.publish(msg)

    total = 0
    while True:
        sent = catalog.relay_derivatives(publish, limit=BATCH)
        total += sent
        if sent < BATCH:
            return total
