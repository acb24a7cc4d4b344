"""Telling the probers about received uploads, without ever losing one.

``ProbeRequests.publish(video_id)`` sends a persistent ``ProbeVideo`` with publisher
confirms on a connection of its own, closed right after. pika is not thread-safe and a
BlockingConnection only serves its heartbeats while it is used: a connection kept per
gunicorn thread would sit idle between uploads until the broker drops it for missed
heartbeats. An upload is rare and large; one connection handshake per upload
is nothing next to it. A second try follows a failed first one.

If the broker is really down the upload still succeeds (the row is ``processing``) and the
id is kept for the housekeeping thread, which, once a round (``interval`` seconds):

* publishes the ids this process could not publish;
* publishes again uploads that no prober has started for ``unpublished_after`` — a message
  lost with a process that died between commit and publish; a duplicate is harmless (the
  prober takes a video once: advisory lock, then status check);
* fails uploads left ``uploading`` without a heartbeat for ``stale_after`` (the process
  that received them died) and removes their files: the staged file (file store), or on
  an object store the object (completed just before the process died) and the open
  multipart uploads under the row's key (aborted, one ``stale upload aborted`` line each);
* on an object store, aborts every multipart upload older than ``abort_after`` seconds
  (:data:`~videodrop.storage.STALE_UPLOAD_SECONDS`: a put of a role that died, an upload
  or a derivative), in its first round and every ``abort_every`` seconds after;
* on an object store, deletes the leftovers noted more than ``leftover_after`` ago
  (``store_leftovers``, migration 0023: the first key of an upload moved by a late
  ``source_id``, a delete the store failed) that no row names, one ``leftover object
  removed`` line each, and forgets them.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta
from typing import Any

from api.uploads import staging
from videodrop.broker import Publisher
from videodrop.catalog import Catalog, Video
from videodrop.errors import BrokerUnavailable, CatalogUnavailable
from videodrop.messages import ProbeVideo
from videodrop.settings import Settings
from videodrop.storage import (
    STALE_UPLOAD_SECONDS,
    FileStore,
    MediaStore,
    StoreError,
    StoreUnavailable,
    from_settings,
)


class ProbeRequests:
    def __init__(self, settings: Settings, catalog: Catalog, log: Any, *,
                 interval: float = 30.0, stale_after: timedelta = timedelta(minutes=5),
                 unpublished_after: timedelta = timedelta(minutes=10),
                 abort_after: float = STALE_UPLOAD_SECONDS, abort_every: float = 900.0,
                 leftover_after: timedelta = timedelta(seconds=STALE_UPLOAD_SECONDS),
                 media: MediaStore | None = None) -> None:
        """``media``: the process's media store (default: the one the settings name)."""
        self.settings = settings
        self.media = media if media is not None else from_settings(settings)
        # where uploads are staged (a store of local files); None on s3, which takes none
        self.media_root = self.media.root if isinstance(self.media, FileStore) else None
        self.abort_after = abort_after
        self.abort_every = abort_every
        # a noted key is deleted only this long after its note: a live move reads the old
        # object for as long as its copy takes
        self.leftover_after = leftover_after
        self._next_abort = 0.0  # time.monotonic() of the next store-wide sweep (s3)
        self.catalog = catalog
        self.log = log
        self.interval = interval
        self.stale_after = stale_after
        self.unpublished_after = unpublished_after
        self._lock = threading.Lock()
        self._pending: set[int] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- from request threads -------------------------------------------------------------

    def publish(self, video_id: int) -> bool:
        """True once the broker has confirmed the message; False if it is deferred."""
        name = f"videodrop-api-{threading.current_thread().name}"
        error: BrokerUnavailable | None = None
        for _ in range(2):
            publisher = Publisher(self.settings, name=name)
            try:
                publisher.publish(ProbeVideo(video_id=video_id))
                return True
            except BrokerUnavailable as exc:
                error = exc
            finally:
                publisher.close()
        self.log.warning("publish deferred: broker unavailable", video_id=video_id,
                         error=str(error))
        with self._lock:
            self._pending.add(video_id)
        return False

    def pending(self) -> set[int]:
        with self._lock:
            return set(self._pending)

    # --- housekeeping ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the housekeeping thread (once per process, after gunicorn has forked)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="api-housekeeping",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        # Spread the rounds of several workers; the first comes soon after start.
        while not self._stop.wait(self.interval * random.uniform(0.5, 1.0)):
            publisher = Publisher(self.settings, name="videodrop-api-housekeeping")
            try:
                self.run_once(publisher)
            except Exception as exc:  # keep the thread alive whatever happens
                self.log.warning("housekeeping round failed", error=repr(exc))
            finally:
                publisher.close()  # connects only if there was something to publish

    def run_once(self, publisher: Publisher) -> dict[str, int]:
        with self._lock:
            pending, self._pending = self._pending, set()
        counts = {"republished": 0, "stale": 0}
        try:
            for video in self.catalog.fail_stale_uploads(self.stale_after):
                self._remove_upload(video)
                counts["stale"] += 1
                self.log.warning("upload interrupted (no heartbeat)", video_id=video.id)
            pending |= set(self.catalog.claim_unpublished_uploads(self.unpublished_after))
        except CatalogUnavailable as exc:
            self.log.warning("housekeeping: catalog unavailable", error=str(exc))
        if self.media_root is None:  # an object store's unfinished puts, and leftovers
            counts["aborted"] = self._abort_stale()
            counts["leftovers"] = self._remove_leftovers()
        for done, video_id in enumerate(sorted(pending)):
            try:
                publisher.publish(ProbeVideo(video_id=video_id))
                counts["republished"] += 1
            except BrokerUnavailable:
                with self._lock:
                    self._pending |= set(sorted(pending)[done:])
                break
        if any(counts.values()):
            self.log.info("housekeeping", **counts)
        return counts

    def _remove_leftovers(self) -> int:
        """Delete the objects of the due leftovers (:meth:`Catalog.due_leftovers`) and
        forget them; how many. A store or catalog that fails leaves the rest for the next
        round."""
        removed = 0
        try:
            for key, video_id in self.catalog.due_leftovers(self.leftover_after):
                self.media.delete(key)
                self.catalog.forget_leftover(key)
                removed += 1
                self.log.info("leftover object removed", key=key, video_id=video_id)
        except (CatalogUnavailable, StoreUnavailable, StoreError) as exc:
            self.log.warning("housekeeping: leftovers not removed", error=str(exc))
        return removed

    def _remove_upload(self, video: Video) -> None:
        """What the dead upload of ``video`` (a row just failed) left in the store."""
        if self.media_root is not None:
            staging.remove_files(self.media_root, video)
            return
        try:  # an object completed before the row moved on; then an unfinished put
            self.media.delete(video.stored_path)
            # the row's own folder (videos/<source_id>/: one row's, media.source_folder)
            self.media.abort_stale_uploads(0, prefix=video.stored_path.rpartition("/")[0] + "/")
        except (StoreUnavailable, StoreError) as exc:  # the object: a leftover, later
            self.log.warning("housekeeping: upload leftovers not removed",
                             video_id=video.id, error=str(exc))

    def _abort_stale(self) -> int:
        """The store-wide sweep of an object store's unfinished puts, when it is due."""
        if time.monotonic() < self._next_abort:
            return 0
        self._next_abort = time.monotonic() + self.abort_every
        try:
            return len(self.media.abort_stale_uploads(self.abort_after))
        except (StoreUnavailable, StoreError) as exc:
            self.log.warning("housekeeping: stale uploads not swept", error=str(exc))
            return 0
