"""The inbox policy: which files of the inbox become videos, applied before anything is
published. A refused file stays where it is, is logged ``refused`` once with the reason,
is counted in ``videodrop_ingest_files_refused_total{reason}``, and never becomes a row.

By name (before a file is even tracked): hidden and temporary names are passed over in
silence (``VIDEODROP_IGNORE_PATTERNS``: the writer renames them when done); a name whose
extension is not in ``VIDEODROP_INBOX_EXTENSIONS`` (default: every extension of
``videodrop/formats.py``) is refused. By size, once the file has settled: an empty file,
and one over ``VIDEODROP_INBOX_MAX_FILE_SIZE`` when that is set.
"""

from __future__ import annotations

from dataclasses import dataclass

from videodrop import formats, media
from videodrop.settings import Settings


@dataclass(frozen=True)
class Refusal:
    """Why a file is not taken: ``code`` (a label of the metric, one of
    ``videodrop.metrics.REFUSAL_REASONS``) and ``reason`` (a sentence for the log)."""

    code: str
    reason: str


@dataclass(frozen=True)
class InboxPolicy:
    ignore: tuple[str, ...] = ()
    extensions: frozenset[str] = formats.EXTENSIONS
    max_size: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> InboxPolicy:
        return cls(settings.ignore_patterns, settings.inbox_extensions,
                   settings.inbox_max_file_size)

    def ignored(self, name: str) -> bool:
        """A hidden or temporary name: not a file yet, passed over without a word."""
        return media.is_ignored(name, self.ignore)

    def by_name(self, name: str) -> Refusal | None:
        if media.has_extension(name, self.extensions):
            return None
        extension = formats.extension_of(name)
        return Refusal("extension", (f"not a video: .{extension}" if extension else
                                     "not a video: no extension")
                       + " is not one of VIDEODROP_INBOX_EXTENSIONS")

    def by_size(self, size: int) -> Refusal | None:
        """For a settled file of ``size`` bytes."""
        if size == 0:
            return Refusal("empty", "empty file")
        if self.max_size is not None and size > self.max_size:
            return Refusal("too_large", f"{size} bytes, over VIDEODROP_INBOX_MAX_FILE_SIZE"
                                        f" ({self.max_size} bytes)")
        return None
