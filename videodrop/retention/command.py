"""``videodrop retention``: apply the rules of ``VIDEODROP_RETENTION_FILE``.

* ``videodrop retention`` runs one pass now and exits (0; 69 when the database is
  unavailable or the media store stopped the pass; 78 when the file is missing or
  invalid, or sets what the store cannot have, naming the problem);
* ``--dry-run`` prints what a pass would remove and why, one line per video (id, origin,
  created_at, bytes, rule, why), then a summary, and changes nothing;
* ``--every SECONDS`` is the role (``videodrop-retention.service``): a pass, then one every
  SECONDS until SIGTERM, ``/metrics`` on ``VIDEODROP_METRICS_BIND``, systemd notified.

Why a role of its own rather than a thread of the prober or ingest: removal must run in
one place and the other roles run many times over (prober@N, several hosts); a small role
keeps the deletions, their log lines and their metrics in one process, and the advisory
lock still keeps two of them (two hosts) from removing at once.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from videodrop import links, logs, storage
from videodrop.catalog import Catalog
from videodrop.errors import CatalogUnavailable, ConfigurationError
from videodrop.retention import rules as rules_file
from videodrop.retention.enforce import run_pass, space_problem, store_space
from videodrop.retention.plan import decide, describe
from videodrop.role import Role
from videodrop.settings import Settings

#: sysexits.h EX_UNAVAILABLE: the media store stopped a single pass (the next one finishes).
EX_UNAVAILABLE = 69
#: The longest ``--every`` (a week, in seconds): a wait the platform can always time.
LONGEST_INTERVAL = 7 * 86400
#: The longest wait between two watchdog pings while the role waits for its next pass (s;
#: shorter when the watchdog's interval is).
WAIT_STEP = 5.0
HELP = "remove what the retention rules (VIDEODROP_RETENTION_FILE) say goes; --dry-run"


def main(settings: Settings, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="videodrop retention", description=HELP)
    parser.add_argument("--dry-run", action="store_true",
                        help="print what a pass would remove and why; change nothing")
    parser.add_argument("--every", type=float, default=None, metavar="SECONDS",
                        help="keep running: a pass every SECONDS (the role)")
    args = parser.parse_args(argv)
    if settings.retention_file is None:
        raise ConfigurationError("VIDEODROP_RETENTION_FILE is not set: no rules to apply"
                                 " (docs/operations.md, Retention and quotas)")
    rules = rules_file.load(settings.retention_file)
    if args.every is not None and not 0 < args.every <= LONGEST_INTERVAL:  # nan too
        raise ConfigurationError(f"--every: a number of seconds over 0 and at most"
                                 f" {LONGEST_INTERVAL}, not {args.every}")
    media = media_store(settings, rules)
    if args.dry_run:
        return _dry_run(settings, rules, media)
    if args.every is None:
        logs.configure(role="retention", fmt=settings.log_format, level=settings.log_level)
        catalog = _catalog(settings)
        try:
            result = run_pass(catalog, rules, media, logs.get("retention"))
        finally:
            catalog.close()
        return EX_UNAVAILABLE if result.store_error else 0
    return _serve(settings, rules, args.every, media)


def media_store(settings: Settings, rules: rules_file.Rules) -> storage.MediaStore:
    """The store the roles keep media in (``VIDEODROP_STORAGE_URL``, by default the folder
    ``VIDEODROP_MEDIA_ROOT``): where a pass removes files or objects, and asks for space
    on a file store. ConfigurationError (exit 78) when the rules set what the store
    cannot have (``keep_free`` on s3) or the store refuses us (no bucket, credentials);
    a store that does not answer yet is the passes' problem (each removal is retried)."""
    media = storage.from_settings(settings)
    if problem := space_problem(rules, media):
        raise ConfigurationError(f"VIDEODROP_RETENTION_FILE={settings.retention_file}:"
                                 f" {problem}")
    if not isinstance(media, storage.FileStore):
        try:
            media.check()
        except storage.StoreRefused as exc:
            raise ConfigurationError(f"media store {media.describe()}: {exc}") from exc
        except storage.StoreUnavailable:
            pass  # the passes retry: an expired row keeps its objects until removed
    return media


def _catalog(settings: Settings) -> Catalog:
    """The catalog, with the stream links (VIDEODROP_STREAM_LINKS) it removes before an
    expiry commits."""
    return Catalog.connect(settings.database_url, links=links.from_settings(settings))


def _dry_run(settings: Settings, rules: rules_file.Rules, media: storage.MediaStore) -> int:
    catalog = Catalog.connect(settings.database_url)
    try:
        plan = decide(catalog, rules, catalog.clock(), store_space(media))
        print("id\torigin\tcreated_at\tbytes\trule\twhy")
        videos = size = 0
        for d in plan.chosen(catalog):
            print(describe(d))
            videos, size = videos + 1, size + d.size
    finally:
        catalog.close()
    print(f"# would remove {videos} videos, {size} bytes")
    for sentence in plan.shortfalls:
        print(f"# {sentence}")
    return 0


def _serve(settings: Settings, rules: rules_file.Rules, every: float,
           media: storage.MediaStore) -> int:
    """The role: READY=1 at once, then a pass every ``every`` seconds until SIGTERM; the
    watchdog is pinged between a pass's batches and while it waits (a pass of many
    removals, or an interval longer than ``WatchdogSec``, never looks like a hang)."""
    role = Role("retention", settings)
    role.start(stopping="finishing the removals in hand")
    catalog = _catalog(settings)
    log: Any = role.log

    def going_on() -> bool:
        role.tick("running a pass")
        return not role.stop.is_set()

    try:
        while going_on():
            try:
                result = run_pass(catalog, rules, media, log, between=going_on)
                status = ("media store unavailable" if result.store_error else
                          "waiting for the next pass" if not result.skipped
                          else "another process runs the passes")
                ready = result.store_error is None
            except CatalogUnavailable as exc:
                log.warning("retention pass failed: database unavailable", error=str(exc))
                status, ready = "database unavailable", False
            deadline = time.monotonic() + every
            step = min(WAIT_STEP, role.notifier.interval or WAIT_STEP)
            while not role.stop.is_set() and (left := deadline - time.monotonic()) > 0:
                role.tick(status, ready=ready)
                role.stop.wait(min(left, step))
    finally:
        catalog.close()
    return 0


def requeue_refusal(settings: Settings, argv: list[str]) -> str | None:
    """Why ``videodrop requeue ARGV`` must not run, or None: a video id it names has
    expired (a tombstone: its files are gone, a probe has nothing to read). The
    sentence names each such id with when and by which rule it expired."""
    ids = [int(a) for a in argv if a.isdigit()]
    if not ids:
        return None
    catalog = Catalog.connect(settings.database_url)
    try:
        expired = catalog.expired_among(ids)
    finally:
        catalog.close()
    if not expired:
        return None
    said = "; ".join(f"video {i} expired at {when.isoformat()} (rule {rule})"
                     for i, when, rule in expired)
    return (f"{said}: retention removed its files, so it cannot be probed again;"
            " nothing requeued")
