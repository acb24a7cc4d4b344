"""The timeline's metrics on the API's ``/metrics`` (docs/operations.md, docs/timeline.md),
read from the catalog when scraped, at most once every :data:`REFRESH` seconds per worker:

- ``videodrop_origin_last_recording_timestamp_seconds{origin}``: the Unix time the origin's
  last ready recording ended (``time() - … > 600``: a camera silent for ten minutes);
- ``videodrop_origin_gaps_24h{origin}``: the gaps between its recordings that ended in the
  last 24 hours, counted as the timeline counts them (its gap tolerance).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from datetime import timedelta

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from videodrop.catalog import Catalog, CatalogUnavailable
from videodrop.catalog.timeline import OriginActivity
from videodrop.origins import OriginRules
from videodrop.tokens import utcnow

REFRESH = 15.0  # seconds a reading is served again
WINDOW = timedelta(hours=24)
LOOKBACK = timedelta(hours=6)  # recordings started this long before the window count as cover


class OriginMetrics:
    """A collector of the two families above."""

    def __init__(self, catalog: Catalog, origins: OriginRules) -> None:
        self.catalog = catalog
        self.origins = origins
        self._lock = threading.Lock()
        self._read: tuple[float, list[OriginActivity]] | None = None

    def _activity(self) -> list[OriginActivity]:
        with self._lock:
            now = time.monotonic()
            if self._read is None or now - self._read[0] >= REFRESH:
                tolerances = {k: r.gap_tolerance for k, r in self.origins.named.items()}
                found = self.catalog.origin_activity(utcnow() - WINDOW, tolerances,
                                                     self.origins.default.gap_tolerance,
                                                     LOOKBACK)
                self._read = (now, found)
            return self._read[1]

    def collect(self) -> Iterable[Metric]:
        last = GaugeMetricFamily(
            "videodrop_origin_last_recording_timestamp_seconds",
            "Unix time the origin's last ready recording ended (its wall-clock end).",
            labels=["origin"])
        gaps = GaugeMetricFamily(
            "videodrop_origin_gaps_24h",
            "Gaps between the origin's recordings that ended in the last 24 hours (at least"
            " its gap tolerance long).", labels=["origin"])
        try:
            activity = self._activity()
        except CatalogUnavailable:
            activity = []  # the database's absence shows on /readyz; no stale values here
        for one in activity:
            last.add_metric([one.origin], one.last_end.timestamp())
            gaps.add_metric([one.origin], one.gaps)
        return [last, gaps]
