"""The four token endpoints. The token is the capability: no other credential."""

from __future__ import annotations

import json
import os
import re
from typing import Any

import falcon

from api.files.objects import send_object
from api.files.response import send_file
from api.http.params import query_params, repeated_params
from api.ops.requestlog import TOKEN_PREFIX, VIDEO_ID
from api.tokens.cache import Entry, TokenCache
from api.tokens.recently import Recently
from videodrop import formats, metrics, records
from videodrop.catalog import Catalog, Video
from videodrop.settings import Settings
from videodrop.storage import FileStore, MediaStore, from_settings
from videodrop.tokens import token_prefix


def not_found() -> falcon.HTTPNotFound:
    """A fresh error each time: raising one shared instance again and again would grow its
    ``__traceback__`` (and keep every frame on it alive) with each 404."""
    return falcon.HTTPNotFound(title="Not found",
                               description="No video has this token (or it was revoked).")


def gone(video: Video) -> falcon.HTTPGone:
    """The answer of a file endpoint (download, stream, derivatives, frames) for a video a
    retention rule removed: 410, saying when and why (its record stays readable)."""
    when = video.expired_at.isoformat() if video.expired_at else "earlier"
    return falcon.HTTPGone(title="Video expired",
                           description=f"A retention rule ({video.expired_reason}) removed"
                                       f" its files at {when}: {video.expired_detail}")


CACHE_HITS = metrics.TOKEN_LOOKUPS.labels("cache")
DATABASE_LOOKUPS = metrics.TOKEN_LOOKUPS.labels("database")

# What a token can look like (URL-safe base64); anything else is not looked up at all.
TOKEN = re.compile(r"[A-Za-z0-9_-]{1,128}")


def from_cache(entry: Entry) -> Entry:
    """A lookup answered by the token cache: counted as a hit, its video bound to the
    request's log lines (here and in api/tokens/fastpath.py)."""
    CACHE_HITS.inc()
    VIDEO_ID.set(entry.video.id)
    return entry


def to_json(value: Any) -> bytes:
    """What ``resp.media`` would send (Falcon's default JSON handler), once per entry."""
    return json.dumps(value, ensure_ascii=False).encode()


class TokenResource:
    def __init__(self, settings: Settings, catalog: Catalog,
                 tokens: TokenCache | None = None, *, media: MediaStore | None = None) -> None:
        """``media``: the process's media store (default: the one the settings name)."""
        self.settings = settings
        self.catalog = catalog
        self.tokens = tokens
        self.media = media if media is not None else from_settings(settings)
        # the folder of a store of local files (sendfile, X-Accel-Redirect); None on s3
        self.media_root = str(self.media.root) if isinstance(self.media, FileStore) else None

    def send(self, req: falcon.Request, resp: falcon.Response, key: str, *,
             content_type: str, disposition: str, filename: str, cache_control: str,
             accel: bool = False, proxy: bool = False) -> None:
        """Serve the object ``key`` of the media store: a local file by
        :func:`send_file` (by nginx with ``accel`` and VIDEODROP_ACCEL_REDIRECT), an s3
        object by :func:`send_object` as VIDEODROP_S3_SERVE says, or its bytes through
        the API with ``proxy``. 404 when missing."""
        if self.media_root is None:
            send_object(req, resp, self.media, key,
                        mode="proxy" if proxy else self.settings.s3_serve,  # type: ignore[arg-type]
                        content_type=content_type,
                        disposition=disposition,  # type: ignore[arg-type]
                        filename=filename, cache_control=cache_control)
            return
        send_file(req, resp, os.path.join(self.media_root, key), content_type=content_type,
                  disposition=disposition,  # type: ignore[arg-type]
                  filename=filename, cache_control=cache_control,
                  accel_prefix=self.settings.accel_redirect if accel else None,
                  accel_path=key if accel else None)

    def lookup(self, token: str) -> Entry:
        TOKEN_PREFIX.set(token_prefix(token))
        if not TOKEN.fullmatch(token):
            raise not_found()
        cache = self.tokens
        if cache is not None:
            entry = cache.get(token)
            if entry is not None:
                return from_cache(entry)
            mark = cache.mark()
        DATABASE_LOOKUPS.inc()
        video = self.catalog.lookup_token(token)  # CatalogUnavailable: the app answers 503
        if video is None:
            raise not_found()
        VIDEO_ID.set(video.id)
        return cache.put(token, video, mark) if cache is not None else Entry(video)


class JSONEndpoint(TokenResource):
    """A JSON view of the video, rendered once per cached entry."""

    name: str

    def on_get(self, req: falcon.Request, resp: falcon.Response, token: str) -> None:
        entry = self.lookup(token)
        resp.content_type = falcon.MEDIA_JSON
        resp.data = entry.body(self.name, self.render)

    on_head = on_get

    def render(self, video: Video) -> bytes:
        raise NotImplementedError


class VideoRecord(JSONEndpoint):
    name = "record"

    def render(self, video: Video) -> bytes:
        return to_json(records.record(video, self.settings.base_url))


class VideoMetadata(JSONEndpoint):
    name = "metadata"

    def render(self, video: Video) -> bytes:
        return to_json(records.metadata(video))


#: Cache-Control of /stream/ (and of nginx's stream links): revalidated every time.
STREAM_CACHE = "private, no-cache"


class FileEndpoint(TokenResource):
    disposition: str = "inline"

    def on_get(self, req: falcon.Request, resp: falcon.Response, token: str) -> None:
        video = self.lookup(token).video
        if video.status == "expired":
            raise gone(video)
        if video.status != "ready":
            detail = (f"Processing failed: {video.processing_error}" if video.status == "failed"
                      else f"The video is not ready yet (status: {video.status}).")
            raise falcon.HTTPConflict(title=f"Video {video.status}", description=detail)
        path, content_type, cache = self.served(video, watching=req.method == "GET",
                                                rendition=self.rendition_asked(req))
        try:
            self.send(req, resp, path, content_type=content_type,
                      disposition=self.disposition, filename=video.original_filename,
                      cache_control=cache, accel=True)
        except falcon.HTTPNotFound as exc:  # no regular file at the stored path
            raise falcon.HTTPNotFound(
                title="File missing",
                description="The stored file is missing; tell an operator.") from exc

    on_head = on_get


    def rendition_asked(self, req: falcon.Request) -> str | None:
        """The query's ``rendition`` (only ``/stream/`` takes one: None here)."""
        return None

    def served(self, video: Video, *, watching: bool,
               rendition: str | None = None) -> tuple[str, str, str]:
        """(the file's key in the media store, content type, Cache-Control): the original.
        ``watching``: a GET (a HEAD watches nothing); ``rendition``: the query's (only
        ``/stream/`` takes one)."""
        return (video.stored_path,
                formats.content_type(video.format, video.original_filename),
                "private, max-age=3600")


class Stream(FileEndpoint):
    """The browser rendition once it is ready, the original until then (the ETag tells
    them apart). What it serves may change under the same URL (a rendition made, remade,
    or made later when the settings change), so the answer is ``Cache-Control: private,
    no-cache``: a client revalidates with the ETag and never mixes cached original bytes
    with the rendition's (the page adds ``?v=<playback.stream>`` too; nginx's stream links
    say the same, deploy/nginx.conf). A rendition waiting for a viewer (``on_view``) is
    asked for (docs/playback.md). ``?rendition=hevc``: the HEVC rendition (for browsers
    that decode HEVC; 404 when there is none ready, 400 for another value), which asks
    for nothing."""

    disposition = "inline"

    def __init__(self, settings: Settings, catalog: Catalog,
                 tokens: TokenCache | None = None, *, media: MediaStore | None = None) -> None:
        super().__init__(settings, catalog, tokens, media=media)
        # (video, rendition state) asked for lately: a player's many range requests ask
        # once, not each with a database write; a new state asks again.
        self.asked = Recently(seconds=30.0)

    def rendition_asked(self, req: falcon.Request) -> str | None:
        """``?rendition=`` as sent (blank kept: nginx hands any ``rendition`` to the API,
        which must refuse what it does not serve rather than serve another file); 400 when
        it is given more than once (a first-or-last choice would differ between
        readers)."""
        if "rendition" in repeated_params(req):
            raise falcon.HTTPBadRequest(title="Bad parameter",
                                        description="rendition is given more than once")
        return query_params(req).get("rendition")

    def served(self, video: Video, *, watching: bool,
               rendition: str | None = None) -> tuple[str, str, str]:
        if rendition is not None:  # a page that found the browser decodes HEVC asks it
            if rendition != "hevc":
                raise falcon.HTTPBadRequest(
                    title="Bad parameter",
                    description=f"rendition takes only 'hevc', not {rendition[:40]!r}")
            hevc = records.hevc_file(video)
            if hevc is None:
                raise falcon.HTTPNotFound(
                    title="No HEVC rendition",
                    description="This video has no HEVC rendition (ready): its record's"
                                " playback.hevc says why; /stream/ without ?rendition"
                                " serves every browser.")
            return hevc[0], hevc[1], STREAM_CACHE
        state = video.derivatives.get("rendition") or {}
        # only a GET asks: a HEAD (a link checker, a preview) watches nothing, and an
        # on-view transcode costs a core for about the video's length
        if watching and (state.get("status") == "pending"
                         or state.get("error_code") == "on_view") \
                and self.asked.first((video.id, state.get("status"), state.get("error_code"))):
            self.catalog.want_rendition(video.id)  # someone watches: transcode it now
        ready = records.rendition_file(video)
        path, content_type, _ = ready or super().served(video, watching=watching)
        return path, content_type, STREAM_CACHE


class Download(FileEndpoint):
    """The untouched original, always."""

    disposition = "attachment"


class TrailingSlash:
    """``/api/video/<token>`` and friends without their trailing slash: 308 to the real
    path (method and body kept). Only token-shaped paths are redirected; the rest 404."""

    def _redirect(self, req: falcon.Request, resp: falcon.Response, token: str) -> None:
        if not TOKEN.fullmatch(token):
            raise not_found()
        query = f"?{req.query_string}" if req.query_string else ""
        raise falcon.HTTPPermanentRedirect(f"{req.path}/{query}")

    on_get = on_head = on_post = on_put = on_patch = on_delete = _redirect
