"""Exact frames at timestamps, under the video's token (docs/models.md):

* ``GET /api/video/{token}/frame/?t=12.345[&format=jpeg|png][&width=N][&raw=1]`` → the
  frame shown at ``t`` (:mod:`api.frames.timeline` defines it), ``image/jpeg`` (default) or
  ``image/png``, with ``Video-Frame-Time`` (its time, seconds, 6 decimals) and
  ``Video-Frame-Index`` (0-based, presentation order);
* ``GET /api/video/{token}/frames/?t=1,2.5,7[&format=npy|tar][&width=N][&raw=1]`` → the
  frames at those times, in that order: ``npy`` (default) a ``uint8`` array
  ``(N, H, W, 3)`` (RGB), ``tar`` WebDataset-style members ``000000.jpg`` and
  ``000000.json`` (``{"t", "pts", "index"}``) written as they are decoded; both with
  ``Video-Frame-Times`` and ``Video-Frame-Indices`` (JSON lists).

The frame shown at ``t`` is chosen from the video's packet index (the ``packets``
derivative, api/frames/index.py) once it is made, else from ffprobe's listing of the
packets per request (api/frames/extract.py): the same timeline either way.

``t``: seconds, a plain decimal (``12``, ``12.345``); ``width``: 1 to
VIDEODROP_FRAME_MAX_WIDTH (default: that; a narrower picture is never enlarged); the
rotation and the sample aspect ratio are applied unless ``raw=1``.

Errors (JSON ``{"title", "description", "error_code"}``): 400 ``bad_parameter``; the
token's 404; 404 ``missing_file``; 409 ``not_ready`` (``Retry-After`` while it may still
become ready); 416 ``past_end`` (``t`` at or after the last frame's end); 400
``too_large`` (over VIDEODROP_FRAMES_MAX_BYTES of RGB); 422 ``no_timestamps``,
``decode_failed``, ``resource_limit``; 503 ``busy`` (VIDEODROP_FRAME_CONCURRENCY decodes
at once in this worker; ``Retry-After``) and ``timeout`` (VIDEODROP_FRAME_TIMEOUT).
A tar whose frame fails once its first bytes are sent is cut off (the connection is
closed before the archive's end), never completed with a frame missing.
"""

from __future__ import annotations

import contextlib
import json
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import IO, Any

import falcon

from api.frames.decoders import Decoders
from api.frames.errors import FrameError, bad, checked_query, parse_time, ready_original
from api.frames.extract import FrameFailed, Frames, Shape, ppm_pixels
from api.frames.index import Indexes, Unavailable
from api.frames.packing import TAR_END, npy_header, tar_member
from api.frames.source import Original
from api.frames.timeline import Chosen, NoTimestamps, PastTheEnd, Timeline
from api.tokens.endpoints import TokenResource
from videodrop.catalog import Catalog, Video
from videodrop.children import ChildRunner
from videodrop.settings import Settings
from videodrop.storage import MediaStore

RETRY_BUSY = 1  # seconds: Retry-After when every decode slot of the worker is taken
_FAILED = {"timeout": falcon.HTTP_503, "resource_limit": falcon.HTTP_422,
           "decode_failed": falcon.HTTP_422, "too_large": falcon.HTTP_400}
CACHE_CONTROL = "private, max-age=3600"


class FrameResource(TokenResource):
    """What both routes share: the checks, the decode slots, the children (``decoders``:
    the worker's decoding children, shared by its routes; None: a pool of its own)."""

    formats: tuple[str, ...]
    allowed = {"t", "format", "width", "raw"}
    work = "frame decode"  # what a slot is for (the 503 busy sentence)

    def __init__(self, settings: Settings, catalog: Catalog, tokens: Any = None, *,
                 slots: threading.BoundedSemaphore, indexes: Indexes,
                 media: MediaStore | None = None, decoders: Decoders | None = None) -> None:
        super().__init__(settings, catalog, tokens, media=media)
        self.slots = slots
        self.indexes = indexes
        self.runner = ChildRunner(settings.child_memory, cpus=2)
        self.decoders = decoders if decoders is not None else Decoders(settings.child_memory)

    def video_file(self, token: str) -> tuple[Video, Original]:
        """The ready video and its stored original (a local file, or an s3 object)."""
        return ready_original(self.lookup(token).video, self.media, self.media_root)

    def params(self, req: falcon.Request) -> tuple[dict[str, str], Shape, str]:
        """(the query, the shape, the format) or 400."""
        query = checked_query(req, self.allowed)
        if "t" not in query:
            raise bad("t (seconds) is required")
        cap = self.settings.frame_max_width
        raw_width = query.get("width", str(cap))
        if not re.fullmatch(r"[0-9]{1,9}", raw_width) or not 1 <= int(raw_width) <= cap:
            raise bad(f"width is an integer from 1 to {cap} (VIDEODROP_FRAME_MAX_WIDTH)")
        raw = query.get("raw", "0")
        if raw not in {"0", "1"}:
            raise bad("raw is 1 (the frame as coded) or 0")
        fmt = query.get("format", self.formats[0])
        if fmt not in self.formats:
            raise bad(f"format is one of {', '.join(self.formats)}")
        return query, Shape(int(raw_width), raw == "1"), fmt

    def frames(self, path: Original) -> Frames:
        return Frames(path, ffmpeg=self.settings.ffmpeg, ffprobe=self.settings.ffprobe,
                      runner=self.runner, decoders=self.decoders,
                      deadline=time.monotonic() + self.settings.frame_timeout)

    def take_slot(self) -> None:
        if not self.slots.acquire(blocking=False):
            raise FrameError(falcon.HTTP_503, "Busy",
                             f"Every {self.work} slot of this worker is taken; try again.",
                             "busy", {"Retry-After": str(RETRY_BUSY)})

    def timeline(self, video: Video, frames: Frames, last: float) -> Timeline:
        """The frames' timeline from the video's packet index when it has a ready one,
        else from ffprobe's listing up to ``last`` seconds (the same frames either way)."""
        try:
            return self.indexes.of(video, frames.path).timeline
        except Unavailable:
            return frames.timeline(last)

    def choose(self, video: Video, frames: Frames, times: list[float]) -> list[Chosen]:
        """The frame shown at each time, or the error that says why there is none."""
        with explained():
            line = self.timeline(video, frames, max(times))
            chosen = [line.at(t) for t in times]
        return chosen


@contextlib.contextmanager
def explained() -> Iterator[None]:
    """Turns the errors of reading the timeline and decoding into the HTTP error that
    says why there is no frame (the ``error_code`` table of the module docstring)."""
    try:
        yield
    except PastTheEnd as exc:
        raise FrameError(falcon.HTTP_416, "No frame at this time",
                         f"{exc}.", "past_end") from exc
    except NoTimestamps as exc:
        raise FrameError(falcon.HTTP_422, "No timestamps", f"{exc}.",
                         "no_timestamps") from exc
    except FrameFailed as exc:
        raise failed(exc) from exc
    except ValueError as exc:  # no frame at all
        raise FrameError(falcon.HTTP_422, "No frame", f"{exc}.", "decode_failed") from exc


def failed(exc: FrameFailed) -> FrameError:
    headers = {"Retry-After": str(RETRY_BUSY)} if exc.reason == "timeout" else None
    return FrameError(_FAILED[exc.reason], "Frame failed", f"{exc}.", exc.reason, headers)


def picture_headers(resp: falcon.Response, chosen: list[Chosen]) -> None:
    resp.cache_control = [CACHE_CONTROL]
    if len(chosen) == 1:
        resp.set_header("Video-Frame-Time", f"{chosen[0].time:.6f}")
        resp.set_header("Video-Frame-Index", str(chosen[0].index))
    resp.set_header("Video-Frame-Times",
                    json.dumps([round(c.time, 6) for c in chosen], separators=(",", ":")))
    resp.set_header("Video-Frame-Indices",
                    json.dumps([c.index for c in chosen], separators=(",", ":")))


class Frame(FrameResource):
    formats = ("jpeg", "png")

    def on_get(self, req: falcon.Request, resp: falcon.Response, token: str) -> None:
        video, path = self.video_file(token)
        query, shape, fmt = self.params(req)
        t = parse_time(query["t"])
        self.take_slot()
        try:
            frames = self.frames(path)
            [chosen] = self.choose(video, frames, [t])
            picture = frames.picture(chosen, shape, fmt)
        except FrameFailed as exc:
            raise failed(exc) from exc
        finally:
            self.slots.release()
        resp.content_type = f"image/{fmt}"
        picture_headers(resp, [chosen])
        resp.set_header("Content-Disposition",
                        f'inline; filename="{video.source_id}-{chosen.index}.'
                        f'{"jpg" if fmt == "jpeg" else fmt}"')
        resp.data = picture.data

    on_head = on_get


class ManyFrames(FrameResource):
    formats = ("npy", "tar")

    def on_get(self, req: falcon.Request, resp: falcon.Response, token: str) -> None:
        video, path = self.video_file(token)
        query, shape, fmt = self.params(req)
        times = [parse_time(part) for part in query["t"].split(",")]
        if len(times) > self.settings.frames_max:
            raise bad(f"at most {self.settings.frames_max} times a request"
                      " (VIDEODROP_FRAMES_MAX)")
        self.take_slot()
        body: IO[bytes] | None = None
        try:
            frames = self.frames(path)
            chosen = self.choose(video, frames, times)
            if fmt == "npy":
                body = self.array(frames, chosen, shape)
            else:
                first = frames.picture(chosen[0], shape, "ppm")
                self.check_size(len(chosen), *ppm_pixels(first.data)[:2])
        except FrameFailed as exc:
            raise failed(exc) from exc
        finally:
            self.slots.release()
        picture_headers(resp, chosen)
        resp.content_type = f"application/x-{fmt}"
        if body is not None:  # npy
            resp.content_length = body.tell()
            body.seek(0)
            if req.method == "HEAD":  # Falcon never closes a HEAD's stream
                body.close()
            else:
                resp.stream = body
        elif req.method != "HEAD":
            resp.stream = self.tar(frames, chosen, times, shape, token)

    on_head = on_get

    def check_size(self, count: int, height: int, width: int) -> None:
        size = count * height * width * 3
        if size > self.settings.frames_max_bytes:
            raise FrameError(falcon.HTTP_400, "Too large",
                             f"{count} frames of {width}x{height} are {size} bytes of RGB,"
                             f" over {self.settings.frames_max_bytes}"
                             " (VIDEODROP_FRAMES_MAX_BYTES): ask fewer or narrower",
                             "too_large")

    def array(self, frames: Frames, chosen: list[Chosen], shape: Shape) -> IO[bytes]:
        """The ``.npy`` of the frames, written frame by frame to an anonymous scratch file
        (the system's temporary folder) and left at its end: a worker holds one frame in
        memory, never the array, however slowly its client reads; 422 when the frames
        differ in size."""
        body = tempfile.TemporaryFile(prefix="videodrop-frames-")  # noqa: SIM115 (returned)
        try:
            size: tuple[int, int] | None = None
            for one, then in zip(chosen, [*chosen[1:], None], strict=True):
                height, width, rgb = ppm_pixels(frames.picture(one, shape, "ppm", then).data)
                if size is None:
                    size = (height, width)
                    self.check_size(len(chosen), height, width)
                    body.write(npy_header((len(chosen), height, width, 3)))
                elif size != (height, width):
                    raise FrameError(falcon.HTTP_422, "Frames differ in size",
                                     f"the frame at {one.time:.6f} s is {width}x{height}, the"
                                     f" first {size[1]}x{size[0]}: ask format=tar",
                                     "sizes_differ")
                body.write(rgb)
        except BaseException:
            body.close()
            raise
        return body

    def tar(self, frames: Frames, chosen: list[Chosen], times: list[float],
            shape: Shape, token: str) -> Iterator[bytes]:
        """The members, frame by frame. Each frame takes a decode slot for its decoding
        only, waiting for one until the request's deadline (else ``timeout``: the archive
        is cut off): a client that reads slowly holds none while its members are sent,
        and the time its members wait to be read is not counted against the deadline
        (which bounds decoding). A token revoked (rotated, expired, its video deleted)
        while the archive is sent cuts it off before the next frame is decoded."""
        for n, (one, t, then) in enumerate(zip(chosen, times, [*chosen[1:], None],
                                                strict=True)):
            if n:
                self.lookup(token)  # the token's 404 (raised here: the archive is cut off)
            if not self.slots.acquire(timeout=max(0.0, frames.deadline - time.monotonic())):
                raise FrameFailed("timeout", "no decode slot came free before the"
                                             " request's deadline (VIDEODROP_FRAME_TIMEOUT)")
            try:
                data = frames.picture(one, shape, "jpeg", then).data
            finally:
                self.slots.release()
            meta = {"t": t, "pts": round(one.time, 6), "index": one.index}
            sent = time.monotonic()
            yield tar_member(f"{n:06d}.jpg", data) + tar_member(
                f"{n:06d}.json", json.dumps(meta).encode())
            frames.deadline += time.monotonic() - sent  # the client's time, not ours
        yield TAR_END
