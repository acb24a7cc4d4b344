"""The one table of accepted containers, used by every way in and out.

Ingest and uploads accept a file by its extension (:data:`BY_EXTENSION`); the prober
accepts it only when its content is one of the same containers (:data:`DEMUXERS`: the
ffprobe/ffmpeg demuxer names whose output may become ``ready``); the API serves it with the
container's ``Content-Type``; the pages list the extensions.

A container, by content, is named by its ``key`` (``file_info.format`` of a record).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BY_EXTENSION",
    "BY_KEY",
    "CONTAINERS",
    "DEMUXERS",
    "EXTENSIONS",
    "Container",
    "by_content",
    "by_extension",
    "content_type",
    "extension_of",
    "served_as",
]


@dataclass(frozen=True)
class Container:
    """One accepted container.

    ``key``: the short name recorded as ``file_info.format`` (``"mp4"``).
    ``content_type``: what the file is served as (RFC 6838 media type).
    ``extensions``: file name endings that claim it, lower case, without the dot; the first
    is the one a served file is named with.
    ``demuxers``: ffprobe's ``format_name`` parts that identify it by content.
    """

    key: str
    content_type: str
    extensions: tuple[str, ...]
    demuxers: frozenset[str]


_ISO_BMFF = frozenset({"mov", "mp4", "m4a", "3gp", "3g2", "mj2"})
_MATROSKA = frozenset({"matroska", "webm"})

CONTAINERS: tuple[Container, ...] = (
    Container("mp4", "video/mp4", ("mp4",), _ISO_BMFF),
    Container("m4v", "video/x-m4v", ("m4v",), _ISO_BMFF),
    Container("mov", "video/quicktime", ("mov", "qt"), _ISO_BMFF),
    Container("3gp", "video/3gpp", ("3gp", "3g2"), _ISO_BMFF),
    Container("mkv", "video/x-matroska", ("mkv",), _MATROSKA),
    Container("webm", "video/webm", ("webm",), _MATROSKA),
    Container("avi", "video/x-msvideo", ("avi",), frozenset({"avi"})),
    Container("wmv", "video/x-ms-wmv", ("wmv", "asf"), frozenset({"asf"})),
    Container("flv", "video/x-flv", ("flv",), frozenset({"flv"})),
    Container("ts", "video/mp2t", ("ts", "mts", "m2ts"), frozenset({"mpegts"})),
    # Raw elementary streams (Annex B), as cameras and Raspberry Pis write them under a
    # container's name: accepted by content only, never claimed by an extension.
    Container("h264", "video/h264", (), frozenset({"h264"})),
    Container("hevc", "video/h265", (), frozenset({"hevc"})),
)

BY_KEY: dict[str, Container] = {c.key: c for c in CONTAINERS}
BY_EXTENSION: dict[str, Container] = {e: c for c in CONTAINERS for e in c.extensions}
EXTENSIONS: frozenset[str] = frozenset(BY_EXTENSION)
#: Every demuxer whose output may become ``ready``; anything else (playlists such as
#: ``hls``/``concat``, image sequences, GIF, subtitles, text) is refused by content.
DEMUXERS: frozenset[str] = frozenset().union(*(c.demuxers for c in CONTAINERS))
#: Demuxers that name one container only (``mpegts`` → ts, ``asf`` → wmv): what a format
#: recorded by ffprobe's demuxer name rather than by key still maps to.
_BY_DEMUXER: dict[str, Container] = {
    d: c for c in CONTAINERS for d in c.demuxers
    if sum(d in other.demuxers for other in CONTAINERS) == 1}


def extension_of(name: str) -> str:
    """Lower-case extension without the dot, what follows the last ``.`` of the base name
    (``""`` when none): ``"A.MP4"`` → ``"mp4"``, ``".mp4"`` → ``"mp4"``."""
    base = name.rsplit("/", 1)[-1]
    return base.rpartition(".")[2].lower() if "." in base else ""


def by_extension(name: str) -> Container | None:
    """The container a file name claims by its extension, or None."""
    return BY_EXTENSION.get(extension_of(name))


def by_content(fmt: str | None) -> Container | None:
    """The container of a recorded ``file_info.format``: a key of :data:`BY_KEY`, or a
    demuxer name that only one container has; None otherwise."""
    if not fmt:
        return None
    return BY_KEY.get(fmt) or _BY_DEMUXER.get(fmt)


def served_as(fmt: str | None, filename: str = "") -> Container | None:
    """The container a file is served as: the one found by content (``fmt``, its
    ``file_info.format``), else the one its name claims; None when neither is known."""
    return by_content(fmt) or by_extension(filename)


def content_type(fmt: str | None, filename: str = "") -> str:
    """The Content-Type of :func:`served_as`, else ``application/octet-stream``."""
    container = served_as(fmt, filename)
    return container.content_type if container else "application/octet-stream"
