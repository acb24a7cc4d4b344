"""The errors of the frame and packet endpoints, and what they check first: JSON
``{"title", "description", "error_code"}`` (docs/models.md, "Limits and errors")."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import falcon

from api.frames.source import Original
from api.http.params import query_params, repeated_params
from api.tokens.endpoints import gone
from videodrop.catalog import Video
from videodrop.storage import MediaStore, ObjectMissing

__all__ = ["RETRY_PENDING", "FrameError", "bad", "checked_query", "parse_time", "ready_file",
           "ready_original", "ready_video"]

#: up to 24 decimals: what Python prints for a float (``repr``: 0.30000000000000004,
#: 0.00012345678901234567) is taken as it is sent
_TIME = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,24})?")
RETRY_PENDING = 10  # seconds: Retry-After of a video (or its index) still being made


class FrameError(falcon.HTTPError):
    """An HTTP error whose JSON also carries ``error_code``."""

    def __init__(self, status: str, title: str, description: str, error_code: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status, title=title, description=description, headers=headers)
        self.error_code = error_code

    def to_dict(self, obj_type: type = dict) -> Any:
        out = super().to_dict(obj_type)
        out["error_code"] = self.error_code
        return out


def bad(description: str) -> FrameError:
    return FrameError(falcon.HTTP_400, "Bad parameter", description, "bad_parameter")


def checked_query(req: falcon.Request, allowed: frozenset[str] | set[str]) -> dict[str, str]:
    """The query string, name → value; 400 ``bad_parameter`` for a name not in ``allowed``
    or given more than once (``t=1&t=2`` would otherwise keep the first silently: ask
    ``t=1,2``)."""
    query = query_params(req)
    unknown = sorted(set(query) - allowed)
    if unknown:
        raise bad(f"unknown parameter {unknown[0][:40]!r}; this takes"
                  f" {', '.join(sorted(allowed)) or 'none'}")
    twice = repeated_params(req)
    if twice:
        raise bad(f"each parameter at most once: {twice[0][:40]!r} is given more than once"
                  + (" (several times are one t, comma-separated)" if twice[0] == "t" else ""))
    return query


def parse_time(raw: str, name: str = "t") -> float:
    """Seconds from a plain decimal (the parameter ``name``); 400 for anything else (signs,
    exponents, nan)."""
    if not _TIME.fullmatch(raw):
        raise bad(f"{name} is seconds as a plain decimal number (12 or 12.345),"
                  f" not {raw[:40]!r}")
    return float(raw)


def ready_video(video: Video) -> Video:
    """The video when it is ready: 410 ``expired`` (a retention rule removed its files),
    409 ``not_ready`` (``Retry-After`` while it may still become ready)."""
    if video.status == "expired":
        exc = gone(video)
        raise FrameError(falcon.HTTP_410, exc.title or "", exc.description or "", "expired")
    if video.status != "ready":
        detail = (f"Processing failed: {video.processing_error}" if video.status == "failed"
                  else f"The video is not ready yet (status: {video.status}).")
        retry = ({"Retry-After": str(RETRY_PENDING)}
                 if video.status in {"uploading", "processing"} else None)
        raise FrameError(falcon.HTTP_409, f"Video {video.status}", detail, "not_ready", retry)
    return video


def ready_file(video: Video, media_root: str | Path) -> tuple[Video, Path]:
    """The ready video and its file under ``media_root`` (the file store): as
    :func:`ready_video`, and 404 ``missing_file``."""
    ready_video(video)
    path = Path(media_root) / video.stored_path
    if not path.is_file():
        raise missing_file()
    return video, path


def ready_original(video: Video, media: MediaStore, media_root: str | Path | None
                   ) -> tuple[Video, Original]:
    """The ready video and its stored original, on either store: as :func:`ready_file`
    on the file store (``media_root``); on s3 (``media_root`` None) the object, stamped
    with its size and ETag (one HEAD request), and 404 ``missing_file`` when it is not
    there. The store's errors (StoreUnavailable: the app answers 503) propagate."""
    if media_root is not None:
        video, path = ready_file(video, media_root)
        return video, Original(str(path), path)
    ready_video(video)
    try:
        info = media.stat(video.stored_path)
    except ObjectMissing as exc:
        raise missing_file() from exc
    return video, Original(video.stored_path, None, media, (info.size, info.etag))


def missing_file() -> FrameError:
    return FrameError(falcon.HTTP_404, "File missing",
                      "The stored file is missing; tell an operator.", "missing_file")
