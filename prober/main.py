"""``videodrop prober``, ``videodrop probe FILE`` and ``videodrop requeue``."""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

from prober import spool, store
from prober.ffprobe import FFprobeMissing, ProbeError, ffprobe_version
from prober.probe import probe_file
from prober.worker import Worker
from videodrop import broker, links, logs, outbox, storage
from videodrop.catalog import Catalog
from videodrop.catalog.derivatives import REQUEUE_MODES
from videodrop.children import ChildMissing, ChildRunner, prlimit_binary
from videodrop.errors import BrokerUnavailable, ConfigurationError
from videodrop.messages import BadMessage, ProbeVideo, decode
from videodrop.role import Role, consumer_arguments
from videodrop.settings import Settings


def _ffprobe_runner(settings: Settings) -> ChildRunner:
    """ffprobe's runner: each child limited to VIDEODROP_CHILD_MEMORY of address space; no
    prlimit (util-linux) to apply the limits is a configuration error (exit 78)."""
    try:
        prlimit = prlimit_binary()
    except ChildMissing as exc:
        raise ConfigurationError(f"cannot limit ffprobe's resources: {exc}") from exc
    return ChildRunner(settings.child_memory, prlimit=prlimit)


def _version_or_refuse(settings: Settings, runner: ChildRunner) -> str | None:
    """ffprobe's version; a missing ffprobe is a configuration error (exit 78)."""
    try:
        return ffprobe_version(settings.ffprobe, runner)
    except FFprobeMissing as exc:
        raise ConfigurationError(str(exc)) from exc
    except ProbeError as exc:  # it exists but misbehaves: probes will say so, file by file
        logs.get("prober").warning("ffprobe -version failed", error=str(exc))
        return None


def _sweep_stale_copies(root: Path, log: Any) -> None:
    """Temporary copies left in the store (its folder ``root``) by a prober that died
    mid-copy, at start."""
    try:
        removed = store.sweep_parts(root)
    except OSError as exc:
        log.warning("stale copies: sweep failed", error=str(exc))
        return
    log.info("stale copies removed", count=len(removed),
             older_than_s=store.STALE_PART_SECONDS,
             paths=[str(p.relative_to(root)) for p in removed[:20]])


def main(settings: Settings, argv: list[str]) -> int:
    args = consumer_arguments(
        "videodrop prober", "consume probe messages and store their outcomes",
        concurrency=settings.prober_concurrency, setting="VIDEODROP_PROBER_CONCURRENCY",
        unit="probes").parse_args(argv)
    role = Role("prober", settings)
    log = role.log
    runner = _ffprobe_runner(settings)
    version = _version_or_refuse(settings, runner)
    media = storage.from_settings(settings)  # the one store of this process
    if isinstance(media, storage.FileStore):
        root = storage.local_root(media).resolve()
        root.mkdir(parents=True, exist_ok=True)
        sweep = functools.partial(_sweep_stale_copies, root, role.log)
    else:  # claimed files wait in the inbox's spool until stored (prober/spool.py)
        storage.refuse_if_refused(media, log)  # exit 78 when it refuses us
    catalog = Catalog.connect(settings.database_url, min_size=1, max_size=2 * args.concurrency + 1,
                              links=links.from_settings(settings, media))
    if not isinstance(media, storage.FileStore):
        sweep = functools.partial(spool.sweep, media, spool.spool_root(settings.inbox), role.log,
                                  catalog.named_keys)
    prober = functools.partial(probe_file, ffprobe=settings.ffprobe,
                               timeout=settings.probe_timeout, version=version, runner=runner)
    role.start(stopping="finishing the files in hand")
    log.info("starting", concurrency=args.concurrency, ffprobe=settings.ffprobe,
             ffprobe_version=version, store=media.describe(),
             child_memory=settings.child_memory)
    threading.Thread(target=sweep, name="part-sweep", daemon=True).start()
    workers = [Worker(settings, catalog, prober, log.bind(worker=i), name=f"prober-{i}",
                      media=media)
               for i in range(args.concurrency)]
    if not role.run_consumers(workers, settings.probe_queue):
        return 1
    catalog.close()
    log.info("stopped")
    return 0


def probe_command(settings: Settings, argv: list[str]) -> int:
    """``videodrop probe FILE…``: one file's metadata as indented JSON; several files as
    JSON lines (one object a file, with its ``file``). Exit 0 when every file is ready,
    1 when any failed, 2 when any is missing; a closed pipe (``| head``) ends it quietly."""
    parser = argparse.ArgumentParser(
        prog="videodrop probe", description="print the normalised metadata of each FILE "
        "as JSON (one file) or JSON lines (several), without touching the database")
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.add_argument("--raw", action="store_true", help="include ffprobe's own JSON")
    args = parser.parse_args(argv)
    runner = _ffprobe_runner(settings)
    version = _version_or_refuse(settings, runner)
    worst = 0
    try:
        for path in args.files:
            if not path.is_file():
                print(f"videodrop probe: {path}: no such file", file=sys.stderr)
                worst = 2
                continue
            result = probe_file(path, ffprobe=settings.ffprobe, timeout=settings.probe_timeout,
                                version=version, runner=runner)
            out = {"status": "ready" if result.ok else "failed",
                   "processing_error": result.error, "error_code": result.code,
                   **result.metadata, "sha256": store.sha256_of(path)}
            if args.raw:
                out["ffprobe"] = result.raw
            if len(args.files) > 1:
                print(json.dumps({"file": str(path), **out}, default=str))
            else:
                json.dump(out, sys.stdout, indent=2, default=str)
                print()
            sys.stdout.flush()
            worst = max(worst, 0 if result.ok else 1)
    except BrokenPipeError:
        # the reader went away (`| head`): no traceback, and nothing more to print
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # as a shell reports a command ended by SIGPIPE
    return worst


def requeue_command(settings: Settings, argv: list[str]) -> int:
    """``videodrop requeue [--failed] [--dead] [ID…]``: probe videos again. Unknown ids
    are named and nothing is requeued (exit 1). ``--dead`` moves the messages of both
    dead-letter queues (probe and derive jobs) back to their queues, logging each.
    ``--derivatives missing|failed|all``: request the derivatives of ready videos again
    (VIDEODROP_DERIVE's kinds) and publish the jobs of every request that has none."""
    parser = argparse.ArgumentParser(prog="videodrop requeue",
                                     description="probe videos again")
    parser.add_argument("--failed", action="store_true", help="every video whose status is failed")
    parser.add_argument("--dead", action="store_true",
                        help="every message in the dead-letter queues (probe and derive)")
    parser.add_argument("--derivatives", choices=sorted(REQUEUE_MODES),
                        help="derive again: what ready videos lack (missing), what failed,"
                        " or everything (all)")
    parser.add_argument("ids", nargs="*", type=int, help="these video ids")
    args = parser.parse_args(argv)
    if args.derivatives:
        if args.failed or args.dead or args.ids:
            parser.error("--derivatives goes alone")
        return _requeue_derivatives(settings, args.derivatives)
    if not (args.failed or args.dead or args.ids):
        parser.error("say what to requeue: --failed, --dead, --derivatives or video ids")
    logs.configure(role="requeue", fmt=settings.log_format, level=settings.log_level)
    log = logs.get("prober.requeue")
    ids = list(dict.fromkeys(args.ids))
    if ids or args.failed:
        catalog = Catalog.connect(settings.database_url)
        try:
            unknown = sorted(set(ids) - catalog.known_ids(ids)) if ids else []
            if args.failed:
                ids += [i for i in catalog.ids_with_status("failed") if i not in ids]
        finally:
            catalog.close()
        if unknown:
            print(f"videodrop requeue: no video with id {', '.join(map(str, unknown))}; "
                  "nothing requeued", file=sys.stderr)
            return 1
    publisher = broker.Publisher(settings, name="videodrop-requeue")
    for video_id in ids:
        publisher.publish(ProbeVideo(video_id=video_id, force=True))
    moved = _drain_dead(settings, publisher, log) if args.dead else 0
    publisher.close()
    log.info("requeued", videos=len(ids), dead_letters=moved)
    print(f"requeued {len(ids)} video(s) and {moved} dead-lettered message(s)")
    return 0


def _requeue_derivatives(settings: Settings, mode: str) -> int:
    if not settings.derive:
        print("videodrop requeue: VIDEODROP_DERIVE is empty: no derivative is made",
              file=sys.stderr)
        return 1
    logs.configure(role="requeue", fmt=settings.log_format, level=settings.log_level)
    catalog = Catalog.connect(settings.database_url)
    publisher = broker.Publisher(settings, name="videodrop-requeue")
    try:
        requested = catalog.request_derivatives(settings.derive, mode)
        try:
            published = outbox.relay(catalog, publisher)
        except BrokerUnavailable as exc:  # the requests are recorded: derive publishes them
            print(f"videodrop requeue: {exc}; the derive role publishes the jobs when it"
                  " reaches the broker", file=sys.stderr)
            published = 0
    finally:
        publisher.close()
        catalog.close()
    logs.get("prober.requeue").info("derivatives requested", mode=mode,
                                    requests=requested, published=published)
    print(f"requested {requested} derivative(s) again; published jobs for {published}")
    return 0


def _drain_dead(settings: Settings, publisher: broker.Publisher, log: Any) -> int:
    """Move every message of the dead-letter queues (``<prefix>.probe.dead``,
    ``<prefix>.derive.dead``) back to its job queue, one ``dead letter requeued`` line
    each (``queue``, and the job's ``video_id`` and ``kinds`` when it reads); the number
    moved. A derive job whose kinds were marked failed finds nothing to make: ``videodrop
    requeue --derivatives failed`` requests them again."""
    conn = broker.connect(settings, name="videodrop-requeue-dead")
    channel = conn.channel()
    broker.declare(channel, settings)
    moved = 0
    for key, _queue, dead in settings.job_queues:
        while True:
            method, _props, body = channel.basic_get(dead, auto_ack=False)
            if method is None:
                break
            publisher.publish_body(body, key)
            channel.basic_ack(method.delivery_tag)
            moved += 1
            log.info("dead letter requeued", queue=dead, **_job_of(body))
    conn.close()
    return moved


def _job_of(body: bytes) -> dict[str, Any]:
    """What a log line says of a dead letter: its ``video_id`` (and ``kinds``), or that
    it does not read."""
    try:
        msg = decode(body)
    except BadMessage as exc:
        return {"unreadable": str(exc)[:200]}
    return {"video_id": getattr(msg, "video_id", None),
            "kinds": list(getattr(msg, "kinds", ()))}
