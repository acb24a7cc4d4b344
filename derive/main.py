"""``videodrop derive``: consume derive jobs and make posters, storyboards and scenes.

At start it requests what ready videos lack (``videodrop requeue --derivatives missing``:
videos made ready before the role ran, kinds newly named in VIDEODROP_DERIVE, jobs lost
with a purged queue); its relay thread publishes the jobs of every request that has none
(derive/relay.py); VIDEODROP_DERIVE_CONCURRENCY consumers make them. The process, and so
every ffmpeg child, runs at the lowest CPU and IO priority (:data:`NICE`, IO class idle):
probing, at normal priority, takes a core first. Not SCHED_IDLE: the role's broker
heartbeats and watchdog pings must not starve on a saturated machine."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading

from derive import ffmpeg, output
from derive.relay import Relay
from derive.scratch import ScratchRoot
from derive.transcoder import Transcoder
from derive.worker import Worker
from videodrop import links, storage
from videodrop.catalog import Catalog
from videodrop.children import AutogroupNice, ChildMissing, ChildRunner, prlimit_binary
from videodrop.errors import ConfigurationError
from videodrop.role import Role, consumer_arguments
from videodrop.settings import Settings

NICE = 19  # niceness of the role and its children (the lowest)


def lower_priority() -> dict[str, object]:
    """Lower this thread's CPU priority to :data:`NICE` and its IO priority to the idle
    class, before any thread or child starts (both are inherited; each ffmpeg child's
    autogroup gets the niceness too: videodrop/children.py). When this process leads its
    session (systemd, the testbed), its autogroup is its own and gets :data:`NICE` as
    well; under ``videodrop run`` it shares the supervisor's, which is left alone.
    Best effort: a sandbox may forbid it (the systemd unit sets them itself)."""
    got: dict[str, object] = {}
    try:
        current = os.getpriority(os.PRIO_PROCESS, 0)
        if current < NICE:
            os.setpriority(os.PRIO_PROCESS, 0, NICE)
        got["nice"] = max(current, NICE)
    except OSError as exc:
        got["nice_error"] = str(exc)
    if os.getsid(0) == os.getpid():
        autogroup = AutogroupNice(os.getpid(), NICE)
        autogroup.attempt()
        if autogroup.error is not None or autogroup.retry_at is not None:
            got["autogroup_error"] = autogroup.error or "refused for now (EAGAIN)"
    ionice = shutil.which("ionice")
    if ionice is not None:
        done = subprocess.run([ionice, "-c", "3", "-p", str(os.getpid())],
                              capture_output=True, text=True, check=False, timeout=10)
        got["io_class"] = "idle" if done.returncode == 0 else done.stderr.strip()[:200]
    return got


def _runner(settings: Settings) -> ChildRunner:
    """ffmpeg's runner: each child limited to VIDEODROP_CHILD_MEMORY of address space (it
    writes files: no file-size limit) and to CPU time for the deadline on every core this
    process may use (ffmpeg's decoding and filter threads); no prlimit is a configuration
    error (exit 78)."""
    try:
        prlimit = prlimit_binary()
    except ChildMissing as exc:
        raise ConfigurationError(f"cannot limit ffmpeg's resources: {exc}") from exc
    return ChildRunner(settings.child_memory, file_size=None, prlimit=prlimit,
                       cpus=len(os.sched_getaffinity(0)))


def main(settings: Settings, argv: list[str]) -> int:
    args = consumer_arguments(
        "videodrop derive", "make posters, storyboards and scenes of ready videos",
        concurrency=settings.derive_concurrency, setting="VIDEODROP_DERIVE_CONCURRENCY",
        unit="jobs").parse_args(argv)
    role = Role("derive", settings)
    log = role.log
    if not settings.derive:
        log.info("VIDEODROP_DERIVE is empty: nothing to make; exiting")
        # READY=1 first: under systemd (Type=notify) a main process that exits before it is
        # a failed start (result 'protocol'), the unit left failed for a role turned off
        role.notifier.ready("VIDEODROP_DERIVE is empty: nothing to make")
        return 0
    runner = _runner(settings)
    try:  # before the priority drops: at nice 19 on a saturated machine its 10 s would pass
        version = ffmpeg.version(settings.ffmpeg, runner)
    except ChildMissing as exc:
        raise ConfigurationError(f"{exc}; install ffmpeg (apt-get install ffmpeg) or set"
                                 " VIDEODROP_FFMPEG") from exc
    priority = lower_priority()
    media = storage.from_settings(settings)  # the one store of this process
    if isinstance(media, storage.FileStore):
        media.root.mkdir(parents=True, exist_ok=True)
        out = output.for_store(media)
    else:  # files are made in a local scratch folder, then put into the store
        storage.refuse_if_refused(media, log)  # exit 78: no bucket, credentials refused
        scratch = ScratchRoot()
        if scratch.removed:
            log.info("scratch folders of dead processes removed", count=len(scratch.removed))
        out = output.for_store(media, scratch)
    catalog = Catalog.connect(settings.database_url, min_size=1,
                              max_size=2 * args.concurrency + 4,
                              links=links.from_settings(settings, media))
    role.start(stopping="finishing the jobs in hand")
    log.info("starting", concurrency=args.concurrency, kinds=list(settings.derive),
             store=media.describe(),
             ffmpeg=settings.ffmpeg, ffmpeg_version=version, timeout=settings.derive_timeout,
             timeout_per_media_second=settings.derive_timeout_per_media_second,
             child_memory=settings.child_memory, **priority)
    requested = catalog.request_derivatives(settings.derive, "missing")
    log.info("reconciled", requests=requested)
    tool = ffmpeg.FFmpeg(settings.ffmpeg, runner, ffmpeg.Deadline(
        settings.derive_timeout, settings.derive_timeout_per_media_second))
    workers = [Worker(settings, catalog, tool, log.bind(worker=i), name=f"derive-{i}",
                      media=media, out=out)
               for i in range(args.concurrency)]
    if "rendition" in settings.derive:  # one video transcode at a time (derive/transcoder.py)
        workers.append(Transcoder(settings, catalog, tool, log.bind(worker="transcode"),
                                  name="derive-transcode", queue=settings.transcode_queue,
                                  media=media, out=out))
    relay = Relay(settings, catalog, log.bind(worker="relay"))
    relay_thread = threading.Thread(target=relay.run, args=(role.stop,), name="derive-relay",
                                    daemon=True)
    if not role.run_consumers(workers, settings.derive_queue, required=[relay_thread]):
        return 1
    catalog.close()
    log.info("stopped")
    return 0
