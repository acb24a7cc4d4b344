"""The catalog: video records in PostgreSQL. SQL lives in ``sql/queries.sql``."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from videodrop import logs, media
from videodrop.claims import InboxClaims
from videodrop.errorcodes import ErrorCode
from videodrop.errors import CatalogUnavailable, Conflict
from videodrop.links import StreamLinks
from videodrop.sql import query
from videodrop.tokens import Clock, TokenFactory, new_source_id, new_token, utcnow

STATUSES = ("uploading", "processing", "ready", "failed")
_LOCK_SPACE = 0x5644  # advisory lock namespace of "probing video <id>"


@dataclass(frozen=True)
class Video:
    id: int
    source_id: str
    name: str
    description: str
    status: str
    access_token: str | None
    token_expires_at: datetime | None
    original_filename: str
    origin: str
    origin_path: bytes | None  # inbox files: the inbox-relative path, raw bytes
    stored_path: str
    size: int | None
    sha256: str | None
    format: str | None
    duration: float | None
    resolution: str | None
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

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Video:
        return cls(**{f.name: row[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class ProbeOutcome:
    status: str  # ready | failed
    error: str | None
    size: int | None
    sha256: str | None
    metadata: dict[str, Any]
    raw: dict[str, Any] | None
    error_code: ErrorCode | None = None  # required when failed (the table's CHECK says so)


_IDLE_CHECK_SECONDS = 2.0


def _stamp(conn: psycopg.Connection[Any]) -> None:
    """Pool ``reset`` hook: remember when the connection was last given back."""
    _last_used[id(conn)] = time.monotonic()


def _check_if_idle(conn: psycopg.Connection[Any]) -> None:
    """Pool ``check`` hook: a round trip only for connections idle a while (a server restart
    breaks idle ones); a connection in steady use is known good, and the hot path (a token
    lookup per request) keeps its single round trip."""
    if time.monotonic() - _last_used.get(id(conn), 0.0) > _IDLE_CHECK_SECONDS:
        ConnectionPool.check_connection(conn)


_last_used: dict[int, float] = {}


class Catalog(InboxClaims):
    """Reads and writes video rows. Driver errors leave as :class:`CatalogUnavailable`.
    The watch-folder claims are :class:`videodrop.claims.InboxClaims`."""

    def __init__(self, pool: ConnectionPool, *, clock: Clock = utcnow,
                 new_token: TokenFactory = new_token, links: StreamLinks | None = None
                 ) -> None:
        self.pool = pool
        self.clock = clock
        self.new_token = new_token
        # VIDEODROP_STREAM_LINKS: nginx serves /stream/ from these (videodrop/links.py)
        self.links = links
        # Called after rotate/revoke/delete commit (the API's token cache forgets then).
        self.after_write: Callable[[], None] | None = None

    @classmethod
    def connect(cls, url: str, *, min_size: int = 1, max_size: int = 4,
                **kwargs: Any) -> Catalog:
        pool = ConnectionPool(url, min_size=min_size, max_size=max_size, open=False,
                              kwargs={"row_factory": dict_row, "autocommit": False},
                              # a connection broken by a server restart is replaced
                              # before it is handed out, not discovered by a query
                              check=_check_if_idle, reset=_stamp, timeout=10)
        pool.open(wait=False)
        return cls(pool, **kwargs)

    def close(self) -> None:
        self.pool.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self.pool.connection() as conn, conn.transaction():
                yield conn
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise CatalogUnavailable(str(exc).strip() or type(exc).__name__) from exc
        except TimeoutError as exc:  # pool could not hand out a connection in time
            raise CatalogUnavailable(f"no database connection: {exc}") from exc

    def _one(self, name: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
        with self._tx() as conn:
            return conn.execute(query(name), params).fetchone()

    def _all(self, name: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        with self._tx() as conn:
            return conn.execute(query(name), params).fetchall()

    @staticmethod
    def _video(row: Mapping[str, Any]) -> Video:
        return Video.from_row(row)

    def statement(self, name: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """One named statement (``videodrop/sql/*.sql``) in a transaction of its own: its
        first row, or None. For the catalog's neighbours (videodrop/websessions.py); driver
        errors leave as :class:`CatalogUnavailable`."""
        with self._tx() as conn:
            cursor = conn.execute(query(name), params)
            return cursor.fetchone() if cursor.description is not None else None

    def processing_lock(self, video_id: int) -> contextlib.AbstractContextManager[bool]:
        """Hold a session advisory lock on the video while it is probed: True if we got it.

        A duplicate message (a re-publish while the first is still being probed) finds the
        lock taken and can be acked: the holder's own message stays unacked until its
        commit, and if the holder dies its connection — and the lock — go with it and the
        broker redelivers that message."""
        return self._advisory_lock(_LOCK_SPACE, video_id)

    @contextlib.contextmanager
    def _advisory_lock(self, space: int, key: int) -> Iterator[bool]:
        """A session advisory lock on (``space``, ``key``), tried once, held for the block:
        True if we got it. It goes with the connection if the process dies."""
        try:
            with self.pool.connection() as conn:
                conn.autocommit = True
                got = conn.execute("SELECT pg_try_advisory_lock(%s, %s) AS ok",
                                   (space, key)).fetchone()
                locked = bool(got and got["ok"])  # type: ignore[call-overload]
                try:
                    yield locked
                finally:
                    if locked:
                        conn.execute("SELECT pg_advisory_unlock(%s, %s)", (space, key))
                    conn.autocommit = False
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise CatalogUnavailable(str(exc).strip() or type(exc).__name__) from exc

    def ping(self) -> None:
        with self._tx() as conn:
            conn.execute("SELECT 1")

    # --- uploads ----------------------------------------------------------------------

    def create_upload(self, *, filename: str, name: str | None = None, description: str = "",
                      source_id: str | None = None) -> Video:
        """The row of an upload, ``uploading``. ``filename`` as the client sent it: its
        folders go (``C:\\Users\\bob\\holiday.mp4`` → ``holiday.mp4``) and it is bounded
        to ``media.NAME_BYTES``, keeping its extension."""
        filename = media.bounded(media.client_basename(filename))
        sid = source_id or new_source_id(self.clock())
        params = {
            "source_id": sid,
            "name": name or media.name_from_filename(media.safe_filename(filename)),
            "description": description,
            "access_token": self.new_token(),
            "original_filename": filename,
            "now": self.clock(),
        }
        row = self._in_own_folder("create_upload", params, sid, filename)
        assert row is not None
        return Video.from_row(row)

    def _in_own_folder(self, statement: str, params: dict[str, Any], source_id: str,
                       filename: str) -> dict[str, Any] | None:
        """Run ``statement`` with the row's ``stored_path`` in the source_id's folder
        (``media.source_folder``). Should that folder hold a file of a row made before
        folders were kept apart (``a.`` once shared ``a``'s), the row goes to its
        ``media.hashed_folder`` instead. A source_id already taken is a :class:`Conflict`."""
        for folder in (media.source_folder(source_id), media.hashed_folder(source_id)):
            try:
                return self._one(statement, {**params, "stored_path": media.stored_path(
                    source_id, filename, folder=folder)})
            except psycopg.errors.UniqueViolation as exc:
                if exc.diag.constraint_name != "videos_stored_path_key":
                    raise Conflict(f"source_id {source_id!r} already exists") from exc
        raise Conflict(f"source_id {source_id!r} already exists")

    def upload_received(self, video_id: int, size: int) -> Video | None:
        row = self._one("upload_received", {"id": video_id, "size": size, "now": self.clock()})
        return Video.from_row(row) if row else None

    # --- processing -------------------------------------------------------------------

    def start_processing(self, video_id: int) -> Video | None:
        """None when the row is gone (deleted meanwhile)."""
        # probing a ready row again: its link goes first
        row = self._write_unlinked("start_processing", {"id": video_id, "now": self.clock()})
        return Video.from_row(row) if row else None

    def finish_processing(self, video_id: int, outcome: ProbeOutcome) -> Video | None:
        md = outcome.metadata
        params = {
            "id": video_id,
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
        }
        row = self._write_unlinked("finish_processing", params)
        if row and row["status"] == "ready":
            self._link(video_id)
        return Video.from_row(row) if row else None

    def note_waiting(self, video_id: int, reason: str) -> None:
        with self._tx() as conn:
            conn.execute(query("note_waiting"), {"id": video_id, "error": reason,
                                                 "now": self.clock()})

    def mark_failed(self, video_id: int, error: str, code: ErrorCode) -> Video | None:
        """``failed`` with ``code`` and the sentence ``error`` (never a ready row)."""
        row = self._one("mark_failed", {"id": video_id, "error": error, "error_code": code,
                                        "now": self.clock()})
        return Video.from_row(row) if row else None

    def mark_missing(self, video_id: int, error: str) -> Video | None:
        """``failed`` with code ``missing_file``, a ready row included: a record whose
        stored file is gone must not keep answering ``ready`` (nothing behind its links
        plays). None when there is no such row or it is still uploading."""
        row = self._one("mark_missing", {"id": video_id, "error": error, "now": self.clock()})
        return Video.from_row(row) if row else None

    # --- lookups ----------------------------------------------------------------------

    def by_id(self, video_id: int) -> Video | None:
        row = self._one("get_by_id", {"id": video_id})
        return Video.from_row(row) if row else None

    def by_token(self, token: str) -> Video | None:
        if not token or len(token) > 128:
            return None
        row = self._one("get_by_token", {"token": token, "now": self.clock()})
        return Video.from_row(row) if row else None

    def list_videos(self, *, limit: int = 50, cursor: tuple[datetime, int] | None = None,
                    status: str | None = None, origin: str | None = None,
                    created_after: datetime | None = None,
                    created_before: datetime | None = None) -> list[Video]:
        """Newest first by ``(created_at, id)``; ``cursor`` is the last row of the page before.
        See :meth:`list_statement` for why each page is an index range scan."""
        statement, params = self.list_statement(
            limit=limit, cursor=cursor, status=status, origin=origin,
            created_after=created_after, created_before=created_before)
        with self._tx() as conn:
            rows = conn.execute(statement, params, prepare=False).fetchall()
        return [Video.from_row(r) for r in rows]

    def ids_with_status(self, status: str) -> list[int]:
        with self._tx() as conn:
            rows = conn.execute(query("ids_by_status"), {"status": status}).fetchall()
        return [r["id"] for r in rows]

    def known_ids(self, ids: Sequence[int]) -> set[int]:
        """Those of ``ids`` that name a video."""
        with self._tx() as conn:
            rows = conn.execute(query("ids_known"), {"ids": list(ids)}).fetchall()
        return {r["id"] for r in rows}

    def counts(self) -> dict[str, int]:
        with self._tx() as conn:
            rows = conn.execute(query("count_by_status")).fetchall()
        out = dict.fromkeys(STATUSES, 0)
        out.update({r["status"]: r["n"] for r in rows})
        return out

    # --- management (api/) -------------------------------------------------------------

    def rotate_token(self, video_id: int, *, expires_at: datetime | None = None
                     ) -> Video | None:
        """A new token; the old one stops working with this commit."""
        row = self._changing("rotate_token", {"id": video_id, "token": self.new_token(),
                                              "expires_at": expires_at, "now": self.clock()})
        if row and row["status"] == "ready":
            self._link(video_id)
        return Video.from_row(row) if row else None

    def revoke_token(self, video_id: int) -> Video | None:
        row = self._changing("revoke_token", {"id": video_id, "now": self.clock()})
        return Video.from_row(row) if row else None

    def delete_video(self, video_id: int) -> Video | None:
        """Remove the row; the caller removes the stored file (its path is in the result)."""
        row = self._changing("delete_video", {"id": video_id})
        return Video.from_row(row) if row else None

    def _changing(self, name: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """A token-changing write: the link goes before it commits, caches forget after."""
        row = self._write_unlinked(name, params)
        self._changed()
        return row

    def _write_unlinked(self, name: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """Statement ``name`` on row ``params["id"]``, its stream link removed first, in the
        same transaction (:meth:`_unlink`)."""
        with self._tx() as conn:
            self._unlink(conn, params["id"])
            row: dict[str, Any] | None = conn.execute(query(name), params).fetchone()
        return row

    def _changed(self) -> None:
        if self.after_write is not None:
            self.after_write()

    # --- stream links (videodrop/links.py) ---------------------------------------------

    def _unlink(self, conn: psycopg.Connection[Any], video_id: int) -> None:
        """In a transaction about to change a row: if it is ready, lock it and remove its
        link now, so that the link is gone before the change is visible."""
        if self.links is None:
            return
        row = conn.execute(query("lock_ready_token"), {"id": video_id}).fetchone()
        if row and row["access_token"]:
            try:
                self.links.remove(row["access_token"])
            except OSError as exc:  # the change must not commit while the link serves
                raise CatalogUnavailable(
                    f"stream link of video {video_id} not removed, change refused: {exc}"
                ) from exc

    def _link(self, video_id: int) -> None:
        """After a row turned ready or got a new token: its link, made while the committed
        row is held FOR SHARE. A failure costs speed only (the API answers instead)."""
        if self.links is None:
            return
        try:
            with self._tx() as conn:
                row = conn.execute(query("link_row"), {"id": video_id}).fetchone()
                target = self.links.target(row) if row else None
                if target is not None:
                    self.links.add(target)
        except (CatalogUnavailable, OSError) as exc:
            logs.get("videodrop.links").warning(
                "stream link not made: the API serves this video", video_id=video_id,
                error=str(exc))

    def sync_links(self, batch: int = 1000) -> tuple[int, int]:
        """Put the link folder in step with the catalog: (links made, links removed).
        Links of rows that are no longer ready, revoked, expiring or moved go (removing is
        always safe); then every ready row's link is made, a batch of rows held FOR SHARE
        at a time."""
        links = self.links
        if links is None:
            return 0, 0
        removed = self.prune_links()
        made, after = 0, 0
        while True:
            with self._tx() as conn:
                rows = conn.execute(query("link_rows"), {"after": after, "limit": batch}
                                    ).fetchall()
                for row in rows:
                    target = links.target(row)
                    if target is not None and not links.is_current(target):
                        links.add(target)
                        made += 1
            if len(rows) < batch:
                return made, removed
            after = rows[-1]["id"]

    def prune_links(self) -> int:
        """Remove the links of rows that are no longer ready, revoked, expiring or moved:
        how many (the first half of :meth:`sync_links`; removing is always safe)."""
        links = self.links
        if links is None:
            return 0
        removed = 0
        for shard in links.shards():
            if not shard:
                continue
            with self._tx() as conn:
                rows = conn.execute(query("link_rows_by_token"),
                                    {"tokens": [token for token, _ in shard]}).fetchall()
            valid = {t.token: t for t in map(links.target, rows) if t is not None}
            removed += links.prune(shard, valid)
        return removed

    def touch_upload(self, video_id: int, received: int) -> bool:
        """Heartbeat of a running upload, with the bytes ``received`` so far (kept in
        ``size`` until the file is stored); False when the row is no longer uploading."""
        return self._one("touch_upload", {"id": video_id, "now": self.clock(),
                                          "received": received}) is not None

    def discard_upload(self, video_id: int) -> Video | None:
        """Delete the row of a refused upload (only while it is still uploading)."""
        row = self._one("discard_upload", {"id": video_id})
        return Video.from_row(row) if row else None

    def upload_details(self, video_id: int, *, name: str | None = None,
                       description: str | None = None,
                       source_id: str | None = None) -> Video | None:
        """Apply form fields that arrived after the file part (before it is stored)."""
        params = {"id": video_id, "name": name, "description": description,
                  "source_id": source_id, "stored_path": None, "now": self.clock()}
        if source_id is None:
            row = self._one("upload_details", params)
        else:
            current = self.by_id(video_id)
            if current is None:
                return None
            row = self._in_own_folder("upload_details", params, source_id,
                                      current.original_filename)
        return Video.from_row(row) if row else None

    def fail_stale_uploads(self, older_than: timedelta) -> list[Video]:
        """Uploads without a heartbeat for ``older_than`` (their API process died):
        ``failed: upload interrupted``. Returns them so their files can be removed."""
        now = self.clock()
        with self._tx() as conn:
            rows = conn.execute(query("fail_stale_uploads"),
                                {"now": now, "cutoff": now - older_than}).fetchall()
        return [Video.from_row(r) for r in rows]

    def claim_unpublished_uploads(self, older_than: timedelta) -> list[int]:
        """Received uploads no prober has started for ``older_than``: publish them again
        (a duplicate message is harmless). Each row goes to one caller per round."""
        now = self.clock()
        with self._tx() as conn:
            rows = conn.execute(query("claim_unpublished_uploads"),
                                {"now": now, "cutoff": now - older_than}).fetchall()
        return [r["id"] for r in rows]

    # --- the web pages (api/pages*.py, sql/pages.sql) --------------------------------------

    def library_page(self, *, limit: int, search: str | None = None,
                     status: str | None = None, before: tuple[datetime, int] | None = None,
                     after: tuple[datetime, int] | None = None) -> list[Video]:
        """A page of the library, newest first: rows older than ``before`` or (the page
        before) newer than ``after``, matching ``status`` and ``search`` (a substring of
        the name, source_id or original file name, any case)."""
        params, given = self._pages_filters(search, status)
        params["limit"] = limit
        cursor = before or after
        if cursor is not None:
            params["cursor_at"], params["cursor_id"] = cursor
            given.append("before" if before else "after")
        newer = after is not None and before is None
        where = (sql.SQL("WHERE ") + sql.SQL(" AND ").join(
            sql.SQL(query(f"pages_if_{name}")) for name in given)) if given else sql.SQL("")
        statement = sql.SQL(query("pages_list_newer" if newer else "pages_list_older"))
        with self._tx() as conn:
            rows = conn.execute(statement.format(where=where), params, prepare=False).fetchall()
        videos = [Video.from_row(r) for r in rows]
        return videos[::-1] if newer else videos

    def library_counts(self, *, search: str | None = None) -> dict[str, int]:
        """Videos per status, of those matching ``search`` (all when None)."""
        params, given = self._pages_filters(search, None)
        where = sql.SQL("WHERE " + query("pages_if_search")) if given else sql.SQL("")
        with self._tx() as conn:
            rows = conn.execute(sql.SQL(query("pages_counts")).format(where=where), params,
                                prepare=False).fetchall()
        out = dict.fromkeys(STATUSES, 0)
        out.update({r["status"]: r["n"] for r in rows})
        return out

    @staticmethod
    def _pages_filters(search: str | None, status: str | None
                       ) -> tuple[dict[str, Any], list[str]]:
        params: dict[str, Any] = {}
        given: list[str] = []
        if status:
            params["status"] = status
            given.append("status")
        if search:
            escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params["pattern"] = f"%{escaped}%"
            given.append("search")
        return params, given

    @staticmethod
    def list_statement(*, limit: int, cursor: tuple[datetime, int] | None = None,
                       status: str | None = None, origin: str | None = None,
                       created_after: datetime | None = None,
                       created_before: datetime | None = None
                       ) -> tuple[sql.Composed, dict[str, Any]]:
        """The admin list's statement for the filters given, and its parameters.

        The WHERE clause is put together from fixed fragments (``sql/admin.sql``), one per
        filter given, so the planner sees plain equalities and ranges that match an index
        (``0002_list_indexes.sql``) instead of ``(x IS NULL OR col = x)``, which a generic
        plan cannot serve from an index. Run it with ``prepare=False``: a custom plan
        each time, chosen with the actual values (a rare status → its own index)."""
        params: dict[str, Any] = {"limit": limit, "status": status, "origin": origin,
                                  "created_after": created_after,
                                  "created_before": created_before}
        if cursor is not None:
            params["cursor_at"], params["cursor_id"] = cursor
        given = [name for name in ("status", "origin", "created_after", "created_before")
                 if params[name] is not None] + (["cursor"] if cursor is not None else [])
        where = (sql.SQL("WHERE ") + sql.SQL(" AND ").join(
            sql.SQL(query(f"list_if_{name}")) for name in given)) if given else sql.SQL("")
        return sql.SQL(query("list_page")).format(where=where), params

    def lookup_token(self, token: str) -> Video | None:
        """:meth:`by_token` for the token endpoints' hot path: one round trip (a single
        SELECT needs no BEGIN/COMMIT, so autocommit) and only the columns of a Video."""
        if not token or len(token) > 128:
            return None
        statement = _lookup_statement()
        try:
            with self.pool.connection() as conn:
                conn.autocommit = True
                try:
                    row: Any = conn.execute(statement, {"token": token, "now": self.clock()}
                                            ).fetchone()
                finally:
                    with contextlib.suppress(psycopg.Error):
                        conn.autocommit = False
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise CatalogUnavailable(str(exc).strip() or type(exc).__name__) from exc
        except TimeoutError as exc:
            raise CatalogUnavailable(f"no database connection: {exc}") from exc
        return Video.from_row(row) if row else None


@functools.cache
def _lookup_statement() -> str:
    """``lookup_token`` with the Video columns filled in, composed once."""
    columns = sql.SQL(", ").join(sql.Identifier(f.name) for f in fields(Video))
    return sql.SQL(query("lookup_token")).format(columns=columns).as_string()
