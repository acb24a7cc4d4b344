"""``videodrop upload FILE…``: send files to a videodrop server through its API.

Each file goes as the raw body of ``POST /api/videos?filename=…`` (``Content-Type`` by its
extension, ``Content-Length`` from its size), read from disk a chunk at a time, never
whole; a progress bar per file goes to stderr; the URLs of each record go to stdout.
``--wait`` then follows every record to ``ready`` or ``failed``.

An answer of 503 (the server is busy or its database is away) or 429 (too many requests)
is tried again after its ``Retry-After`` (seconds or an HTTP date; 1 s when it has none, at
most ``MAX_RETRY_AFTER``), at most ``RETRIES`` times per request, each said on stderr; then
it counts as the answer.

Standard library only (``http.client``), so the command works wherever videodrop is
installed; it talks to the server over HTTP and imports no role.

The admin token: ``--token``, else ``VIDEODROP_ADMIN_TOKEN``, else ``var/admin-token`` in
the current folder (where ``make run`` keeps the development token).

Exit status: 0 when every file was accepted (and, with ``--wait``, became ready); 1 when
any was refused or failed; 2 for a usage error.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlencode, urlsplit

from videodrop import __version__, formats
from videodrop.settings import Settings

CHUNK = 1 << 20
#: where ``make run`` (deploy/run-dev.sh) keeps the development admin token
DEV_TOKEN_FILE = Path("var/admin-token")
TIMEOUT = 60.0
RETRIES = 4  # more attempts of one request answered 503 or 429
RETRY_STATUSES = frozenset({429, 503})
DEFAULT_RETRY_AFTER = 1.0  # seconds, when such an answer has no usable Retry-After
MAX_RETRY_AFTER = 30.0  # seconds waited at most before one more attempt


class UploadError(Exception):
    """The server refused a file, or could not be reached; the message says why."""


@dataclass
class Target:
    scheme: str
    host: str
    port: int | None
    base_path: str

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise UploadError(f"not an http(s) URL: {url!r}")
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        return cls(parts.scheme, host, parts.port, parts.path.rstrip("/"))

    def connect(self, timeout: float = TIMEOUT) -> http.client.HTTPConnection:
        kind = (http.client.HTTPSConnection if self.scheme == "https"
                else http.client.HTTPConnection)
        return kind(self.host, self.port, timeout=timeout)

    def origin(self) -> str:
        port = f":{self.port}" if self.port else ""
        return f"{self.scheme}://{self.host}{port}{self.base_path}"


class Progress:
    """One bar per file on a terminal (redrawn at most 10 times a second); elsewhere a
    line when the file starts and one when it is sent."""

    def __init__(self, label: str, total: int, out: TextIO,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.label, self.total, self.out, self.clock = label, total, out, clock
        self.tty = out.isatty()
        self.start = self.last = clock()
        self.sent = 0
        if not self.tty:
            print(f"uploading {label} ({_size(total)})", file=out, flush=True)

    def advance(self, n: int) -> None:
        self.sent += n
        now = self.clock()
        if self.tty and (now - self.last >= 0.1 or self.sent >= self.total):
            self.last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        width = 28
        frac = self.sent / self.total if self.total else 1.0
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        rate = self.sent / max(now - self.start, 1e-6)
        name = self.label if len(self.label) <= 30 else "…" + self.label[-29:]
        self.out.write(f"\r{name:<30} [{bar}] {frac:6.1%} {_size(self.sent):>9} "
                       f"{_size(int(rate))}/s ")
        self.out.flush()

    def done(self, verdict: str) -> None:
        if self.tty:
            self._draw(self.clock())
            self.out.write(f" {verdict}\n")
        else:
            took = self.clock() - self.start
            print(f"{verdict}: {self.label} ({_size(self.sent)} in {took:.1f} s)",
                  file=self.out, flush=True)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


@dataclass
class Client:
    target: Target
    token: str
    err: TextIO = field(default_factory=lambda: sys.stderr)
    sleep: Callable[[float], None] = time.sleep

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Accept": "application/json",
                "User-Agent": f"videodrop-upload/{__version__}"}

    def upload(self, path: Path, *, name: str | None = None, description: str | None = None,
               source_id: str | None = None) -> dict[str, Any]:
        size = path.stat().st_size
        params = {"filename": path.name, "name": name, "description": description,
                  "source_id": source_id}
        query = urlencode({k: v for k, v in params.items() if v})
        headers = {**self._headers(), "Content-Length": str(size),
                   "Content-Type": formats.content_type(None, path.name)}
        for attempt in range(RETRIES + 1):
            bar = Progress(path.name, size, self.err)
            conn = self.target.connect()
            try:
                conn.putrequest("POST", f"{self.target.base_path}/api/videos?{query}")
                for key, value in headers.items():
                    conn.putheader(key, value)
                conn.endheaders()
                try:
                    with path.open("rb") as fh:
                        while chunk := fh.read(CHUNK):
                            conn.send(chunk)
                            bar.advance(len(chunk))
                except OSError:
                    pass  # the server answered early (413, 401, 503...) and closed: read it
                status, wait, body = self._answer(conn)
            except (OSError, http.client.HTTPException) as exc:
                bar.done("failed")
                raise UploadError(f"{path.name}: cannot reach {self.target.origin()}: {exc}"
                                  ) from exc
            finally:
                conn.close()
            if status == 202:
                bar.done("sent")
                return body
            bar.done("refused")
            if not self._again(path.name, status, wait, body, attempt):
                raise UploadError(f"{path.name}: {status} {_reason(body)}")
        raise AssertionError("unreachable: the last attempt returns or raises")

    def record(self, video_id: int) -> dict[str, Any]:
        for attempt in range(RETRIES + 1):
            conn = self.target.connect(timeout=15)
            try:
                conn.request("GET", f"{self.target.base_path}/api/videos/{video_id}",
                             headers=self._headers())
                status, wait, body = self._answer(conn)
            except (OSError, http.client.HTTPException) as exc:
                raise UploadError(f"cannot reach {self.target.origin()}: {exc}") from exc
            finally:
                conn.close()
            if status == 200:
                return body
            if not self._again(f"video {video_id}", status, wait, body, attempt):
                raise UploadError(f"video {video_id}: {status} {_reason(body)}")
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _again(self, what: str, status: int, wait: float, body: Any, attempt: int) -> bool:
        """After an answer other than the one hoped for: wait and say so on stderr, then
        True, if it is worth another attempt (RETRY_STATUSES, attempts left)."""
        if status not in RETRY_STATUSES or attempt >= RETRIES:
            return False
        print(f"videodrop upload: {what}: {status} {_reason(body).rstrip('.')}; trying again in"
              f" {wait:g} s (attempt {attempt + 2} of {RETRIES + 1})", file=self.err,
              flush=True)
        self.sleep(wait)
        return True

    @staticmethod
    def _answer(conn: http.client.HTTPConnection) -> tuple[int, float, Any]:
        """(status, seconds its Retry-After asks for, the body as JSON)."""
        resp = conn.getresponse()
        raw = resp.read()
        wait = retry_after(resp.getheader("Retry-After"))
        try:
            return resp.status, wait, json.loads(raw) if raw else {}
        except ValueError:
            return resp.status, wait, {"title": raw[:200].decode("utf-8", "replace")}


def retry_after(value: str | None, now: float | None = None) -> float:
    """Seconds a ``Retry-After`` asks for (delay-seconds or an HTTP date, RFC 9110 section
    10.2.3), within 0 to ``MAX_RETRY_AFTER``; ``DEFAULT_RETRY_AFTER`` when it is missing
    or unreadable."""
    if value is None:
        return DEFAULT_RETRY_AFTER
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER
    if when.tzinfo is None:
        return DEFAULT_RETRY_AFTER
    seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _reason(body: Any) -> str:
    if isinstance(body, dict):
        return " — ".join(str(body[k]) for k in ("title", "description") if body.get(k))
    return str(body)


def print_record(rec: dict[str, Any], origin: str, out: TextIO) -> None:
    """The record's page and URLs; the file URLs only once it is ready (before, they
    answer 409), and a failed video's reason instead."""
    urls = rec.get("api_links") or {}
    print(f"{rec.get('original_filename')}: id {rec.get('id')}, {rec.get('status')}, "
          f"source_id {rec.get('source_id')}", file=out)
    rows = [("page", f"{origin}/videos/{rec.get('id')}"), ("record", urls.get("api_endpoint"))]
    if rec.get("status") == "ready":
        rows += [("stream", urls.get("stream_url")), ("metadata", urls.get("metadata_url")),
                 ("download", urls.get("download_url"))]
    for label, url in rows:
        if url:
            print(f"  {label:<9}{url}", file=out)
    if rec.get("processing_error"):
        code = rec.get("error_code") or ""
        code = "" if not code or rec["processing_error"].startswith(code) else f"{code}: "
        print(f"  error    {code}{rec['processing_error']}", file=out)
    out.flush()


def find_token(given: str | None, settings: Settings) -> tuple[str | None, str]:
    """(the admin token, where it came from or, when none was found, where we looked)."""
    if given:
        return given, "--token"
    if settings.admin_token:
        return settings.admin_token, "VIDEODROP_ADMIN_TOKEN"
    place = Path.cwd() / DEV_TOKEN_FILE
    try:
        token = place.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        token = ""
    if token:
        return token, str(place)
    return None, f"--token, VIDEODROP_ADMIN_TOKEN, {place}"


def wait_all(client: Client, records: list[dict[str, Any]], timeout: float,
             interval: float = 1.0) -> list[dict[str, Any]]:
    """Poll each record until it is ready or failed (or ``timeout`` seconds pass)."""
    deadline = time.monotonic() + timeout
    pending = {rec["id"]: rec for rec in records}
    final: dict[int, dict[str, Any]] = {}
    while pending:
        for video_id in list(pending):
            rec = client.record(video_id)
            if rec["status"] in {"ready", "failed"}:
                final[video_id] = rec
                del pending[video_id]
                print(f"{rec['original_filename']}: {rec['status']}"
                      + (f" ({rec['processing_error']})" if rec.get("processing_error") else ""),
                      file=client.err, flush=True)
        if pending and time.monotonic() > deadline:
            raise UploadError(f"timed out after {timeout:.0f} s waiting for "
                              f"{len(pending)} video(s) to be processed")
        if pending:
            time.sleep(interval)
    return [final[rec["id"]] for rec in records]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="videodrop upload",
        description="Upload video files to a videodrop server and print their URLs.")
    p.add_argument("files", nargs="+", metavar="FILE", type=Path)
    p.add_argument("--url", help="server base URL (default: VIDEODROP_BASE_URL)")
    p.add_argument("--token", help="admin token (default: VIDEODROP_ADMIN_TOKEN, else"
                   " var/admin-token in the current folder, as `make run` writes it)")
    p.add_argument("--name", action="append", default=[],
                   help="the video's name; give it once per FILE, in order")
    p.add_argument("--source-id", action="append", default=[], dest="source_id",
                   help="the video's source_id; once per FILE, in order")
    p.add_argument("--description", help="description (every file)")
    p.add_argument("--wait", action="store_true",
                   help="follow each video to ready/failed; exit 1 if any failed")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="seconds --wait waits in all (default 600)")
    p.add_argument("--json", action="store_true",
                   help="print each record as one JSON line instead of its URLs")
    return p


def main(settings: Settings, argv: list[str], *, out: TextIO | None = None,
         err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = parser().parse_args(argv)
    token, looked = find_token(args.token, settings)
    if not token:
        print(f"videodrop upload: no admin token (looked at {looked}): pass --token, set "
              "VIDEODROP_ADMIN_TOKEN, or run it in the folder of a `make run` checkout",
              file=err)
        return 2
    if looked not in {"--token", "VIDEODROP_ADMIN_TOKEN"}:  # the dev token of a checkout
        print(f"videodrop upload: admin token from {looked}", file=err)
    for option in ("name", "source_id"):
        given = getattr(args, option)
        if given and len(given) != len(args.files):
            print(f"videodrop upload: give --{option.replace('_', '-')} once per FILE "
                  f"({len(args.files)} files, {len(given)} given)", file=err)
            return 2
    try:
        target = Target.parse(args.url or settings.base_url)
    except UploadError as exc:
        print(f"videodrop upload: {exc}", file=err)
        return 2
    client = Client(target, token, err)
    accepted: list[dict[str, Any]] = []
    failures = 0
    for i, path in enumerate(args.files):
        problem = _check(path)
        if problem:
            print(f"videodrop upload: {path}: {problem}", file=err)
            failures += 1
            continue
        try:
            rec = client.upload(path, name=args.name[i] if args.name else None,
                                description=args.description,
                                source_id=args.source_id[i] if args.source_id else None)
        except UploadError as exc:
            print(f"videodrop upload: {exc}", file=err)
            failures += 1
            continue
        accepted.append(rec)
        if not args.wait:
            _show(rec, target, out, args.json)
    if args.wait and accepted:
        try:
            accepted = wait_all(client, accepted, args.timeout)
        except UploadError as exc:
            print(f"videodrop upload: {exc}", file=err)
            return 1
        for rec in accepted:
            _show(rec, target, out, args.json)
        failures += sum(rec["status"] != "ready" for rec in accepted)
    return 1 if failures else 0


def _show(rec: dict[str, Any], target: Target, out: TextIO, as_json: bool) -> None:
    if as_json:
        print(json.dumps(rec), file=out, flush=True)
    else:
        print_record(rec, target.origin(), out)


def _check(path: Path) -> str | None:
    if not path.is_file():
        return "no such file" if not path.exists() else "not a regular file"
    if formats.by_extension(path.name) is None:
        return f"not a supported format (use {', '.join(sorted(formats.EXTENSIONS))})"
    if not os.access(path, os.R_OK):
        return "not readable"
    return None
