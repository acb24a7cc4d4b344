"""Serve one object of a store without local files (s3) for GET/HEAD: a 307 to a presigned
URL (``redirect``) or the bytes through the API (``proxy``), with the same conditionals,
ranges and headers as a file (api/files/response.py: both use :func:`answer`).

A redirect costs one small response; the client then reads the store directly with its
own Range requests for the URL's life (``VIDEODROP_S3_PRESIGN_SECONDS``, at most 60 s, so a
revoked token's URLs die within a minute). The 307 is never cached (``no-store``): the
next request asks the token again. A worker hands the same presigned URL out again for
:data:`REUSE_SECONDS` after making it (no round trip to the store, no new signature, for
a client reading a video range by range); the URL still dies at most 60 s after it was
made, and an object deleted meanwhile answers the store's own 404 at the URL.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterator
from typing import Literal

import falcon

from api.files.conditional import Validators
from api.files.response import CHUNK_SIZE, answer, content_disposition, security_headers
from videodrop.storage import MediaStore, ObjectMissing, ObjectReader

__all__ = ["SERVE_MODES", "send_object"]

SERVE_MODES = ("redirect", "proxy")
#: How long a worker hands out a presigned URL it made (seconds; far under its expiry).
REUSE_SECONDS = 10.0
#: At most this many keys' URLs are kept per store (then the oldest half is dropped).
REUSE_KEYS = 4096


class _Recent:
    """The presigned URLs a worker made in the last :data:`REUSE_SECONDS`, by key: one
    per store (a weak map, so a test's stores do not pile up). Thread-safe."""

    _by_store: weakref.WeakKeyDictionary[MediaStore, _Recent] = weakref.WeakKeyDictionary()
    _guard = threading.Lock()

    def __init__(self) -> None:
        self.urls: dict[str, tuple[str, float]] = {}
        self.lock = threading.Lock()

    @classmethod
    def of(cls, media: MediaStore) -> _Recent:
        with cls._guard:
            recent = cls._by_store.get(media)
            if recent is None:
                recent = cls._by_store[media] = cls()
            return recent

    def url(self, media: MediaStore, key: str, content_type: str, disposition: str) -> str:
        """A presigned URL of ``key`` made at most :data:`REUSE_SECONDS` ago (and at most
        half the store's ``presign_seconds``), else a new one after checking the object is
        there (ObjectMissing)."""
        now = time.monotonic()
        wanted = f"{key}\n{content_type}\n{disposition}"  # (a URL answers with both)
        with self.lock:
            kept = self.urls.get(wanted)
        # a URL is handed out again only while at least half its life is left: with
        # VIDEODROP_S3_PRESIGN_SECONDS under twice REUSE_SECONDS, never an expired one
        reuse = min(REUSE_SECONDS, media.presign_seconds / 2)
        if kept is not None and now - kept[1] < reuse:
            return kept[0]
        media.stat(key)  # 404 for a key without an object, not a 307 to the store's 404
        url = media.presign(key, content_type=content_type, disposition=disposition)
        if url is None:
            raise ValueError(f"{media.describe()} has no URLs: serve its local files")
        with self.lock:
            if len(self.urls) >= REUSE_KEYS:
                for old in sorted(self.urls, key=lambda k: self.urls[k][1])[:REUSE_KEYS // 2]:
                    del self.urls[old]
            self.urls[wanted] = (url, now)
        return url


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
    → 307 to ``media.presign(key)`` (its answers carry ``content_type`` and the
    disposition, as the API's own would), the same URL again for :data:`REUSE_SECONDS`
    (``Cache-Control: no-store``); ``proxy`` → 200, 206
    (one range or ``multipart/byteranges``), 304, 412 or 416 exactly as
    :func:`api.files.response.send_file` answers for a file, its ETag the store's.
    ``falcon.HTTPNotFound`` when there is no object under ``key``; the store's errors
    (StoreUnavailable: the app answers 503) propagate."""
    security_headers(req, resp)
    if mode == "redirect":
        try:
            url = _Recent.of(media).url(media, key, content_type,
                                        content_disposition(disposition, filename))
        except ObjectMissing as exc:
            raise falcon.HTTPNotFound() from exc
        resp.status = falcon.HTTP_307
        resp.location = url
        resp.set_header("Cache-Control", "no-store")
        resp.data = b""
        return
    try:
        info = media.stat(key)
    except ObjectMissing as exc:
        raise falcon.HTTPNotFound() from exc
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
