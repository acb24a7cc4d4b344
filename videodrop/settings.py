"""Settings: one object, built once at each process's edge from ``VIDEODROP_*`` variables."""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from videodrop import derivatives, formats
from videodrop.brokerurls import AmqpUrlError, split_amqp_urls

PREFIX = "VIDEODROP_"
REQUEST_LOGS = ("all", "errors", "off")  # VIDEODROP_REQUEST_LOG
RENDITIONS = ("auto", "off", "always")  # VIDEODROP_RENDITIONS
TRANSCODES = ("eager", "on-view", "off")  # VIDEODROP_TRANSCODE
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                "slower", "veryslow")
EMPTY_MEANS_NONE = {"derive"}  # VIDEODROP_DERIVE= (empty) turns the derive role off

DEFAULT_IGNORE = (
    ".*",  # dotfiles, rsync's .name.XXXXXX temporaries
    "*.part",
    "*.partial",
    "*.filepart",
    "*.tmp",
    "*.crdownload",
    "*.download",
    "*~",
    "*.swp",
)

MIN_CHILD_MEMORY = 384 << 20

_UNITS = {"": 1, "B": 1, "K": 1000, "KB": 1000, "M": 1000**2, "MB": 1000**2, "G": 1000**3,
          "GB": 1000**3, "T": 1000**4, "TB": 1000**4, "KIB": 1024, "MIB": 1024**2,
          "GIB": 1024**3, "TIB": 1024**4}


#: The roles that run on an ``s3://`` store: the ingest (it never touches the store), the
#: prober (inbox files through its spool, uploads read where they lie), derive (reads
#: through presigned URLs, puts what it makes) and the API (serves and deletes objects,
#: takes uploads into the bucket, decodes frames and clips through presigned URLs) and
#: retention (age and quota rules over the catalog's bytes, objects deleted; ``keep_free``
#: refused). docs/storage.md.
S3_ROLES = frozenset({"ingest", "prober", "derive", "api", "retention"})


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message names the variable."""


def parse_size(text: str) -> int:
    """``"100MB"`` → 100_000_000, ``"1GiB"`` → 1073741824, ``"12345"`` → 12345."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    if not m or m.group(2).upper() not in _UNITS:
        raise SettingsError(f"not a size: {text!r} (use e.g. 100MB, 2GiB or a byte count)")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


@dataclass(frozen=True)
class Settings:
    database_url: str = "postgresql://localhost/videodrop"
    # one AMQP URL, or the nodes of one cluster separated by commas (``amqp_urls``)
    amqp_url: str = "amqp://guest:guest@localhost:5672/%2F"
    amqp_prefix: str = "videodrop"
    inbox: Path = Path("./var/inbox")
    media_root: Path = Path("./var/media")
    # the media store (videodrop/storage/, docs/storage.md): file:///path or
    # s3://bucket/prefix (None: the folder media_root); the s3 store's server (None: AWS),
    # region, presigned URLs' default life in seconds (≤ 60), multipart part size, and
    # the checksum each request body carries (crc32 | md5); how /download/ and /stream/
    # serve an s3 object (redirect: 307 to a presigned URL | proxy: the bytes through the API)
    storage_url: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_presign_seconds: float = 60.0
    s3_part_size: int = 16 << 20
    s3_checksum: str = "crc32"
    s3_serve: str = "redirect"
    base_url: str = "http://localhost:8000"
    bind: str = "127.0.0.1:8000"
    max_file_size: int = 100_000_000
    ffprobe: str = "ffprobe"
    probe_timeout: float = 30.0
    # the derive role (derive/): kinds to make ("" turns it off), jobs at once, each
    # ffmpeg child's deadline in seconds, and what a pass decoding every frame gets more
    # per second of media (derive/ffmpeg.py Deadline)
    derive: tuple[str, ...] = derivatives.DEFAULT_KINDS
    derive_concurrency: int = 1
    derive_timeout: float = 600.0
    derive_timeout_per_media_second: float = 0.5
    # browser renditions (derive/rendition.py, docs/playback.md): when a rendition is made
    # (auto | off | always), when a video transcode runs (eager | on-view | off), its
    # height cap (px), x264 preset and CRF
    renditions: str = "auto"
    transcode: str = "on-view"
    rendition_max_height: int = 1080
    rendition_preset: str = "veryfast"
    rendition_crf: int = 23
    ffmpeg: str = "ffmpeg"
    child_memory: int = 1 << 30  # RLIMIT_AS of every ffprobe/ffmpeg child (children.py)
    admin_token: str | None = None
    settle_seconds: float = 2.0
    rescan_seconds: float = 300.0
    ingest_mode: str = "auto"
    ignore_patterns: tuple[str, ...] = DEFAULT_IGNORE
    # the inbox policy (videodrop/inboxpolicy.py): extensions taken, and a size limit (None: none)
    inbox_extensions: frozenset[str] = formats.EXTENSIONS
    inbox_max_file_size: int | None = None
    # empty inbox folders at least inbox_prune_depth deep are removed once they have been
    # empty and unchanged for inbox_prune_after seconds (0: never; ingest/prune.py)
    inbox_prune_after: float = 3600.0
    inbox_prune_depth: int = 2
    prober_concurrency: int = field(default_factory=lambda: os.cpu_count() or 1)
    api_workers: int = 2
    api_threads: int = 8
    token_cache_size: int = 20_000
    accel_redirect: str | None = None
    stream_links: Path | None = None  # nginx serves /stream/ from links here (links.py)
    retention_file: Path | None = None  # retention rules, TOML (videodrop/retention/rules.py)
    log_format: str = "auto"
    log_level: str = "info"
    request_log: str = "all"  # all | errors | off: the API's line per request
    request_log_rate: int = 50  # at most this many request lines a second per API worker
    delivery_limit: int = 5
    metrics_bind: str | None = None
    # the API against hostile clients (api/worker.py, api/auth/clients.py, api/auth/throttle.py)
    header_timeout: float = 10.0  # seconds for a request head (and a small body) to arrive
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")  # may name the client
    login_burst: int = 10  # wrong admin tokens a client address may try at once...
    login_rate: float = 10.0  # ...and then this many a minute
    # frames at timestamps under the token (api/frames/): the widest picture served (px),
    # frames per /frames/ request, its output's size (bytes of RGB), decodes at once per
    # API worker (more answer 503), and the deadline of one request's children (s)
    frame_max_width: int = 1920
    frames_max: int = 64
    frames_max_bytes: int = 256 << 20
    frame_concurrency: int = 2
    frame_timeout: float = 30.0
    # clips under the token (api/frames/clip.py): the longest span asked (s), the largest
    # output (bytes: the ffmpeg child's file-size limit), cuts at once per API worker (more
    # answer 503), and the deadline of one request's children (s)
    clip_max_seconds: float = 60.0
    clip_max_bytes: int = 512 << 20
    clip_concurrency: int = 1
    clip_timeout: float = 120.0
    # the timeline's per-origin settings: a TOML file (videodrop/origins.py,
    # docs/timeline.md); None: every origin in UTC, 1 s gap tolerance, built-in patterns
    origins_file: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``VIDEODROP_<NAME>`` for every field; unknown variables are ignored."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(PREFIX + f.name.upper())
            if raw is None or (raw == "" and f.name not in EMPTY_MEANS_NONE):
                continue
            values[f.name] = _convert(f.name, raw)
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        self._validate_storage()
        try:
            split_amqp_urls(self.amqp_url)
        except AmqpUrlError as exc:
            raise SettingsError(str(exc)) from exc
        if self.ingest_mode not in {"auto", "inotify", "poll"}:
            raise SettingsError("VIDEODROP_INGEST_MODE must be auto, inotify or poll")
        if self.prober_concurrency < 1:
            raise SettingsError("VIDEODROP_PROBER_CONCURRENCY must be at least 1")
        if self.request_log not in REQUEST_LOGS:
            raise SettingsError(f"VIDEODROP_REQUEST_LOG must be one of {', '.join(REQUEST_LOGS)}")
        if self.request_log_rate < 0:
            raise SettingsError("VIDEODROP_REQUEST_LOG_RATE must be 0 (no limit) or more")
        if self.token_cache_size < 0:
            raise SettingsError("VIDEODROP_TOKEN_CACHE_SIZE must be 0 (off) or more")
        if self.delivery_limit < 1:
            raise SettingsError("VIDEODROP_DELIVERY_LIMIT must be at least 1")
        if self.child_memory < MIN_CHILD_MEMORY:
            raise SettingsError(f"VIDEODROP_CHILD_MEMORY must be at least"
                                f" {MIN_CHILD_MEMORY >> 20}MiB (ffprobe alone maps about"
                                " 270 MiB of shared libraries)")
        if self.derive_concurrency < 1:
            raise SettingsError("VIDEODROP_DERIVE_CONCURRENCY must be at least 1")
        if self.derive_timeout <= 0:
            raise SettingsError("VIDEODROP_DERIVE_TIMEOUT must be positive")
        if not 0 <= self.derive_timeout_per_media_second < math.inf:
            raise SettingsError("VIDEODROP_DERIVE_TIMEOUT_PER_MEDIA_SECOND must be 0 (the"
                                " same deadline for every child) or more seconds")
        if self.renditions not in RENDITIONS:
            raise SettingsError(f"VIDEODROP_RENDITIONS must be one of {', '.join(RENDITIONS)}")
        if self.transcode not in TRANSCODES:
            raise SettingsError(f"VIDEODROP_TRANSCODE must be one of {', '.join(TRANSCODES)}")
        if self.rendition_max_height < 2:
            raise SettingsError("VIDEODROP_RENDITION_MAX_HEIGHT must be at least 2 pixels")
        if self.rendition_preset not in X264_PRESETS:
            raise SettingsError("VIDEODROP_RENDITION_PRESET must be an x264 preset: "
                                + ", ".join(X264_PRESETS))
        if not 0 <= self.rendition_crf <= 51:
            raise SettingsError("VIDEODROP_RENDITION_CRF must be 0 to 51")
        if self.probe_timeout <= 0:
            raise SettingsError("VIDEODROP_PROBE_TIMEOUT must be positive")
        if not self.inbox_extensions:
            raise SettingsError("VIDEODROP_INBOX_EXTENSIONS names no extension")
        if self.inbox_max_file_size is not None and self.inbox_max_file_size < 1:
            raise SettingsError("VIDEODROP_INBOX_MAX_FILE_SIZE must be a size of 1 byte or more")
        if self.inbox_prune_after < 0:
            raise SettingsError("VIDEODROP_INBOX_PRUNE_AFTER must be 0 (never) or more seconds")
        if self.inbox_prune_depth < 1:
            raise SettingsError("VIDEODROP_INBOX_PRUNE_DEPTH must be at least 1 (the inbox"
                                " itself is never removed)")
        if self.header_timeout <= 0:
            raise SettingsError("VIDEODROP_HEADER_TIMEOUT must be positive")
        if self.login_burst < 1 or self.login_rate <= 0:
            raise SettingsError("VIDEODROP_LOGIN_BURST must be at least 1 and"
                                " VIDEODROP_LOGIN_RATE positive")
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError as exc:
                raise SettingsError(f"VIDEODROP_TRUSTED_PROXIES: {exc}") from exc
        if min(self.frame_max_width, self.frames_max, self.frames_max_bytes,
               self.frame_concurrency) < 1 or not 0 < self.frame_timeout < math.inf:
            raise SettingsError("VIDEODROP_FRAME_MAX_WIDTH, VIDEODROP_FRAMES_MAX,"
                                " VIDEODROP_FRAMES_MAX_BYTES, VIDEODROP_FRAME_CONCURRENCY"
                                " and VIDEODROP_FRAME_TIMEOUT must be positive")
        if min(self.clip_max_bytes, self.clip_concurrency) < 1 or not (
                0 < self.clip_max_seconds < math.inf and 0 < self.clip_timeout < math.inf):
            raise SettingsError("VIDEODROP_CLIP_MAX_SECONDS, VIDEODROP_CLIP_MAX_BYTES,"
                                " VIDEODROP_CLIP_CONCURRENCY and VIDEODROP_CLIP_TIMEOUT must"
                                " be positive")
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+", self.amqp_prefix):
            raise SettingsError("VIDEODROP_AMQP_PREFIX may hold letters, digits, _ . - only")

    def store_in_use_problem(self, role: str | None = None) -> str | None:
        """Why ``role`` (None: any role) cannot run on ``storage_url`` (None: it can).
        Every role keeps media in the store ``VIDEODROP_STORAGE_URL`` names
        (videodrop/storage/); a ``file://`` store (any folder) works throughout; an
        ``s3://`` one only for the roles of :data:`S3_ROLES`, the others refuse it rather
        than half use it until their s3 paths land (docs/storage.md)."""
        if (self.storage_url is not None and self.storage_url.startswith("s3://")
                and role not in S3_ROLES):
            return (f"VIDEODROP_STORAGE_URL=s3://… is not used by the {role or 'other'} role"
                    " yet (it needs a file:// store; docs/storage.md): unset it")
        return None

    def _validate_storage(self) -> None:
        if self.storage_url is not None and not re.match(r"(file|s3)://", self.storage_url):
            raise SettingsError("VIDEODROP_STORAGE_URL must be file:///path or"
                                " s3://bucket/prefix")
        if not 1 <= self.s3_presign_seconds <= 60:
            raise SettingsError("VIDEODROP_S3_PRESIGN_SECONDS must be 1 to 60 (a revoked"
                                " token's presigned URLs die within it)")
        if self.s3_part_size < 5 << 20:
            raise SettingsError("VIDEODROP_S3_PART_SIZE must be at least 5MiB (S3's least)")
        if self.s3_checksum not in ("crc32", "md5"):
            raise SettingsError("VIDEODROP_S3_CHECKSUM must be crc32 or md5")
        if self.s3_serve not in ("redirect", "proxy"):
            raise SettingsError("VIDEODROP_S3_SERVE must be redirect or proxy")

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def amqp_urls(self) -> tuple[str, ...]:
        """The broker's URLs, in VIDEODROP_AMQP_URL's order (several: the nodes of one
        cluster). :class:`SettingsError` when one is unusable."""
        try:
            return split_amqp_urls(self.amqp_url)
        except AmqpUrlError as exc:
            raise SettingsError(str(exc)) from exc

    # Names on the broker, all derived from one prefix so test sessions never collide.
    @property
    def exchange(self) -> str:
        return self.amqp_prefix

    @property
    def probe_queue(self) -> str:
        return f"{self.amqp_prefix}.probe"

    @property
    def dead_exchange(self) -> str:
        return f"{self.amqp_prefix}.dead"

    @property
    def dead_queue(self) -> str:
        return f"{self.amqp_prefix}.probe.dead"

    @property
    def derive_queue(self) -> str:
        return f"{self.amqp_prefix}.derive"

    @property
    def derive_dead_queue(self) -> str:
        return f"{self.amqp_prefix}.derive.dead"

    @property
    def transcode_queue(self) -> str:
        """Video transcodes (derive/transcoder.py): one consumer per derive process."""
        return f"{self.amqp_prefix}.derive.transcode"

    @property
    def transcode_dead_queue(self) -> str:
        return f"{self.amqp_prefix}.derive.transcode.dead"

    @property
    def job_queues(self) -> tuple[tuple[str, str, str], ...]:
        """(routing key, queue, dead-letter queue) of every kind of job: what
        ``videodrop.broker.declare`` declares."""
        return (("probe", self.probe_queue, self.dead_queue),
                ("derive", self.derive_queue, self.derive_dead_queue),
                ("transcode", self.transcode_queue, self.transcode_dead_queue))

    @property
    def amqp_names(self) -> tuple[str, ...]:
        """Every exchange and queue the roles declare: the names a run leaves on the broker."""
        return (self.exchange, self.dead_exchange,
                *(name for _key, queue, dead in self.job_queues for name in (queue, dead)))

    def link(self, path: str) -> str:
        return self.base_url.rstrip("/") + path


_STORAGE_CONVERT: dict[str, Callable[[str], object]] = {"s3_presign_seconds": float,
                                                       "s3_part_size": parse_size}


def _convert(name: str, raw: str) -> object:
    var = PREFIX + name.upper()
    try:
        if name in _STORAGE_CONVERT:
            return _STORAGE_CONVERT[name](raw)
        if name in {"inbox", "media_root", "stream_links", "retention_file", "origins_file"}:
            return Path(raw)
        if name in {"max_file_size", "inbox_max_file_size", "child_memory",
                    "frames_max_bytes", "clip_max_bytes"}:
            return parse_size(raw)
        if name == "derive":
            return derivatives.parse_kinds(raw)
        if name in {"probe_timeout", "derive_timeout", "derive_timeout_per_media_second",
                    "settle_seconds", "rescan_seconds",
                    "header_timeout", "login_rate", "inbox_prune_after", "frame_timeout",
                    "clip_max_seconds", "clip_timeout"}:
            return float(raw)
        if name in {"prober_concurrency", "derive_concurrency", "api_workers", "api_threads",
                    "delivery_limit", "token_cache_size", "request_log_rate", "login_burst",
                    "inbox_prune_depth", "rendition_max_height", "rendition_crf",
                    "frame_max_width", "frames_max", "frame_concurrency",
                    "clip_concurrency"}:
            return int(raw)
        if name == "trusted_proxies" and raw.strip().lower() == "none":
            return ()
        if name in {"ignore_patterns", "trusted_proxies"}:
            return tuple(p.strip() for p in raw.split(",") if p.strip())
        if name == "inbox_extensions":  # "mp4, .MKV, 264" → {"mp4", "mkv", "264"}; "*": all
            return frozenset(e.strip().lstrip(".").lower() for e in raw.split(",")
                             if e.strip().lstrip("."))
        if name in {"renditions", "transcode", "rendition_preset"}:
            return raw.strip().lower()
        if name == "accel_redirect":
            return raw if raw.endswith("/") else raw + "/"
    except ValueError as exc:
        raise SettingsError(f"{var}={raw!r}: {exc}") from exc
    return raw


__all__ = ["DEFAULT_IGNORE", "MIN_CHILD_MEMORY", "S3_ROLES", "Settings", "SettingsError",
           "parse_size"]
