"""error_code in the catalog: migration 0005 gives rows failed before it their code, a
failed row cannot be written without one, and the catalog's writes carry it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest

from tests.harness import drop_database, rows
from videodrop.catalog import Catalog, ProbeOutcome
from videodrop.errorcodes import ErrorCode
from videodrop.migrate import available, migrate


@pytest.fixture
def bare_db(database_url: str) -> Iterator[str]:
    """A new database with no migrations applied."""
    name = f"vdcodes_{secrets.token_hex(4)}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = psycopg.conninfo.make_conninfo(database_url, dbname=name)
    yield url
    drop_database(database_url, url)


def insert(conn: psycopg.Connection, status: str, error: str | None) -> None:
    sid = secrets.token_hex(6)
    conn.execute("INSERT INTO videos (source_id, name, status, original_filename, origin,"
                 " stored_path, processing_error) VALUES (%s, 'x', %s, 'x.mp4', 'inbox', %s, %s)",
                 (sid, status, f"videos/{sid}/x.mp4", error))


def test_rows_failed_before_the_migration_get_their_code(bare_db: str) -> None:
    with psycopg.connect(bare_db, autocommit=True) as conn:
        for mig in [m for m in available() if m.version < 5]:
            conn.execute(mig.sql.encode())
        conn.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY,"
                     " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        conn.execute("INSERT INTO schema_migrations (version, name) SELECT v, 'old'"
                     " FROM generate_series(1, 4) v")
        for error in ("empty file", "not a media file: Invalid data", "timed out after 30 s",
                      "truncated: header claims 231 s, no video data", "upload interrupted",
                      "stored file is missing", "internal error: KeyError()",
                      "no video frames", "still image, not a video", "no video stream",
                      "duration unknown: no timestamps in the file"):
            insert(conn, "failed", error)
        insert(conn, "ready", None)
    after = [m.version for m in available() if m.version >= 5]  # 0005 and those after it
    assert [m.version for m in migrate(bare_db)] == after
    found = dict(rows(bare_db, "SELECT processing_error, error_code FROM videos"
                               " WHERE status = 'failed'"))
    assert found == {
        "empty file": "empty", "not a media file: Invalid data": "not_media",
        "timed out after 30 s": "timeout",
        "truncated: header claims 231 s, no video data": "truncated",
        "upload interrupted": "upload_interrupted", "stored file is missing": "missing_file",
        "internal error: KeyError()": "internal", "no video frames": "no_video_frames",
        "still image, not a video": "still_image", "no video stream": "no_video_stream",
        "duration unknown: no timestamps in the file": "unreadable",
    }
    assert set(found.values()) <= {code.value for code in ErrorCode}
    assert rows(bare_db, "SELECT error_code FROM videos WHERE status = 'ready'") == [(None,)]


def test_a_failed_row_needs_a_code_and_the_catalog_writes_it(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn, \
            pytest.raises(psycopg.errors.CheckViolation):
        insert(conn, "failed", "no code")
    catalog = Catalog.connect(db_url)
    try:
        video = catalog.create_upload(filename="a.mp4")
        failed = catalog.mark_failed(video.id, "upload interrupted", ErrorCode.UPLOAD_INTERRUPTED)
        assert failed is not None and failed.error_code == "upload_interrupted"
        started = catalog.start_processing(video.id)
        assert started is not None and started.error_code is None  # cleared for a new probe
        outcome = ProbeOutcome(status="failed", error="no video stream",
                               error_code=ErrorCode.NO_VIDEO_STREAM, size=1, sha256=None,
                               metadata={}, raw=None)
        done = catalog.finish_processing(video.id, outcome)
        assert done is not None and (done.status, done.error_code) == ("failed",
                                                                      "no_video_stream")
    finally:
        catalog.close()
