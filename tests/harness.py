"""Running the real system in tests: the helpers live in :mod:`testbed` (shared with
bench/); this module keeps the names the tests import."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from testbed.databases import create_template, drop_database, fresh_database, rows
from testbed.processes import free_port, stop_process
from testbed.system import REPO, System, own_system, token_lookups
from testbed.waits import wait_for

__all__ = ["REPO", "System", "create_template", "drop_database", "free_port",
           "fresh_database", "own_system", "rows", "stop_process", "token_lookups", "videodrop",
           "wait_for"]


def videodrop(system: System, *args: str, timeout: float = 120,
              **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """``python -m videodrop ARGS`` in ``system``'s environment, from the checkout; its
    output captured as text."""
    return subprocess.run([sys.executable, "-m", "videodrop", *args], env=system.env,
                          cwd=REPO, capture_output=True, text=True, timeout=timeout, **kwargs)
