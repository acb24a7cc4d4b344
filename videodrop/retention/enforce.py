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
removal (``video expired``) and one per pass (``retention pass``). On an object store
(s3) the files are the original's object and the derivatives' objects; a store that does
not answer or refuses us stops the pass (``retention pass stopped``) instead of trying
each video in turn: what it expired stays to do for the next pass.
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
from videodrop.errors import ConfigurationError
from videodrop.retention import metrics
from videodrop.retention.plan import Decision, Plan, Store, decide
from videodrop.retention.rules import Rules
from videodrop.storage import FileStore, MediaStore, StoreError, StoreUnavailable

#: Where a pass removes files: the media store, or the file store's folder.
Media = MediaStore | Path

#: Rows expired in one transaction (then their files go, then one statement records it).
EXPIRE_BATCH = 200
#: Advisory lock namespace of "a retention pass runs" (key 0).
LOCK_SPACE = 0x5652_4554  # "VRET"


@dataclass
class PassResult:
    """What a pass did: skipped (another held the lock), the plan, rows expired and their
    bytes by rule, decisions no longer removable when their turn came (held meanwhile),
    rows whose files it finished removing after a crash, whether it stopped early and why
    the media store stopped it."""

    skipped: bool = False
    plan: Plan = field(default_factory=Plan)
    files: Counter[str] = field(default_factory=Counter)
    bytes: Counter[str] = field(default_factory=Counter)
    passed_over: int = 0
    finished: int = 0
    stopped: bool = False  # ``between`` asked the pass to stop, or the store failed
    store_error: str | None = None  # why the media store stopped the pass (None: it did not)


def _folder(media: Media) -> Path | None:
    """The folder of a store of local files; None for an object store."""
    if isinstance(media, Path):
        return media
    return media.root if isinstance(media, FileStore) else None


def store_space(media: Media) -> Store | None:
    """The media store's space: its file system's (``os.statvfs`` of the folder); None
    when the folder cannot be asked, and always on an object store (s3 has no free space
    to ask: a bucket grows until a quota or the bill stops it)."""
    folder = _folder(media)
    if folder is None:
        return None
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    return Store(free=st.f_bavail * st.f_frsize, total=st.f_blocks * st.f_frsize)


def space_problem(rules: Rules, media: Media) -> str | None:
    """Why ``rules`` cannot apply on ``media`` (None: they can): ``keep_free`` on an object
    store, which has no free space to keep (refused rather than silently ignored)."""
    if _folder(media) is not None or rules.keep_free(1 << 60) is None:
        return None
    where = media.describe() if isinstance(media, MediaStore) else str(media)
    return (f"[global] keep_free: a free-space floor has no meaning on the object store"
            f" {where} (a bucket has no free space to keep); remove it and bound usage"
            " with quota instead (docs/operations.md, Retention and quotas)")


def run_pass(catalog: Catalog, rules: Rules, media: Media, log: Any, *,
             now: datetime | None = None,
             between: Callable[[], bool] | None = None) -> PassResult:
    """One pass (see the module docstring); ``now`` defaults to the catalog's clock.
    ``between`` is called after each batch of removals: the pass goes on while it returns
    True (the role pings its watchdog there, and stops early when asked to: the rest
    waits for the next pass). ``media``: the media store (or the file store's folder);
    ConfigurationError when the rules cannot apply there (:func:`space_problem`)."""
    if problem := space_problem(rules, media):
        raise ConfigurationError(problem)
    with catalog.db.advisory_lock(LOCK_SPACE, 0) as got:
        if not got:
            log.info("retention pass skipped: another one runs")
            return PassResult(skipped=True)
        result = PassResult()
        try:
            result.finished = finish_removals(catalog, media, rules, log)
            _expire_and_remove(catalog, rules, media, log, result, now=now, between=between)
        except (StoreError, StoreUnavailable) as exc:  # the whole store: stop, not retry each
            result.stopped, result.store_error = True, str(exc)
            log.error("retention pass stopped: the media store fails; the next pass"
                      " removes what is left", error=str(exc))
        space = store_space(media)
        metrics.after_pass(catalog.usage(), space.free if space else None, time.time())
    log.info("retention pass", expired=sum(result.files.values()),
             bytes=sum(result.bytes.values()), files_by_rule=dict(result.files),
             bytes_by_rule=dict(result.bytes), passed_over=result.passed_over,
             finished_after_crash=result.finished, shortfalls=result.plan.shortfalls,
             free_bytes=space.free if space else None, stopped_early=result.stopped)
    return result


def _expire_and_remove(catalog: Catalog, rules: Rules, media: Media, log: Any,
                       result: PassResult, *, now: datetime | None,
                       between: Callable[[], bool] | None) -> None:
    """Decide, then expire and remove the plan's videos batch by batch (``result``)."""
    result.plan = decide(catalog, rules, now or catalog.clock(), store_space(media))
    batch: list[Decision] = []
    for decision in result.plan.chosen(catalog):
        batch.append(decision)
        if len(batch) == EXPIRE_BATCH:
            _remove(catalog, batch, media, rules=rules, log=log, result=result)
            batch = []
            if between is not None and not between():
                result.stopped = True
                return
    if batch:
        _remove(catalog, batch, media, rules=rules, log=log, result=result)


def _remove(catalog: Catalog, batch: list[Decision], media: Media, *, rules: Rules,
            log: Any, result: PassResult) -> None:
    """Expire ``batch`` (committed), remove each expired row's files, record it (those
    removed before a store error too)."""
    expired = catalog.expire([(d.video_id, d.rule, d.detail) for d in batch])
    result.passed_over += len(batch) - len(expired)
    by_id = {d.video_id: d for d in batch}
    order = {d.video_id: n for n, d in enumerate(batch)}
    removed: list[int] = []
    try:
        for video in sorted(expired, key=lambda v: order[v.id]):
            d = by_id[video.id]
            if not _remove_files(media, video, log):
                continue
            removed.append(video.id)
            result.files[d.rule] += 1
            result.bytes[d.rule] += d.size
            metrics.removed(d.rule, d.size)
            log.info("video expired", video_id=video.id, origin=video.origin, rule=d.rule,
                     size=d.size, created_at=video.created_at.isoformat(), detail=d.detail,
                     stored_path=video.stored_path)
    finally:
        catalog.files_removed(removed, drop_rows=rules.drop_rows)


def _remove_files(media: Media, video: Video, log: Any) -> bool:
    """Remove an expired row's files (objects); False (logged) when the file system
    refuses this one: the row keeps ``files_removed_at`` NULL and the next pass tries
    again. StoreUnavailable / StoreError (an object store that does not answer or refuses
    us) propagate: the pass stops there, every row it expired still marked unremoved."""
    try:
        removal.remove_video(media, video)
    except OSError as exc:
        log.error("expired video's files not removed; the next pass tries again",
                  video_id=video.id, stored_path=video.stored_path, error=str(exc))
        return False
    return True


def finish_removals(catalog: Catalog, media: Media, rules: Rules, log: Any) -> int:
    """Remove the files of rows expired earlier whose removal is still to do (a pass died,
    or the file system refused): how many it removed now."""
    done = after = 0
    while batch := catalog.unremoved(after=after):
        removed: list[int] = []
        try:
            for video in batch:
                if _remove_files(media, video, log):
                    removed.append(video.id)
                    log.info("expired video's files removed after an interrupted pass",
                             video_id=video.id, stored_path=video.stored_path)
        finally:
            catalog.files_removed(removed, drop_rows=rules.drop_rows)
        done += len(removed)
        after = batch[-1].id
    return done
