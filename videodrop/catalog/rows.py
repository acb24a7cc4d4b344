"""Rows of the catalog as frozen dataclasses, each built from a row by ``from_row``."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from psycopg import sql

from videodrop.errorcodes import ErrorCode
from videodrop.messages import InboxFile
from videodrop.recording import Recording

STATUSES = ("uploading", "processing", "ready", "failed", "expired")


@dataclass(frozen=True)
class Video:
    """One row of ``videos`` (migrations 0001..): every column but the raw ffprobe JSON
    and the claim key's path digest."""

    id: int
    source_id: str
    name: str
    description: str
    status: str  # one of STATUSES
    access_token: str | None  # None once revoked
    token_expires_at: datetime | None
    original_filename: str
    origin: str  # 'upload', 'inbox' or 'inbox/<folder>[/<folder>...]'
    origin_path: bytes | None  # inbox files: the inbox-relative path, raw bytes
    stored_path: str  # relative to the media store's root
    size: int | None  # bytes; while uploading, the bytes received so far
    sha256: str | None  # hex
    format: str | None
    duration: float | None  # seconds
    resolution: str | None  # '<width>x<height>'
    fps: float | None
    codec: str | None
    audio_codec: str | None
    metadata: dict[str, Any]
    processing_started_at: datetime | None
    processing_completed_at: datetime | None
    processing_error: str | None
    error_code: str | None  # videodrop.errorcodes.ErrorCode, when failed
    attempts: int
    claim_dev: int | None
    claim_ino: int | None
    claim_size: int | None
    claim_mtime_ns: int | None
    claim_ctime_ns: int | None
    created_at: datetime
    updated_at: datetime
    # retention (migration 0016, videodrop/retention/): an operator's hold (None: none);
    # when a rule expired the video, the rule (videodrop.retention.rules.RULES) and the
    # sentence; when its files were removed (None while a pass has still to remove them)
    held_at: datetime | None = None
    expired_at: datetime | None = None
    expired_reason: str | None = None
    expired_detail: str | None = None
    files_removed_at: datetime | None = None
    # Not a column: the states of its derivatives, {kind: {"status": …, "error": …}}
    # (table derivatives, migration 0009), where the statement selects them
    # (video_columns(): lists, token lookups, by_id); empty elsewhere.
    derivatives: dict[str, dict[str, Any]] = field(default_factory=dict)
    # When the recording ran by the wall clock, how that is known, and the timeline it is
    # on (migration 0015, videodrop/recording.py); None until ready.
    recorded_start: datetime | None = None
    recorded_end: datetime | None = None
    recorded_source: str | None = None  # videodrop.recording.SOURCES
    timeline_origin: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Video:
        """The row's columns named as the fields; other columns are ignored, a missing one
        is a KeyError naming it (but for the derived ``derivatives``)."""
        values = {f.name: row[f.name] for f in fields(cls) if f.name not in DERIVED}
        values["derivatives"] = row.get("derivatives") or {}
        return cls(**values)

    def claim(self) -> InboxFile | None:
        """The claim key of a watch-folder file's row; None for an upload."""
        if self.claim_ino is None or self.origin_path is None:
            return None
        return InboxFile(os.fsdecode(bytes(self.origin_path)), self.claim_dev or 0,
                         self.claim_ino, self.claim_size or 0, self.claim_mtime_ns or 0,
                         self.claim_ctime_ns or 0)


DERIVED = {"derivatives"}  # fields of a Video that are no column of videos

# One video's derivative states as a JSON object, for the select list.
_DERIVATIVES = sql.SQL(
    "(SELECT coalesce(jsonb_object_agg(d.kind, jsonb_build_object("
    "'status', d.status, 'error', d.error, 'error_code', d.error_code,"
    " 'remaking', d.remaking, 'progress', d.progress, 'file', d.data->'file',"
    " 'stream', d.data->'stream',"
    # the make's version (videodrop.derivatives.version_of: completed_at in microseconds)
    " 'version', floor(extract(epoch FROM d.completed_at) * 1000000)::bigint)), '{{}}'::jsonb)"
    " FROM derivatives AS d WHERE d.video_id = {id}) AS derivatives")


@functools.cache
def video_columns(table: str | None = None) -> sql.Composed:
    """The columns of a :class:`Video`, qualified by ``table`` when given, and its
    derivatives' states (a subquery on ``table``, default ``videos``)."""
    names = [f.name for f in fields(Video) if f.name not in DERIVED]
    if table is None:
        columns = [sql.Identifier(n) for n in names]
    else:
        columns = [sql.Identifier(table, n) for n in names]
    derived = _DERIVATIVES.format(id=sql.Identifier(table or "videos", "id"))
    return sql.SQL(", ").join([*columns, derived])


@dataclass(frozen=True)
class ProbeOutcome:
    """What a probe found, to record on the row (``Catalog.finish_processing``)."""

    status: str  # ready | failed
    error: str | None
    size: int | None  # bytes
    sha256: str | None  # hex
    metadata: dict[str, Any]
    raw: dict[str, Any] | None  # ffprobe's JSON
    error_code: ErrorCode | None = None  # required when failed (the table's CHECK says so)
    recording: Recording | None = None  # when ready: its wall-clock times
    timeline_origin: str | None = None  # when ready: the timeline it is on
