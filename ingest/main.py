"""``videodrop ingest``: the watch-folder daemon."""

from __future__ import annotations

import argparse
import signal
import threading

from ingest.daemon import IngestDaemon
from videodrop import logs
from videodrop.broker import BatchPublisher
from videodrop.settings import Settings


def main(settings: Settings, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="videodrop ingest",
                                     description="watch the inbox and publish finished files")
    parser.parse_args(argv)
    logs.configure(role="ingest", fmt=settings.log_format, level=settings.log_level)
    log = logs.get("ingest")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    daemon = IngestDaemon(settings, BatchPublisher(settings, name="videodrop-ingest"), log)
    daemon.run(stop)
    log.info("stopped", published=daemon.stats.published, pending=len(daemon.pending),
             tracked=len(daemon.tracker))
    return 0
