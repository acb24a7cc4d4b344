"""Where a job writes: a fresh temporary folder beside the video's derivative files
(``MEDIA_ROOT/derivatives/<source_id>/.tmp-*``, same file system), whose files are
renamed into place only when the whole derivative is made (over the previous version
of a remade one, which is served until then). A reader never sees half a file; a job
that dies leaves its temporary folder, removed by the next job of the video."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from videodrop import derivatives, media

TEMP_PREFIX = ".tmp-"


@contextlib.contextmanager
def scratch(media_root: Path, source_id: str, kind: str) -> Iterator[Path]:
    """A new empty temporary folder for one derivative; removed after the block."""
    folder = derivatives.folder_of(media_root, source_id)
    folder.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{kind}-", dir=folder))
    try:
        yield temp
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def publish(media_root: Path, source_id: str, made: dict[Path, str], stale: str) -> list[str]:
    """Rename each file of ``made`` (temporary path → final name) into the video's folder,
    then remove the video's other files whose name starts with ``stale`` (what an earlier
    run made and this one did not). Returns the files' paths relative to ``media_root``."""
    folder = derivatives.folder_of(media_root, source_id)
    names = set(made.values())
    for temp, name in made.items():
        os.replace(temp, folder / name)
    media.fsync_dir(folder)
    withdraw(media_root, source_id, stale, keep=names)
    return [str((folder / n).relative_to(media_root)) for n in sorted(names)]


def withdraw(media_root: Path, source_id: str, stale: str, *,
             keep: frozenset[str] | set[str] = frozenset()) -> None:
    """Remove the video's files whose name starts with ``stale`` but those named in
    ``keep`` (what an earlier run made and this one did not; a kind whose remake failed
    or was skipped, whose record no longer names them)."""
    folder = derivatives.folder_of(media_root, source_id)
    for old in folder.glob(f"{stale}*"):
        if old.name not in keep and old.is_file():
            with contextlib.suppress(FileNotFoundError):
                old.unlink()


def sweep(media_root: Path, source_id: str, *, only: str = TEMP_PREFIX,
          keep: str | None = None) -> None:
    """Temporary folders a dead job left in the video's folder: those whose name starts
    with ``only`` but not with ``keep`` (we hold the lock of the jobs that make them)."""
    folder = derivatives.folder_of(media_root, source_id)
    for temp in folder.glob(f"{only}*"):
        if keep is None or not temp.name.startswith(keep):
            shutil.rmtree(temp, ignore_errors=True)
