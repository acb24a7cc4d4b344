"""Serve one file for GET/HEAD: validators, conditionals, ranges, sendfile, X-Accel-Redirect.

``send_file`` fills a ``falcon.Response``; it knows nothing about the catalog. The caller
decides which path to serve (paths only ever come from the catalog, never from a request).

How the bytes leave (gunicorn ≥ 20, its ``http/wsgi.py``):

* Falcon hands any ``resp.stream`` that has ``read`` to ``environ["wsgi.file_wrapper"]``.
  gunicorn's workers see the ``FileWrapper`` and call ``Response.write_file`` →
  ``Response.sendfile``, which takes ``fileno()``, reads the *current* offset with
  ``os.lseek(fd, 0, SEEK_CUR)``, and sends ``nbytes = response_length`` (our Content-Length)
  via ``socket.sendfile(file, offset, count)`` → ``os.sendfile``. So seeking the raw fd to the
  range start and setting Content-Length to the range length is all it takes for a ranged
  zero-copy send. (Falcon's own static route wraps ranged files to avoid sendfile because
  older servers got the offset wrong; gunicorn's current code uses it correctly.)
* ``_FileWindow`` is that file, bounded: if sendfile is unavailable (TLS terminated in
  gunicorn, ``--no-sendfile``, another WSGI server) the fallback ``read()`` loop stops at the
  end of the range instead of reading to EOF while the server discards the excess.
* Several ranges go out as ``multipart/byteranges`` from ``_MultipartBody``, which reads
  256 KiB at a time with ``os.pread``: memory stays flat for any file size.
* WSGI ``close()`` (called by gunicorn in a ``finally``, also when the client has gone)
  closes the file descriptor, for both body kinds.
"""

from __future__ import annotations

import functools
import io
import os
import re
import secrets
import stat
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote

import falcon

from api.files.conditional import (
    Precondition,
    Validators,
    evaluate_preconditions,
    if_range_matches,
    validators_for,
)
from api.files.ranges import Partial, Unsatisfiable, content_range, parse_range

__all__ = [
    "CHUNK_SIZE",
    "Body",
    "accel_redirect_uri",
    "answer",
    "content_disposition",
    "security_headers",
    "send_file",
]

CHUNK_SIZE = 256 * 1024
_ERROR_CACHE_CONTROL = "no-store"
# Kept in the ASCII fallback name; everything else becomes "_".
_UNSAFE_ASCII = re.compile(r"[^A-Za-z0-9 ._()\[\]+,!#$&'~@=-]")


class _FileWindow:
    """A read-only raw file limited to ``[first, first + length)``, positioned at ``first``.

    Exposes ``fileno()`` so gunicorn can ``sendfile`` it (offset from the fd, count from
    Content-Length), ``mode`` because ``socket.sendfile`` checks for binary mode, ``seek`` and
    ``tell`` because ``socket.sendfile`` uses them, and a bounded ``read`` for the fallback.
    """

    mode = "rb"

    def __init__(self, raw: io.FileIO, first: int, length: int) -> None:
        self._raw = raw
        self._end = first + length
        raw.seek(first)

    def fileno(self) -> int:
        return self._raw.fileno()

    def read(self, n: int | None = -1, /) -> bytes:
        remaining = self._end - self._raw.tell()
        if remaining <= 0:
            return b""
        size = remaining if n is None or n < 0 else min(n, remaining)
        return self._raw.read(size) or b""

    def seek(self, offset: int, whence: int = os.SEEK_SET, /) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    @property
    def closed(self) -> bool:
        return self._raw.closed

    def close(self) -> None:
        self._raw.close()


class _MultipartBody:
    """A ``multipart/byteranges`` body streamed in chunks; a WSGI iterable with ``close()``.

    ``close()`` releases the file even when iteration never started (a generator's
    ``finally`` would not run in that case).
    """

    def __init__(self, raw: io.FileIO, parts: list[tuple[bytes, int, int]],
                 trailer: bytes) -> None:
        self._raw = raw
        self._parts = parts
        self._trailer = trailer

    def __iter__(self) -> Iterator[bytes]:
        fd = self._raw.fileno()
        try:
            for head, first, last in self._parts:
                yield head
                pos = first
                while pos <= last:
                    chunk = os.pread(fd, min(CHUNK_SIZE, last - pos + 1), pos)
                    if not chunk:
                        # The file shrank under us: Content-Length can no longer be met;
                        # raising makes gunicorn drop the connection instead of hanging.
                        raise RuntimeError("file shrank while being served")
                    pos += len(chunk)
                    yield chunk
            yield self._trailer
        finally:
            self.close()

    def close(self) -> None:
        self._raw.close()


def _multipart(size: int, ranges: tuple[tuple[int, int], ...], content_type: str
               ) -> tuple[str, list[tuple[bytes, int, int]], bytes, int]:
    """Boundary, per-part headers, trailer and the exact body length (RFC 9110 §14.6)."""
    boundary = secrets.token_hex(16)
    parts: list[tuple[bytes, int, int]] = []
    total = 0
    for i, (first, last) in enumerate(ranges):
        head = (("\r\n" if i else "") + f"--{boundary}\r\nContent-Type: {content_type}\r\n"
                f"Content-Range: {content_range(first, last, size)}\r\n\r\n").encode("latin-1")
        parts.append((head, first, last))
        total += len(head) + (last - first + 1)
    trailer = f"\r\n--{boundary}--\r\n".encode("ascii")
    return boundary, parts, trailer, total + len(trailer)


@functools.lru_cache(maxsize=4096)  # the same few names are asked for again and again
def content_disposition(disposition: Literal["inline", "attachment"], filename: str) -> str:
    """RFC 6266 value: an ASCII ``filename`` fallback plus ``filename*`` when needed.

    Control characters and path separators are replaced in both forms; the fallback keeps
    accents' base letters ("café" → "cafe") and replaces anything else unsafe with "_".
    """
    cleaned = "".join(
        "_" if c in "/\\" or unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") else c
        for c in filename
    ).strip(" .") or "download"
    decomposed = unicodedata.normalize("NFKD", cleaned)
    fallback = _UNSAFE_ASCII.sub(
        "_", "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    ).strip(" .") or "download"
    value = f'{disposition}; filename="{fallback}"'
    if fallback != cleaned:
        value += f"; filename*=UTF-8''{quote(cleaned, safe='')}"
    return value


def accel_redirect_uri(prefix: str, path: str) -> str:
    """``X-Accel-Redirect`` target: the internal prefix plus the percent-encoded path.

    nginx percent-decodes this URI before the internal redirect, so encoding keeps ``?``,
    ``%``, ``#``, spaces and non-ASCII names intact. Paths come from the catalog; a ``..``
    segment or a NUL is refused anyway (nginx would refuse it too).
    """
    relative = path.lstrip("/")
    if "\x00" in relative or ".." in relative.split("/"):
        raise ValueError(f"unsafe accel path: {path!r}")
    return prefix.rstrip("/") + "/" + quote(relative, safe="/")


def _open_regular(path: Path | str) -> tuple[io.FileIO, os.stat_result]:
    """Open once and fstat the same descriptor: no race between stat and open."""
    try:
        # O_NONBLOCK so that a FIFO planted at the path cannot block the open.
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        raise falcon.HTTPNotFound() from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise falcon.HTTPNotFound()
        os.set_blocking(fd, True)
        raw = io.FileIO(fd, "rb", closefd=True)
    except BaseException:
        os.close(fd)
        raise
    return raw, st


def _validator_headers(resp: falcon.Response, v: Validators, cache_control: str) -> None:
    resp.set_header("ETag", v.etag)
    resp.set_header("Last-Modified", v.last_modified_http)
    resp.set_header("Cache-Control", cache_control)


def security_headers(req: falcon.Request, resp: falcon.Response) -> None:
    """405 but for GET and HEAD; the headers every served file carries."""
    if req.method not in ("GET", "HEAD"):
        raise falcon.HTTPMethodNotAllowed(["GET", "HEAD"])
    resp.set_header("X-Content-Type-Options", "nosniff")
    resp.set_header("Referrer-Policy", "no-referrer")


@dataclass(frozen=True)
class Body:
    """What a GET's body holds once :func:`answer` filled the headers: one window
    (``first``, ``length``) or, for several ranges, the ``multipart`` parts (head, first,
    last) and trailer."""

    first: int = 0
    length: int = 0
    multipart: tuple[list[tuple[bytes, int, int]], bytes] | None = None


def answer(req: falcon.Request, resp: falcon.Response, size: int, v: Validators, *,
           content_type: str, disposition_value: str, cache_control: str) -> Body | None:
    """The status and headers of a GET/HEAD of a representation of ``size`` bytes with
    validators ``v`` (conditionals, Range, If-Range, RFC 9110): the :class:`Body` the
    caller attaches, or None when nothing is sent (304, HEAD, an empty file). Raises
    412 and 416 as :func:`send_file` says. Shared by files and store objects, so both
    answer alike."""
    method = req.method
    outcome = evaluate_preconditions(
        method, v,
        if_match=req.get_header("If-Match"),
        if_none_match=req.get_header("If-None-Match"),
        if_modified_since=req.get_header("If-Modified-Since"),
        if_unmodified_since=req.get_header("If-Unmodified-Since"),
    )
    if outcome is Precondition.FAILED:
        raise falcon.HTTPPreconditionFailed(headers={"Cache-Control": _ERROR_CACHE_CONTROL})
    if outcome is Precondition.NOT_MODIFIED:
        resp.status = falcon.HTTP_304
        _validator_headers(resp, v, cache_control)
        return None

    range_header = req.get_header("Range") if method == "GET" else None
    if range_header is not None and not if_range_matches(req.get_header("If-Range"), v):
        range_header = None  # §13.2.2 step 5: stale If-Range → whole representation
    wanted = parse_range(range_header, size)
    if isinstance(wanted, Unsatisfiable):
        # Falcon sets "Content-Range: bytes */size" from the positional argument.
        raise falcon.HTTPRangeNotSatisfiable(
            size, headers={"Cache-Control": _ERROR_CACHE_CONTROL})

    resp.set_header("Accept-Ranges", "bytes")
    _validator_headers(resp, v, cache_control)
    resp.set_header("Content-Disposition", disposition_value)

    if isinstance(wanted, Partial) and len(wanted.ranges) > 1:
        boundary, parts, trailer, total = _multipart(size, wanted.ranges, content_type)
        resp.status = falcon.HTTP_206
        resp.content_type = f"multipart/byteranges; boundary={boundary}"
        resp.content_length = total
        return Body(multipart=(parts, trailer)) if method == "GET" else None

    if isinstance(wanted, Partial):
        first, last = wanted.ranges[0]
        resp.status = falcon.HTTP_206
        resp.set_header("Content-Range", content_range(first, last, size))
    else:
        first, last = 0, size - 1
        resp.status = falcon.HTTP_200
    length = last - first + 1
    resp.content_type = content_type
    resp.content_length = length
    return Body(first, length) if method == "GET" and length > 0 else None


def send_file(
    req: falcon.Request,
    resp: falcon.Response,
    path: Path | str,
    *,
    content_type: str,
    disposition: Literal["inline", "attachment"],
    filename: str,
    cache_control: str = "private, max-age=3600",
    accel_prefix: str | None = None,
    accel_path: str | None = None,
) -> None:
    """Fill ``resp`` with ``path`` for a GET or HEAD.

    200 whole, 206 single range, 206 ``multipart/byteranges``, 304, or raises
    ``falcon.HTTPRangeNotSatisfiable`` (416, ``Content-Range: bytes */size``),
    ``falcon.HTTPPreconditionFailed`` (412) or ``falcon.HTTPNotFound`` (no regular file at
    ``path``). HEAD answers like GET without a body; per RFC 9110 §14.2 a Range header is
    honoured for GET only, so HEAD always describes the whole file. With ``accel_prefix``
    the response is an empty 200 carrying ``X-Accel-Redirect`` and nginx does the rest
    (ranges, conditionals, sending).
    """
    security_headers(req, resp)
    raw, st = _open_regular(path)
    handed_off = False
    try:
        size = st.st_size
        v = validators_for(st)
        disposition_value = content_disposition(disposition, filename)

        if accel_prefix is not None:
            if accel_path is None:
                raise ValueError("accel_path is required with accel_prefix")
            resp.status = falcon.HTTP_200
            resp.set_header("X-Accel-Redirect", accel_redirect_uri(accel_prefix, accel_path))
            _validator_headers(resp, v, cache_control)
            resp.content_type = content_type
            resp.set_header("Content-Disposition", disposition_value)
            resp.data = b""
            return

        plan = answer(req, resp, size, v, content_type=content_type,
                      disposition_value=disposition_value, cache_control=cache_control)
        if plan is None:
            return
        if plan.multipart is not None:
            resp.stream = _MultipartBody(raw, *plan.multipart)
        else:
            resp.stream = _FileWindow(raw, plan.first, plan.length)
        handed_off = True
    finally:
        if not handed_off:
            raw.close()
