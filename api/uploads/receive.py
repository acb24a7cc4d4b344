"""``POST /api/videos``: an upload streamed to disk, never held in memory.

Two shapes of request, both read a chunk at a time:

* ``multipart/form-data`` as browsers and ``curl -F`` send it: a ``file`` part and optional
  ``name``, ``description``, ``source_id`` fields (any order; fields after the file are
  applied before the file is stored). Parsed by Falcon's streaming multipart parser.
* a raw body (``Content-Type: video/...`` or ``application/octet-stream``), file name from
  ``?filename=`` or ``Content-Disposition``, the fields as query parameters.

The row exists from the first byte of the file as ``uploading`` with its token. On a
store of local files (file://) the bytes go to ``<store>/.uploads/<id>.part``
(api/uploads/staging.py), are fsynced, renamed to the row's ``stored_path``; on s3 they
stream to the object ``stored_path`` as a multipart upload, verified before the row moves
on (api/uploads/to_object.py). The row becomes ``processing`` and a ``ProbeVideo``
message is published (api/uploads/probe_requests.py). Answer: 202, the record,
``Location``: its token URL.

The file name is the client's without its folders (RFC 7578 §4.2: ``C:\\Users\\bob\\
holiday.mp4`` is ``holiday.mp4``), bounded to ``media.NAME_BYTES`` (catalog.create_upload).

Refusals leave nothing behind (no file, no row): 413 as soon as the size is known to be
over VIDEODROP_MAX_FILE_SIZE (Content-Length, else the running count), 415 for an
extension outside ``videodrop/formats.py`` or a body that is neither a form nor a video, 409 for
a duplicate ``source_id``, 400 for a malformed form. A client that goes away mid-upload
(connection closed or reset, body shorter than its Content-Length, idle for
``IDLE_TIMEOUT``) leaves the row ``failed: upload interrupted`` and no file. A store
that cannot take the bytes: 507 (a full disk) or 503 (an object store unreachable,
refusing or failing a check), no row, no object.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import falcon
import structlog
from falcon.media.multipart import MultipartFormHandler, MultipartParseOptions
from falcon.util import BufferedReader
from falcon.util.mediatypes import parse_header

from api.http.params import query_params, text
from api.uploads import rawbody, staging, to_object
from api.uploads.body import CHUNK, Body, ClientGone, Readable, TooLarge
from api.uploads.probe_requests import ProbeRequests
from videodrop import formats, logs, media, records
from videodrop.catalog import Catalog, Video
from videodrop.errorcodes import ErrorCode
from videodrop.errors import CatalogUnavailable, Conflict
from videodrop.settings import Settings
from videodrop.storage import (
    FileStore,
    MediaStore,
    Stored,
    StoreError,
    StoreUnavailable,
    from_settings,
)
from videodrop.tokens import token_prefix

FORM_SLACK = 64 * 1024  # room for the part headers and text fields of a multipart upload
# how often a running upload writes the bytes received so far in its row's size (the
# library shows them) and touches it (the stale-upload sweep, api/uploads/probe_requests.py)
HEARTBEAT_SECONDS = 2.0
IDLE_TIMEOUT = 60.0  # a client that sends nothing for this long has gone
TEXT_LIMITS = {"name": 500, "description": 10_000, "source_id": 128, "filename": 1024}
# A raw upload's fields travel in the URL, which gunicorn limits to 4094 bytes: worst case
# (4-byte UTF-8, percent-encoded: 12 bytes a character) these still fit.
QUERY_LIMITS = {"name": 100, "description": 100, "source_id": 128, "filename": 100}
FIELDS = ("name", "description", "source_id")
SOURCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
RAW_TYPES = ("video/", "application/octet-stream")
_RFC5987 = re.compile(r"([\w!#$%&+^`{}~-]+)'[^']*'(.*)")
# a raw body without a file name: video.<ext> by its Content-Type (video/mp2t → video.ts)
_EXTENSION_OF = {c.content_type: c.extensions[0] for c in formats.CONTAINERS if c.extensions}
_ACCEPTED = ", ".join(sorted(formats.EXTENSIONS))


@dataclass
class Fields:
    name: str | None = None
    description: str | None = None
    source_id: str | None = None

    def set(self, key: str, value: str, limits: dict[str, int] = TEXT_LIMITS) -> None:
        setattr(self, key, _checked(key, value, limits[key]))


@dataclass
class Receipt:
    """One upload in flight: its row, temporary file (file store) or completed object
    (s3) and byte count."""

    video: Video | None = None
    stage: Path | None = None
    stored: Stored | None = None
    #: keys a put was sent to (s3): a put that raised may still have made its object (the
    #: store committed, its answer was lost), so an abandoned upload removes these too
    put_keys: set[str] = field(default_factory=set)
    size: int = 0
    late: Fields = field(default_factory=Fields)


def _checked(key: str, value: str, limit: int) -> str:
    if len(value) > limit:
        raise falcon.HTTPBadRequest(title=f"Bad {key}",
                                    description=f"{key} holds at most {limit} characters")
    if key == "source_id" and not SOURCE_ID.fullmatch(value):
        raise falcon.HTTPBadRequest(
            title="Bad source_id",
            description="source_id: letters, digits, '_', '.', '-'; starting with a letter "
                        "or digit")
    return text(value)


def _check_filename(filename: str | None, limit: int = TEXT_LIMITS["filename"]) -> str:
    if not filename:
        raise falcon.HTTPBadRequest(
            title="File name missing",
            description="Give the file a name: a multipart 'file' part with a filename, or "
                        "?filename= or Content-Disposition for a raw body.")
    filename = media.client_basename(_checked("filename", filename, limit))
    if formats.by_extension(filename) is None:
        extension = formats.extension_of(filename)
        raise falcon.HTTPUnsupportedMediaType(
            title="Unsupported format",
            description=f"{extension or 'no extension'!r} is not one of {_ACCEPTED}")
    return filename


def raw_filename(mime: str, query: dict[str, str], disposition: str | None) -> str:
    """``?filename=``, else ``Content-Disposition``, else ``video.<ext>`` when the
    Content-Type names one of the formats (``video/webm`` → ``video.webm``)."""
    if "filename" in query:
        return _check_filename(query["filename"], QUERY_LIMITS["filename"])
    if named := disposition_filename(disposition):
        return _check_filename(named)
    extension = _EXTENSION_OF.get(mime)
    if extension is None and mime.startswith("video/"):
        raise falcon.HTTPUnsupportedMediaType(
            title="Unsupported format",
            description=f"{mime} is not one of {', '.join(sorted(_EXTENSION_OF))}")
    return _check_filename(f"video.{extension}" if extension else None)


def disposition_filename(header: str | None) -> str | None:
    """The file name of a ``Content-Disposition`` header (``filename*`` wins, RFC 6266)."""
    if not header:
        return None
    _, params = parse_header(header)
    if star := params.get("filename*"):
        m = _RFC5987.fullmatch(star)
        if m:
            try:
                return unquote(m.group(2), encoding=m.group(1), errors="strict")
            except (LookupError, UnicodeDecodeError):
                pass
    return params.get("filename") or None


def _too_large(limit: int) -> falcon.HTTPError:
    return falcon.HTTPContentTooLarge(
        title="Upload too large",
        description=f"The file is larger than VIDEODROP_MAX_FILE_SIZE ({limit} bytes).")


class Upload:
    """``POST /api/videos`` (admin)."""

    def __init__(self, settings: Settings, catalog: Catalog, probes: ProbeRequests, *,
                 clock: Any = time.monotonic, media: MediaStore | None = None) -> None:
        """``media``: the process's media store (default: the one the settings name)."""
        self.settings = settings
        self.media = media if media is not None else from_settings(settings)
        # uploads are staged and renamed within a store of local files; on a store without
        # them (s3: None) they stream to the object (api/uploads/to_object.py)
        self.media_root = self.media.root if isinstance(self.media, FileStore) else None
        self.catalog = catalog
        self.probes = probes
        self.clock = clock
        self.log = logs.get("api.uploads")
        options = MultipartParseOptions()
        options.max_body_part_buffer_size = 16 * 1024  # text fields only; files stream
        options.max_body_part_count = 16
        self.forms = MultipartFormHandler(options)

    def root(self) -> Path:
        """The store's folder (ValueError on a store without one: uploads are not staged
        there)."""
        if self.media_root is None:
            raise ValueError("a store without local files stages no upload")
        return self.media_root

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        mime = (req.content_type or "").split(";", 1)[0].strip().lower()
        multipart = mime == "multipart/form-data"
        if not multipart and not mime.startswith(RAW_TYPES):
            raise falcon.HTTPUnsupportedMediaType(
                title="Unsupported body",
                description="Send multipart/form-data with a 'file' part, or the video "
                            "itself with Content-Type video/... and ?filename=.")
        limit = self.settings.max_file_size
        body_limit = limit + (FORM_SLACK if multipart else 0)
        declared = req.content_length
        if declared is not None and declared > body_limit:
            raise _too_large(limit)
        sock = req.env.get("gunicorn.socket")
        if sock is not None and hasattr(sock, "settimeout"):
            sock.settimeout(IDLE_TIMEOUT)
        query = query_params(req)
        fields = Fields()
        for key in FIELDS:  # for either shape; a form's own fields win
            if (value := query.get(key)) is not None:
                fields.set(key, value, QUERY_LIMITS)
        # straight from the socket into the staged file; an object store's put reads
        # whole parts, through Body.read
        direct = (None if multipart or self.media_root is None
                  else rawbody.socket_source(req.env, declared))
        body = Body(req.stream, declared, body_limit, direct)
        receipt = Receipt()
        try:
            if multipart:
                if "filename" in query:  # not used (the part names the file), but checked
                    _check_filename(query["filename"], QUERY_LIMITS["filename"])
                self._read_form(req, body, receipt, fields)
            else:
                filename = raw_filename(mime, query, req.get_header("Content-Disposition"))
                self._create_row(receipt, filename, fields)
                self._write_stage(receipt, body)
            video = self._move_into_place(receipt)
        except ClientGone as exc:
            self._abandon(receipt, interrupted=True, reason=str(exc))
            raise falcon.HTTPBadRequest(
                title="Upload interrupted",
                description="The body ended before it was complete.") from exc
        except TooLarge:
            self._abandon(receipt, reason="too large")
            raise _too_large(limit) from None
        except Conflict as exc:
            self._abandon(receipt, reason="conflict")
            raise falcon.HTTPConflict(title="Conflict", description=str(exc)) from exc
        except CatalogUnavailable:
            self._abandon(receipt, reason="catalog unavailable")
            raise  # the app's handler answers 503 (api/http/errors.py)
        except (StoreUnavailable, StoreError) as exc:  # an object store (s3)
            self._abandon(receipt, reason=f"storage: {exc}")
            raise falcon.HTTPServiceUnavailable(
                title="Cannot store the upload",
                description="The media store did not take the file; try again later.",
                retry_after=30) from exc
        except OSError as exc:  # writing to the store: disk full, permissions...
            self._abandon(receipt, reason=f"storage: {exc.strerror}")
            raise falcon.HTTPInsufficientStorage(
                title="Cannot store the upload",
                description=f"The media folder refused the file: {exc.strerror}.") from exc
        except falcon.HTTPError as exc:  # refusals: nothing stays behind
            self._abandon(receipt, reason=f"{exc.status}: {exc.description or exc.title}")
            raise
        except BaseException as exc:  # bugs: nothing stays behind
            self._abandon(receipt, reason=repr(exc))
            raise
        published = self.probes.publish(video.id)
        self.log.info("upload received", video_id=video.id, filename=video.original_filename,
                      size=video.size,
                      token=token_prefix(video.access_token), published=published)
        rec = records.record(video, self.settings.base_url)
        resp.status = falcon.HTTP_202
        resp.location = rec["api_links"]["api_endpoint"]
        resp.media = rec

    # --- the two shapes -----------------------------------------------------------------

    def _read_form(self, req: falcon.Request, body: Body, receipt: Receipt,
                   fields: Fields) -> None:
        reader = BufferedReader(body.read, body.expected or body.limit + 1, 256 * 1024)
        form = self.forms.deserialize(reader, req.content_type, body.expected)
        for part in form:
            if part.name == "file":
                if receipt.video is not None:
                    raise falcon.HTTPBadRequest(title="One file per upload",
                                                description="The form has two 'file' parts.")
                self._create_row(receipt, _check_filename(part.filename), fields)
                self._write_stage(receipt, part.stream)
            elif part.name in FIELDS:
                try:
                    text = part.get_data().decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise falcon.HTTPBadRequest(title=f"Bad {part.name}",
                                                description="not valid UTF-8") from exc
                (receipt.late if receipt.video else fields).set(part.name, text)
            # other parts are skipped: the parser drains them when it moves on
        if receipt.video is None:
            raise falcon.HTTPBadRequest(title="File missing",
                                        description="The form has no 'file' part.")

    # --- steps ---------------------------------------------------------------------------

    def _create_row(self, receipt: Receipt, filename: str, fields: Fields) -> None:
        receipt.video = self.catalog.create_upload(
            filename=filename, name=fields.name, description=fields.description or "",
            source_id=fields.source_id)
        structlog.contextvars.bind_contextvars(video_id=receipt.video.id)
        if self.media_root is not None:
            receipt.stage, fd = staging.open_stage(self.root(), receipt.video.id)
            os.close(fd)

    def _write_stage(self, receipt: Receipt, source: Readable) -> None:
        if self.media_root is None:
            self._put_object(receipt, source)
            return
        assert receipt.video is not None and receipt.stage is not None
        limit = self.settings.max_file_size
        next_beat = self.clock() + HEARTBEAT_SECONDS
        fd = os.open(receipt.stage, os.O_WRONLY | os.O_CLOEXEC)
        body = source if isinstance(source, Body) else None
        buffer = memoryview(bytearray(CHUNK if body is not None else 0))
        try:
            while True:
                if body is not None:  # one buffer, filled in place: no copy per chunk
                    view = buffer[:body.readinto(buffer)]
                else:
                    view = memoryview(source.read(CHUNK))
                if not view:
                    break
                receipt.size += len(view)
                if receipt.size > limit:
                    raise TooLarge()
                while view:
                    view = view[os.write(fd, view):]
                if self.clock() >= next_beat:
                    next_beat = self.clock() + HEARTBEAT_SECONDS
                    self._heartbeat(receipt.video.id, receipt.size)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _put_object(self, receipt: Receipt, source: Readable) -> None:
        video = receipt.video
        assert video is not None
        counted = to_object.CountedSource(
            source, limit=self.settings.max_file_size, clock=self.clock,
            heartbeat=HEARTBEAT_SECONDS, beat=lambda n: self._heartbeat(video.id, n))
        try:
            receipt.put_keys.add(video.stored_path)
            receipt.stored = to_object.put(self.media, video.stored_path, counted)
        finally:
            receipt.size = counted.size

    def _heartbeat(self, video_id: int, received: int) -> None:
        try:
            alive = self.catalog.touch_upload(video_id, received)
        except CatalogUnavailable:
            return  # the sweep allows minutes; the next beat may get through
        if not alive:
            raise falcon.HTTPConflict(title="Upload cancelled",
                                      description="The video was deleted during the upload.")

    def _move_into_place(self, receipt: Receipt) -> Video:
        video, stage = receipt.video, receipt.stage
        assert video is not None and (stage is not None or receipt.stored is not None)
        if receipt.size == 0:
            raise falcon.HTTPBadRequest(title="Empty upload", description="The file is empty.")
        late = receipt.late
        if late.name is not None or late.description is not None or late.source_id is not None:
            if late.source_id is not None and receipt.stored is not None:
                # the row is about to name another key: the object put under its first
                # one is noted before, so that a kill mid-move leaves nothing for good
                self.catalog.note_leftover(receipt.stored.key, video.id)
            updated = self.catalog.upload_details(video.id, name=late.name,
                                                  description=late.description,
                                                  source_id=late.source_id)
            if updated is None:
                raise falcon.HTTPConflict(title="Upload cancelled",
                                          description="The video was deleted during the upload.")
            receipt.video = video = updated
        if self.media_root is None:
            return self._object_received(receipt, video)
        assert stage is not None
        dst = staging.commit(stage, self.root(), video.stored_path)
        receipt.stage = None
        done = self.catalog.upload_received(video.id, receipt.size)
        if done is None:
            dst.unlink(missing_ok=True)
            raise falcon.HTTPConflict(title="Upload cancelled",
                                      description="The video was deleted during the upload.")
        return done

    def _object_received(self, receipt: Receipt, video: Video) -> Video:
        """The put's object verified (moved first when late fields moved the row's
        ``stored_path``), then the row ``processing`` with its size and SHA-256."""
        stored = receipt.stored
        assert stored is not None
        if stored.key != video.stored_path:
            receipt.put_keys.add(video.stored_path)
            first = stored.key
            receipt.stored = stored = to_object.move(self.media, stored, video.stored_path)
            with contextlib.suppress(CatalogUnavailable):  # else the sweep finds it gone
                self.catalog.forget_leftover(first)
        to_object.verify(self.media, stored)
        done = self.catalog.upload_received(video.id, stored.size, stored.sha256)
        if done is None:  # _abandon removes the object
            raise falcon.HTTPConflict(title="Upload cancelled",
                                      description="The video was deleted during the upload.")
        return done

    def _abandon(self, receipt: Receipt, *, reason: str, interrupted: bool = False) -> None:
        """Undo what an unfinished upload did: its file, and its row (deleted when refused,
        ``failed: upload interrupted`` when the client went away)."""
        video = receipt.video
        if video is None:
            return
        if self.media_root is None:
            self._remove_object(receipt)
        else:
            staging.remove_files(self.root(), video, stored=False)
            if receipt.stage is None and receipt.size:  # renamed into place already
                staging.remove_files(self.root(), video)
        try:
            if interrupted:
                self.catalog.mark_failed(video.id, "upload interrupted",
                                         ErrorCode.UPLOAD_INTERRUPTED)
            else:
                self.catalog.discard_upload(video.id)
        except CatalogUnavailable:
            pass  # the housekeeping sweep fails the row once its heartbeat is old
        self.log.info("upload abandoned", video_id=video.id, reason=reason,
                      received=receipt.size, interrupted=interrupted)

    def _remove_object(self, receipt: Receipt) -> None:
        """The completed object of an upload that did not make it (an unfinished put has
        aborted its own multipart upload), and whatever a put that raised may have made
        all the same under the keys it was sent to (a completion the store committed but
        whose answer was lost: these keys are the row's own, its ``source_id`` new). A
        key the store fails to delete now is noted as a leftover (the housekeeping deletes
        it later, unless a row names it)."""
        keys = set(receipt.put_keys)
        if receipt.stored is not None:
            keys.add(receipt.stored.key)
        video_id = receipt.video.id if receipt.video else None
        for key in sorted(keys):
            try:
                self.media.delete(key)
            except (StoreUnavailable, StoreError) as exc:
                self.log.warning("upload object not removed; noted as a leftover", key=key,
                                 video_id=video_id, error=str(exc))
                with contextlib.suppress(CatalogUnavailable):
                    self.catalog.note_leftover(key, video_id)
