"""``videodrop ingest``: the watch-folder daemon."""

from __future__ import annotations

import argparse

from ingest import lock
from ingest.daemon import IngestDaemon
from videodrop import metrics
from videodrop.broker import BatchPublisher
from videodrop.role import Role
from videodrop.settings import Settings


def main(settings: Settings, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="videodrop ingest",
                                     description="watch the inbox and publish finished files")
    parser.parse_args(argv)
    role = Role("ingest", settings)
    held = lock.acquire(settings.inbox.resolve())  # exit 78 naming the holder when taken
    role.log.info("inbox locked", lock=str(held.path))  # until this process ends
    role.start()
    daemon = IngestDaemon(settings, BatchPublisher(settings, name="videodrop-ingest"), role.log)

    def on_tick() -> None:  # the loop runs once the watches are in place and the inbox scanned
        metrics.INBOX_BACKLOG.set(len(daemon.tracker) + len(daemon.pending))
        role.tick(f"watching {daemon.inbox} ({daemon.mode}): {len(daemon.tracker)} settling,"
                  f" {len(daemon.pending)} waiting for the broker,"
                  f" {daemon.stats.published} published")

    daemon.run(role.stop, on_tick=on_tick)
    role.log.info("stopped", published=daemon.stats.published, pending=len(daemon.pending),
                  tracked=len(daemon.tracker))
    return 0
