"""Row mapping: a row of ``videos`` (as the driver returns it: a dict per row) to a Video."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime

import pytest

from videodrop.catalog import Video
from videodrop.catalog.rows import video_columns

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def row(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": 7, "source_id": "cam1-0001", "name": "Front door", "description": "",
        "status": "ready", "access_token": "t" * 43, "token_expires_at": None,
        "original_filename": "front.mp4", "origin": "inbox/cam1",
        "origin_path": b"cam1/front.mp4", "stored_path": "videos/cam1-0001/front.mp4",
        "size": 1234, "sha256": "0" * 64, "format": "mp4", "duration": 2.5,
        "resolution": "320x240", "fps": 25.0, "codec": "h264", "audio_codec": None,
        "metadata": {"format": "mp4"}, "processing_started_at": NOW,
        "processing_completed_at": NOW, "processing_error": None, "error_code": None,
        "attempts": 1, "claim_dev": 1, "claim_ino": 2, "claim_size": 1234,
        "claim_mtime_ns": 3, "claim_ctime_ns": 4, "created_at": NOW, "updated_at": NOW,
        "held_at": None, "expired_at": None, "expired_reason": None, "expired_detail": None,
        "files_removed_at": None,
        "recorded_start": NOW, "recorded_end": NOW, "recorded_source": "file_name",
        "timeline_origin": "inbox/cam1"}
    return {**base, **changes}


def test_every_field_comes_from_its_column():
    states = {"poster": {"status": "pending", "error": None, "error_code": None,
                         "remaking": False}}
    video = Video.from_row(row(derivatives=states))
    for f in fields(Video):
        assert getattr(video, f.name) == row(derivatives=states)[f.name], f.name


def test_derivatives_are_empty_where_a_statement_does_not_select_them():
    """RETURNING * and SELECT * bring no derivative states (migration 0009's table)."""
    assert Video.from_row(row()).derivatives == {}
    assert Video.from_row(row(derivatives=None)).derivatives == {}


def test_columns_the_video_lacks_are_ignored():
    """SELECT * brings the raw ffprobe JSON, the claim path digest and RETURNING extras."""
    video = Video.from_row(row(ffprobe={"streams": []}, claim_path_sha256=b"x", inserted=True))
    assert not hasattr(video, "ffprobe") and video.id == 7


def test_a_missing_column_names_itself():
    incomplete = row()
    del incomplete["error_code"]
    with pytest.raises(KeyError, match="error_code"):
        Video.from_row(incomplete)


def test_rows_are_frozen():
    video = Video.from_row(row())
    with pytest.raises(AttributeError):
        video.status = "failed"  # type: ignore[misc]


def test_the_selected_columns_are_the_fields():
    text = video_columns("v").as_string(None)
    columns = [f'"v"."{f.name}"' for f in fields(Video) if f.name != "derivatives"]
    assert text.split(", ")[:len(columns)] == columns
    assert text.endswith('WHERE d.video_id = "v"."id") AS derivatives')
    assert "ffprobe" not in video_columns().as_string(None)
    assert video_columns().as_string(None).endswith('= "videos"."id") AS derivatives')
