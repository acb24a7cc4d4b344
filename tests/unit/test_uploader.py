"""videodrop upload's reading of Retry-After (videodrop/uploader.py): seconds or an HTTP
date, bounded, with a default when it is missing or unreadable."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from videodrop.uploader import DEFAULT_RETRY_AFTER, MAX_RETRY_AFTER, retry_after

NOW = 1_800_000_000.0


@pytest.mark.parametrize(("value", "seconds"), [
    ("1", 1.0), ("0", 0.0), (" 5 ", 5.0), ("120", MAX_RETRY_AFTER),
    (None, DEFAULT_RETRY_AFTER), ("", DEFAULT_RETRY_AFTER), ("soon", DEFAULT_RETRY_AFTER),
    ("-3", DEFAULT_RETRY_AFTER), ("1.5", DEFAULT_RETRY_AFTER),
    (formatdate(NOW + 12, usegmt=True), 12.0), (formatdate(NOW - 60, usegmt=True), 0.0),
    (formatdate(NOW + 3600, usegmt=True), MAX_RETRY_AFTER),
])
def test_retry_after(value, seconds):
    assert retry_after(value, now=NOW) == seconds
