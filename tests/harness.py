"""Running the real system in tests: the helpers live in :mod:`testbed` (shared with
bench/); this module keeps the names the tests import."""

from __future__ import annotations

from testbed.databases import create_template, drop_database, fresh_database, rows
from testbed.processes import free_port, stop_process
from testbed.system import REPO, System, own_system, token_lookups
from testbed.waits import wait_for

__all__ = ["REPO", "System", "create_template", "drop_database", "free_port",
           "fresh_database", "own_system", "rows", "stop_process", "token_lookups",
           "wait_for"]
