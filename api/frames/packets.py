"""The packet index under the video's token (docs/models.md, "The packet index"):

* ``GET /api/video/{token}/packets/[?format=json|npy]`` → every packet of the video
  stream in file order: ``json`` (default) columns ``pts``, ``dts``, ``duration``
  (seconds on the API's timeline, 6 decimals, ``null`` when unknown), ``pos`` (byte
  offset), ``size`` (bytes), ``key`` and ``discard`` (1 or 0), with ``count``,
  ``time_base``, ``start`` (seconds), ``end`` (the last frame's end, seconds) and
  ``keyframes``; ``npy`` the same as one packed structured array (``f8`` seconds, NaN
  when unknown; ``i8`` pos; ``i4`` size; ``b1`` key, discard). ``ETag`` (a 304 for a
  matching ``If-None-Match``) and ``Cache-Control: private, max-age=86400``.
* ``GET /api/video/{token}/range/?start=&end=`` → the bytes to read for the frames shown
  in ``[start, end)`` seconds (:meth:`api.frames.index.Loaded.span`): JSON ``frame``
  (``time``, ``index``: the frame shown at ``start``), ``keyframe`` (``time``, ``packet``),
  ``packets`` (first and last packet, inclusive), ``bytes`` (first and last byte,
  inclusive), ``range`` (the same as a ``Range`` header value), ``head``/``tail`` (the
  file's bytes before the stream's first packet and after its last: where a demuxer finds
  the container's header and index; null when empty), ``size`` (the file's bytes).

Errors (JSON ``{"title", "description", "error_code"}``): the token's 404; 404
``missing_file``; 409 ``not_ready`` (the video), ``index_pending`` (its index is not made
yet; ``Retry-After``), ``index_unavailable`` (failed, skipped or not requested: the
sentence says why; the frame endpoints still answer, by listing the packets); 400
``bad_parameter``; 416 ``past_end`` (``start`` at or after the last frame's end); 422
``no_timestamps``, ``no_positions`` (the container gives no byte offset of a packet).
"""

from __future__ import annotations

from typing import Any

import falcon

from api.frames.endpoints import explained
from api.frames.errors import (
    RETRY_PENDING,
    FrameError,
    bad,
    checked_query,
    parse_time,
    ready_file,
    ready_video,
)
from api.frames.index import Indexes, Loaded, Unavailable
from api.frames.timeline import NoTimestamps, PastTheEnd
from api.tokens.endpoints import TokenResource
from videodrop.catalog import Catalog
from videodrop.settings import Settings
from videodrop.storage import MediaStore

__all__ = ["CACHE_CONTROL", "ByteRange", "Packets"]

#: The index of a stored file does not change; the token's revocation is the server's
#: (a private cache only).
CACHE_CONTROL = "private, max-age=86400"


class IndexResource(TokenResource):
    allowed: frozenset[str]

    def __init__(self, settings: Settings, catalog: Catalog, tokens: Any = None, *,
                 indexes: Indexes, media: MediaStore | None = None) -> None:
        super().__init__(settings, catalog, tokens, media=media)
        self.indexes = indexes

    def loaded(self, req: falcon.Request, token: str) -> tuple[dict[str, str], Loaded]:
        """(the query, the video's index) or the error that says why there is none."""
        video, path = self.lookup(token).video, None
        if self.media_root is None:  # an object store: the index is read, not the video
            ready_video(video)
        else:
            video, path = ready_file(video, self.media_root)
        query = checked_query(req, self.allowed)
        try:
            return query, self.indexes.of(video, path)
        except Unavailable as exc:
            if exc.status == "pending":
                raise FrameError(falcon.HTTP_409, "No packet index yet", str(exc),
                                 "index_pending", {"Retry-After": str(RETRY_PENDING)}) from exc
            raise FrameError(falcon.HTTP_409, "No packet index", str(exc),
                             "index_unavailable") from exc


class Packets(IndexResource):
    allowed = frozenset({"format"})

    def on_get(self, req: falcon.Request, resp: falcon.Response, token: str) -> None:
        query, loaded = self.loaded(req, token)
        fmt = query.get("format", "json")
        if fmt not in ("json", "npy"):
            raise bad("format is json or npy")
        etag = f'"{loaded.etag}-{fmt}"'
        resp.set_header("ETag", etag)
        resp.cache_control = [CACHE_CONTROL]
        resp.content_type = "application/json" if fmt == "json" else "application/x-npy"
        if etag in _tags(req.get_header("If-None-Match")):
            resp.status = falcon.HTTP_304
            return
        resp.data = loaded.as_json if fmt == "json" else loaded.as_npy

    on_head = on_get


def _tags(header: str | None) -> set[str]:
    """The entity tags of an ``If-None-Match`` value (weak ones compared as strong, as
    RFC 9110 has it for If-None-Match)."""
    if not header:
        return set()
    return {tag.strip().removeprefix("W/") for tag in header.split(",")}


class ByteRange(IndexResource):
    allowed = frozenset({"start", "end"})

    def on_get(self, req: falcon.Request, resp: falcon.Response, token: str) -> None:
        query, loaded = self.loaded(req, token)
        if "start" not in query or "end" not in query:
            raise bad("start and end (seconds) are required")
        start, end = parse_time(query["start"], "start"), parse_time(query["end"], "end")
        if not end > start:
            raise bad("end is after start")
        with explained():  # past_end and no_timestamps as the frame routes answer them
            try:
                span = loaded.span(start, end)
            except (PastTheEnd, NoTimestamps):
                raise
            except ValueError as exc:  # a packet needed has no byte offset
                raise FrameError(falcon.HTTP_422, "No byte offsets", f"{exc}.",
                                 "no_positions") from exc
        key_time = loaded.times[span.key]
        resp.cache_control = [CACHE_CONTROL]
        resp.media = {
            "start": start, "end": end,
            "frame": {"time": round(span.chosen.time, 6), "index": span.chosen.index},
            "keyframe": {"time": None if key_time is None else round(key_time, 6),
                         "packet": span.key},
            "packets": [span.key, span.last],
            "bytes": [span.first_byte, span.last_byte],
            "range": f"bytes={span.first_byte}-{span.last_byte}",
            "head": list(span.head) if span.head else None,
            "tail": list(span.tail) if span.tail else None,
            "size": span.size,
        }

    on_head = on_get
