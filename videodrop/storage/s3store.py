"""The ``s3`` backend: objects in an S3-compatible bucket (AWS S3, SeaweedFS, MinIO, Ceph
RGW, Garage), through boto3 (the choice and its measurements: docs/storage.md).

A key ``a/b/c`` is the S3 key ``<prefix>a/b/c``. Credentials come from boto3's standard
chain (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``,
``AWS_PROFILE``, an instance role...), never from videodrop's settings.

Puts: an object of at most ``part_size`` bytes is one ``PutObject``; a larger one is a
multipart upload of ``part_size`` parts, ``max_in_flight`` of them sent at once by a small
thread pool while the next one is read and hashed (memory: ``(max_in_flight + 1) x
part_size``). Every request carries a checksum of its body (:data:`CHECKSUMS`), which the
store checks (``BadDigest`` → :class:`IntegrityFailure`). The SHA-256 and size of the whole
are checked before ``CompleteMultipartUpload``; any failure aborts the upload, so nothing
is visible. A process killed mid-upload leaves a multipart upload, invisible to readers, that
:meth:`S3Store.abort_stale_uploads` aborts.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import urlsplit

import boto3
import botocore.exceptions
from botocore.config import Config

from videodrop import logs
from videodrop.storage import base
from videodrop.storage.base import MediaStore, ObjectInfo, ObjectReader, Stored
from videodrop.storage.errors import (
    IntegrityFailure,
    ObjectMissing,
    StoreRefused,
    StoreUnavailable,
)

__all__ = ["CHECKSUMS", "MIN_PART_SIZE", "S3Store", "parse_s3_url"]

#: S3's smallest part (all but the last).
MIN_PART_SIZE = 5 << 20
_MAX_PARTS = 10_000
_MISSING = {"NoSuchKey", "404", "NotFound"}
_REFUSED = {"NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
            "InvalidBucketName", "AllAccessDisabled", "AccountProblem", "403"}
_INTEGRITY = {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch", "InvalidPart",
              "IncompleteBody"}

log = logs.get("videodrop.storage")
T = TypeVar("T")


#: The bucket names boto3 sends at all (botocore's own parameter check, the loosest any
#: S3-compatible server takes); another is refused by the client before any request, so
#: it is a configuration error, never a store that does not answer.
_BUCKET = re.compile(r"[A-Za-z0-9._-]{1,255}")


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` → ``("bucket", "some/prefix/")``; ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"not an s3://bucket/prefix URL: {url!r}")
    if not _BUCKET.fullmatch(parts.netloc):
        raise ValueError(f"{parts.netloc!r} is no bucket name (letters, digits, '.', '-',"
                         f" '_'): {url!r}")
    prefix = parts.path.strip("/")
    if prefix:
        base.check_key(prefix)
    return parts.netloc, prefix + "/" if prefix else ""


def _call(what: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``, botocore's errors turned into the store's."""
    try:
        return fn(*args, **kwargs)
    except botocore.exceptions.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _MISSING or (status == 404 and code not in _REFUSED):
            raise ObjectMissing(what) from exc
        if code in _INTEGRITY:
            raise IntegrityFailure(f"{what}: the store refused the bytes ({code})") from exc
        if code in _REFUSED or status in (401, 403):
            if not code or code.isdigit():  # a HEAD's answer has no body to name the error
                raise StoreRefused(f"{what}: access denied (HTTP {status or code}): the"
                                   " credentials are refused or may not use it") from exc
            raise StoreRefused(f"{what}: {code}") from exc
        raise StoreUnavailable(f"{what}: {code or status}") from exc
    except (botocore.exceptions.BotoCoreError, OSError) as exc:
        if isinstance(exc, botocore.exceptions.NoCredentialsError):
            raise StoreRefused(f"{what}: no AWS credentials") from exc
        raise StoreUnavailable(f"{what}: {exc}") from exc


class _BodyReader(base.ReaderBase):
    """An S3 response body as an :class:`ObjectReader`."""

    def __init__(self, body: Any, what: str) -> None:
        self._body = body
        self._what = what

    def read(self, size: int = -1, /) -> bytes:
        try:
            data: bytes = self._body.read(None if size is None or size < 0 else size)
        except (botocore.exceptions.BotoCoreError, OSError) as exc:
            raise StoreUnavailable(f"reading {self._what}: {exc}") from exc
        return data

    def close(self) -> None:
        self._body.close()


#: What each request body carries for the store to check (``VIDEODROP_S3_CHECKSUM``):
#: ``crc32`` (S3's flexible checksums, ``x-amz-checksum-crc32``: about 8x cheaper than MD5
#: here) or ``md5`` (``Content-MD5``, for stores that lack flexible checksums).
CHECKSUMS = ("crc32", "md5")


def _digest(kind: str, data: bytes) -> dict[str, str]:
    """The request parameter that makes the store check ``data``."""
    if kind == "md5":
        return {"ContentMD5": base64.b64encode(
            hashlib.md5(data, usedforsecurity=False).digest()).decode()}
    return {"ChecksumCRC32": base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()}


class S3Store(MediaStore):
    """Objects in ``bucket`` under ``prefix`` (``""`` or ending in ``/``).

    ``endpoint_url``: None for AWS, else the server (path-style addressing);
    ``presign_seconds``: :meth:`presign`'s default expiry (≤ 60 s by contract of the
    serving redirect); ``part_size`` ≥ 5 MiB; ``max_in_flight`` parts sent at once;
    ``checksum``: one of :data:`CHECKSUMS`; ``read_timeout`` (seconds a response may
    keep silent) and ``attempts`` (tries of a call) bound how long a store that hangs holds
    a call (:data:`~videodrop.storage.base.SERVING_DEADLINE` for the API's).
    """

    scheme = "s3"

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None,
                 region: str | None = None, presign_seconds: float = 60.0,
                 part_size: int = 16 << 20, max_in_flight: int = 4,
                 checksum: str = "crc32", pool_connections: int = 32,
                 read_timeout: float = 60.0, attempts: int = 4,
                 client: Any = None) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size is at least {MIN_PART_SIZE} bytes")
        if checksum not in CHECKSUMS:
            raise ValueError(f"checksum is one of {', '.join(CHECKSUMS)}")
        if prefix and not prefix.endswith("/"):
            raise ValueError("prefix is empty or ends with '/'")
        self.bucket, self.prefix, self.endpoint_url = bucket, prefix, endpoint_url
        self.presign_seconds, self.part_size, self.checksum = presign_seconds, part_size, checksum
        self.max_in_flight = max(1, max_in_flight)
        self._client = client or boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url, region_name=region or "us-east-1",
            config=Config(
                s3={"addressing_style": "path" if endpoint_url else "auto"},
                signature_version="s3v4",
                retries={"max_attempts": attempts, "mode": "standard"},
                connect_timeout=5, read_timeout=read_timeout,
                max_pool_connections=pool_connections,
                # our own checksum header on every body (see CHECKSUMS), not botocore's
                # streamed CRC trailer, which S3-compatible servers handle unevenly
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ))
        self._pool_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def describe(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"s3://{self.bucket}/{self.prefix}{where}"

    def _key(self, key: str) -> str:
        return self.prefix + base.check_key(key)

    def check(self) -> None:
        """The bucket answers to our credentials (:class:`StoreRefused` /
        :class:`StoreUnavailable` otherwise)."""
        try:
            _call(f"bucket {self.bucket}", self._client.head_bucket, Bucket=self.bucket)
        except ObjectMissing as exc:
            raise StoreRefused(f"no bucket {self.bucket!r}") from exc

    # --- puts ------------------------------------------------------------------------------

    def put_stream(self, key: str, source: BinaryIO, *, size: int | None = None,
                   sha256: str | None = None) -> Stored:
        s3key = self._key(key)
        verifier = base.Verifier(size, sha256)
        first = _read_full(source, self.part_size)
        verifier.update(first)
        if len(first) < self.part_size:
            digest = verifier.check()
            done = _call(f"put {key}", self._client.put_object, Bucket=self.bucket,
                         Key=s3key, Body=first, **_digest(self.checksum, first))
            return Stored(key, len(first), digest, done["ETag"])
        algorithm = {"ChecksumAlgorithm": "CRC32"} if self.checksum == "crc32" else {}
        upload = _call(f"start upload {key}", self._client.create_multipart_upload,
                       Bucket=self.bucket, Key=s3key, **algorithm)["UploadId"]
        try:
            parts = self._send_parts(key, s3key, upload, source, first=first,
                                     verifier=verifier)
            digest = verifier.check()
            done = _call(f"complete upload {key}", self._client.complete_multipart_upload,
                         Bucket=self.bucket, Key=s3key, UploadId=upload,
                         MultipartUpload={"Parts": parts})
        except BaseException:
            with contextlib.suppress(Exception):
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=s3key,
                                                    UploadId=upload)
            raise
        return Stored(key, verifier.size, digest, done["ETag"])

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.max_in_flight * 2,
                                                thread_name_prefix="s3-part")
            return self._pool

    def _send_parts(self, key: str, s3key: str, upload: str, source: BinaryIO, *,
                    first: bytes, verifier: base.Verifier) -> list[dict[str, Any]]:
        """Send ``first`` and the rest of ``source`` as parts, ``max_in_flight`` at once;
        the parts' numbers and ETags, in order."""
        pending: dict[int, Future[dict[str, Any]]] = {}
        done: list[dict[str, Any]] = []
        number, data = 1, first
        pool = self._executor()

        def send(n: int, body: bytes) -> dict[str, Any]:
            digest = _digest(self.checksum, body)
            answer = _call(f"upload {key} part {n}", self._client.upload_part,
                           Bucket=self.bucket, Key=s3key, UploadId=upload, PartNumber=n,
                           Body=body, **digest)
            part = {"PartNumber": n, "ETag": answer["ETag"]}
            return {**part, **digest} if self.checksum == "crc32" else part  # CRC: complete

        try:
            while data:
                if number > _MAX_PARTS:
                    raise IntegrityFailure(f"{key}: more than {_MAX_PARTS} parts of"
                                           f" {self.part_size} bytes")
                pending[number] = pool.submit(send, number, data)
                while len(pending) >= self.max_in_flight:
                    oldest = min(pending)
                    done.append(pending.pop(oldest).result())
                number += 1
                data = _read_full(source, self.part_size)
                verifier.update(data)
            done.extend(pending.pop(n).result() for n in sorted(pending))
        finally:
            for future in pending.values():
                future.cancel()
            for future in pending.values():
                with contextlib.suppress(BaseException):
                    future.result()
        return done

    # --- reads -----------------------------------------------------------------------------

    def open(self, key: str, start: int = 0, length: int | None = None) -> ObjectReader:
        if start < 0 or (length is not None and length < 0):
            raise ValueError(f"range {start}+{length} is not within {key}")
        if length == 0:
            self.stat(key)
            return _BodyReader(_Empty(), key)
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if start or length is not None:
            last = "" if length is None else str(start + length - 1)
            args["Range"] = f"bytes={start}-{last}"
        try:
            answer = _call(key, self._client.get_object, **args)
        except StoreUnavailable as exc:
            if "InvalidRange" in str(exc):
                raise ValueError(f"range {start}+{length} is not within {key}") from exc
            raise
        if length is not None and answer["ContentLength"] != length:
            answer["Body"].close()
            raise ValueError(f"range {start}+{length} is not within {key}")
        return _BodyReader(answer["Body"], key)

    def stat(self, key: str) -> ObjectInfo:
        answer = _call(key, self._client.head_object, Bucket=self.bucket, Key=self._key(key))
        return ObjectInfo(key, answer["ContentLength"], answer["ETag"],
                          answer["LastModified"].timestamp())

    def presign(self, key: str, expires: float | None = None, *,
                content_type: str | None = None, disposition: str | None = None
                ) -> str | None:
        # (response-content-type / -disposition: signed query parameters S3 answers with)
        overrides = {name: value for name, value in (("ResponseContentType", content_type),
                     ("ResponseContentDisposition", disposition)) if value is not None}
        return self._presign(key, self.presign_seconds if expires is None else expires,
                             **overrides)

    def input_url(self, key: str, expires: float) -> str:
        return self._presign(key, expires)

    def _presign(self, key: str, expires: float, **overrides: str) -> str:
        if not 0 < expires <= base.MAX_PRESIGN_SECONDS:
            raise ValueError(f"a presigned URL lives 1 s to {base.MAX_PRESIGN_SECONDS} s")
        url: str = _call(key, self._client.generate_presigned_url, "get_object",
                         Params={"Bucket": self.bucket, "Key": self._key(key), **overrides},
                         ExpiresIn=max(1, round(expires)))
        return url

    def local_path(self, key: str) -> Path | None:
        base.check_key(key)
        return None

    # --- deletes, listings, sweeps ---------------------------------------------------------

    def delete(self, key: str) -> bool:
        s3key = self._key(key)
        try:
            _call(key, self._client.head_object, Bucket=self.bucket, Key=s3key)
        except ObjectMissing:
            return False
        _call(f"delete {key}", self._client.delete_object, Bucket=self.bucket, Key=s3key)
        return True

    def delete_prefix(self, prefix: str) -> int:
        if not base.check_prefix(prefix):
            raise ValueError("delete_prefix('') would empty the whole store")
        count = 0
        batch: list[dict[str, str]] = []
        for info in self.list_objects(prefix):
            batch.append({"Key": self.prefix + info.key})
            if len(batch) == 1000:
                count += self._delete_batch(batch)
                batch = []
        if batch:
            count += self._delete_batch(batch)
        return count

    def _delete_batch(self, batch: list[dict[str, str]]) -> int:
        answer = _call("delete objects", self._client.delete_objects, Bucket=self.bucket,
                       Delete={"Objects": batch, "Quiet": True})
        if errors := answer.get("Errors"):
            raise StoreUnavailable(f"delete objects: {len(errors)} not deleted, first"
                                   f" {errors[0].get('Key')}: {errors[0].get('Code')}")
        return len(batch)

    def list_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        base.check_prefix(prefix)
        paginator = self._client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix)
        for page in _guarded_pages(f"list {prefix!r}", pages):
            for item in page.get("Contents", ()):
                key = item["Key"][len(self.prefix):]
                yield ObjectInfo(key, item["Size"], item["ETag"],
                                 item["LastModified"].timestamp())

    def abort_stale_uploads(self, older_than: float, prefix: str = "") -> list[str]:
        base.check_prefix(prefix)
        now = time.time()
        aborted: list[str] = []
        paginator = self._client.get_paginator("list_multipart_uploads")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix)
        for page in _guarded_pages(f"list uploads {prefix!r}", pages):
            for upload in page.get("Uploads", ()):
                age = now - upload["Initiated"].timestamp()
                if age < older_than:
                    continue
                key = upload["Key"][len(self.prefix):]
                try:
                    _call(f"abort upload {key}", self._client.abort_multipart_upload,
                          Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                except ObjectMissing:
                    continue  # aborted by another sweeper meanwhile
                log.info("stale upload aborted", key=key, age_s=round(age),
                         upload_id=upload["UploadId"][:16])
                aborted.append(key)
        return aborted


class _Empty:
    def read(self, size: int | None = None) -> bytes:
        return b""

    def close(self) -> None:
        pass


def _guarded_pages(what: str, pages: Any) -> Iterator[dict[str, Any]]:
    """A paginator's pages, botocore's errors turned into the store's."""
    iterator = iter(pages)
    while True:
        try:
            page = _call(what, next, iterator, None)
        except ObjectMissing as exc:
            raise StoreRefused(f"{what}: no such bucket") from exc
        if page is None:
            return
        yield page


def _read_full(source: BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes of ``source``: fewer only at its end (a pipe or a socket may
    give short reads before that)."""
    chunks: list[bytes] = []
    wanted = size
    while wanted > 0:
        data = source.read(wanted)
        if not data:
            break
        chunks.append(data)
        wanted -= len(data)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
