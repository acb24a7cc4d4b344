"""A clip of the video, under its token (docs/models.md#clips):

``GET /api/video/{token}/clip/?start=10&end=20[&mode=exact|copy]`` → ``video/mp4``:

* ``exact`` (the default): exactly the frames whose time is in ``[start, end)``: the
  partial GOPs at each end re-encoded and the whole GOPs between copied when the stream
  allows (:mod:`api.frames.stitch`), else all re-encoded (H.264 and AAC);
* ``copy``: whole GOPs by stream copy, from the last keyframe at or before ``start`` to
  the first at or after ``end`` (:mod:`api.frames.cut`).

``start``, ``end``: seconds on the frame endpoints' timeline, plain decimals, ``start <
end``, ``end - start`` at most VIDEODROP_CLIP_MAX_SECONDS. The answer says what the clip
holds: ``Clip-Start`` (its first frame's time), ``Clip-End`` (the end of its last frame:
the next frame's time, or the stream's end), seconds with 6 decimals, on the same
timeline; ``Clip-Frames`` (how many) and ``Clip-First-Index`` (the first one's index, as
``Video-Frame-Index`` counts); ``Clip-Method``: ``copy``, ``stitch`` (``Clip-Copied``:
``<K1>-<K2>``, the seconds of the frames copied) or ``encode`` (``Clip-Method-Reason``:
why not stitched). ``Content-Disposition: attachment`` names it
``<original name>_<Clip-Start>-<Clip-End>.mp4``.

The clip is written whole to a scratch file (the system's temporary folder) and then sent
with its ``Content-Length``: an MP4 with its index first (``+faststart``), which any
player or decoder can seek in; an error is always an error status, never a 200 cut off.
The child writing it (ffmpeg; for ``copy``, a kept decoding child of this endpoint, which
has the input open from its last clip, ffmpeg when it cannot) has a file-size limit of
VIDEODROP_CLIP_MAX_BYTES.

Errors (JSON with ``error_code``): 400 ``bad_parameter``, ``too_long``, ``too_large``; the
token's 404; 404 ``missing_file``; 409 ``not_ready``; 416 ``past_end`` (``start`` at or
after the last frame's end), ``no_frames`` (no frame's time in ``[start, end)``); 422
``no_keyframe`` (``copy``: no keyframe to cut at), ``not_copyable`` (``copy``: a video
codec MP4 cannot carry, VP8 say), ``no_timestamps``, ``decode_failed``,
``resource_limit``; 503 ``busy`` (VIDEODROP_CLIP_CONCURRENCY cuts at once in this worker)
and ``timeout`` (VIDEODROP_CLIP_TIMEOUT).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import falcon

from api.files.response import content_disposition
from api.frames.cut import MP4_VIDEO, NoFrames, NoKeyframe, Span, copy_span, exact_span
from api.frames.decoders import Decoders
from api.frames.endpoints import CACHE_CONTROL, FrameResource, explained
from api.frames.errors import FrameError, bad, checked_query, parse_time
from api.frames.index import Indexes
from api.frames.stitch import Method, Stitcher
from api.frames.timeline import Timeline
from videodrop.catalog import Catalog, Video
from videodrop.children import ChildRunner
from videodrop.settings import Settings
from videodrop.storage import MediaStore

MODES = ("exact", "copy")


class Clip(FrameResource):
    allowed = {"start", "end", "mode"}
    work = "clip"

    def __init__(self, settings: Settings, catalog: Catalog, tokens: Any = None, *,
                 slots: threading.BoundedSemaphore, indexes: Indexes,
                 media: MediaStore | None = None) -> None:
        # ``copy`` clips are written by kept decoding children of their own, each file
        # VIDEODROP_CLIP_MAX_BYTES at most (the frames' children write none)
        super().__init__(settings, catalog, tokens, slots=slots, indexes=indexes, media=media,
                         decoders=Decoders(settings.child_memory,
                                           file_size=settings.clip_max_bytes))
        self.runner = ChildRunner(settings.child_memory, file_size=settings.clip_max_bytes,
                                  cpus=2)

    def clip_params(self, req: falcon.Request) -> tuple[float, float, str]:
        """(start, end, mode) or 400."""
        query = checked_query(req, self.allowed)
        for name in ("start", "end"):
            if name not in query:
                raise bad(f"{name} (seconds) is required")
        start, end = parse_time(query["start"], "start"), parse_time(query["end"], "end")
        if start >= end:
            raise bad(f"end ({end:g}) must be after start ({start:g})")
        mode = query.get("mode", MODES[0])
        if mode not in MODES:
            raise bad(f"mode is one of {', '.join(MODES)}")
        longest = self.settings.clip_max_seconds
        if end - start > longest:
            raise FrameError(falcon.HTTP_400, "Too long",
                             f"a clip may span {longest:g} s at most"
                             " (VIDEODROP_CLIP_MAX_SECONDS): ask a shorter one", "too_long")
        return start, end, mode

    def on_get(self, req: falcon.Request, resp: falcon.Response, token: str) -> None:
        video, path = self.video_file(token)
        start, end, mode = self.clip_params(req)
        if mode == "copy" and video.codec not in MP4_VIDEO:
            raise FrameError(falcon.HTTP_422, "Cannot copy",
                             f"mode=copy keeps the video as stored, and an MP4 cannot carry"
                             f" {video.codec or 'this codec'}: ask mode=exact",
                             "not_copyable")
        self.take_slot()
        fd, name = tempfile.mkstemp(prefix="videodrop-clip-", suffix=".mp4")
        os.close(fd)
        out = Path(name)
        try:
            cutter = Stitcher(path, ffmpeg=self.settings.ffmpeg, ffprobe=self.settings.ffprobe,
                            runner=self.runner, decoders=self.decoders,
                            deadline=time.monotonic() + self.settings.clip_timeout)
            span, method = self.cut(video, cutter, mode, start, end, out=out,
                                    audio=video.audio_codec, container=video.format)
            body = out.open("rb")  # still readable once unlinked below
        finally:
            self.slots.release()
            out.unlink(missing_ok=True)
        resp.content_type = "video/mp4"
        resp.cache_control = [CACHE_CONTROL]
        resp.set_header("Clip-Start", f"{span.start:.6f}")
        resp.set_header("Clip-End", f"{span.end:.6f}")
        resp.set_header("Clip-Frames", str(span.count))
        resp.set_header("Clip-First-Index", str(span.first))
        resp.set_header("Clip-Method", method.name)
        if method.reason:
            resp.set_header("Clip-Method-Reason",
                            method.reason.encode("ascii", "replace").decode("ascii"))
        if method.copied:
            resp.set_header("Clip-Copied", "{:.6f}-{:.6f}".format(*method.copied))
        stem = Path(video.original_filename).stem or "video"
        resp.set_header("Content-Disposition", content_disposition(
            "attachment", f"{stem}_{span.start:.3f}-{span.end:.3f}.mp4"))
        resp.content_length = os.fstat(body.fileno()).st_size
        if req.method == "HEAD":  # Falcon never closes a HEAD's stream
            body.close()
        else:
            resp.stream = body

    on_head = on_get

    def cut(self, video: Video, cutter: Stitcher, mode: str, start: float, end: float, *,
            out: Path, audio: str | None, container: str | None) -> tuple[Span, Method]:
        """Write the clip to ``out``; (the span it holds, how it was made), or the HTTP
        error saying why not."""
        with explained():
            try:
                line = self.timeline(video, cutter, end)
                if mode == "exact":
                    span = exact_span(line, start, end)
                    method = cutter.exact_clip(line, span, out, audio)
                else:
                    line, span = self.copy_span(cutter, line, start, end)
                    span = cutter.copy(line, span, out, audio, container=container)
                    method = Method("copy")
            except NoFrames as exc:
                raise FrameError(falcon.HTTP_416, "No frames", f"{exc}.",
                                 "no_frames") from exc
            except NoKeyframe as exc:
                raise FrameError(falcon.HTTP_422, "No keyframe", f"{exc}.",
                                 "no_keyframe") from exc
        return span, method

    def copy_span(self, cutter: Stitcher, line: Timeline, start: float, end: float
                  ) -> tuple[Timeline, Span]:
        """:func:`~api.frames.cut.copy_span`, reading further when ``line`` holds no
        keyframe after ``end``: (the timeline read, the span)."""
        try:
            return line, copy_span(line, start, end)
        except NoKeyframe:
            if line.end is not None:
                raise
        # a GOP longer than what was read: read as far as a clip may reach
        line = cutter.timeline(end + self.settings.clip_max_seconds)
        return line, copy_span(line, start, end)
