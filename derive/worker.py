"""The derive role's consumer (videodrop/consumer.py: a connection of its own, prefetch 1,
ack after the commit): make a ready video's pending derivatives, one kind after the other,
and record each outcome. One line per kind as it is recorded (``derived``: a kind made
before a crash is logged), and one JSON summary line per job (``derive``).

A remake (a ready derivative requested again) leaves the previous version served until
the new one replaces it (derive/output.py publishes it); a remake that fails or is
skipped removes the previous files once its outcome is recorded.

The original is read where the store keeps it (derive/source.py: a file, or an s3 store's
presigned URL, never copied whole); the derivatives are published through
derive/output.py (renames in the file store's folder, verified puts into an s3 store).

A job is idempotent: it makes only the kinds still pending, under a per-video lock (a
duplicate job finds it taken and is acked). A worker killed mid-job leaves its message
unacked (the broker delivers it again) and its temporary files or unfinished uploads
(removed by the next job of the video, or by the next start of the role); a request
that as many jobs as VIDEODROP_DELIVERY_LIMIT started and none finished fails
(``gave_up``) rather than staying pending."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import structlog

from derive import output, packets, poster, rendition, scenes, storyboard
from derive.ffmpeg import Failed, FFmpeg, Skipped
from derive.output import STALE, Output
from derive.posters import Posters
from derive.rendition import Plan
from derive.source import Source, StoredObject
from videodrop import broker, derivatives, metrics
from videodrop.catalog import Catalog, Derivative, Outcome, Video
from videodrop.children import ChildMissing
from videodrop.consumer import Consumer, Settle
from videodrop.derivatives import Reason
from videodrop.errors import BrokerUnavailable, CatalogUnavailable, TransientFileError
from videodrop.messages import BadMessage, DeriveVideo, decode, encode
from videodrop.outbox import TRANSCODE_KEY
from videodrop.packets import FILE_NAME as PACKETS_FILE
from videodrop.settings import Settings
from videodrop.storage import MediaStore, ObjectMissing, from_settings
from videodrop.storage.base import MAX_PRESIGN_SECONDS
from videodrop.tokens import token_prefix


class Worker(Consumer):
    # Worth waiting for: the database comes back; ffmpeg is reinstalled; the disk frees up;
    # the media store answers again (StoreUnavailable, StorageFull).
    TRANSIENT = (CatalogUnavailable, ChildMissing, OSError, BrokerUnavailable,
                 TransientFileError)
    CONTEXT_KEYS = ("delivery", "video_id", "source_id", "token")
    REDELIVERIES = metrics.DERIVE_REDELIVERIES
    #: Whether a stop interrupts a job of this consumer (:class:`Interrupted`): only the
    #: transcode consumer's, whose jobs run for minutes; the others' end within seconds.
    INTERRUPTIBLE = False
    DEAD_LETTERS = metrics.DERIVE_DEAD_LETTERS

    def __init__(self, settings: Settings, catalog: Catalog, ffmpeg: FFmpeg, log: Any, *,
                 name: str = "derive", queue: str | None = None,
                 media: MediaStore | None = None, out: Output | None = None) -> None:
        """``media``: the process's media store (default: the one the settings name);
        ``out``: the process's output (derive/output.py; default: one for ``media``)."""
        super().__init__(settings, log, name=name, queue=queue or settings.derive_queue)
        self.catalog = catalog
        self.ffmpeg = ffmpeg
        # the poster's children, kept between jobs (derive/posters.py)
        self.posters = Posters.like(ffmpeg)
        self.media = media if media is not None else from_settings(settings)
        self.output = out if out is not None else output.for_store(self.media)
        self._tried: set[tuple[int, str]] = set()  # (video, kind) this delivery started
        # the job's storyboard keyframes measured as poster candidates (derive/poster.py)
        self._seen: list[poster.Candidate] = []
        # set when the role stops (SIGTERM): an interruptible job ends at its next report
        self._stop = threading.Event()
        # video transcodes are handed to the transcode queue (derive/transcoder.py)
        self.publisher = broker.Publisher(settings, name=f"videodrop-{name}-handoff")

    def decode_job(self, body: bytes) -> DeriveVideo:
        msg = decode(body)
        if not isinstance(msg, DeriveVideo):
            raise BadMessage(f"a {msg.kind} message on the derive queue")
        return msg

    def is_outage(self, exc: BaseException) -> bool:
        return isinstance(exc, CatalogUnavailable)

    def record_failure(self, msg: DeriveVideo, exc: Exception) -> None:
        video = self.catalog.by_id(msg.video_id)
        for kind in msg.kinds or derivatives.KINDS:
            started = self.catalog.derivative(msg.video_id, kind)
            if video is not None and started is not None and started.to_make:
                self.record(video, started, Outcome(
                    "failed", {}, Reason.INTERNAL, f"internal error: {exc!r}"[:500]), 0.0)

    # --- the work ---------------------------------------------------------------------

    def process(self, msg: DeriveVideo) -> None:
        t0 = time.perf_counter()
        video = self.catalog.by_id(msg.video_id)
        if video is None:
            self.log.info("no such video", video_id=msg.video_id)
            return
        structlog.contextvars.bind_contextvars(video_id=video.id, source_id=video.source_id,
                                               token=token_prefix(video.access_token))
        if video.status != "ready":
            self.log.info("not ready; its probe requests its derivatives again",
                          status=video.status)
            return
        results: dict[str, Any] = {}
        with self.catalog.derive_lock(video.id) as locked:
            if not locked:
                self.log.info("duplicate: another worker is deriving this video")
                return
            self.output.sweep(video.source_id, rendition=False)
            self._seen = []
            for kind in sorted(derivatives.KINDS, key=_order):
                if msg.kinds and kind not in msg.kinds:
                    continue
                if kind == "rendition" and kind in self.settings.derive:
                    if (made := self.rendition(video)) is not None:
                        results[kind] = made
                    continue
                started = self._start(video.id, kind)
                if started is None:
                    continue  # not pending (made already, or not requested)
                results[kind] = self.derive(video, started)
        # requested afresh while we held the lock: that request's job met it and did nothing
        if again := self.catalog.republish_stranded(video.id):
            self.log.info("requested again meanwhile: jobs published again", kinds=sorted(again))
        if results:
            self.log.info("derive", kinds=results, status=video.status,
                          duration=video.duration,
                          total_ms=round((time.perf_counter() - t0) * 1000, 1))

    def rendition(self, video: Video) -> dict[str, Any] | None:
        """The rendition request of ``video``, if still to make: a video transcode is
        handed to the transcode queue (one at a time per process, never in front of the
        remuxes); anything else (a remux, an audio transcode, a skip) is made here, under
        the rendition lock (a transcode job of the video holds it: then nothing is done).
        Its summary, None when nothing was recorded here."""
        found = self.catalog.derivative(video.id, "rendition")
        if found is None or not found.to_make or found.running_since is not None:
            return None
        try:
            chosen = rendition.plan(video.metadata, self.settings,
                                    wanted=found.wanted_at is not None)
        except Skipped:
            chosen = None  # recorded by make() below
        if chosen is not None and chosen.queue == "transcode":
            self.publisher.publish_body(encode(DeriveVideo(video_id=video.id,
                                                           kinds=("rendition",))),
                                        TRANSCODE_KEY)
            self.log.info("transcode handed to its queue", kind="rendition")
            return {"status": "handed to the transcode queue"}
        with self.catalog.rendition_lock(video.id) as free:
            if not free:
                return None
            started = self._start(video.id, "rendition")
            if started is None:
                return None
            self.output.sweep(video.source_id, rendition=True)
            return self.derive(video, started)

    def settle(self, body: bytes, deliveries: int, stop: threading.Event) -> Settle:
        self._tried = set()  # a new delivery: a new job of each kind it makes
        self._stop = stop
        return super().settle(body, deliveries, stop)

    def _start(self, video_id: int, kind: str) -> Derivative | None:
        """The pending request, counted as one more job the first time this delivery
        tries it (a transient problem tried again in place is the same job)."""
        if (video_id, kind) in self._tried:
            found = self.catalog.derivative(video_id, kind)
            return found if found is not None and found.to_make else None
        started = self.catalog.start_derivative(video_id, kind)
        if started is not None:
            self._tried.add((video_id, kind))
        return started

    def derive(self, video: Video, started: Derivative) -> dict[str, Any]:
        """Make one kind and record it; its summary for the job's log line."""
        t0 = time.perf_counter()
        outcome = self.make(video, started)
        return self.record(video, started, outcome, time.perf_counter() - t0)

    def record(self, video: Video, started: Derivative, outcome: Outcome,
               seconds: float) -> dict[str, Any]:
        """Record ``outcome`` of ``started`` (``seconds`` it took), remove the kind's files
        when it is not ready (a failed or skipped remake's previous version), count and
        log it (one ``derived`` line); its summary (``status``, ``ms``, and
        ``error_code``/``error``) for the job's line."""
        kind = started.kind
        done = self.catalog.finish_derivative(started, outcome)
        summary: dict[str, Any] = {"status": outcome.status, "ms": round(seconds * 1000, 1)}
        if done is None:  # requested afresh meanwhile, or the video deleted or expired
            now = self.catalog.by_id(video.id)
            if now is None or now.status == "expired":  # its files went before ours came
                self.output.remove_all(video.source_id)
            summary["status"] = "dropped"
        else:
            if kind == "rendition":  # the stream link: the rendition, or the original again
                self.catalog.refresh_link(video.id)
                if done.error_code == Reason.ON_VIEW and done.wanted_at is not None:
                    self.catalog.want_rendition(video.id)  # asked for while it was planned
            if done.status != "ready":  # no file of the kind is served any more
                self.output.withdraw(video.source_id, STALE[kind])
            metrics.DERIVE_JOBS.labels(kind, outcome.status, outcome.error_code or "").inc()
            metrics.DERIVE_SECONDS.labels(kind).observe(seconds)
            if outcome.error:
                summary |= {"error_code": outcome.error_code, "error": outcome.error}
        self.log.info("derived", kind=kind, remake=started.remaking, **summary)
        return summary

    def make(self, video: Video, started: Derivative) -> Outcome:
        """The outcome of one kind: ready with its facts, skipped or failed with a reason.
        Transient problems (the database, a missing ffmpeg, a full disk) are raised."""
        kind = started.kind
        if kind not in self.settings.derive:
            return Outcome("skipped", {}, Reason.LEFT_OUT,
                           f"VIDEODROP_DERIVE of this derive role leaves out {kind}")
        if started.attempts > self.settings.delivery_limit:
            return Outcome("failed", {}, Reason.GAVE_UP,
                           f"{started.attempts - 1} jobs started on it and none finished")
        try:
            path = self.source(video)
        except ObjectMissing:
            return Outcome("failed", {}, Reason.MISSING_FILE, "the stored video is missing")
        try:
            with self.output.scratch(video.source_id, kind) as temp:
                if kind == "packets":
                    return self._packets(video, path, temp)
                if kind == "poster":
                    return self._poster(video, path, temp)
                if kind == "scenes":
                    return self._scenes(video, path, temp)
                if kind == "rendition":
                    return self._rendition(video, path, temp, started)
                if kind == "hevc":
                    return self._hevc(video, path, temp, started)
                return self._storyboard(video, path, temp)
        except Skipped as exc:
            return Outcome("skipped", {}, exc.reason, str(exc))
        except Failed as exc:
            if path.remote and not isinstance(exc, Skipped):
                # a child reading the store over HTTP failed: an outage of the store is
                # transient (StoreUnavailable), a vanished original a missing file
                try:
                    self.media.stat(video.stored_path)
                except ObjectMissing:
                    return Outcome("failed", {}, Reason.MISSING_FILE,
                                   "the stored video is missing")
            return Outcome("failed", {}, exc.reason, str(exc))
        except Withdrawn as exc:  # not recorded: the request it was made for is gone
            return Outcome("skipped", {}, None, str(exc))

    def source(self, video: Video) -> Source:
        """The stored original as the job's children read it (derive/source.py): its URL
        lives twice the longest deadline a child of it may get. ObjectMissing."""
        size = self.media.stat(video.stored_path).size
        lifetime = min(MAX_PRESIGN_SECONDS, 2 * self.ffmpeg.deadline.longest(size) + 60)
        return StoredObject(self.media, video.stored_path, size, lifetime)

    def _packets(self, video: Video, path: Source, temp: Path) -> Outcome:
        made = temp / PACKETS_FILE
        facts = packets.make(self.settings.ffprobe, self.ffmpeg.runner,
                             self.ffmpeg.deadline.base, path, made)
        [file] = self.output.publish(video.source_id, {made: PACKETS_FILE},
                                     stale=STALE["packets"])
        return Outcome("ready", {**facts, "file": file})

    def _poster(self, video: Video, path: Source, temp: Path) -> Outcome:
        made = temp / "poster.jpg"
        facts = poster.make(self.posters, path, video.duration, made, seen=self._seen)
        size = made.stat().st_size
        [file] = self.output.publish(video.source_id, {made: "poster.jpg"},
                                     stale=STALE["poster"])
        return Outcome("ready", {**facts, "file": file, "bytes": size})

    def _storyboard(self, video: Video, path: Source, temp: Path) -> Outcome:
        facts, sheets = storyboard.make(self.ffmpeg, path, video.duration,
                                        _landscape(video), temp, seen=self._seen)
        names = {sheet: storyboard.SHEET.format(i) for i, sheet in enumerate(sheets)}
        files = self.output.publish(video.source_id, names, stale=STALE["storyboard"])
        return Outcome("ready", {**facts, "sheets": files})

    def _scenes(self, video: Video, path: Source, temp: Path) -> Outcome:
        facts, sheets = scenes.make(self.ffmpeg, path, video.fps, video.duration, temp,
                                    shown=_shown(video))
        names = {sheet: scenes.SHEET.format(i) for i, sheet in enumerate(sheets)}
        files = self.output.publish(video.source_id, names, stale=STALE["scenes"])
        return Outcome("ready", {**facts, "sheets": files})

    def _rendition(self, video: Video, path: Source, temp: Path,
                   started: Derivative) -> Outcome:
        chosen = rendition.plan(video.metadata, self.settings,
                                wanted=started.wanted_at is not None)
        return self._made(video, path, temp, started, chosen)

    def _hevc(self, video: Video, path: Source, temp: Path, started: Derivative) -> Outcome:
        """The HEVC rendition (derive/rendition.py :func:`~derive.rendition.plan_hevc`): a
        stream copy, or nothing to make when the original plays where HEVC decodes."""
        chosen = rendition.plan_hevc(video.metadata, self.settings)
        if chosen.stream == "original":
            self.output.withdraw(video.source_id, STALE["hevc"])  # an earlier make's file
            return Outcome("ready", {"stream": "original", "content_type": "video/mp4",
                                     "file": None})
        return self._made(video, path, temp, started, chosen)

    def _made(self, video: Video, path: Source, temp: Path, started: Derivative,
              chosen: Plan) -> Outcome:
        """Make ``chosen`` (a rendition of either kind) with its progress recorded, and
        publish it. Interrupted when the role stops, Withdrawn when the request goes."""
        made = temp / chosen.file_name

        def progress(part: float) -> None:
            if self.INTERRUPTIBLE and self._stop.is_set():
                raise Interrupted("its derive role stops")
            if not self.catalog.set_progress(started, part):
                raise Withdrawn("its request was withdrawn while it was made")

        facts = rendition.make(self.ffmpeg, self.settings, chosen, path, video.metadata,
                               out=made, progress=progress)
        [file] = self.output.publish(video.source_id, {made: chosen.file_name},
                                     stale=STALE[chosen.kind])
        return Outcome("ready", {**facts, "file": file})


class Interrupted(Exception):
    """The role stops (SIGTERM) while a long job (a video transcode) runs: its ffmpeg is
    killed at its next progress report and the job given back (derive/transcoder.py), so
    that a stop does not wait for the end of a transcode."""


class Withdrawn(Exception):
    """The request a running rendition is made for was withdrawn (the video deleted, or
    requested afresh): its ffmpeg is killed rather than run to an outcome never recorded."""


def _order(kind: str) -> tuple[bool, bool, bool]:
    """The packet index first (a listing: the frame routes use it as soon as it is made),
    then the HEVC rendition (a stream copy: a browser that decodes HEVC plays it without
    waiting for the decoding kinds), then the storyboard before the poster: its keyframe
    pass gives the poster's candidates (one decoding of the keyframes for both)."""
    return kind != "packets", kind != "hevc", kind != "storyboard"


def _shown(video: Video) -> tuple[int, int] | None:
    """The size (px) the video shows at (rotation and pixel shape applied), if known."""
    width, _, height = (video.resolution or "").partition("x")
    return (int(width), int(height)) if width.isdigit() and height.isdigit() else None


def _landscape(video: Video) -> bool:
    """Whether the video shows wider than high (rotation and pixel shape applied)."""
    shown = _shown(video)
    return shown is None or shown[0] >= shown[1]
