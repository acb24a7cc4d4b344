"""The fixed list of ``error_code`` values a ``failed`` record carries (beside the sentence
in ``processing_error``). The one definition: the catalog, the prober, the API document
(``api/openapi.py``) and docs/api.md's table all read it from here."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["DESCRIPTIONS", "ErrorCode"]


class ErrorCode(StrEnum):
    EMPTY = "empty"
    NOT_MEDIA = "not_media"
    UNSUPPORTED_CONTAINER = "unsupported_container"
    NO_VIDEO_STREAM = "no_video_stream"
    NO_VIDEO_FRAMES = "no_video_frames"
    STILL_IMAGE = "still_image"
    TRUNCATED = "truncated"
    TIMEOUT = "timeout"
    RESOURCE_LIMIT = "resource_limit"
    UNREADABLE = "unreadable"
    TOO_LARGE = "too_large"
    REFUSED = "refused"
    MISSING_FILE = "missing_file"
    UPLOAD_INTERRUPTED = "upload_interrupted"
    INTERNAL = "internal"


#: What each code means, for docs/api.md and the OpenAPI document.
DESCRIPTIONS: dict[ErrorCode, str] = {
    ErrorCode.EMPTY: "the file has no bytes",
    ErrorCode.NOT_MEDIA: "ffprobe finds no media content in it (random bytes, text, a "
                         "damaged header, a non-image named like one)",
    ErrorCode.UNSUPPORTED_CONTAINER: "the content is a format other than the accepted "
                                     "containers (a playlist, concat list, GIF, subtitles, "
                                     "audio-only formats...), whatever its name says",
    ErrorCode.NO_VIDEO_STREAM: "an accepted container without a video stream (audio only, "
                               "no streams)",
    ErrorCode.NO_VIDEO_FRAMES: "a video stream is declared but the file holds none of its "
                               "frames, or none of them decodes (a piece cut from inside a "
                               "stream, damaged data)",
    ErrorCode.STILL_IMAGE: "a single picture (or cover art only), not a video",
    ErrorCode.TRUNCATED: "the recording was cut off: its index or media data ends before "
                         "two of its frames can be decoded",
    ErrorCode.TIMEOUT: "ffprobe did not finish within VIDEODROP_PROBE_TIMEOUT",
    ErrorCode.RESOURCE_LIMIT: "ffprobe was stopped by a resource limit (memory: "
                              "VIDEODROP_CHILD_MEMORY, or CPU time)",
    ErrorCode.UNREADABLE: "ffprobe crashed, answered something that is not its JSON, or "
                          "found no timing at all in the file",
    ErrorCode.TOO_LARGE: "over VIDEODROP_MAX_FILE_SIZE",
    ErrorCode.REFUSED: "the inbox policy refused the file when a prober claimed it (an "
                       "extension VIDEODROP_INBOX_EXTENSIONS no longer lists, over "
                       "VIDEODROP_INBOX_MAX_FILE_SIZE, a sparse file): it stays in the inbox",
    ErrorCode.MISSING_FILE: "the stored file is gone (a ready video becomes failed when a "
                            "new probe finds it gone)",
    ErrorCode.UPLOAD_INTERRUPTED: "the client went away before the upload was complete",
    ErrorCode.INTERNAL: "a bug: processing crashed on every delivery allowed",
}
