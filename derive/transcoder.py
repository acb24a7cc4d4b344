"""The transcode consumer: one per derive process, on its own queue
(``<prefix>.derive.transcode``), so a process runs one video transcode at a time and its
other consumers go on with posters, storyboards, scenes and remuxes meanwhile.

A transcode may run longer than RabbitMQ's consumer timeout (broker-wide, 30 min by
default in 3.10; no per-queue setting): the broker would close the channel and deliver
the job again. So the job takes the video's rendition lock (a PostgreSQL session advisory
lock), records in the row that it runs (``running_since``, ``attempts`` + 1) and acks its
message at once; it holds the lock until its outcome is recorded. A worker killed
mid-transcode leaves the row running with its lock released (PostgreSQL ends the dead
session): the role's sweep (derive/relay.py, :meth:`Catalog.sweep_transcodes`) finds it
and publishes the job again; the half-written file sits in a temporary folder, never
served, removed by the next job (on s3: the local scratch file, removed at the role's
next start, and at most an unfinished upload, aborted by the next job). As many dead
jobs as VIDEODROP_DELIVERY_LIMIT: ``gave_up``."""

from __future__ import annotations

import time

import structlog

from derive.worker import Interrupted, Worker
from videodrop.messages import DeriveVideo
from videodrop.tokens import token_prefix


class Transcoder(Worker):
    """A :class:`~derive.worker.Worker` of the transcode queue (``queue=``
    Settings.transcode_queue) that makes renditions only. A stop of the role (SIGTERM)
    kills a running transcode's ffmpeg at its next progress report and gives the job back
    (:meth:`Catalog.interrupt_transcode`: not counted as an attempt, published again by a
    relay), so ``systemctl stop`` does not wait for the end of a transcode."""

    INTERRUPTIBLE = True

    def process(self, msg: DeriveVideo) -> None:
        t0 = time.perf_counter()
        video = self.catalog.by_id(msg.video_id)
        if video is None or video.status != "ready":
            self.log.info("no such ready video", video_id=msg.video_id)
            return
        structlog.contextvars.bind_contextvars(video_id=video.id, source_id=video.source_id,
                                               token=token_prefix(video.access_token))
        with self.catalog.rendition_lock(video.id) as locked:
            if not locked:
                self.log.info("duplicate: another job is making this rendition")
                return
            found = self.catalog.derivative(video.id, "rendition")
            if found is None or not found.to_make:
                return
            started = self.catalog.run_transcode(video.id)
            if started is None:
                return
            self.ack_early()  # the row and the lock hold the job from now on
            self.output.sweep(video.source_id, rendition=True)
            try:
                summary = self.derive(video, started)
            except Interrupted:
                self.output.sweep(video.source_id, rendition=True)
                given_back = self.catalog.interrupt_transcode(started)
                self.log.info("transcode interrupted: the role stops", kind="rendition",
                              given_back=given_back,
                              total_ms=round((time.perf_counter() - t0) * 1000, 1))
                return
        if summary["status"] == "dropped" and self.catalog.republish_rendition(video.id):
            # requested afresh while it ran: that request's job met our lock and did nothing
            self.log.info("rendition requested again meanwhile: its job published again")
        self.log.info("derive", kinds={"rendition": summary}, status=video.status,
                      duration=video.duration, queue="transcode",
                      total_ms=round((time.perf_counter() - t0) * 1000, 1))
