"""``videodrop ingest``: the watch-folder daemon."""

from __future__ import annotations

import argparse
import signal
import threading

from ingest import lock
from ingest.daemon import IngestDaemon
from videodrop import logs, metrics
from videodrop.broker import BatchPublisher
from videodrop.notify import Notifier
from videodrop.settings import Settings


def main(settings: Settings, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="videodrop ingest",
                                     description="watch the inbox and publish finished files")
    parser.parse_args(argv)
    logs.configure(role="ingest", fmt=settings.log_format, level=settings.log_level)
    log = logs.get("ingest")
    held = lock.acquire(settings.inbox.resolve())  # exit 78 naming the holder when taken
    log.info("inbox locked", lock=str(held.path))  # until this process ends
    notifier = Notifier()
    if settings.metrics_bind:
        server = metrics.start_metrics_server(settings.metrics_bind, "ingest")
        log.info("metrics", url=server.url)
    stop = threading.Event()

    def on_signal(*_: object) -> None:
        notifier.stopping("stopping")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    daemon = IngestDaemon(settings, BatchPublisher(settings, name="videodrop-ingest"), log)

    def on_tick() -> None:  # the loop runs once the watches are in place and the inbox scanned
        backlog = len(daemon.tracker) + len(daemon.pending)
        metrics.INBOX_BACKLOG.set(backlog)
        notifier.ready(f"watching {daemon.inbox} ({daemon.mode})")
        notifier.status(f"{len(daemon.tracker)} settling, {len(daemon.pending)} waiting for"
                        f" the broker, {daemon.stats.published} published")
        notifier.watchdog()

    daemon.run(stop, on_tick=on_tick)
    log.info("stopped", published=daemon.stats.published, pending=len(daemon.pending),
             tracked=len(daemon.tracker))
    return 0
