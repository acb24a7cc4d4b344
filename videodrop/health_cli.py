"""``videodrop health``: can this machine, with these settings, run the roles?

Checks the database (and that its migrations are applied), the broker, the inbox and the
media root (folders we may write, room for one more file) and ffprobe, prints one line per
check, and exits 0 when all pass, 1 otherwise. ``--role`` checks only what one role needs;
``--json`` prints the results for a machine. Nothing is created in the inbox (the ingest
daemon would see it); the media root gets an empty temporary file, removed at once.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import pika
import pika.exceptions
import psycopg

from videodrop import broker, storage
from videodrop.errors import BrokerUnavailable, ConfigurationError
from videodrop.migrate import available
from videodrop.settings import Settings

TIMEOUT = 5.0
#: What the s3 check writes (under ``health/``) and removes at once.
HEALTH_OBJECT = b"videodrop health check\n"


@dataclass(frozen=True)
class Result:
    check: str
    ok: bool
    detail: str
    ms: float = 0.0


Check = Callable[[Settings], tuple[bool, str]]


def check_database(settings: Settings) -> tuple[bool, str]:
    try:
        with psycopg.connect(settings.database_url, connect_timeout=int(TIMEOUT)) as conn:
            server = conn.info.server_version
            has_table = conn.execute(
                "SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
            done: set[int] = set()
            if has_table and has_table[0]:
                done = {int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations")}
    except psycopg.Error as exc:
        return False, f"unavailable: {_first_line(exc)}"
    missing = [f"{m.version:04d}" for m in available() if m.version not in done]
    version = f"PostgreSQL {server // 10000}.{server % 10000}"
    if missing:
        return False, f"{version}; migrations not applied: {', '.join(missing)}" \
                      " (run: videodrop migrate)"
    return True, f"{version}; schema up to date ({len(done)} migrations)"


def check_broker(settings: Settings) -> tuple[bool, str]:
    try:
        conn = broker.connect(settings, name="videodrop-health")
    except BrokerUnavailable as exc:
        return False, f"unavailable: {exc}"
    try:
        counts = []
        for _key, job_queue, dead in settings.job_queues:
            if job_queue == settings.derive_queue and not settings.derive:
                continue  # the derive role is off (VIDEODROP_DERIVE empty)
            for queue in (job_queue, dead):
                channel = conn.channel()
                try:
                    ok = channel.queue_declare(queue, passive=True)
                    counts.append(f"{queue}: {ok.method.message_count} messages,"
                                  f" {ok.method.consumer_count} consumers")
                except pika.exceptions.ChannelClosedByBroker:
                    counts.append(f"{queue}: not declared yet")
        return True, "; ".join(counts)
    except broker.CONNECTION_ERRORS as exc:
        return False, f"unavailable: {exc!r}"
    finally:
        if conn.is_open:
            conn.close()


def _folder(path: Path, *, write: bool, probe_file: bool, min_free: int) -> tuple[bool, str]:
    if not path.is_dir():
        return False, f"{path}: no such folder"
    mode = os.R_OK | os.X_OK | (os.W_OK if write else 0)
    if not os.access(path, mode):
        return False, f"{path}: not {'writable' if write else 'readable'} by uid {os.getuid()}"
    if probe_file:
        try:
            with tempfile.NamedTemporaryFile(dir=path, prefix=".videodrop-health-"):
                pass
        except OSError as exc:
            return False, f"{path}: cannot create a file: {exc.strerror or exc}"
    free = shutil.disk_usage(path).free
    if write and free < min_free:
        return False, f"{path}: only {_size(free)} free, less than one file" \
                      f" (VIDEODROP_MAX_FILE_SIZE={_size(min_free)})"
    return True, f"{path}: {'writable' if write else 'readable'}, {_size(free)} free"


def check_inbox(settings: Settings) -> tuple[bool, str]:
    return _folder(settings.inbox, write=True, probe_file=False,
                   min_free=settings.max_file_size)


def check_inbox_readable(settings: Settings) -> tuple[bool, str]:
    return _folder(settings.inbox, write=False, probe_file=False, min_free=0)


def check_media(settings: Settings) -> tuple[bool, str]:
    """The media store: its folder (writable, room for one more file), or that the bucket
    answers and takes our writes (``MediaStore.check``)."""
    try:
        media = storage.from_settings(settings)
    except ConfigurationError as exc:
        return False, str(exc)
    if isinstance(media, storage.FileStore):
        return _folder(media.root, write=True, probe_file=True,
                       min_free=settings.max_file_size)
    key = f"health/{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        media.check()
        # a bucket that answers to read-only credentials passes check(); the prober's
        # first put would then fail: write a small object and remove it again
        media.put_stream(key, io.BytesIO(HEALTH_OBJECT), size=len(HEALTH_OBJECT))
        media.delete(key)
    except storage.StoreError as exc:
        return False, f"{media.describe()}: {exc}"
    return True, f"{media.describe()}: answers, takes writes"


def check_ffprobe(settings: Settings) -> tuple[bool, str]:
    return _check_binary(settings.ffprobe, "VIDEODROP_FFPROBE")


def check_ffmpeg(settings: Settings) -> tuple[bool, str]:
    """The derive role's ffmpeg (VIDEODROP_FFMPEG)."""
    return _check_binary(settings.ffmpeg, "VIDEODROP_FFMPEG")


def _check_binary(binary: str, variable: str) -> tuple[bool, str]:
    try:
        done = subprocess.run([binary, "-hide_banner", "-version"],
                              capture_output=True, timeout=TIMEOUT * 2, check=False,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        return False, f"{binary}: not found (apt-get install ffmpeg, or set {variable})"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"{binary}: does not run: {exc}"
    if done.returncode != 0:
        return False, f"{binary}: exit status {done.returncode}"
    first = done.stdout.decode(errors="replace").splitlines()[:1]
    return True, first[0] if first else binary


CHECKS: dict[str, Check] = {
    "database": check_database,
    "broker": check_broker,
    "inbox": check_inbox,
    "inbox (read)": check_inbox_readable,
    "media root": check_media,
    "ffprobe": check_ffprobe,
    "ffmpeg": check_ffmpeg,
}

ROLES: dict[str, tuple[str, ...]] = {
    "ingest": ("broker", "inbox (read)"),
    "prober": ("database", "broker", "inbox", "media root", "ffprobe"),
    "derive": ("database", "broker", "media root", "ffmpeg"),
    "api": ("database", "broker", "inbox", "media root"),
    "all": ("database", "broker", "inbox", "media root", "ffprobe", "ffmpeg"),
}


def checks_of(settings: Settings, role: str) -> tuple[str, ...]:
    """The checks of ``role``: ffmpeg only while the derive role is on (VIDEODROP_DERIVE)."""
    return tuple(name for name in ROLES[role] if name != "ffmpeg" or settings.derive)


def run_checks(settings: Settings, role: str = "all") -> list[Result]:
    results = []
    for name in checks_of(settings, role):
        t0 = time.perf_counter()
        try:
            ok, detail = CHECKS[name](settings)
        except Exception as exc:  # a check must report, never crash the command
            ok, detail = False, f"error: {exc!r}"
        results.append(Result(name, ok, detail, round((time.perf_counter() - t0) * 1000, 1)))
    return results


def render_table(results: list[Result]) -> str:
    width = max(len("CHECK"), *(len(r.check) for r in results))
    lines = [f"{'CHECK':<{width}}  STATUS  {'MS':>7}  DETAIL"]
    for r in results:
        lines.append(f"{r.check:<{width}}  {'ok' if r.ok else 'FAIL':<6}  {r.ms:>7.1f}  "
                     f"{r.detail}")
    return "\n".join(lines)


def main(settings: Settings, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="videodrop health",
        description="check the database, broker, inbox, media root and ffprobe; exit 0 when"
                    " all pass, 1 otherwise")
    parser.add_argument("--role", choices=("ingest", "prober", "derive", "api"), default=None,
                        help="check only what this role needs")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    results = run_checks(settings, args.role or "all")
    healthy = all(r.ok for r in results)
    if args.json:
        json.dump({"healthy": healthy, "role": args.role or "all",
                   "checks": [asdict(r) for r in results]}, sys.stdout, indent=2)
        print()
    else:
        print(render_table(results))
    return 0 if healthy else 1


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


__all__ = ["CHECKS", "ROLES", "Result", "main", "render_table", "run_checks"]
