"""``videodrop run``: every role as a child process, stopped together on SIGINT/SIGTERM.

A child that dies on its own is started again after a short, growing pause, so a
broker or database outage at start-up heals by itself in the foreground too."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from videodrop import logs, storage
from videodrop.migrate import migrate
from videodrop.settings import Settings

ROLES = ("ingest", "prober", "derive", "api", "retention")
#: Each role's arguments: retention passes every 5 minutes (videodrop-retention.service's).
ROLE_ARGS = {"retention": ("--every", "300")}
EX_CONFIG = 78


@dataclass
class Child:
    role: str
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default=0.0)


def run_all(settings: Settings, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="videodrop run")
    parser.add_argument("--roles", default=",".join(ROLES),
                        help="comma-separated roles to run (default: all)")
    parser.add_argument("--no-migrate", action="store_true")
    args = parser.parse_args(argv)
    roles = [r for r in args.roles.split(",") if r]
    if not settings.derive and "derive" in roles:
        roles.remove("derive")  # VIDEODROP_DERIVE is empty: the role is off
    if settings.retention_file is None and "retention" in roles:
        roles.remove("retention")  # no VIDEODROP_RETENTION_FILE: nothing to enforce
    logs.configure(role="run", fmt=settings.log_format, level=settings.log_level)
    log = logs.get("videodrop.run")

    settings.inbox.mkdir(parents=True, exist_ok=True)
    media = storage.from_settings(settings)
    if isinstance(media, storage.FileStore):
        media.root.mkdir(parents=True, exist_ok=True)
    if not args.no_migrate:
        migrate(settings.database_url)

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    children = [Child(role) for role in roles]
    log.info("starting", roles=roles, inbox=str(settings.inbox.resolve()),
             url=settings.base_url, store=media.describe())
    failed = 0
    while not stop.is_set():
        now = time.monotonic()
        for child in children:
            if child.proc is not None and child.proc.poll() is not None:
                code = child.proc.returncode
                log.warning("role exited", role=child.role, code=code)
                child.proc = None
                if code == EX_CONFIG:
                    log.error("configuration error; stopping", role=child.role)
                    failed = EX_CONFIG  # ours too: make run and systemd see it
                    stop.set()
                    break
                child.restarts += 1
                quick = now - child.started_at < 30
                child.next_start = now + (min(30.0, 2.0 ** min(child.restarts, 5)) if quick else 1)
            if child.proc is None and not stop.is_set() and now >= child.next_start:
                child.proc = subprocess.Popen([sys.executable, "-m", "videodrop", child.role,
                                               *ROLE_ARGS.get(child.role, ())])
                child.started_at = now
                log.info("role started", role=child.role, pid=child.proc.pid)
        stop.wait(0.2)

    log.info("stopping", roles=roles)
    for child in children:
        if child.proc is not None and child.proc.poll() is None:
            child.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    for child in children:
        if child.proc is None:
            continue
        try:
            child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("role did not stop in time; killing", role=child.role)
            child.proc.kill()
            child.proc.wait()
    log.info("stopped")
    return failed
