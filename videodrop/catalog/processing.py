"""What the prober writes of a probe: a row goes ``processing`` and then ``ready`` or
``failed``. SQL: ``sql/processing.sql``."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from psycopg.types.json import Jsonb

from videodrop.catalog.rows import ProbeOutcome, Video
from videodrop.catalog.streamlinks import StreamLinkSync
from videodrop.errorcodes import ErrorCode

PROBE_LOCK_SPACE = 0x5644  # advisory lock namespace of "probing video <id>"


class Processing(StreamLinkSync):
    def processing_lock(self, video_id: int) -> contextlib.AbstractContextManager[bool]:
        """Hold a session advisory lock on the video while it is probed: True if we got it.

        A duplicate message (a re-publish while the first is still being probed) finds the
        lock taken and can be acked: the holder's own message stays unacked until its
        commit, and if the holder dies its connection — and the lock — go with it and the
        broker redelivers that message."""
        return self.db.advisory_lock(PROBE_LOCK_SPACE, video_id)

    def start_processing(self, video_id: int) -> Video | None:
        """``processing``, one more attempt; a ready row's stream link goes first. None
        when the row is gone (deleted meanwhile)."""
        row = self._write_after_unlinking("start_processing", {"id": video_id,
                                                               "now": self.clock()})
        return Video.from_row(row) if row else None

    def finish_processing(self, video_id: int, outcome: ProbeOutcome,
                          derive: Sequence[str] = ()) -> Video | None:
        """Record ``outcome``; a row that turns ready gets its stream link, and the
        derivatives of ``derive`` (kinds, videodrop/derivatives.py) requested in the same
        transaction. None when the row is gone."""
        md = outcome.metadata
        params = {
            "id": video_id,
            "derive": list(derive),
            "status": outcome.status,
            "error": outcome.error,
            "error_code": outcome.error_code,
            "now": self.clock(),
            "size": outcome.size,
            "sha256": outcome.sha256,
            "format": md.get("format"),
            "duration": md.get("duration"),
            "resolution": md.get("resolution"),
            "fps": md.get("fps"),
            "codec": md.get("codec"),
            "audio_codec": md.get("audio_codec"),
            "metadata": Jsonb(md),
            "ffprobe": Jsonb(outcome.raw) if outcome.raw is not None else None,
            **_recording_columns(outcome),
        }
        row = self._write_after_unlinking("finish_processing", params)
        if row and row["status"] == "ready":
            self._make_link(video_id)
        return Video.from_row(row) if row else None

    def note_waiting(self, video_id: int, reason: str) -> None:
        """Why a claimed file still waits (disk full...); cleared when processing starts."""
        self.db.one("note_waiting", {"id": video_id, "error": reason, "now": self.clock()})

    def mark_failed(self, video_id: int, error: str, code: ErrorCode) -> Video | None:
        """``failed`` with ``code`` and the sentence ``error`` (never a ready row)."""
        row = self.db.one("mark_failed", {"id": video_id, "error": error, "error_code": code,
                                          "now": self.clock()})
        return Video.from_row(row) if row else None

    def mark_missing(self, video_id: int, error: str) -> Video | None:
        """``failed`` with code ``missing_file``, a ready row included: a video whose
        stored file is gone must not keep answering ``ready`` (nothing behind its
        ``api_links`` plays). None when there is no such row or it is still uploading."""
        row = self.db.one("mark_missing", {"id": video_id, "error": error,
                                           "now": self.clock()})
        return Video.from_row(row) if row else None


def _recording_columns(outcome: ProbeOutcome) -> dict[str, object]:
    """The columns of migration 0015: set when ready, cleared otherwise."""
    rec = outcome.recording if outcome.status == "ready" else None
    return {"recorded_start": rec.start if rec else None,
            "recorded_end": rec.end if rec else None,
            "recorded_source": rec.source if rec else None,
            "timeline_origin": outcome.timeline_origin if rec else None}
