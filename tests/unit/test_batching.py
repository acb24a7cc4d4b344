"""videodrop.batching: the one timed buffer (log lines, counts, request metrics) and the
one ticker thread that flushes them."""

from __future__ import annotations

import os
import signal
import threading
import time

from testbed.waits import wait_for
from videodrop.batching import Ticker, TimedBuffer


def test_a_buffer_writes_what_it_collected_once_in_order() -> None:
    written: list[list[int]] = []
    buffer = TimedBuffer(written.append, ticker=None)
    buffer.flush()
    assert written == []  # nothing collected: no write
    for i in range(5):
        buffer.add(i)
    assert len(buffer) == 5 and written == []
    buffer.flush()
    buffer.flush()
    assert written == [[0, 1, 2, 3, 4]]
    assert len(buffer) == 0


def test_nothing_is_lost_or_doubled_while_threads_add_and_flush() -> None:
    written: list[int] = []
    buffer = TimedBuffer(written.extend, ticker=None)
    per_thread, threads = 5000, 4

    def add(base: int) -> None:
        for i in range(per_thread):
            buffer.add(base + i)
            if i % 500 == 0:
                buffer.flush()

    workers = [threading.Thread(target=add, args=(n * per_thread,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    buffer.flush()
    assert sorted(written) == list(range(per_thread * threads))
    for n in range(threads):  # each thread's items in the order it added them
        mine = [x for x in written if n * per_thread <= x < (n + 1) * per_thread]
        assert mine == sorted(mine)


def test_a_tick_calls_then_flushes_and_survives_a_failure() -> None:
    ticker = Ticker(interval=3600)
    order: list[str] = []
    buffer = TimedBuffer(order.extend, ticker=ticker)

    def failing() -> None:
        raise RuntimeError("one bad callable")

    ticker.every_tick(failing)
    ticker.every_tick(lambda: buffer.add("added by a call"))
    buffer.add("collected")
    ticker.tick()
    assert order == ["collected", "added by a call"]  # what a call adds goes in the same tick


def test_the_ticker_thread_flushes_on_its_own() -> None:
    ticker = Ticker(interval=0.01)
    written: list[str] = []
    buffer = TimedBuffer(written.extend, ticker=ticker)
    ticker.start()
    ticker.start()  # once per process
    buffer.add("line")
    wait_for(lambda: written == ["line"], timeout=10, what="the ticker's flush")


def test_a_forked_child_ticks_on_its_own() -> None:
    """A gunicorn worker forked from a master whose ticker runs gets its own thread."""
    ticker = Ticker(interval=0.01)
    read, write = os.pipe()
    buffer = TimedBuffer(lambda items: os.write(write, b"".join(items)), ticker=ticker)
    ticker.start()
    pid = os.fork()
    if pid == 0:  # the child: only the ticker may write what it collects
        try:
            buffer.add(b"from the child\n")
        finally:
            time.sleep(5)  # the ticker's flush comes well before; the parent waits on the pipe
            os._exit(0)
    os.close(write)  # the child's copy is the only writer left: EOF when it ends
    try:
        with os.fdopen(read, "rb") as pipe:
            assert pipe.readline() == b"from the child\n"
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
