"""The OpenAPI paths of the frame, clip and packet index routes (api/openapi.py puts them
in the document)."""

from __future__ import annotations

from typing import Any

from videodrop.settings import Settings

Schema = dict[str, Any]

#: ``error_code`` of a frame route's error, and what it means.
ERROR_CODES = {
    "bad_parameter": "a parameter is missing, unknown or malformed",
    "missing_file": "the stored file is gone",
    "not_ready": "the video is not ready (processing, or failed)",
    "expired": "a retention rule removed the video's files (410)",
    "past_end": "t (a clip's start) is at or after the end of the last frame",
    "too_large": "the frames asked are over VIDEODROP_FRAMES_MAX_BYTES of RGB; the clip"
                 " reached VIDEODROP_CLIP_MAX_BYTES",
    "too_long": "the clip asked spans more than VIDEODROP_CLIP_MAX_SECONDS",
    "no_frames": "no frame's time is in the clip's [start, end)",
    "no_keyframe": "mode=copy: no keyframe to cut at (ask mode=exact)",
    "not_copyable": "mode=copy: an MP4 cannot carry the video's codec (ask mode=exact)",
    "no_timestamps": "the stream's packets carry no timestamps",
    "decode_failed": "ffmpeg decoded no frame (damaged data), or not the one chosen",
    "resource_limit": "ffmpeg met VIDEODROP_CHILD_MEMORY or its CPU time",
    "sizes_differ": "npy: the frames asked are not all of one size (use tar)",
    "busy": "every decode slot of the worker (VIDEODROP_FRAME_CONCURRENCY; for clips"
            " VIDEODROP_CLIP_CONCURRENCY) is taken",
    "timeout": "the decodes did not finish within VIDEODROP_FRAME_TIMEOUT (a clip:"
               " VIDEODROP_CLIP_TIMEOUT)",
    "index_pending": "the packet index is not made yet (Retry-After)",
    "index_unavailable": "the packet index failed, was skipped or is not requested",
    "no_positions": "the container gives no byte offset of a packet needed",
}
_DEFAULTS = Settings()


def _error(text: str, retry: bool = False) -> Schema:
    out: Schema = {"description": text, "content": {"application/json": {"schema": {
        "type": "object", "required": ["title", "error_code"],
        "properties": {"title": {"type": "string"}, "description": {"type": "string"},
                       "error_code": {"enum": list(ERROR_CODES), "description": "; ".join(
                           f"{code}: {text}" for code, text in ERROR_CODES.items())}}}}}}
    if retry:
        out["headers"] = {"Retry-After": {"description": "seconds",
                                          "schema": {"type": "string"}}}
    return out


def _params(token: Schema, t: Schema, formats: tuple[str, ...]) -> list[Schema]:
    return [token, t,
            {"name": "format", "in": "query",
             "schema": {"type": "string", "enum": list(formats), "default": formats[0]}},
            {"name": "width", "in": "query",
             "description": "px at most (VIDEODROP_FRAME_MAX_WIDTH, by default"
                            f" {_DEFAULTS.frame_max_width}, caps it); never enlarged",
             "schema": {"type": "integer", "minimum": 1}},
            {"name": "raw", "in": "query",
             "description": "1: as coded (no rotation, no sample aspect ratio applied)",
             "schema": {"type": "string", "enum": ["0", "1"]}}]


def _operation(summary: str, params: list[Schema], ok: Schema, token_404: Schema,
               unavailable: Schema, *, past: str = "t is past the last frame.") -> Schema:
    op = {"security": [], "parameters": params,
          "responses": {"200": ok,
                        "400": _error("A bad parameter, or over a size limit."),
                        "404": token_404,
                        "409": _error("The video is not ready (Retry-After while it may"
                                      " still be).", retry=True),
                        "410": _error("Expired: a retention rule removed the file."),
                        "416": _error(past),
                        "422": _error("No frame could be decoded there."),
                        "503": unavailable}}
    return {"get": {**op, "summary": summary},
            "head": {**op, "summary": f"{summary} (headers only)"}}


def paths(token: Schema, token_404: Schema, unavailable: Schema) -> dict[str, Schema]:
    """``/frame/``, ``/frames/`` and ``/clip/``; ``token``, ``token_404``, ``unavailable``: the
    document's token parameter, its 404 and its 503 (to which a frame route adds its
    own 503s: ``busy``, ``timeout``; all carry Retry-After)."""
    seconds = {"type": "string", "pattern": r"^[0-9]{1,9}(\.[0-9]{1,24})?$"}
    one = {"name": "t", "in": "query", "required": True, "schema": seconds,
           "description": "seconds from the start: the frame shown then (the last frame"
                          " whose time is <= t; the first frame before it)"}
    many = {"name": "t", "in": "query", "required": True,
            "description": "times, comma-separated (at most VIDEODROP_FRAMES_MAX, by"
                           f" default {_DEFAULTS.frames_max})",
            "schema": {"type": "string", "pattern": r"^[0-9]{1,9}(\.[0-9]{1,24})?"
                                                    r"(,[0-9]{1,9}(\.[0-9]{1,24})?)*$"}}
    header = {"schema": {"type": "string"}}
    one_headers = {
        "Video-Frame-Time": {**header, "description": "the frame's time, seconds"},
        "Video-Frame-Index": {**header, "description": "0-based, presentation order"}}
    many_headers = {
        "Video-Frame-Times": {**header, "description": "JSON list of seconds"},
        "Video-Frame-Indices": {**header, "description": "JSON list of indices"}}
    binary = {"schema": {"type": "string", "format": "binary"}}
    busy = {**unavailable, "description": "The database cannot be reached, every decode"
                                          " slot is taken (busy) or the decode timed out."}
    return {
        "/api/video/{token}/frame/": _operation(
            "The frame shown at t (JPEG or PNG).", _params(token, one, ("jpeg", "png")),
            {"description": "The frame.", "headers": {**one_headers, **many_headers},
             "content": {"image/jpeg": binary, "image/png": binary}},
            token_404, busy),
        "/api/video/{token}/frames/": _operation(
            "The frames shown at several times: a uint8 (N, H, W, 3) .npy, or a"
            " WebDataset tar (000000.jpg, 000000.json).",
            _params(token, many, ("npy", "tar")),
            {"description": "The frames, in the order of t.", "headers": many_headers,
             "content": {"application/x-npy": binary, "application/x-tar": binary}},
            token_404, busy),
        "/api/video/{token}/clip/": _operation(
            "A clip (MP4): exact, the frames whose time is in [start, end), the partial"
            " GOPs at each end re-encoded and the middle copied when the stream allows,"
            " else all re-encoded; copy, whole GOPs around them by stream copy.",
            _clip_params(token, seconds),
            {"description": "The clip, an MP4 with its index first.",
             "headers": _CLIP_HEADERS, "content": {"video/mp4": binary}},
            token_404, busy, past="start is past the last frame, or no frame is in the span."),
    }


_CLIP_HEADERS = {name: {"schema": {"type": "string"}, "description": text} for name, text in (
    ("Clip-Start", "the time of the clip's first frame, seconds (6 decimals)"),
    ("Clip-End", "the end of its last frame: the next frame's time, or the stream's end"),
    ("Clip-Frames", "how many frames it holds"),
    ("Clip-First-Index", "the index of its first frame (presentation order, from 0)"),
    ("Clip-Method", "how it was made: copy, stitch (exact, the middle copied) or encode"
                    " (exact, all re-encoded)"),
    ("Clip-Copied", "stitch: <K1>-<K2>, the seconds of the frames stream-copied"),
    ("Clip-Method-Reason", "encode: why the clip was not stitched (a sentence)"),
    ("Content-Disposition", "attachment; <original name>_<start>-<end>.mp4"))}


def _clip_params(token: Schema, seconds: Schema) -> list[Schema]:
    return [token,
            {"name": "start", "in": "query", "required": True, "schema": seconds,
             "description": "seconds from the start of the video"},
            {"name": "end", "in": "query", "required": True, "schema": seconds,
             "description": "seconds, after start; end - start at most"
                            " VIDEODROP_CLIP_MAX_SECONDS (by default"
                            f" {_DEFAULTS.clip_max_seconds:g})"},
            {"name": "mode", "in": "query",
             "description": "exact: frame-accurate (re-encoded at the ends or whole);"
                            " copy: cut at keyframes",
             "schema": {"type": "string", "enum": ["exact", "copy"], "default": "exact"}}]


def _seconds_column(what: str) -> Schema:
    return {"type": "array", "items": {"type": ["number", "null"]},
            "description": f"{what}, seconds on the API's timeline (null: unknown)"}


def _index_operation(summary: str, params: list[Schema], ok: Schema, *, token_404: Schema,
                     unavailable: Schema, extra: dict[str, Schema]) -> Schema:
    op = {"security": [], "parameters": params,
          "responses": {"200": ok, **extra,
                        "400": _error("A bad parameter."),
                        "404": token_404,
                        "409": _error("The video is not ready (not_ready), or its packet"
                                      " index is not (index_pending, with Retry-After;"
                                      " index_unavailable).", retry=True),
                        "410": _error("Expired: a retention rule removed the file."),
                        "503": unavailable}}
    return {"get": {**op, "summary": summary},
            "head": {**op, "summary": f"{summary} (headers only)"}}


def index_paths(token: Schema, token_404: Schema, unavailable: Schema) -> dict[str, Schema]:
    """``/packets/`` and ``/range/`` (docs/models.md, "The packet index")."""
    seconds = {"type": "string", "pattern": r"^[0-9]{1,9}(\.[0-9]{1,24})?$"}
    integers = {"type": "array", "items": {"type": ["integer", "null"]}}
    flags = {"type": "array", "items": {"enum": [0, 1]}}
    columns = {"type": "object",
               "required": ["pts", "dts", "duration", "pos", "size", "key", "discard"],
               "properties": {"pts": _seconds_column("presentation time"),
                              "dts": _seconds_column("decoding time"),
                              "duration": _seconds_column("length"),
                              "pos": {**integers, "description": "byte offset (null: unknown)"},
                              "size": {**integers, "description": "bytes"},
                              "key": {**flags, "description": "1: a keyframe"},
                              "discard": {**flags, "description": "1: cut off by an edit"
                                          " list (decoded, never shown)"}}}
    index = {"type": "object",
             "required": ["count", "time_base", "start", "end", "keyframes", "columns"],
             "properties": {"count": {"type": "integer"}, "time_base": {"type": "string"},
                            "start": {"type": "number", "description":
                                      "the container's start time, seconds"},
                            "end": {"type": ["number", "null"],
                                    "description": "the last frame's end, seconds"},
                            "keyframes": {"type": "integer"}, "columns": columns}}
    pair = {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2}
    span = {"type": "object",
            "required": ["start", "end", "frame", "keyframe", "packets", "bytes", "range",
                         "head", "tail", "size"],
            "properties": {
                "start": {"type": "number"}, "end": {"type": "number"},
                "frame": {"type": "object", "description": "the frame shown at start",
                          "properties": {"time": {"type": "number"},
                                         "index": {"type": "integer"}}},
                "keyframe": {"type": "object", "description": "where decoding starts",
                             "properties": {"time": {"type": ["number", "null"]},
                                            "packet": {"type": "integer"}}},
                "packets": {**pair, "description": "first and last packet (inclusive)"},
                "bytes": {**pair, "description": "first and last byte (inclusive)"},
                "range": {"type": "string", "description": "bytes as a Range header value"},
                "head": {"oneOf": [pair, {"type": "null"}], "description":
                         "the file's bytes before the stream's first packet"},
                "tail": {"oneOf": [pair, {"type": "null"}], "description":
                         "the file's bytes after the stream's last packet"},
                "size": {"type": "integer", "description": "the file's bytes"}}}
    fmt = {"name": "format", "in": "query",
           "schema": {"type": "string", "enum": ["json", "npy"], "default": "json"}}
    cached = {"ETag": {"schema": {"type": "string"}},
              "Cache-Control": {"schema": {"type": "string"}}}
    return {
        "/api/video/{token}/packets/": _index_operation(
            "The packet index of the video stream: columns in file order (JSON), or one"
            " packed structured .npy.", [token, fmt],
            {"description": "The index.", "headers": cached,
             "content": {"application/json": {"schema": index},
                         "application/x-npy": {"schema": {"type": "string",
                                                          "format": "binary"}}}},
            token_404=token_404, unavailable=unavailable,
            extra={"304": {"description": "If-None-Match matched the ETag."}}),
        "/api/video/{token}/range/": _index_operation(
            "The byte range to read for the frames shown in [start, end): from the"
            " keyframe decoding starts at to the last packet needed.",
            [token, {"name": "start", "in": "query", "required": True, "schema": seconds},
             {"name": "end", "in": "query", "required": True, "schema": seconds,
              "description": "after start"}],
            {"description": "The span.", "content": {"application/json": {"schema": span}}},
            token_404=token_404, unavailable=unavailable,
            extra={"416": _error("start is past the last frame."),
                   "422": _error("No timestamps, or no byte offsets.")}),
    }
