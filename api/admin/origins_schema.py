"""The OpenAPI of the origins and their timelines (api/admin/origins.py): their paths and
the schemas they add, merged into ``api/openapi.py``'s document."""

from __future__ import annotations

from typing import Any

from api.admin.origins import MAX_RECORDINGS, MAX_SPAN
from videodrop.recording import SOURCES

Schema = dict[str, Any]
_WHEN = {"type": "string", "format": "date-time"}
_WHEN_OR_NULL = {"type": ["string", "null"], "format": "date-time"}

SCHEMAS: dict[str, Schema] = {
    "Recording": {
        "type": ["object", "null"],
        "description": "When the recording ran by the wall clock (null until ready): end ="
                       " start + duration; source says how the start is known (the"
                       " container's creation_time, a stamp in the file name, the file's"
                       " mtime minus its duration, an upload's arrival minus its duration);"
                       " estimated for the last two. docs/timeline.md.",
        "required": ["start", "end", "source", "estimated", "timeline_origin"],
        "properties": {"start": _WHEN, "end": _WHEN,
                       "source": {"type": "string", "enum": list(SOURCES)},
                       "estimated": {"type": "boolean"},
                       "timeline_origin": {"type": "string",
                                           "examples": ["inbox/cam1", "upload"]}},
    },
    "Origin": {
        "type": "object",
        "required": ["origin", "recordings", "first_start", "last_end", "duration", "bytes",
                     "last_seen", "gap_tolerance", "timeline_url"],
        "properties": {
            "origin": {"type": "string", "examples": ["inbox/cam1"]},
            "recordings": {"type": "integer", "minimum": 1,
                           "description": "ready recordings"},
            "first_start": _WHEN, "last_end": _WHEN,
            "duration": {"type": "number", "description": "summed durations, seconds"},
            "bytes": {"type": "integer", "minimum": 0},
            "last_seen": {**_WHEN_OR_NULL,
                          "description": "when a file last arrived under it (any status)"},
            "gap_tolerance": {"type": "number", "description": "seconds"},
            "timeline_url": {"type": "string"},
        },
    },
    "Hole": {
        "type": "object",
        "description": "A gap (nothing recorded) or an overlap (two recordings at once)"
                       " of at least the gap tolerance, between recordings before_id and"
                       " after_id.",
        "required": ["start", "end", "seconds", "before_id", "after_id"],
        "properties": {"start": _WHEN, "end": _WHEN, "seconds": {"type": "number"},
                       "before_id": {"type": "integer"}, "after_id": {"type": "integer"}},
    },
    "Timeline": {
        "type": "object",
        "required": ["origin", "from", "to", "gap_tolerance", "recordings", "gaps",
                     "overlaps", "truncated", "next_from"],
        "properties": {
            "origin": {"type": "string"}, "from": _WHEN, "to": _WHEN,
            "gap_tolerance": {"type": "number"},
            "recordings": {"type": "array", "items": {
                "type": "object",
                "required": ["id", "original_filename", "start", "end", "duration", "size",
                             "source", "estimated", "video_url"],
                "properties": {
                    "id": {"type": "integer"}, "original_filename": {"type": "string"},
                    "start": _WHEN, "end": _WHEN,
                    "duration": {"type": ["number", "null"]},
                    "size": {"type": ["integer", "null"]},
                    "source": {"type": "string", "enum": list(SOURCES)},
                    "estimated": {"type": "boolean"}, "video_url": {"type": "string"}}}},
            "gaps": {"type": "array", "items": {"$ref": "#/components/schemas/Hole"}},
            "overlaps": {"type": "array", "items": {"$ref": "#/components/schemas/Hole"}},
            "truncated": {"type": "boolean"},
            "next_from": _WHEN_OR_NULL,
        },
    },
}


def paths(admin: list[Schema], unauthorized: Schema, throttled: Schema, unavailable: Schema,
          error: Schema) -> dict[str, Schema]:
    """``/api/origins`` and ``/api/origins/{origin}/timeline`` (GET and HEAD)."""
    common = {"401": unauthorized, "429": throttled, "503": unavailable}
    listing = {"summary": "Each origin with ready recordings: its first and last recording,"
                          " summed duration and bytes, last arrival.",
               "security": admin,
               "responses": {"200": {"description": "The origins.", "content": {
                   "application/json": {"schema": {
                       "type": "object", "required": ["origins"],
                       "properties": {"origins": {"type": "array", "items": {
                           "$ref": "#/components/schemas/Origin"}}}}}}},
                   "400": error, **common}}
    params = [
        {"name": "origin", "in": "path", "required": True,
         "description": "a timeline origin as /api/origins names it (inbox/cam1); its"
                        " slashes as they are or as %2F",
         "schema": {"type": "string", "minLength": 1}},
        {"name": "from", "in": "query", "description": "default: 24 hours before to",
         "schema": _WHEN},
        {"name": "to", "in": "query", "description": "default: now; at most"
                                                     f" {MAX_SPAN.days} days after from",
         "schema": _WHEN},
        {"name": "limit", "in": "query", "description": "recordings starting in the window",
         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_RECORDINGS,
                    "default": MAX_RECORDINGS}},
    ]
    timeline = {"summary": "An origin's recordings in a window, and the gaps and overlaps"
                           " between them (at least its gap tolerance).",
                "security": admin, "parameters": params,
                "responses": {"200": {"description": "The timeline.", "content": {
                    "application/json": {"schema": {
                        "$ref": "#/components/schemas/Timeline"}}}},
                    "400": error, **common}}
    return {"/api/origins": {"get": listing, "head": {**listing, "summary": "Headers only."}},
            "/api/origins/{origin}/timeline": {
                "get": timeline, "head": {**timeline, "summary": "Headers only."}}}
