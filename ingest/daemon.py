"""The ingest daemon's one loop: events → settle → confirmed publish, with rescans."""

from __future__ import annotations

import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ingest import openfiles, watcher
from ingest.access import AccessWatch, Blocked
from ingest.prune import Pruner
from ingest.scan import FileState, Verdict, count_dirs, examine, relative, walk
from ingest.settle import Candidate, OpenForWriting, SettleTracker
from videodrop import inboxid, inboxpolicy, media, metrics
from videodrop.errors import BrokerUnavailable, ConfigurationError
from videodrop.inboxpolicy import InboxPolicy, Refusal
from videodrop.messages import InboxFile, Message
from videodrop.settings import Settings

#: A name published again within this many seconds, as another file, is logged (a writer
#: that appends in chunks); at most REUSE_REMEMBERED names are kept before pruning.
REUSE_SECONDS = 600.0
REUSE_REMEMBERED = 10_000


class Publishes(Protocol):
    def publish_batch(self, msgs: list[Message]) -> list[Message]: ...
    def process_events(self) -> None: ...
    def close(self) -> None: ...


@dataclass
class Stats:
    seen: int = 0
    settled: int = 0
    published: int = 0
    refused: int = 0
    publish_failures: int = 0
    rescans: int = 0


class IngestDaemon:
    def __init__(self, settings: Settings, publisher: Publishes, log: Any, *,
                 clock: Callable[[], float] = time.monotonic,
                 open_for_writing: OpenForWriting | None = None,
                 watch_limit: Callable[[], int | None] = watcher.inotify_watch_limit) -> None:
        self.settings = settings
        self.policy = InboxPolicy.from_settings(settings)
        self.inbox = settings.inbox.resolve()
        self.publisher = publisher
        self.log = log
        self.clock = clock
        self.watch_limit = watch_limit
        self.tracker = SettleTracker(settings.settle_seconds,
                                     open_for_writing or openfiles.open_for_writing)
        self.events: queue.Queue[watcher.Event] = queue.Queue()
        self.pending: list[Candidate] = []  # settled, waiting for the broker
        self.published: dict[Path, tuple[FileState, float]] = {}
        # names published within REUSE_SECONDS, oldest first: the file it was then, and when
        self.lately: OrderedDict[Path, tuple[FileState, float]] = OrderedDict()
        # refused files: the state they were refused in (None: by name) and the reason code
        self.refused: dict[Path, tuple[FileState | None, str]] = {}
        self.stats = Stats()
        self.access = AccessWatch(log, self.shown)  # paths held back by permissions
        self.pruner = Pruner(self.inbox, after=settings.inbox_prune_after,
                             depth=settings.inbox_prune_depth, ignored=self.policy.ignored,
                             log=log, shown=self.shown)
        self.observer: Any = None
        self.mode = "inotify"
        self._retry_at = 0.0
        self._backoff = 0.0
        self._next_rescan = 0.0
        # The inbox's identity and device number, stamped on every message (written at
        # prepare(): videodrop/inboxid.py); None until then.
        self.identity: inboxid.InboxIdentity | None = None

    # --- set-up -----------------------------------------------------------------------

    def prepare(self) -> None:
        self.inbox.mkdir(parents=True, exist_ok=True)
        try:
            self.identity = inboxid.ensure(self.inbox)
        except inboxid.InboxIdError as exc:
            raise ConfigurationError(f"the inbox needs its identity file: {exc}") from exc
        self.mode, why = watcher.choose_mode(self.settings.ingest_mode, self.inbox)
        self.log.info("ingest mode", mode=self.mode, why=why, inbox=str(self.inbox),
                      settle_seconds=self.settings.settle_seconds)
        if self.mode == "inotify":
            limit = self.watch_limit()
            needed = count_dirs(self.inbox)
            self.log.info("inotify watches", limit=limit, needed=needed)
            if limit is not None and needed * 2 > limit:
                raise ConfigurationError(
                    f"the inbox has {needed} folders but fs.inotify.max_user_watches is {limit}:"
                    " raise it (sysctl fs.inotify.max_user_watches=524288) or set"
                    " VIDEODROP_INGEST_MODE=poll")

    def start(self) -> Any:
        observer = self.observer = watcher.start_observer(
            self.inbox, self.mode, self.events,
            poll_interval=min(1.0, self.settings.settle_seconds / 2))
        # Watches are in place before the first scan, so nothing falls between the two.
        self.rescan("startup")
        return observer

    # --- the loop ---------------------------------------------------------------------

    def run(self, stop: threading.Event, on_tick: Callable[[], None] | None = None) -> None:
        self.prepare()
        observer = self.start()
        try:
            while not stop.is_set():
                self.step(timeout=0.1)
                if on_tick is not None:
                    on_tick()
        finally:
            observer.stop()
            observer.join(timeout=5)
            self.publisher.close()

    def step(self, timeout: float) -> None:
        try:
            event = self.events.get(timeout=timeout)
            self.handle(event)
            for _ in range(10_000):  # drain what else is there, bounded
                self.handle(self.events.get_nowait())
        except queue.Empty:
            pass
        now = self.clock()
        for cand in self.tracker.due(now, self._restat):
            if self.access.holds(cand.path, now):
                continue  # logged once; taken when the permission is fixed
            refusal = self.policy.by_size(cand.state.file.size)
            if refusal is None and inboxpolicy.may_be_sparse(cand.state.file.size,
                                                             cand.state.blocks):
                refusal = self.policy.by_path(cand.path)
            if refusal is not None:
                self.refuse(cand.path, refusal, cand.state)
                continue
            self.refused.pop(cand.path, None)
            self.stats.settled += 1
            metrics.FILES_SETTLED.inc()
            self.log.info("settled", path=self.shown(cand.path),
                          size=cand.state.file.size, inode=cand.state.file.ino)
            self.pending.append(cand)
        self.publish_pending(now)
        for blocked in self.access.fixed(now):
            self.unblocked(blocked, now)
        self.pruner.prune(now)
        if self.settings.rescan_seconds > 0 and now >= self._next_rescan:
            self.rescan("periodic")
        self.publisher.process_events()

    def handle(self, event: watcher.Event) -> None:
        kind, path, _src = event
        now = self.clock()
        if kind == "rescan":
            self.rescan("events lost (inotify queue overflow)")
            return
        if kind == "gone":
            self.tracker.forget(path)
            self.tracker.forget_below(path)
            self.published.pop(path, None)
            self.refused.pop(path, None)
            self.access.forget(path)
            self.pruner.forget(path)
            self.pruner.note(path.parent, now)  # it may have been the folder's last entry
            return
        if kind == "dir":
            self.pruner.note(path, now)
            for entry in self.walk(path):
                self.consider(entry, now, writing=None, why="folder appeared")
            return
        if kind == "dir_attrib":
            self.access.nudge(path, now)  # a permission fix, maybe: look at once
            return
        if kind == "modified":
            if self.mode == "inotify":
                self.consider(path, now, writing=True, why="written")
            else:
                self.consider(path, now, writing=None, why="changed")
            return
        if kind == "created":  # a chmod too (watchdog's attrib): a fix, maybe
            self.access.nudge(path, now)
            self.consider(path, now, writing=None, why="created")
            return
        # A rename into place (mv, rsync, WinSCP's .filepart) is the writer saying "done":
        # no window. A close may be followed by a reopen to append: the window absorbs it.
        self.consider(path, now, writing=False, why=kind, finished=kind == "moved")

    def consider(self, path: Path, now: float, *, writing: bool | None, why: str,
                 verdict: Verdict | None = None, finished: bool = False) -> None:
        if verdict is None:
            verdict = examine(self.inbox, path, self.policy)
        if verdict.state is None:
            if verdict.refusal is not None:
                self.refuse(path, verdict.refusal, None)
            return
        if self.tracker.touch(path, verdict.state, now, writing, finished=finished):
            self.stats.seen += 1
            metrics.FILES_SEEN.inc()
            self.log.info("seen", path=self.shown(path), size=verdict.state.file.size,
                          inode=verdict.state.file.ino, why=why)

    def refuse(self, path: Path, refusal: Refusal, state: FileState | None) -> None:
        """Leave ``path`` where it is: logged and counted once for each state it is
        refused in (a file refused by name, once)."""
        if self.refused.get(path) == (state, refusal.code):
            return
        self.refused[path] = (state, refusal.code)
        self.stats.refused += 1
        metrics.FILES_REFUSED.labels(refusal.code).inc()
        self.log.warning("refused", path=self.shown(path), reason=refusal.reason,
                         code=refusal.code)

    def shown(self, path: Path) -> str:
        """``path`` for the log: inbox-relative, decoded (``media.display``)."""
        return media.display(relative(self.inbox, path) or str(path))

    def rescan(self, why: str) -> None:
        now = self.clock()
        self.stats.rescans += 1
        metrics.RESCANS.inc()
        found = 0
        present: set[Path] = set()
        for path in self.walk(self.inbox):
            present.add(path)
            verdict = examine(self.inbox, path, self.policy)
            if verdict.state is None:
                if verdict.refusal is not None:
                    self.refuse(path, verdict.refusal, None)
                continue
            last = self.published.get(path)
            recent = (last is not None and last[0] == verdict.state
                      and now - last[1] < self.settings.rescan_seconds)
            refused = path in self.refused and self.refused[path][0] == verdict.state
            if recent or refused or path in self.tracker.candidates:
                continue
            found += 1
            self.consider(path, now, writing=None, why=f"rescan: {why}", verdict=verdict)
        for gone in [p for p in self.published if p not in present]:
            del self.published[gone]
        self.refused = {p: r for p, r in self.refused.items() if p in present}
        self._next_rescan = now + self.settings.rescan_seconds
        self.log.info("rescan", why=why, files=len(present), new=found,
                      tracked=len(self.tracker))

    def walk(self, folder: Path) -> Iterator[Path]:
        """:func:`ingest.scan.walk` telling the permission watch and the pruner what it finds."""
        now = self.clock()
        return walk(folder, denied=lambda f: self.access.block(f, "list", now),
                    empty=lambda f: self.pruner.note(f, now))

    def unblocked(self, blocked: Blocked, now: float) -> None:
        """A permission problem is fixed: take what waited behind it. A folder that could
        not be listed could not be watched either: watch afresh (and rescan for what the
        watches missed meanwhile)."""
        if blocked.kind == "list" and self.mode == "inotify" and self.observer is not None:
            watcher.rewatch(self.observer, self.inbox, self.events)
            self.rescan(f"watching {self.shown(blocked.path)} now")
            return
        found = self.walk(blocked.path) if blocked.kind != "read" else iter([blocked.path])
        for path in found:
            self.consider(path, now, writing=None, why="permission fixed")

    def publish_pending(self, now: float, batch: int = 1000) -> None:
        """Publish what has settled, a batch per broker round trip. A file counts as
        published only once the broker confirmed its message; the rest stay pending."""
        while self.pending and now >= self._retry_at:
            chunk, self.pending = self.pending[:batch], self.pending[batch:]
            msgs: dict[InboxFile, Candidate] = {cand.state.file: cand for cand in chunk}
            stamped: list[Message] = list(msgs) if self.identity is None else [
                m.from_inbox(self.identity.id, self.identity.dev) for m in msgs]
            try:
                confirmed = self.publisher.publish_batch(stamped)
            except BrokerUnavailable as exc:
                confirmed, error = [], str(exc)
            else:
                error = "the broker did not confirm every message"
            for msg in confirmed:
                cand = msgs.pop(msg)  # type: ignore[arg-type]
                self._warn_if_reused(cand)
                self.published[cand.path] = (cand.state, self.clock())
                self._remember_published(cand.path, self.published[cand.path])
                self.stats.published += 1
                metrics.FILES_PUBLISHED.inc()
                self.log.info("published", path=self.shown(cand.path), size=cand.state.file.size,
                              inode=cand.state.file.ino)
            if msgs:  # not confirmed: back to the front of the line, retried after a pause
                self.pending = list(msgs.values()) + self.pending
                self.stats.publish_failures += 1
                metrics.PUBLISH_RETRIES.inc(len(msgs))
                self._backoff = min(30.0, max(0.5, self._backoff * 2))
                self._retry_at = now + self._backoff
                self.log.warning("broker unavailable; will retry", error=error,
                                 waiting=len(self.pending), retry_in=self._backoff)
                return
            self._backoff = 0.0

    def _warn_if_reused(self, cand: Candidate) -> None:
        """A name published again within REUSE_SECONDS as another file: most likely a
        writer that closes and reopens to append, pausing longer than the settle window,
        which makes one video per chunk (docs/inbox.md: the writer contract). Logged, not
        prevented: a camera that reuses a name on purpose gets one video per file."""
        now = self.clock()
        last = self.lately.get(cand.path)
        if last is None or now - last[1] >= REUSE_SECONDS or last[0].unchanged(cand.state):
            return
        self.log.warning("name published again as another file", path=self.shown(cand.path),
                         seconds_since=round(now - last[1], 1), size=cand.state.file.size,
                         size_before=last[0].file.size,
                         hint="a writer appending after pauses longer than"
                              " VIDEODROP_SETTLE_SECONDS makes one video per chunk: write to a"
                              " temporary name and rename it when done (docs/inbox.md: writers)")

    def _remember_published(self, path: Path, published: tuple[FileState, float]) -> None:
        """Keep ``path`` as the newest of :attr:`lately`; names older than REUSE_SECONDS
        and, past REUSE_REMEMBERED names, the oldest are forgotten; O(1) amortised per
        publish, whatever the number of names."""
        self.lately[path] = published
        self.lately.move_to_end(path)
        now = self.clock()
        while self.lately:
            oldest, (_state, at) = next(iter(self.lately.items()))
            if now - at < REUSE_SECONDS and len(self.lately) <= REUSE_REMEMBERED:
                break
            del self.lately[oldest]

    def _restat(self, path: Path) -> FileState | None:
        return examine(self.inbox, path, self.policy).state

