"""The derive role's relay thread: publishes the jobs of requests that have none
(videodrop/outbox.py) every :data:`RELAY_SECONDS`, and keeps the backlog gauge."""

from __future__ import annotations

import threading
from typing import Any

from videodrop import broker, metrics, outbox
from videodrop.catalog import Catalog
from videodrop.errors import BrokerUnavailable, CatalogUnavailable
from videodrop.settings import Settings

RELAY_SECONDS = 1.0  # between two looks at the outbox
BACKLOG_SECONDS = 15.0  # between two counts of the pending requests
SWEEP_SECONDS = 5.0  # between two looks for transcodes whose job died


class Relay:
    def __init__(self, settings: Settings, catalog: Catalog, log: Any) -> None:
        self.settings = settings
        self.catalog = catalog
        self.log = log
        self.publisher = broker.Publisher(settings, name="videodrop-derive-relay")

    def run(self, stop: threading.Event) -> None:
        """Until ``stop``: relay, and count the backlog now and then. A part that is down
        is logged once per outage and tried again."""
        down: str | None = None
        since_count = BACKLOG_SECONDS
        since_sweep = SWEEP_SECONDS
        while not stop.is_set():
            try:
                if since_sweep >= SWEEP_SECONDS:
                    since_sweep = 0.0
                    orphans = self.catalog.sweep_transcodes()
                    if orphans:
                        self.log.warning("transcodes whose job died: published again",
                                         video_ids=orphans)
                sent = outbox.relay(self.catalog, self.publisher)
                if sent:
                    self.log.info("derive jobs published", requests=sent)
                if since_count >= BACKLOG_SECONDS:
                    self.count_backlog()
                    since_count = 0.0
                if down is not None:
                    self.log.info("relay resumed", was=down)
                    down = None
            except (BrokerUnavailable, CatalogUnavailable) as exc:
                if down is None:
                    self.log.warning("relay: part unavailable; jobs wait in the catalog",
                                     error=str(exc))
                down = type(exc).__name__
            stop.wait(RELAY_SECONDS)
            since_count += RELAY_SECONDS
            since_sweep += RELAY_SECONDS
            self.publisher.process_events()
        self.publisher.close()

    def count_backlog(self) -> None:
        counts = self.catalog.derivative_counts()
        metrics.DERIVE_RENDITION_BYTES.set(self.catalog.rendition_bytes())
        for kind in self.settings.derive:
            metrics.DERIVE_BACKLOG.labels(kind).set(counts.get((kind, "pending"), 0)
                                                    + counts.get((kind, "remaking"), 0))
