"""The media store: one interface (:class:`MediaStore`, videodrop/storage/base.py) over a
folder (``file``) or an S3-compatible bucket (``s3``), chosen by ``VIDEODROP_STORAGE_URL``.
Guarantees, settings and the client's choice: docs/storage.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from videodrop.errors import ConfigurationError
from videodrop.settings import Settings
from videodrop.storage.base import (
    SERVING_ATTEMPTS,
    SERVING_DEADLINE,
    SERVING_READ_TIMEOUT,
    STALE_UPLOAD_SECONDS,
    MediaStore,
    ObjectInfo,
    ObjectReader,
    Stored,
    check_key,
    read_chunks,
    redact_urls,
)
from videodrop.storage.errors import (
    IntegrityFailure,
    ObjectMissing,
    StorageFull,
    StoreError,
    StoreRefused,
    StoreUnavailable,
)
from videodrop.storage.filestore import FileStore

__all__ = ["SERVING_DEADLINE", "STALE_UPLOAD_SECONDS", "FileStore", "IntegrityFailure",
           "MediaStore", "ObjectInfo", "ObjectMissing", "ObjectReader", "StorageFull",
           "StoreError", "StoreRefused", "StoreUnavailable", "Stored", "check_key",
           "from_settings", "from_url", "local_root", "read_chunks", "redact_urls",
           "refuse_if_refused"]


def refuse_if_refused(media: MediaStore, log: Any) -> None:
    """At a role's start: a store that refuses us (no bucket, credentials refused) is a
    configuration error (:class:`ConfigurationError`: exit 78, the store named); one that
    does not answer yet is logged (``media store unavailable at start``) and waited out
    by the work itself."""
    try:
        media.check()
    except StoreRefused as exc:
        raise ConfigurationError(f"media store {media.describe()}: {exc}") from exc
    except StoreUnavailable as exc:
        log.warning("media store unavailable at start", store=media.describe(),
                    error=str(exc))


def from_url(url: str, settings: Settings | None = None, *, serving: bool = False,
             named_by: str = "VIDEODROP_STORAGE_URL") -> MediaStore:
    """The store at ``file:///abs/path`` or ``s3://bucket/prefix`` (the s3 options from
    ``settings``: endpoint, region, presign expiry, part size). ``serving``: for the API,
    whose calls give up on a store that hangs within :data:`SERVING_DEADLINE` seconds.
    ConfigurationError for any other URL, its sentence starting with ``named_by`` (what
    gave the URL: the setting, or a command's option)."""
    settings = settings or Settings()
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ConfigurationError(f"{named_by}: not a file:///absolute/path"
                                     f" URL: {url!r}")
        return FileStore(Path(unquote(parts.path)))
    if parts.scheme == "s3":
        from videodrop.storage.s3store import (  # noqa: PLC0415 - boto3 only when used
            S3Store,
            parse_s3_url,
        )

        try:
            bucket, prefix = parse_s3_url(url)
        except ValueError as exc:
            raise ConfigurationError(f"{named_by}: {exc}") from exc
        import botocore.exceptions  # noqa: PLC0415 - as above

        try:
            return S3Store(bucket, prefix, endpoint_url=settings.s3_endpoint_url,
                           region=settings.s3_region,
                           presign_seconds=settings.s3_presign_seconds,
                           part_size=settings.s3_part_size, checksum=settings.s3_checksum,
                           read_timeout=SERVING_READ_TIMEOUT if serving else 60.0,
                           attempts=SERVING_ATTEMPTS if serving else 4)
        except botocore.exceptions.BotoCoreError as exc:
            # the client reads the credential chain as it is made: AWS_ACCESS_KEY_ID
            # without AWS_SECRET_ACCESS_KEY, an AWS_PROFILE that ~/.aws/ does not hold, a
            # broken ~/.aws/config (the operator's to mend, as a bad URL is)
            raise ConfigurationError(f"{named_by} {url}: the AWS credentials"
                                     f" or configuration: {exc}") from exc
    raise ConfigurationError(f"{named_by} must be file:///path or"
                             f" s3://bucket/prefix, not {url!r}")


def from_settings(settings: Settings, *, serving: bool = False) -> MediaStore:
    """The store ``VIDEODROP_STORAGE_URL`` names; by default the folder
    ``VIDEODROP_MEDIA_ROOT`` (``file://``), which is what ``make run`` uses. ``serving``:
    see :func:`from_url`."""
    if not settings.storage_url:  # the folder as given, no round trip through a URL
        return FileStore(settings.media_root)
    return from_url(settings.storage_url, settings, serving=serving)


def local_root(store: MediaStore) -> Path:
    """The folder holding the objects of a store whose objects are local files (the file
    store: ``<root>/<key>``), for the work that needs a file system (renaming an inbox file
    in, sendfile, derive's scratch folders, nginx's stream links). ConfigurationError for a
    store without local files (s3)."""
    if isinstance(store, FileStore):
        return store.root
    raise ConfigurationError(f"this needs a media store of local files (file://), not"
                             f" {store.describe()} (docs/storage.md)")
