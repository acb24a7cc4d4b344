"""The prober's consumer (videodrop/consumer.py: a connection of its own, prefetch 1,
ack after the commit): claim, store, probe and record each file, and request its
derivatives in the transaction that makes it ready."""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from prober import spool, store
from prober.ffprobe import FFprobeMissing
from prober.inputs import ProbeInput
from prober.probe import ProbeResult
from videodrop import inboxid, media, metrics
from videodrop.catalog import Catalog, ProbeOutcome, Video
from videodrop.consumer import Consumer
from videodrop.errorcodes import ErrorCode
from videodrop.errors import CatalogUnavailable, StorageFull, TransientFileError
from videodrop.inboxpolicy import InboxPolicy
from videodrop.messages import BadMessage, DeriveVideo, InboxFile, ProbeVideo, decode
from videodrop.origins import OriginRules
from videodrop.recording import recording_of
from videodrop.settings import Settings
from videodrop.storage import (
    FileStore,
    MediaStore,
    StoreRefused,
    from_settings,
    local_root,
    read_chunks,
)
from videodrop.tokens import token_prefix

Prober = Callable[[Path | ProbeInput], ProbeResult]


class Worker(Consumer):
    # Worth waiting for: the database comes back; a file turns readable; ffprobe is
    # reinstalled; the object store answers (StoreUnavailable is a TransientFileError) or
    # takes our credentials again. A database outage, a full media store and a store that
    # refuses us are waited out indefinitely (nothing could be recorded or stored
    # meanwhile, and the file is safe in the inbox or the spool).
    TRANSIENT = (CatalogUnavailable, TransientFileError, FFprobeMissing, OSError,
                 StoreRefused)
    CONTEXT_KEYS = ("delivery", "video_id", "source_id", "path", "token")

    def __init__(self, settings: Settings, catalog: Catalog, prober: Prober, log: Any, *,
                 name: str = "prober", media: MediaStore | None = None) -> None:
        """``media``: the process's media store (default: the one the settings name)."""
        super().__init__(settings, log, name=name, queue=settings.probe_queue)
        self.catalog = catalog
        self.prober = prober
        self.inbox = settings.inbox.resolve()
        self.policy = InboxPolicy.from_settings(settings)
        self.media = media if media is not None else from_settings(settings)
        # Where claimed files go on this machine: the file store's folder, or, for a store
        # without local files (s3), the spool in the inbox (prober/spool.py), from which
        # each is put into the store once probed.
        self.spool: Path | None = None
        if isinstance(self.media, FileStore):
            self.media_root = local_root(self.media).resolve()
        else:
            self.spool = self.media_root = spool.spool_root(self.inbox)
        self.origins = OriginRules.load(settings.origins_file)
        self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-sha")

    def shutdown(self) -> None:
        self._hasher.shutdown(wait=False)

    def decode_job(self, body: bytes) -> InboxFile | ProbeVideo:
        msg = decode(body)
        if isinstance(msg, DeriveVideo):
            raise BadMessage("a derive job on the probe queue")
        return msg

    def is_outage(self, exc: BaseException) -> bool:
        return isinstance(exc, CatalogUnavailable | StorageFull | StoreRefused)

    def record_failure(self, msg: InboxFile | ProbeVideo, exc: Exception) -> None:
        if isinstance(msg, ProbeVideo):
            video = self.catalog.by_id(msg.video_id)
        else:
            video = self.catalog.by_claim(msg)
        if video is not None:
            self.catalog.mark_failed(video.id, f"internal error: {exc!r}"[:500],
                                     ErrorCode.INTERNAL)

    # --- the work ---------------------------------------------------------------------

    def process(self, msg: InboxFile | ProbeVideo) -> None:
        """The work of one message: claim an inbox file (or find the row of a video id),
        then, under the row's processing lock, probe it unless it is done already (a
        ``force`` ProbeVideo probes again). Raises what :data:`TRANSIENT` names for the
        caller to retry."""
        if isinstance(msg, InboxFile):
            structlog.contextvars.bind_contextvars(path=media.display(msg.path))
            try:
                video = claim(self.catalog, self.inbox, self.media_root, msg, self.policy)
            except store.Refused as exc:  # left in the inbox, like the ingest's refusals
                metrics.CLAIMS_REFUSED.labels(exc.refusal.code).inc()
                self.log.warning("refused", reason=exc.refusal.reason, code=exc.refusal.code)
                return
            except ForeignMessage as exc:
                metrics.FOREIGN_MESSAGES.inc()
                self.log.error("another inbox's message: hosts with inboxes of their own need"
                               " a VIDEODROP_AMQP_PREFIX each (docs/several-hosts.md); the"
                               " file waits for its host's rescan", inbox=msg.inbox,
                               this_inbox=exc.here or None)
                return
            if video is None:
                self.log.info("stale message: file changed or gone before claim")
                return
            force = False
        else:
            found = self.catalog.by_id(msg.video_id)
            if found is None:
                self.log.info("no such video", video_id=msg.video_id)
                return
            video, force = found, msg.force
        structlog.contextvars.bind_contextvars(video_id=video.id, source_id=video.source_id,
                                               token=token_prefix(video.access_token))
        if video.status == "uploading":
            self.log.info("still uploading; the upload will publish again")
            return
        with self.catalog.processing_lock(video.id) as locked:
            if not locked:
                self.log.info("duplicate: another worker is probing this video")
                return
            current = self.catalog.by_id(video.id)
            if current is None:
                return
            if current.status == "expired":  # a tombstone: retention removed its files
                self.log.info("expired: its files are gone; nothing to probe",
                              expired_reason=current.expired_reason)
                return
            if current.status in {"ready", "failed"} and not force:
                stored = self._ensure_stored(current)
                if not stored and current.status == "ready":
                    self._mark_missing(current)
                    return
                self.log.info("already done", status=current.status)
                return
            self.probe_and_finish(current)

    def _ensure_stored(self, video: Video) -> bool:
        """Whether the stored file of a ``ready``/``failed`` row is there, finishing what a
        crash left: an inbox file still in the inbox moves in (prober/store.py); on s3,
        a spool file left after the commit is removed once its object is there, or put
        when it is not (verified against the row's size and sha256)."""
        local = store.ensure_stored(self.inbox, self.media_root / video.stored_path,
                                    video.claim())
        if self.spool is None:
            return local
        path = self.spool / video.stored_path
        if self.media.exists(video.stored_path):
            if local:
                spool.discard(self.spool, path)
            return True
        if not local or video.size is None or video.sha256 is None:
            return False
        spool.put_spooled(self.media, video.stored_path, path, size=video.size,
                          sha256=video.sha256, retried=True, log=self.log)
        spool.discard(self.spool, path)
        return True

    def _put_spooled(self, video: Video, path: Path, size: int) -> str:
        """Put the spool file ``path`` of ``video`` (``size`` bytes, as claimed) into the
        store; the SHA-256 of the bytes sent, which the row then records (the store checks
        each part's CRC32 and the size before it completes the object)."""
        stored = spool.put_spooled(self.media, video.stored_path, path, size=size, sha256=None,
                                   retried=video.attempts > 1, log=self.log)
        return stored.sha256

    def _object_sha256(self, video: Video) -> str:
        """The SHA-256 of the object of ``video`` (the row's, when it has one: an object is
        never rewritten), read as a stream: no local copy."""
        if video.sha256 is not None:
            return video.sha256
        digest = hashlib.sha256()
        for chunk in read_chunks(self.media.open(video.stored_path)):
            digest.update(chunk)
        return digest.hexdigest()

    def _mark_missing(self, video: Video) -> Video:
        """The stored file is gone: the row becomes ``failed`` (``missing_file``), a ready
        one included, and the log line says what the row now holds."""
        done = self.catalog.mark_missing(video.id, "stored file is missing")
        status = done.status if done is not None else video.status
        self.log.error("probe", status=status, error="stored file is missing",
                       error_code=ErrorCode.MISSING_FILE.value if done is not None else None,
                       was=video.status)
        metrics.PROBES.labels(outcome=status).inc()
        return done or video

    def probe_and_finish(self, video: Video) -> Video:
        """Probe and hash the stored file of ``video`` (the caller holds its processing
        lock) and finish its row ``ready`` or ``failed`` (``Catalog.finish_processing``);
        the row as it then is, or ``video`` when the row was deleted meanwhile. A missing
        stored file fails the row (``missing_file``)."""
        t0 = time.perf_counter()
        local = store.ensure_stored(self.inbox, self.media_root / video.stored_path,
                                    video.claim())
        if not local and (self.spool is None or not self.media.exists(video.stored_path)):
            return self._mark_missing(video)
        started = self.catalog.start_processing(video.id)
        if started is None:
            self.log.info("deleted before its probe; nothing to do")
            return video
        video = started
        path = self.media_root / video.stored_path
        t1 = time.perf_counter()
        spooled = self.spool is not None and local
        size = path.stat().st_size if local else 0
        if spooled:  # the put hashes what it sends: durable and verified before the row says so
            digest = self._hasher.submit(self._put_spooled, video, path, size)
            target: Path | ProbeInput = path
        elif local:
            digest = self._hasher.submit(store.sha256_of, path)
            target = path
        else:  # an object already in the s3 store (an upload): read where it lies
            target = ProbeInput.of_object(self.media, video.stored_path,
                                          self.settings.probe_timeout + 60)
            size = target.size
            digest = self._hasher.submit(self._object_sha256, video)
        with metrics.PROBES_IN_PROGRESS.track_inprogress():
            try:
                result = self.prober(target)
            except BaseException:
                with contextlib.suppress(Exception):  # no second put of the key meanwhile
                    digest.result()
                raise
            t2 = time.perf_counter()
            sha256 = digest.result()
        metrics.PROBE_SECONDS.observe(t2 - t1)
        t_put = time.perf_counter()
        metadata = {**result.metadata, "sha256": sha256, "size": size}
        timeline_origin = self.origins.timeline_origin(video.origin)
        recording = recording_of(
            self.origins.rule(timeline_origin), path=_inbox_path(video),
            duration=metadata.get("duration"), creation_time=metadata.get("creation_time"),
            mtime=_mtime(video), received=video.created_at) if result.ok else None
        outcome = ProbeOutcome(status="ready" if result.ok else "failed", error=result.error,
                               error_code=result.code, size=size, sha256=sha256,
                               metadata=metadata, raw=result.raw, recording=recording,
                               timeline_origin=timeline_origin)
        done = self.catalog.finish_processing(video.id, outcome, derive=self.settings.derive)
        if spooled and self.spool is not None:  # the object holds it now (or no row wants it)
            if done is None:
                self.media.delete(video.stored_path)
            spool.discard(self.spool, path)
        if done is None:
            self.log.info("deleted while being probed; nothing recorded")
            return video
        t3 = time.perf_counter()
        # the put runs beside the probe: put_ms is how long the row waited for it after
        stored_ms = {"put_ms": round((t_put - t2) * 1000, 1)} if spooled else {}
        self.log.info("probe", status=done.status, error=done.processing_error,
                      error_code=done.error_code,
                      format=done.format, duration=done.duration, size=size,
                      claim_ms=round((t1 - t0) * 1000, 1), probe_ms=round((t2 - t1) * 1000, 1),
                      commit_ms=round((t3 - t_put) * 1000, 1),
                      total_ms=round((t3 - t0) * 1000, 1), **stored_ms,
                      recorded_source=recording.source if recording else None,
                      recorded_pattern=recording.pattern if recording else None,
                      **result.stages)
        metrics.PROBES.labels(outcome=done.status).inc()
        return done


def _inbox_path(video: Video) -> str:
    """The inbox-relative path of a watch-folder file (its folders may hold the date of a
    name without one), the original name of an upload."""
    if video.origin_path is not None:
        return os.fsdecode(bytes(video.origin_path))
    return video.original_filename


def _mtime(video: Video) -> datetime | None:
    """The modification time the claimed file had in the inbox (None: an upload)."""
    if video.claim_mtime_ns is None:
        return None
    return datetime.fromtimestamp(video.claim_mtime_ns / 1e9, UTC)


# --- the claim of an inbox file ---------------------------------------------------------

class ForeignMessage(Exception):
    """A watch-folder message stamped with another inbox's identity than this prober's
    (``here``: this inbox's, empty when no ingest stamped it): the file is on another
    host; the message is dropped, that host's ingest publishes it again at its rescan."""

    def __init__(self, msg: InboxFile, here: str) -> None:
        super().__init__(f"{media.display(msg.path)} is in inbox {msg.inbox}, not here"
                         f" ({here or 'no identity'})")
        self.here = here


def claim(catalog: Catalog, inbox: Path, media_root: Path, msg: InboxFile,
          policy: InboxPolicy | None = None) -> Video | None:
    """The row for this name of this file, with the file in the store (prober/store.py
    moves it); None for a stale message (the file changed or vanished before anyone
    claimed it: a fresh message will follow). :class:`ForeignMessage` for another inbox's
    file; :class:`TransientFileError` while another prober claims the same name;
    :class:`store.Refused` when ``policy`` (default: the default policy) refuses the file
    as it is now (a row an interrupted claim left goes ``failed``, ``refused``)."""
    msg = _seen_here(inbox, msg)
    src = inbox / msg.path
    with catalog.claim_lock(msg) as locked:
        if not locked:
            raise TransientFileError(f"another prober is claiming {media.display(msg.path)}")
        st = store.settled_stat(inbox, msg)
        if st is None:
            # Not (or no longer) in the inbox as this message describes it. If someone
            # claimed it before (a redelivery, a re-publish), the row tells where it went.
            return catalog.by_claim(msg)
        now = msg.at(st.st_ctime_ns)
        refusal = store.refusal_of(policy or InboxPolicy(), src, now)
        known = catalog.by_claim(now) or _earlier_claim(catalog, media_root, src, now)
        if refusal is not None:
            if known is not None and known.status == "processing":
                catalog.mark_failed(known.id, refusal.reason, ErrorCode.REFUSED)
            raise store.Refused(refusal)
        video = known or catalog.claim_inbox_file(now)[0]
        dst = media_root / video.stored_path
        if store.held_by_another(src, dst):
            moved = catalog.move_stored(video)
            if moved is None:
                raise TransientFileError(f"{media.display(msg.path)}: its row changed")
            video, dst = moved, media_root / moved.stored_path
        try:
            store.remove_parts(dst)  # of a copy of this claim that died: we hold its lock
            store.move_into_store(src, dst, now, other_names=st.st_nlink > 1)
        except TransientFileError as exc:  # the row says why the file still waits
            catalog.note_waiting(video.id, str(exc))
            raise
        return video


def _seen_here(inbox: Path, msg: InboxFile) -> InboxFile:
    """``msg`` as this host sees its file (:meth:`InboxFile.seen_from`), after checking
    that it names a file of this inbox (:class:`ForeignMessage` if not)."""
    if not msg.inbox:  # a message of an earlier version: compared as it is
        return msg
    try:
        here = inboxid.read(inbox)
    except OSError as exc:
        raise TransientFileError(str(exc)) from exc
    if msg.foreign_to(here.id):
        raise ForeignMessage(msg, here.id)
    return msg.seen_from(here.dev)


def _earlier_claim(catalog: Catalog, media_root: Path, src: Path, key: InboxFile
                   ) -> Video | None:
    """The row that already owns this file under an earlier ctime, with its key moved to
    ``key``: one not probed yet whose stored file is missing or holds this file's bytes
    (:func:`store.holds_same_bytes`). None: the file is new (its inode reused)."""
    for video in catalog.earlier_claims(key):
        if store.holds_same_bytes(src, media_root / video.stored_path):
            return catalog.rekey_claim(video, key.ctime_ns)
    return None
