"""Waiting on conditions, never on a clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
import requests

T = TypeVar("T")


def wait_for(check: Callable[[], T | None], *, timeout: float = 30.0, interval: float = 0.05,
             what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` on timeout.

    A connection error of requests or psycopg counts as "not yet". Raises AssertionError
    naming ``what`` and the last result after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except (requests.RequestException, psycopg.OperationalError) as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")
        time.sleep(interval)
