"""The record: the public JSON shape of a video (the seed's keys first), its ``api_links``
URLs built from ``VIDEODROP_BASE_URL``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from videodrop import formats, playback
from videodrop.catalog import Video
from videodrop.recording import ESTIMATED_SOURCES
from videodrop.recording import iso as iso_ms


def _iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z`` (``2026-11-30T15:45:10.123456Z``), or None."""
    return value.isoformat().replace("+00:00", "Z") if value else None


#: URLs of the derivatives (the derive role), after the seed's five keys.
DERIVATIVE_LINKS = {"poster_url": "poster/", "storyboard_url": "storyboard/",
                    "storyboard_vtt_url": "storyboard.vtt", "scenes_url": "scenes/",
                    "scenes_vtt_url": "scenes.vtt"}
#: For models (docs/models.md), after the derivatives' keys: ``frame_url``, the frame at a
#: time, a template whose ``{t}`` the client replaces with seconds (``12.345``);
#: ``clip_url``, an MP4 clip, a template whose ``{start}`` and ``{end}`` are seconds (the
#: route's ``mode`` may be added); ``packets_url``, the packet index (409 until the
#: ``packets`` derivative is ready).
FRAME_LINK = {"frame_url": "frame/?t={t}", "clip_url": "clip/?start={start}&end={end}",
              "packets_url": "packets/"}


def api_links(token: str | None, base_url: str) -> dict[str, str | None]:
    """The record's ``api_links``: the URLs of the token's endpoints under ``base_url``
    and the token itself (the seed's five keys), then :data:`DERIVATIVE_LINKS` and
    :data:`FRAME_LINK` (templates: ``{t}``, ``{start}``, ``{end}`` stand for seconds); every
    value None when the video has no token (uploading). A derivative's URL answers 409
    until it is ready (``derivatives`` says)."""
    base = base_url.rstrip("/")
    if not token:
        return {"api_endpoint": None, "stream_url": None, "access_token": None,
                "metadata_url": None, "download_url": None,
                **dict.fromkeys(DERIVATIVE_LINKS), **dict.fromkeys(FRAME_LINK)}
    return {
        "api_endpoint": f"{base}/api/video/{token}/",
        "stream_url": f"{base}/stream/{token}/",
        "access_token": token,
        "metadata_url": f"{base}/api/video/{token}/metadata/",
        "download_url": f"{base}/api/video/{token}/download/",
        **{key: f"{base}/api/video/{token}/{path}" for key, path in DERIVATIVE_LINKS.items()},
        **{key: f"{base}/api/video/{token}/{path}" for key, path in FRAME_LINK.items()},
    }


STATE_KEYS = ("status", "error", "error_code", "remaking")


def derivative_states(video: Video) -> dict[str, dict[str, Any]]:
    """``{kind: {"status": pending|ready|failed|skipped, "error": …, "error_code": …,
    "remaking": bool}}`` of the kinds requested for the video (none before it is ready)."""
    return {kind: {k: state[k] for k in STATE_KEYS if k in state}
            for kind, state in sorted(video.derivatives.items())}


def rendition_file(video: Video) -> tuple[str, str, str] | None:
    """What ``/stream/`` serves instead of the original: ``(file relative to MEDIA_ROOT,
    content type, stream)`` of the video's ready rendition, None when there is none."""
    state = video.derivatives.get("rendition") or {}
    file, stream = state.get("file"), state.get("stream")
    if state.get("status") != "ready" or not isinstance(file, str) or not stream:
        return None
    return file, ("video/webm" if file.endswith(".webm") else "video/mp4"), str(stream)


def hevc_file(video: Video) -> tuple[str, str] | None:
    """What ``/stream/{token}/?rendition=hevc`` serves: ``(file relative to MEDIA_ROOT,
    content type)`` of the video's ready HEVC rendition (the original itself when it
    plays as it is where HEVC decodes), None when there is none."""
    state = video.derivatives.get("hevc") or {}
    if state.get("status") != "ready":
        return None
    if state.get("stream") == "original":  # an MP4 or MOV: served as /download/ names it
        return video.stored_path, formats.content_type(video.format, video.original_filename)
    file = state.get("file")
    return (file, "video/mp4") if isinstance(file, str) else None


def hevc_state(video: Video) -> dict[str, Any] | None:
    """The record's ``playback.hevc``: the HEVC rendition for browsers that decode HEVC
    (derive/rendition.py), None when the video has no such request, it was skipped, or
    the video is not HEVC that a copy serves (``playback.hevc_copyable``): ``status``
    (pending, ready, failed), ``error_code``, ``stream`` (``remux``, or ``original``
    when the original is served as it is; None until ready), ``type`` (the MIME type
    with its RFC 6381 ``codecs``, to ask ``canPlayType``) and ``path``
    (``/stream/{token}/?rendition=hevc`` once ready)."""
    state = video.derivatives.get("hevc") or {}
    if not state or state.get("status") == "skipped" \
            or not playback.hevc_copyable(video.metadata):
        return None
    ready = state.get("status") == "ready"
    return {"status": state.get("status"), "error_code": state.get("error_code"),
            "stream": state.get("stream") if ready else None,
            "type": playback.hevc_type(video.metadata),
            "path": (f"/stream/{video.access_token}/?rendition=hevc"
                     if ready and video.access_token else None)}


def file_info(video: Video) -> dict[str, Any]:
    """The record's ``file_info``: stored path, container key (``formats``), size in bytes,
    duration in seconds, ``WxH`` resolution, frames per second and the codecs; None where
    the probe has not said (yet)."""
    return {
        "filename": video.stored_path,
        "format": video.format or formats.extension_of(video.original_filename) or None,
        "size": video.size,
        "duration": video.duration,
        "resolution": video.resolution,
        "fps": video.fps,
        "codec": video.codec,
        "audio_codec": video.audio_codec,
    }


def playback_state(video: Video) -> dict[str, Any] | None:
    """The record's ``playback`` (None until the video is ready): the verdict of
    :func:`videodrop.playback.verdict` on the stored metadata; ``stream``, what
    ``/stream/`` serves now (``original``, or the ready rendition's ``remux``,
    ``transcode_audio`` or ``transcode``); ``status``, ``error_code`` and ``progress``
    (0..1 while a job makes it, else None) of the rendition (all None when the video has
    no rendition request); ``hevc``, :func:`hevc_state`. docs/playback.md."""
    if video.status != "ready":
        return None
    state = video.derivatives.get("rendition") or {}
    served = rendition_file(video)
    progress = state.get("progress")
    return {**playback.verdict(video.metadata).as_json(),
            "stream": served[2] if served else "original",
            "status": state.get("status"), "error_code": state.get("error_code"),
            "progress": round(float(progress), 3) if progress is not None else None,
            "hevc": hevc_state(video)}


def recording(video: Video) -> dict[str, Any] | None:
    """The record's ``recording`` (None until the video is ready, and for a ready row the
    prober has not timed): ``start`` and ``end`` (ISO 8601 UTC, ``end`` = ``start`` +
    duration), ``source`` (creation_time | file_name | mtime | received), ``estimated``
    (true for mtime and received) and ``timeline_origin``. docs/timeline.md."""
    if video.recorded_start is None or video.recorded_end is None:
        return None
    return {"start": iso_ms(video.recorded_start), "end": iso_ms(video.recorded_end),
            "source": video.recorded_source,
            "estimated": video.recorded_source in ESTIMATED_SOURCES,
            "timeline_origin": video.timeline_origin}


def record(video: Video, base_url: str) -> dict[str, Any]:
    """The record of ``video`` (its keys: docs/api.md), timestamps as :func:`_iso`."""
    return {
        "id": video.id,
        "source_id": video.source_id,
        "name": video.name,
        "description": video.description,
        "status": video.status,
        "file_info": file_info(video),
        "api_links": api_links(video.access_token, base_url),
        "processing_error": video.processing_error,
        "error_code": video.error_code,
        "original_filename": video.original_filename,
        "origin": video.origin,
        "created_at": _iso(video.created_at),
        "processing_started_at": _iso(video.processing_started_at),
        "processing_completed_at": _iso(video.processing_completed_at),
        "token_expires_at": _iso(video.token_expires_at),
        "derivatives": derivative_states(video),
        "playback": playback_state(video),
        **retention_state(video),
        "recording": recording(video),
    }


def retention_state(video: Video) -> dict[str, Any]:
    """The record's retention keys (docs/operations.md): ``held_at`` (an operator's hold,
    else None); once a rule removed the video (status ``expired``), ``expired_at``,
    ``expired_reason`` (the rule: max_age, origin_quota, global_quota, free_space) and
    ``expired_detail`` (the sentence), else None."""
    return {"held_at": _iso(video.held_at), "expired_at": _iso(video.expired_at),
            "expired_reason": video.expired_reason, "expired_detail": video.expired_detail}


def metadata(video: Video) -> dict[str, Any]:
    """Everything we know about the file: the normalised metadata plus processing facts."""
    return {
        "id": video.id,
        "source_id": video.source_id,
        "status": video.status,
        "original_filename": video.original_filename,
        "filename": video.stored_path,
        **video.metadata,
        "size": video.size,
        "sha256": video.sha256,
        "processing_started_at": _iso(video.processing_started_at),
        "processing_completed_at": _iso(video.processing_completed_at),
        "processing_error": video.processing_error,
        "error_code": video.error_code,
        "derivatives": derivative_states(video),
        "playback": playback_state(video),
        "recording": recording(video),
    }
