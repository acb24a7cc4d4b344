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

    def relay_derivatives(self, publish: Callable[[int, tuple[str, ...]], None], *,
                          limit: int = 500) -> int:
        """Publish a job for up to ``limit`` requests that have none (``publish(video_id,
        kinds)``, which raises when the broker does not take it) and mark them queued, in
        one transaction that holds them locked from other relays. Returns the number of
        requests published (a video's job carries all its kinds); what ``publish`` raises
        is raised after the ones published before it are marked."""
        with self.db.transaction() as tx:
            rows = tx.all("unqueued_derivatives", {"limit": limit})
            by_video: dict[int, list[str]] = {}
            for row in rows:
                by_video.setdefault(row["video_id"], []).append(row["kind"])
            done: list[int] = []
            failure: Exception | None = None
            for video_id, kinds in by_video.items():
                try:
                    publish(video_id, tuple(kinds))
                except Exception as exc:  # raised once what went out is marked
                    failure = exc
                    break
                done.append(video_id)
            if done:
                tx.one("mark_queued", {"ids": done, "now": self.clock()})
        if failure is not None:
            raise failure
        return sum(len(by_video[v]) for v in done)

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

    def derivative_counts(self) -> dict[tuple[str, str], int]:
        """Rows by (kind, status); ready ones being remade under status ``remaking``."""
        return {(r["kind"], r["status"]): r["n"] for r in self.db.all("derivative_counts", {})}
