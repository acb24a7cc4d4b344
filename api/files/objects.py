"""Serve one object of a store without local files (s3) for GET/HEAD: a 307 to a presigned
URL (``redirect``) or the bytes through the API (``proxy``), with the same conditionals,
ranges and headers as a file (api/files/response.py: both use :func:`answer`).

A redirect costs one small response; the client then reads the store directly with its
own Range requests for the URL's life (``VIDEODROP_S3_PRESIGN_SECONDS``, at most 60 s, so a
revoked token's URLs die within a minute). The 307 is never cached (``no-store``): the
next request asks the token again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Literal

import falcon

from api.files.conditional import Validators
from api.files.response import CHUNK_SIZE, answer, content_disposition, security_headers
from videodrop.storage import MediaStore, ObjectMissing, ObjectReader

__all__ = ["SERVE_MODES", "send_object"]

SERVE_MODES = ("redirect", "proxy")


class _MultipartObject:
    """A ``multipart/byteranges`` body read from the store one range at a time (one ranged
    GET each); a WSGI iterable whose ``close()`` releases the open range."""

    def __init__(self, media: MediaStore, key: str, parts: list[tuple[bytes, int, int]],
                 trailer: bytes) -> None:
        self._media, self._key = media, key
        self._parts, self._trailer = parts, trailer
        self._open: ObjectReader | None = None

    def __iter__(self) -> Iterator[bytes]:
        try:
            for head, first, last in self._parts:
                yield head
                self._open = self._media.open(self._key, first, last - first + 1)
                left = last - first + 1
                while left > 0:
                    chunk = self._open.read(min(CHUNK_SIZE, left))
                    if not chunk:  # Content-Length cannot be met: drop the connection
                        raise RuntimeError("object shrank while being served")
                    left -= len(chunk)
                    yield chunk
                self._open.close()
                self._open = None
            yield self._trailer
        finally:
            self.close()

    def close(self) -> None:
        if self._open is not None:
            self._open.close()
            self._open = None


def send_object(req: falcon.Request, resp: falcon.Response, media: MediaStore, key: str, *,
                mode: Literal["redirect", "proxy"], content_type: str,
                disposition: Literal["inline", "attachment"], filename: str,
                cache_control: str = "private, max-age=3600") -> None:
    """Fill ``resp`` with the object ``key`` of ``media`` for a GET or HEAD: ``redirect``
    → 307 to ``media.presign(key)`` (``Cache-Control: no-store``); ``proxy`` → 200, 206
    (one range or ``multipart/byteranges``), 304, 412 or 416 exactly as
    :func:`api.files.response.send_file` answers for a file, its ETag the store's.
    ``falcon.HTTPNotFound`` when there is no object under ``key``; the store's errors
    (StoreUnavailable: the app answers 503) propagate."""
    security_headers(req, resp)
    try:
        info = media.stat(key)
    except ObjectMissing as exc:
        raise falcon.HTTPNotFound() from exc
    if mode == "redirect":
        url = media.presign(key)
        if url is None:
            raise ValueError(f"{media.describe()} has no URLs: serve its local files")
        resp.status = falcon.HTTP_307
        resp.location = url
        resp.set_header("Cache-Control", "no-store")
        resp.data = b""
        return
    v = Validators(etag=info.etag, last_modified=min(int(info.mtime), int(time.time())))
    plan = answer(req, resp, info.size, v, content_type=content_type,
                  disposition_value=content_disposition(disposition, filename),
                  cache_control=cache_control)
    if plan is None:
        return
    if plan.multipart is not None:
        resp.stream = _MultipartObject(media, key, *plan.multipart)
    else:
        # an ObjectReader reads and closes, which is all falcon and WSGI use of it
        resp.stream = media.open(key, plan.first, plan.length)  # type: ignore[assignment]
