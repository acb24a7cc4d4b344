"""The token cache's shared stamp: a change in one forked process is seen by the others."""

from __future__ import annotations

import multiprocessing

from api.tokens.sharedstamp import SharedStamp


def _change(stamp: SharedStamp) -> None:
    stamp.change()


def test_a_change_in_a_forked_child_is_seen_by_the_parent() -> None:
    stamp = SharedStamp()  # made before the fork, as the gunicorn master does
    before = stamp.read()
    child = multiprocessing.get_context("fork").Process(target=_change, args=(stamp,))
    child.start()
    child.join(10)
    assert child.exitcode == 0
    assert stamp.read() != before
    seen = stamp.read()
    stamp.change()
    assert stamp.read() not in (before, seen)
