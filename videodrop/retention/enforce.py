"""One retention pass (:func:`run_pass`), one at a time across hosts.

A pass takes the PostgreSQL advisory lock (:data:`LOCK_SPACE`, 0); when another process
holds it the pass is skipped (it is doing the same work). Then:

1. it finishes what a crashed pass began: rows expired whose files are not known to be
   removed (``files_removed_at`` NULL) lose their files now;
2. it decides (:func:`videodrop.retention.plan.decide`) and, :data:`EXPIRE_BATCH`
   decisions at a time, oldest first: marks the rows expired and commits (their stream
   links go before the commit), then removes their files
   (:func:`videodrop.removal.remove_video`, the admin DELETE's own path), then records
   that the files are gone (or drops the rows, ``drop_rows``).

So at any instant: no file is removed whose row says it exists (the row says ``expired``
first), and no row that says its file exists points at a removed one. One log line per
removal (``video expired``) and one per pass (``retention pass``).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from videodrop import removal
from videodrop.catalog import Catalog, Video
from videodrop.retention import metrics
from videodrop.retention.plan import Decision, Plan, Store, decide
from videodrop.retention.rules import Rules

#: Rows expired in one transaction (then their files go, then one statement records it).
EXPIRE_BATCH = 200
#: Advisory lock namespace of "a retention pass runs" (key 0).
LOCK_SPACE = 0x5652_4554  # "VRET"


@dataclass
class PassResult:
    """What a pass did: skipped (another held the lock), the plan, rows expired and their
    bytes by rule, decisions no longer removable when their turn came (held meanwhile),
    rows whose files it finished removing after a crash, and whether it stopped early."""

    skipped: bool = False
    plan: Plan = field(default_factory=Plan)
    files: Counter[str] = field(default_factory=Counter)
    bytes: Counter[str] = field(default_factory=Counter)
    passed_over: int = 0
    finished: int = 0
    stopped: bool = False  # ``between`` asked the pass to stop before its end


def store_space(media_root: Path) -> Store | None:
    """The media store's space (None when the folder cannot be asked)."""
    try:
        st = os.statvfs(media_root)
    except OSError:
        return None
    return Store(free=st.f_bavail * st.f_frsize, total=st.f_blocks * st.f_frsize)


def run_pass(catalog: Catalog, rules: Rules, media_root: Path, log: Any, *,
             now: datetime | None = None,
             between: Callable[[], bool] | None = None) -> PassResult:
    """One pass (see the module docstring); ``now`` defaults to the catalog's clock.
    ``between`` is called after each batch of removals: the pass goes on while it returns
    True (the role pings its watchdog there, and stops early when asked to: the rest
    waits for the next pass)."""
    with catalog.db.advisory_lock(LOCK_SPACE, 0) as got:
        if not got:
            log.info("retention pass skipped: another one runs")
            return PassResult(skipped=True)
        result = PassResult(finished=finish_removals(catalog, media_root, rules, log))
        result.plan = decide(catalog, rules, now or catalog.clock(), store_space(media_root))
        batch: list[Decision] = []
        for decision in result.plan.chosen(catalog):
            batch.append(decision)
            if len(batch) == EXPIRE_BATCH:
                _remove(catalog, batch, media_root, rules=rules, log=log, result=result)
                batch = []
                if between is not None and not between():
                    result.stopped = True
                    break
        if batch:
            _remove(catalog, batch, media_root, rules=rules, log=log, result=result)
        space = store_space(media_root)
        metrics.after_pass(catalog.usage(), space.free if space else None, time.time())
    log.info("retention pass", expired=sum(result.files.values()),
             bytes=sum(result.bytes.values()), files_by_rule=dict(result.files),
             bytes_by_rule=dict(result.bytes), passed_over=result.passed_over,
             finished_after_crash=result.finished, shortfalls=result.plan.shortfalls,
             free_bytes=space.free if space else None, stopped_early=result.stopped)
    return result


def _remove(catalog: Catalog, batch: list[Decision], media_root: Path, *, rules: Rules,
            log: Any, result: PassResult) -> None:
    """Expire ``batch`` (committed), remove each expired row's files, record it."""
    expired = catalog.expire([(d.video_id, d.rule, d.detail) for d in batch])
    result.passed_over += len(batch) - len(expired)
    by_id = {d.video_id: d for d in batch}
    order = {d.video_id: n for n, d in enumerate(batch)}
    removed = []
    for video in sorted(expired, key=lambda v: order[v.id]):
        d = by_id[video.id]
        if not _remove_files(media_root, video, log):
            continue
        removed.append(video.id)
        result.files[d.rule] += 1
        result.bytes[d.rule] += d.size
        metrics.removed(d.rule, d.size)
        log.info("video expired", video_id=video.id, origin=video.origin, rule=d.rule,
                 size=d.size, created_at=video.created_at.isoformat(), detail=d.detail,
                 stored_path=video.stored_path)
    catalog.files_removed(removed, drop_rows=rules.drop_rows)


def _remove_files(media_root: Path, video: Video, log: Any) -> bool:
    """Remove an expired row's files; False (logged) when the file system refuses: the row
    keeps ``files_removed_at`` NULL and the next pass tries again."""
    try:
        removal.remove_video(media_root, video)
    except OSError as exc:
        log.error("expired video's files not removed; the next pass tries again",
                  video_id=video.id, stored_path=video.stored_path, error=str(exc))
        return False
    return True


def finish_removals(catalog: Catalog, media_root: Path, rules: Rules, log: Any) -> int:
    """Remove the files of rows expired earlier whose removal is still to do (a pass died,
    or the file system refused): how many it removed now."""
    done = after = 0
    while batch := catalog.unremoved(after=after):
        removed = []
        for video in batch:
            if _remove_files(media_root, video, log):
                removed.append(video.id)
                log.info("expired video's files removed after an interrupted pass",
                         video_id=video.id, stored_path=video.stored_path)
        catalog.files_removed(removed, drop_rows=rules.drop_rows)
        done += len(removed)
        after = batch[-1].id
    return done
