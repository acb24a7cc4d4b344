"""Derivatives of ready videos (migration 0009): their requests, the outbox of jobs the
derive role publishes, and their outcomes. SQL: ``sql/derivatives.sql``.

A video's status never changes here: each kind of derivative has its own state,
``pending → ready | failed | skipped``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from videodrop.catalog.base import CatalogBase
from videodrop.catalog.rows import Video

DERIVE_LOCK_SPACE = 0x5645  # advisory lock namespace of "deriving video <id>"
#: advisory lock namespace of "transcoding video <id>'s rendition" (derive/transcoder.py)
RENDITION_LOCK_SPACE = 0x5652

#: What ``videodrop requeue --derivatives`` asks for, and the states each one requests again.
REQUEUE_MODES: dict[str, tuple[str, ...]] = {
    "missing": (),  # only kinds a ready video has no request of, and lost jobs
    "failed": ("failed",),
    "all": ("pending", "ready", "failed", "skipped"),
}


@dataclass(frozen=True)
class Derivative:
    """One row of ``derivatives``: one kind made (or to be made) from one video."""

    video_id: int
    kind: str  # videodrop/derivatives.py KINDS
    status: str  # pending | ready | failed | skipped
    #: ready, served as it is, and to be made again (a remake: migration 0012)
    remaking: bool
    error_code: str | None  # videodrop/derivatives.py Reason, when failed or skipped
    error: str | None
    data: dict[str, Any]  # files (relative to MEDIA_ROOT) and facts, per kind
    attempts: int
    requested_at: datetime
    queued_at: datetime | None
    completed_at: datetime | None
    updated_at: datetime
    progress: float | None = None  # 0..1 while a job makes it (migration 0013)
    running_since: datetime | None = None  # a transcode job took it (migration 0013)
    wanted_at: datetime | None = None  # someone waits for it: published first (0013)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Derivative:
        return cls(**{f.name: row[f.name] for f in fields(cls)})

    @property
    def to_make(self) -> bool:
        """Whether a job is to make it: pending, or ready and being remade."""
        return self.status == "pending" or self.remaking


@dataclass(frozen=True)
class Outcome:
    """What a job made of one kind: ``ready`` with ``data``, or ``failed``/``skipped``
    with a code (videodrop/derivatives.py Reason) and a sentence."""

    status: str
    data: dict[str, Any]
    error_code: str | None = None
    error: str | None = None


class Derivatives(CatalogBase):
    def derive_lock(self, video_id: int) -> contextlib.AbstractContextManager[bool]:
        """A session advisory lock on the video while a job makes its derivatives: True
        if we got it (a duplicate job finds it taken). It goes with the connection."""
        return self.db.advisory_lock(DERIVE_LOCK_SPACE, video_id)

    def rendition_lock(self, video_id: int) -> contextlib.AbstractContextManager[bool]:
        """A session advisory lock on the video's rendition, held by the transcode job
        for its whole run (it acks its message early): a request with ``running_since``
        whose lock is free lost its job (:meth:`sweep_transcodes`)."""
        return self.db.advisory_lock(RENDITION_LOCK_SPACE, video_id)

    def run_transcode(self, video_id: int) -> Derivative | None:
        """The transcode job (holding :meth:`rendition_lock`) takes the rendition request:
        one more job, ``running_since`` now, progress 0; None when it is not to make."""
        row = self.db.one("run_transcode", {"id": video_id, "now": self.clock()})
        return Derivative.from_row(row) if row else None

    def set_progress(self, started: Derivative, progress: float) -> bool:
        """A running job's progress (0..1) of the request ``started``; False when that
        request is no longer to make (the video deleted, or requested afresh): its
        outcome would not be recorded."""
        return self.db.one("derivative_progress", {
            "id": started.video_id, "kind": started.kind, "progress": progress,
            "requested_at": started.requested_at}) is not None

    def interrupt_transcode(self, started: Derivative) -> bool:
        """The transcode of ``started`` stopped by its role's stop (the lock still held):
        ``running_since`` cleared, the attempt given back, the request first in the outbox
        again (a relay publishes it to the transcode queue). False when the request is no
        longer to make (the video deleted, or requested afresh)."""
        return self.db.one("interrupt_transcode", {
            "id": started.video_id, "now": self.clock(),
            "requested_at": started.requested_at}) is not None

    def sweep_transcodes(self) -> list[int]:
        """Rendition requests whose transcode job died (``running_since`` set, the
        rendition lock free) get no job again, first in the outbox (the relay publishes
        them to the transcode queue); their video ids."""
        orphans = []
        for row in self.db.all("running_transcodes", {}):
            with self.rendition_lock(row["video_id"]) as free:
                if free and self.db.one("orphaned_transcode", {"id": row["video_id"],
                                                               "now": self.clock()}):
                    orphans.append(row["video_id"])
        return orphans

    def republish_rendition(self, video_id: int) -> bool:
        """The video's rendition request, still to make with no transcode running, gets
        a job again (the relay publishes it; wanted ones to the transcode queue): for a
        request made afresh while a transcode ran, whose job met the transcode's lock.
        True when it was to make and queued."""
        return self.db.one("republish_rendition", {"id": video_id}) is not None

    def republish_stranded(self, video_id: int) -> list[str]:
        """The video's requests still to make (not its rendition) whose job was published
        get a job again (the relay publishes them): a request made afresh while another
        job of the video held its lock met that lock and did nothing. Called by the lock's
        holder once it let go. The kinds, in no order."""
        return [row["kind"] for row in self.db.all("republish_stranded", {"id": video_id})]

    def want_rendition(self, video_id: int) -> bool:
        """Someone asks to watch the video: a rendition waiting for a viewer (skipped,
        ``on_view``) is requested again, first in the outbox and straight to the
        transcode queue; one still pending (not planned yet, no transcode running) is
        marked wanted, so that its job transcodes it rather than wait for a viewer. True
        when either was done (False: it is made, running, failed, or wanted already)."""
        return self.db.one("want_rendition", {"id": video_id, "now": self.clock()}) is not None

    def with_derivatives(self, video: Video) -> Video:
        """``video`` with its derivatives' states (for a row a write returned)."""
        row = self.db.one("derivative_states", {"id": video.id})
        return replace(video, derivatives=row["states"] if row else {})

    def derivatives_of(self, video_id: int) -> list[Derivative]:
        return [Derivative.from_row(r) for r in self.db.all("derivatives_of", {"id": video_id})]

    def derivative(self, video_id: int, kind: str) -> Derivative | None:
        row = self.db.one("derivative", {"id": video_id, "kind": kind})
        return Derivative.from_row(row) if row else None

    def start_derivative(self, video_id: int, kind: str) -> Derivative | None:
        """One more job on a request to make (pending, or remaking); None when it is
        neither (or gone)."""
        row = self.db.one("start_derivative", {"id": video_id, "kind": kind,
                                               "now": self.clock()})
        return Derivative.from_row(row) if row else None

    def finish_derivative(self, started: Derivative, outcome: Outcome) -> Derivative | None:
        """Record ``outcome`` of the request ``started`` (replacing the facts of a remade
        one, and ending its remake); None when that request is no longer to make
        (requested afresh meanwhile, or the video deleted)."""
        row = self.db.one("finish_derivative", {
            "id": started.video_id, "kind": started.kind, "status": outcome.status,
            "error_code": outcome.error_code, "error": outcome.error,
            "data": Jsonb(outcome.data), "now": self.clock(),
            "requested_at": started.requested_at})
        return Derivative.from_row(row) if row else None

    def relay_derivatives(self, publish: Callable[[int, tuple[str, ...], bool], None], *,
                          limit: int = 500) -> int:
        """Publish a job for up to ``limit`` requests that have none (``publish(video_id,
        kinds, wanted)``, which raises when the broker does not take it; ``wanted``: the
        kinds are wanted renditions, published first and to the transcode queue) and mark
        them queued, in one transaction that holds them locked from other relays. Returns
        the number of requests published (a video's job carries all its kinds); what
        ``publish`` raises is raised after the ones published before it are marked."""
        with self.db.transaction() as tx:
            rows = tx.all("unqueued_derivatives", {"limit": limit})
            jobs: dict[tuple[int, bool], list[str]] = {}
            for row in rows:
                jobs.setdefault((row["video_id"], row["wanted"]), []).append(row["kind"])
            done: list[tuple[int, bool]] = []
            failure: Exception | None = None
            for (video_id, wanted), kinds in jobs.items():
                try:
                    publish(video_id, tuple(kinds), wanted)
                except Exception as exc:  # raised once what went out is marked
                    failure = exc
                    break
                done.append((video_id, wanted))
            for wanted in (True, False):
                ids = [v for v, w in done if w is wanted]
                if ids:
                    tx.one("mark_queued", {"ids": ids, "wanted": wanted, "now": self.clock()})
        if failure is not None:
            raise failure
        return sum(len(jobs[job]) for job in done)

    def request_derivatives(self, kinds: Sequence[str], mode: str) -> int:
        """Request ``kinds`` of ready videos again (``mode``: one of
        :data:`REQUEUE_MODES`); every mode also requests what a ready video lacks. A ready
        derivative stays ready and served, ``remaking``, until its new version replaces
        it; any other becomes pending. The derive role's relay publishes the jobs.
        Returns the requests made or renewed."""
        now = self.clock()
        states = REQUEUE_MODES[mode]
        with self.db.transaction() as tx:
            again = 0
            if states:
                again = len(tx.all("request_again", {"kinds": list(kinds),
                                                     "states": list(states), "now": now}))
            found = tx.one("request_missing", {"kinds": list(kinds), "now": now}) or {}
        return again + int(found.get("added", 0)) + int(found.get("again", 0))

    def rendition_bytes(self) -> int:
        """Bytes of the ready renditions' files (their ``data.bytes``)."""
        row = self.db.one("rendition_bytes", {})
        return int(row["bytes"]) if row else 0

    def derivative_counts(self) -> dict[tuple[str, str], int]:
        """Rows by (kind, status); ready ones being remade under status ``remaking``."""
        return {(r["kind"], r["status"]): r["n"] for r in self.db.all("derivative_counts", {})}
