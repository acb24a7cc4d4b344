"""An inbox already holding 100,000 files when the ingest daemon starts: all published
within 20 s. Only the ingest daemon runs (no prober), on a scratch queue prefix; the clock
runs from starting the daemon's process until the probe queue holds 100,000 messages
(passive ``queue_declare``, polled every 0.2 s). The files are 16-byte ``.mp4`` files (they
need not be videos: nothing probes them) in one folder of the inbox on the disk, the same
file system as the repository (not a tmpfs)."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: import the bench package, not bench/*.py
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import pika
import pika.exceptions

from bench import common
from bench.common import Row, Scratch, row

FILES = 100_000
TARGET_SECONDS = 20.0
GIVE_UP = 120.0


def fill(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    body = b"not a video 0000"
    for i in range(count):
        fd = os.open(folder / f"f{i:06d}.mp4", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, body)
        finally:
            os.close(fd)


class Depth:
    """Messages in a queue, on one connection (a new channel after a 404)."""

    def __init__(self, url: str, queue: str) -> None:
        self.queue = queue
        self.conn = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.conn.channel()

    def __call__(self) -> int:
        try:
            return int(self.channel.queue_declare(self.queue, passive=True).method.message_count)
        except pika.exceptions.ChannelClosedByBroker:  # not declared yet
            self.channel = self.conn.channel()
            return 0

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()


def fstype(path: Path) -> str:
    best, kind = "", "?"
    for line in Path("/proc/mounts").read_text().splitlines():
        _dev, mount, typ, *_ = line.split()
        if str(path).startswith(mount) and len(mount) > len(best):
            best, kind = mount, typ
    return kind


def run_once(count: int = FILES) -> dict[str, Any]:
    with Scratch("inbox") as scratch:
        inbox = scratch.root / "inbox"
        with common.stage(f"writing {count} files into the inbox"):
            fill(inbox / "bulk", count)
        depth = Depth(scratch.amqp_url, f"{scratch.prefix}.probe")
        try:
            at_target: int | None = None
            t0 = time.perf_counter()
            system = common.System(scratch.root, scratch.database_url, scratch.amqp_url,
                                   scratch.prefix)
            scratch.systems.append(system)
            system.start("ingest")
            n = 0
            while True:
                n = depth()
                elapsed = time.perf_counter() - t0
                if at_target is None and elapsed >= TARGET_SECONDS:
                    at_target = n
                if n >= count or elapsed > GIVE_UP:
                    break
                time.sleep(0.2)
            return {"seconds": elapsed, "published": n, "at_target": at_target,
                    "fstype": fstype(inbox)}
        finally:
            depth.close()


def main() -> list[Row]:
    with common.stage(f"inbox holding {FILES} files at start"):
        got = run_once()
    done = got["published"] >= FILES
    secs = got["seconds"]
    rate = got["published"] / secs
    common.log(f"{got['published']} published in {secs:.1f} s ({rate:.0f}/s); at"
               f" {TARGET_SECONDS:g} s: {got['at_target']}; inbox on {got['fstype']}")
    value = (f"{secs:.1f} s ({rate:.0f} files/s)" if done else
             f"{got['published']} of {FILES} in {secs:.0f} s ({rate:.0f} files/s)")
    return [row(f"inbox holding {FILES:,} files at start → all published"
                f" ({got['fstype']} disk)", value, "—", None,
                f"<= {TARGET_SECONDS:g} s", done and secs <= TARGET_SECONDS)]


if __name__ == "__main__":
    common.standalone(main, "inbox at start")
